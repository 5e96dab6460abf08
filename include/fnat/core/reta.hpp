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
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fnat/core/error.hpp"

#if defined(FNAT_CHECKED)
#include <cstdio>
#include <cstdlib>
// Checked mode: a table size that is not a power of two makes `hash & (size - 1)` skip entries.
#define FNAT_RETA_EXPECT(cond, msg)                             \
  do {                                                          \
    if (!(cond)) [[unlikely]] {                                 \
      std::fprintf(stderr, "fnat reta: %s (%s)\n", msg, #cond); \
      std::abort();                                             \
    }                                                           \
  } while (0)
#else
#define FNAT_RETA_EXPECT(cond, msg) \
  do {                              \
  } while (0)
#endif

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

}  // namespace fnat
