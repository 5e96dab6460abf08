// SPDX-License-Identifier: BSD-3-Clause
// RSS redirection table (RETA) contents and RSS keys, computed without a device.
//
// ## What a NIC does with them
// For each received packet the NIC computes h = toeplitz(key, tuple) (see toeplitz.hpp) and delivers
// the packet to rx queue reta[h & (reta_size - 1)]: the low log2(reta_size) bits of the hash index a
// table of reta_size queue numbers (64 to 2048 entries on current NICs, always a power of two). With
// a well-mixing key every entry receives the same share of flows, so a queue's share of the traffic
// is (entries holding it) / reta_size; the table content is the whole policy.
//
// ## Round robin (DPVS's __netif_update_rss_reta)
//   reta[i] = queues[i mod n]
// Each queue gets floor(size / n) entries, the first (size mod n) queues one more.
//
// ## Weighted
// Entries are apportioned by the largest-remainder (Hamilton) method. With W = sum of weights, queue
// i's exact quota is q_i = size * w_i / W; it first gets floor(q_i) entries, then the
// size - sum(floor(q_i)) entries left over go one each to the queues with the largest fractional parts
// (ties: the earlier queue in the list). Hamilton is the method that satisfies the quota rule,
// |entries_i - q_i| < 1 for every i: no queue is ever off its share by a whole entry. A queue of
// weight 0 gets no entry.
//
// The entries are then placed so that every queue's entries are spread evenly through the table, by
// the chairman-assignment rule (R. Tijdeman, "The chairman assignment problem", Discrete Math. 32,
// 1980): with rates r_q = entries_q / size over the m queues that have entries and s = 1 / (2m - 2),
// position t (1-based) goes to the queue q with the smallest deadline (x_q + 1 - s) / r_q among those
// whose lag r_q * t - x_q is at least s, x_q being q's entries so far. Tijdeman proves
// |x_q(t) - r_q * t| <= 1 - s for every prefix t, so one pass over `size` positions hands out exactly
// entries_q to each queue, and any window of the table (any run of consecutive entries) holds a
// queue's proportional share to within two entries. Why it matters: position does not matter for a
// perfectly uniform hash, but real traffic often varies in a few low hash bits only (few flows, or the
// symmetric key below, whose hash has 16 bits of entropy); those flows then index one aligned block of
// the table, and a queue whose entries sat in one contiguous run would get all or nothing of them.
// Equal weights whose count divides `size` give exactly the round-robin table.
//
// ## Periodic (the default for RSS-aware ports)
// RSS-aware local ports (rss_ports.hpp) give an lcore one sa_pool bucket per pattern of the RETA
// index bits D that decide "is this entry my queue's": 2^|D| buckets of ~(range / 8 + 2 * ports)
// bytes each. Round robin over n queues depends on the low log2(n) index bits when n is a power of
// two, but on every index bit otherwise: 6 queues over 512 entries make 512 buckets, ~14.6 MiB per
// (LIP, lcore), ~88 MiB per LIP. A table with period P = 2^m,
//   reta[j] = f(j mod P),        f(c) = queues[c mod n]   (port_plan's class -> lcore rule),
// depends on the low m index bits only, so no lcore needs more than P buckets. The price is balance:
// each queue gets floor(P / n) or ceil(P / n) of the P classes, so its share is off the even share
// 1/n by less than 1/P of the traffic, i.e. by less than n / P of the mean share (exactly 0 when n
// divides P). With weights, f is reta_weighted over the P classes (Hamilton counts, chairman
// placement inside the period), and the quota rule bounds every queue's error by 1/P again.
//
// reta_period_bits picks m: the smallest m such that every queue of non-zero weight gets a class and
// either the split is exact (every quota P * w_i / W whole; equal weights: n a power of two dividing
// P) or P >= balance * n (shares within 1/balance of the mean share); capped at log2(size), where
// the table is round robin or weighted over its whole length. Default balance 16: within 6.25%.
// The trade for 6 queues, RETA 512, ports 1025-65535 (sa_pool<rss_buckets>::memory_bytes() of the
// busiest queue's pool, and the sum over the 6 lcores' pools of one LIP):
//     P     classes per queue     share vs mean      buckets   per (LIP, lcore)   per LIP
//     16    3 3 3 3 2 2           +12.5% / -25%      16        0.49 MiB           2.7 MiB
//     32    6 6 5 5 5 5           +12.5% / -6.3%     32        0.99 MiB           5.4 MiB
//     64    11 11 11 11 10 10     +3.1% / -6.3%      64        1.85 MiB           10.9 MiB
//     128   22 22 21 21 21 21     +3.1% / -1.6%      128       3.70 MiB           21.7 MiB   default
//     512   86 86 85 85 85 85     +0.8% / -0.4%      512       14.6 MiB           86.8 MiB   round robin
// Power-of-two queue counts lose nothing: 4 or 8 queues take P = 4 or 8, exactly round robin's
// table and buckets. When memory matters more than the last few percent of balance, lower `balance`
// (8: P = 64 for 6 queues) or narrow the port range, which shrinks every bucket.
//
// ## Symmetric key
// The key 0x6d5a repeated (Woo and Park, "Scalable TCP Session Monitoring with Symmetric RSS", 2012)
// has period 16 bits, so the 32-bit key window Toeplitz uses for input bit i depends on i mod 16 only.
// Swapping source and destination moves every address bit by 32 (IPv4) or 128 (IPv6) positions and
// every port bit by 16: multiples of 16, so each set bit keeps its window and
//   toeplitz(k, {a, b, pa, pb}) == toeplitz(k, {b, a, pb, pa}).
// The price: the hash is a linear function of the XOR of the input's 16-bit words only, 2^16 values
// at most, its high half equal to its low half. That is plenty for a RETA index (at most 11 bits) and
// is what lets both directions of a connection meet on one queue without a flow rule.
//
// Everything here allocates only its result (configuration time).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fnat/core/checked.hpp"
#include "fnat/core/error.hpp"

#define FNAT_RETA_EXPECT(cond, msg) FNAT_EXPECT("reta", cond, msg)

namespace fnat {

/// The 40-byte symmetric RSS key: 0x6d 0x5a repeated (see the file comment for the property).
inline constexpr std::array<std::uint8_t, 40> rss_key_symmetric = [] {
  std::array<std::uint8_t, 40> k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = (i % 2 == 0) ? 0x6d : 0x5a;
  return k;
}();

/// The symmetric key at any length (52 bytes for i40e/ice, 40 for most others).
/// Complexity: O(bytes). Allocates the result.
[[nodiscard]] inline std::vector<std::uint8_t> make_symmetric_rss_key(std::size_t bytes) {
  std::vector<std::uint8_t> k(bytes);
  for (std::size_t i = 0; i < bytes; ++i) k[i] = (i % 2 == 0) ? 0x6d : 0x5a;
  return k;
}

/// The RETA entry a hash selects. Requires: size is a power of two (checked mode aborts with a
/// message otherwise). O(1), noexcept.
[[nodiscard]] constexpr std::size_t reta_index(std::uint32_t hash, std::size_t size) noexcept {
  FNAT_RETA_EXPECT(size != 0 && (size & (size - 1)) == 0, "RETA size must be a power of two");
  return hash & (size - 1);
}

namespace detail {
inline result<void> check_reta_args(std::size_t queues, std::size_t size) {
  if (queues == 0) return error(errc::invalid_argument, "RETA: the queue list is empty; give at least one rx queue");
  if (size == 0)
    return error(errc::invalid_argument,
                 "RETA: table size 0; the device reports no redirection table (reta_size 0), so RSS cannot "
                 "be programmed on it");
  return {};
}
}  // namespace detail

/// Round-robin table: reta[i] = queues[i % queues.size()] (DPVS). A queue listed twice gets twice the
/// share.
/// Errors: errc::invalid_argument for an empty queue list or size 0.
/// Complexity: O(size). Allocates the result.
[[nodiscard]] inline result<std::vector<std::uint16_t>> reta_round_robin(std::span<const std::uint16_t> queues,
                                                                         std::size_t size) {
  if (auto ok = detail::check_reta_args(queues.size(), size); !ok) return ok.err();
  std::vector<std::uint16_t> t(size);
  for (std::size_t i = 0; i < size; ++i) t[i] = queues[i % queues.size()];
  return t;
}

/// Entries per queue by the largest-remainder method (file comment): out[i] is queue i's count, and
/// the counts sum to `size`.
/// Errors: errc::invalid_argument for an empty list, size 0, or all weights 0.
/// Complexity: O(n log n). Allocates the result.
[[nodiscard]] inline result<std::vector<std::uint32_t>> reta_apportion(std::span<const std::uint32_t> weights,
                                                                       std::size_t size) {
  if (auto ok = detail::check_reta_args(weights.size(), size); !ok) return ok.err();
  std::uint64_t total = 0;
  for (std::uint32_t w : weights) total += w;
  if (total == 0) return error(errc::invalid_argument, "RETA: every weight is 0; give at least one queue a weight");
  const std::size_t n = weights.size();
  std::vector<std::uint32_t> count(n);
  std::vector<std::uint64_t> rem(n);  // fractional part of the quota, scaled by total
  std::uint64_t given = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t scaled = static_cast<std::uint64_t>(size) * weights[i];  // < 2^16 * 2^32
    count[i] = static_cast<std::uint32_t>(scaled / total);
    rem[i] = scaled % total;
    given += count[i];
  }
  // Hand the leftovers to the largest remainders; ties to the earlier queue. The leftover is below n,
  // so a selection by repeated maximum is O(n^2) worst case; n is the rx queue count (<= 1024 here).
  std::vector<bool> bumped(n, false);
  for (std::uint64_t left = size - given; left > 0; --left) {
    std::size_t best = n;
    for (std::size_t i = 0; i < n; ++i)
      if (!bumped[i] && weights[i] != 0 && (best == n || rem[i] > rem[best])) best = i;
    bumped[best] = true;
    ++count[best];
  }
  return count;
}

/// Weighted table: counts by reta_apportion, placed by the chairman-assignment rule (file comment).
/// Errors: errc::invalid_argument for an empty list, size 0, weights.size() != queues.size(), or all
/// weights 0.
/// Complexity: O(size * n). Allocates the result.
[[nodiscard]] inline result<std::vector<std::uint16_t>> reta_weighted(std::span<const std::uint16_t> queues,
                                                                      std::span<const std::uint32_t> weights,
                                                                      std::size_t size) {
  if (weights.size() != queues.size())
    return error(errc::invalid_argument, "RETA: " + std::to_string(queues.size()) + " queues but " +
                                             std::to_string(weights.size()) + " weights; give one weight per queue");
  auto counts = reta_apportion(weights, size);
  if (!counts) return counts.err();
  const std::vector<std::uint32_t>& c = *counts;
  const std::size_t n = queues.size();
  std::int64_t m = 0;
  for (std::uint32_t x : c) m += x != 0 ? 1 : 0;
  // Integer form of the rule with S = size and d = 2m - 2 (m >= 2):
  //   eligible:  (c_q * t - x_q * S) * d >= S
  //   deadline:  ((x_q + 1) * d - 1) / c_q, compared by cross-multiplying.
  const std::int64_t d = 2 * m - 2;
  const auto S = static_cast<std::int64_t>(size);
  std::vector<std::int64_t> x(n, 0);
  std::vector<std::uint16_t> t(size);
  for (std::int64_t pos = 1; pos <= S; ++pos) {
    std::size_t best = n;
    for (std::size_t q = 0; q < n; ++q) {
      if (c[q] == 0) continue;
      if (m >= 2 && (static_cast<std::int64_t>(c[q]) * pos - x[q] * S) * d < S) continue;
      if (best == n || ((x[q] + 1) * d - 1) * static_cast<std::int64_t>(c[best]) <
                           ((x[best] + 1) * d - 1) * static_cast<std::int64_t>(c[q]))
        best = q;
    }
    // Tijdeman's theorem guarantees an eligible queue; m == 1 takes the only one.
    ++x[best];
    t[static_cast<std::size_t>(pos - 1)] = queues[best];
  }
  return t;
}

// ---- periodic tables ------------------------------------------------------------------------------

/// Default of reta_periodic_config::balance: the automatic period keeps every queue's share within
/// 1/16 (6.25%) of the mean share (file comment, "Periodic").
inline constexpr std::uint32_t reta_default_balance = 16;

/// How the period of reta_periodic / reta_periodic_weighted is chosen. Designated initializers:
/// `{.balance = 8}` or `{.period_bits = 6}`.
struct reta_periodic_config {
  /// log2 of the period: the table repeats every 2^period_bits entries, and an RSS-aware lcore needs
  /// at most that many sa_pool buckets. At most log2(size). 0: reta_period_bits(..., balance) picks
  /// it (a single queue gets period 1 either way).
  unsigned period_bits = 0;
  /// Balance target of the automatic choice: a period of at least balance x (queues) entries unless
  /// a shorter one splits exactly, so every share is within 1/balance of the mean share. Higher:
  /// better balance, more buckets (memory); see the trade table in the file comment. At least 1.
  std::uint32_t balance = reta_default_balance;
};

/// How a RETA is laid out (the programmer's choice, rss.hpp).
enum class reta_fill : std::uint8_t {
  periodic,     ///< reta_periodic / reta_periodic_weighted: period 2^m, few RSS-aware buckets (default)
  round_robin,  ///< reta_round_robin / reta_weighted over the whole table (DPVS's layout)
};

[[nodiscard]] constexpr std::string_view to_string(reta_fill f) noexcept {
  return f == reta_fill::periodic ? "periodic" : "round_robin";
}

namespace detail {
inline result<void> check_periodic_args(std::size_t queues, std::size_t size, std::uint32_t balance) {
  if (auto ok = check_reta_args(queues, size); !ok) return ok;
  if (!std::has_single_bit(size))
    return error(errc::invalid_argument, "RETA: table size " + std::to_string(size) +
                                             " is not a power of two; NICs index the RETA with the hash's low bits, "
                                             "so every RETA size is one (64 to 2048)");
  if (balance == 0)
    return error(errc::invalid_argument,
                 "RETA: balance 0; give at least 1 (the period then holds at least one class per queue), or the "
                 "default 16");
  return {};
}
// True when P = 2^m classes suit `weights` under `balance` (file comment, "Periodic"). Hamilton gives
// a queue floor(quota) or one more, so a queue of non-zero weight whose quota is below 1 gets a class
// only from the leftovers: run the apportionment itself to know.
inline bool period_fits(std::span<const std::uint32_t> weights, std::uint64_t total, std::size_t active,
                        std::uint64_t period, std::uint32_t balance) {
  if (period < active) return false;
  bool exact = true;
  for (std::uint32_t w : weights) exact = exact && (period * w) % total == 0;
  if (!exact && period < std::uint64_t{balance} * active) return false;
  const auto counts = reta_apportion(weights, static_cast<std::size_t>(period));
  if (!counts) return false;
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (weights[i] != 0 && (*counts)[i] == 0) return false;
  return true;
}
}  // namespace detail

/// log2 of the period reta_periodic_weighted takes by default (file comment, "Periodic"): the
/// smallest m such that every queue of non-zero weight gets a class and the split of 2^m classes is
/// exact or 2^m >= balance x (queues of non-zero weight); log2(size) when none is below it.
/// Errors: errc::invalid_argument for an empty list, a size that is 0 or not a power of two, all
/// weights 0, or balance 0. Complexity: O(log(size) * n^2) worst case (n = queues). Allocates
/// temporaries only.
[[nodiscard]] inline result<unsigned> reta_period_bits(std::span<const std::uint32_t> weights, std::size_t size,
                                                       std::uint32_t balance = reta_default_balance) {
  if (auto ok = detail::check_periodic_args(weights.size(), size, balance); !ok) return ok.err();
  std::uint64_t total = 0;
  std::size_t active = 0;
  for (std::uint32_t w : weights) {
    total += w;
    active += w != 0 ? 1 : 0;
  }
  if (total == 0) return error(errc::invalid_argument, "RETA: every weight is 0; give at least one queue a weight");
  const auto max_bits = static_cast<unsigned>(std::countr_zero(size));
  for (unsigned m = 0; m < max_bits; ++m)
    if (detail::period_fits(weights, total, active, std::uint64_t{1} << m, balance)) return m;
  return max_bits;
}

/// The same for `queues` queues of equal weight: the smallest m with 2^m a multiple of `queues`
/// (a power of two) or 2^m >= balance x queues, capped at log2(size). 6 queues, balance 16: 7
/// (128 entries); 4 queues: 2.
/// Errors: as above (queues == 0 for an empty list). Complexity: O(log size).
[[nodiscard]] inline result<unsigned> reta_period_bits(std::size_t queues, std::size_t size,
                                                       std::uint32_t balance = reta_default_balance) {
  if (auto ok = detail::check_periodic_args(queues, size, balance); !ok) return ok.err();
  const auto max_bits = static_cast<unsigned>(std::countr_zero(size));
  for (unsigned m = 0; m < max_bits; ++m) {
    const std::uint64_t period = std::uint64_t{1} << m;
    if (period < queues) continue;
    if (period % queues == 0 || period >= std::uint64_t{balance} * queues) return m;
  }
  return max_bits;
}

namespace detail {
inline result<unsigned> resolve_period(std::size_t queues, std::size_t size, const reta_periodic_config& cfg,
                                       std::span<const std::uint32_t> weights) {
  if (auto ok = check_periodic_args(queues, size, cfg.balance); !ok) return ok.err();
  const auto max_bits = static_cast<unsigned>(std::countr_zero(size));
  if (cfg.period_bits == 0) return weights.empty() ? reta_period_bits(queues, size, cfg.balance)
                                                   : reta_period_bits(weights, size, cfg.balance);
  if (cfg.period_bits > max_bits)
    return error(errc::invalid_argument, "RETA: period of 2^" + std::to_string(cfg.period_bits) +
                                             " entries is longer than the " + std::to_string(size) +
                                             "-entry table; give period_bits <= " + std::to_string(max_bits) +
                                             " (or 0 to choose it)");
  if ((std::size_t{1} << cfg.period_bits) < queues)
    return error(errc::invalid_argument,
                 "RETA: a period of " + std::to_string(std::size_t{1} << cfg.period_bits) + " entries cannot hold " +
                     std::to_string(queues) + " queues, so some queue would get no entry; give period_bits >= " +
                     std::to_string(std::bit_width(queues - 1)) + " (or 0 to choose it)");
  return cfg.period_bits;
}
inline std::vector<std::uint16_t> tile(std::vector<std::uint16_t> period, std::size_t size) {
  const std::size_t p = period.size();
  period.resize(size);
  for (std::size_t j = p; j < size; ++j) period[j] = period[j - p];
  return period;
}
}  // namespace detail

/// Periodic table over equal queues: reta[j] = queues[(j mod P) mod n] with P = 2^m (file comment).
/// m is cfg.period_bits, or reta_period_bits(n, size, cfg.balance) when that is 0. With P >= size
/// this is reta_round_robin's table. A queue listed twice gets twice the share.
/// Errors: errc::invalid_argument for an empty list, a size that is 0 or not a power of two, balance
/// 0, a period longer than the table or shorter than the list.
/// Complexity: O(size). Allocates the result.
[[nodiscard]] inline result<std::vector<std::uint16_t>> reta_periodic(std::span<const std::uint16_t> queues,
                                                                      std::size_t size,
                                                                      const reta_periodic_config& cfg = {}) {
  auto m = detail::resolve_period(queues.size(), size, cfg, {});
  if (!m) return m.err();
  const std::size_t period = std::size_t{1} << *m;
  std::vector<std::uint16_t> t(size);
  for (std::size_t j = 0; j < size; ++j) t[j] = queues[(j & (period - 1)) % queues.size()];
  return t;
}

/// Periodic weighted table: one period of P = 2^m entries by reta_weighted (Hamilton counts,
/// chairman placement), repeated. m is cfg.period_bits, or reta_period_bits(weights, size,
/// cfg.balance) when that is 0. With an explicit period a queue of small weight may get no entry
/// (as in reta_weighted over a short table).
/// Errors: those of reta_periodic, and weights.size() != queues.size() or all weights 0.
/// Complexity: O(P * n + size). Allocates the result.
[[nodiscard]] inline result<std::vector<std::uint16_t>> reta_periodic_weighted(
    std::span<const std::uint16_t> queues, std::span<const std::uint32_t> weights, std::size_t size,
    const reta_periodic_config& cfg = {}) {
  if (weights.size() != queues.size())
    return error(errc::invalid_argument, "RETA: " + std::to_string(queues.size()) + " queues but " +
                                             std::to_string(weights.size()) + " weights; give one weight per queue");
  auto m = detail::resolve_period(queues.size(), size, cfg, weights);
  if (!m) return m.err();
  auto period = reta_weighted(queues, weights, std::size_t{1} << *m);
  if (!period) return period.err();
  return detail::tile(std::move(*period), size);
}

/// The shortest power-of-two period of a table: the smallest P dividing table.size() with
/// table[j] == table[j mod P] for every j (table.size() itself when the size is not a power of two).
/// An RSS-aware lcore needs at most P buckets for it. Complexity: O(size log size). noexcept.
[[nodiscard]] inline std::size_t reta_period(std::span<const std::uint16_t> table) noexcept {
  const std::size_t size = table.size();
  if (size == 0 || !std::has_single_bit(size)) return size;
  // Periods of a power-of-two table that are powers of two nest: test the shortest first.
  for (std::size_t p = 1; p < size; p <<= 1) {
    bool periodic = true;
    for (std::size_t j = p; j < size && periodic; ++j) periodic = table[j] == table[j - p];
    if (periodic) return p;
  }
  return size;
}

}  // namespace fnat
