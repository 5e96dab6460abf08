// SPDX-License-Identifier: BSD-3-Clause
// Port plan: which local ports belong to which lcore.
//
// ## The scheme (DPVS's sa_flows, generalised)
// A local port p belongs to class c = p & mask, with mask = 2^shift - 1. Each of the C = 2^shift
// classes is owned by exactly one lcore, and a reply to LIP:p is steered to the owner of its class
// (by a NIC flow rule "dst port = c, mask = mask", or by software redirect). DPVS takes
// shift = ceil(log2 n) and gives lcore i the single class i, so with n lcores that is not a power of
// two, C - n classes belong to nobody and their ports are never used: 6 lcores waste 2/8 of the port
// space, 9 lcores 7/16.
//
// Here every class has an owner: class c belongs to the lcore at index (c mod n). With n a power of
// two this is DPVS's plan exactly (lcore i owns class i; with more bits, the classes congruent to i),
// so its tables and flow rules are reproduced. Otherwise the C mod n lcores with the lowest indices
// own one class more than the others. Within [low, high] a class has one port per 2^shift-aligned
// block, less at the two edge blocks, so two lcores' port counts differ by at most one class span,
// 2^(16-shift) ports (the tests check this for every lcore count up to 64). Taking more bits
// than ceil(log2 n) shrinks the classes and so the imbalance: 6 lcores on 3 bits own 2,2,1,1,1,1
// classes (imbalance 1/8 of the space); on 8 bits 43,43,43,43,42,42 (1/256).
//
// owner_of(p) is one read of a C-entry table indexed by p & mask: O(1), no search, no global
// connection state, so any lcore can compute where a reply belongs from the port alone.
//
// Iterating an lcore's ports steps straight through its classes, (hi << shift) | base for each
// high part hi and each owned base, instead of testing all 65536 ports (DPVS's sa_pool_alloc_hash).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fnat/core/error.hpp"

namespace fnat {

/// A worker lcore and the rx queue it polls on the port the plan serves. They are different
/// numbers: lcore 3 may poll queue 0.
struct lcore_queue {
  unsigned lcore_id = 0;
  std::uint16_t rx_queue = 0;
  friend constexpr bool operator==(const lcore_queue&, const lcore_queue&) noexcept = default;
};

/// What a port plan is made from. Build with designated initializers:
/// `port_plan::make({.lcores = {{1, 0}, {2, 1}}, .class_bits = 4})`.
struct port_plan_config {
  /// Worker lcores in plan order; the order defines each lcore's index (class c -> index c mod n).
  std::vector<lcore_queue> lcores;
  /// Lowest local port handed out (host order). Default: just above the privileged ports.
  std::uint16_t port_low = 1025;
  /// Highest local port handed out (host order).
  std::uint16_t port_high = 65535;
  /// Class bits (shift). 0 picks ceil(log2 n), the fewest that give every lcore a class (DPVS's
  /// choice); more bits balance non-power-of-two lcore counts more finely and make more flow rules.
  unsigned class_bits = 0;
};

class port_plan {
 public:
  /// Most class bits a plan takes: 4096 classes of 16 ports each.
  static constexpr unsigned max_class_bits = 12;
  /// Most lcores a plan takes (one class each at max_class_bits).
  static constexpr std::size_t max_lcores = std::size_t{1} << max_class_bits;
  /// owner_index() of a port outside [low, high].
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  /// Builds a plan. Errors (errc::invalid_argument, with a message naming the culprit): no lcore,
  /// too many lcores, an lcore id or rx queue listed twice, port_low == 0, port_low > port_high,
  /// class_bits too small for the lcore count or above max_class_bits, and a range so narrow that
  /// some lcore would own no port. Complexity: O(C + n).
  [[nodiscard]] static result<port_plan> make(const port_plan_config& cfg) {
    const std::size_t n = cfg.lcores.size();
    if (n == 0) return error(errc::invalid_argument, "port plan: no lcore given");
    if (n > max_lcores)
      return error(errc::invalid_argument, "port plan: " + std::to_string(n) + " lcores, at most " +
                                               std::to_string(max_lcores) + " are supported");
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j) {
        if (cfg.lcores[i].lcore_id == cfg.lcores[j].lcore_id)
          return error(errc::invalid_argument, "port plan: lcore " + std::to_string(cfg.lcores[i].lcore_id) +
                                                   " is listed twice");
        if (cfg.lcores[i].rx_queue == cfg.lcores[j].rx_queue)
          return error(errc::invalid_argument,
                       "port plan: rx queue " + std::to_string(cfg.lcores[i].rx_queue) + " is given to lcores " +
                           std::to_string(cfg.lcores[i].lcore_id) + " and " + std::to_string(cfg.lcores[j].lcore_id) +
                           "; each lcore needs a queue of its own for replies to reach it");
      }
    if (cfg.port_low == 0) return error(errc::invalid_argument, "port plan: port 0 is not a usable local port");
    if (cfg.port_low > cfg.port_high)
      return error(errc::invalid_argument, "port plan: port_low " + std::to_string(cfg.port_low) +
                                               " is above port_high " + std::to_string(cfg.port_high));
    const unsigned need = static_cast<unsigned>(std::bit_width(n - 1));  // ceil(log2 n)
    unsigned shift = cfg.class_bits == 0 ? need : cfg.class_bits;
    if (shift > max_class_bits)
      return error(errc::invalid_argument, "port plan: class_bits " + std::to_string(shift) + " is above the maximum " +
                                               std::to_string(max_class_bits));
    if (shift < need)
      return error(errc::invalid_argument, "port plan: class_bits " + std::to_string(shift) + " gives " +
                                               std::to_string(1u << shift) + " classes for " + std::to_string(n) +
                                               " lcores; use at least " + std::to_string(need) + " (or 0 for auto)");

    port_plan p;
    p.lcores_ = cfg.lcores;
    p.low_ = cfg.port_low;
    p.high_ = cfg.port_high;
    p.shift_ = shift;
    const std::size_t classes = std::size_t{1} << shift;
    p.class_owner_.resize(classes);
    p.class_slot_.resize(classes);
    p.bases_.assign(n, {});
    for (std::size_t c = 0; c < classes; ++c) {
      const std::size_t owner = c % n;
      p.class_owner_[c] = static_cast<std::uint16_t>(owner);
      p.class_slot_[c] = static_cast<std::uint16_t>(p.bases_[owner].size());
      p.bases_[owner].push_back(static_cast<std::uint16_t>(c));
    }
    p.port_counts_.assign(n, 0);
    for (std::size_t c = 0; c < classes; ++c) p.port_counts_[p.class_owner_[c]] += p.class_size_in_range(c);
    for (std::size_t i = 0; i < n; ++i)
      if (p.port_counts_[i] == 0)
        return error(errc::invalid_argument, "port plan: ports " + std::to_string(p.low_) + "-" +
                                                 std::to_string(p.high_) + " leave lcore " +
                                                 std::to_string(p.lcores_[i].lcore_id) +
                                                 " without a port; widen the range or use fewer class bits");
    return p;
  }

  /// Class bits.
  [[nodiscard]] unsigned shift() const noexcept { return shift_; }
  /// Class mask, 2^shift - 1, host order.
  [[nodiscard]] std::uint16_t mask() const noexcept { return static_cast<std::uint16_t>((1u << shift_) - 1); }
  [[nodiscard]] std::size_t class_count() const noexcept { return class_owner_.size(); }
  /// Ports a class has in the whole 16-bit space.
  [[nodiscard]] std::uint32_t class_span() const noexcept { return std::uint32_t{1} << (16 - shift_); }
  [[nodiscard]] std::uint16_t port_low() const noexcept { return low_; }
  [[nodiscard]] std::uint16_t port_high() const noexcept { return high_; }
  [[nodiscard]] bool in_range(std::uint16_t port) const noexcept { return port >= low_ && port <= high_; }

  /// Number of lcores.
  [[nodiscard]] std::size_t size() const noexcept { return lcores_.size(); }
  /// Requires: index < size().
  [[nodiscard]] const lcore_queue& lcore(std::size_t index) const noexcept { return lcores_[index]; }
  [[nodiscard]] std::span<const lcore_queue> lcores() const noexcept { return lcores_; }
  /// Index of an lcore id in the plan; O(n).
  [[nodiscard]] std::optional<std::size_t> index_of(unsigned lcore_id) const noexcept {
    for (std::size_t i = 0; i < lcores_.size(); ++i)
      if (lcores_[i].lcore_id == lcore_id) return i;
    return std::nullopt;
  }

  /// Class bases an lcore owns, ascending. Requires: index < size().
  [[nodiscard]] std::span<const std::uint16_t> bases(std::size_t index) const noexcept { return bases_[index]; }
  /// Ports in [low, high] an lcore owns. Requires: index < size().
  [[nodiscard]] std::uint32_t port_count(std::size_t index) const noexcept { return port_counts_[index]; }

  /// Index of the lcore that owns the class of `port`, whether or not the port is in range: a reply
  /// for it belongs there. O(1), noexcept.
  [[nodiscard]] std::size_t class_owner(std::uint16_t port) const noexcept { return class_owner_[port & mask()]; }
  /// Index of the lcore that hands out `port`, or npos when the port is outside [low, high]. O(1).
  [[nodiscard]] std::size_t owner_index(std::uint16_t port) const noexcept {
    return in_range(port) ? class_owner(port) : npos;
  }
  /// True when lcore `index` hands out `port`. O(1).
  [[nodiscard]] bool owns(std::size_t index, std::uint16_t port) const noexcept { return owner_index(port) == index; }

  /// Dense numbering of the ports of one lcore's classes (in range or not): the position of `port`
  /// among all 16-bit ports of its owner's classes. Used to index per-port state such as in-use bits.
  /// Requires: class_owner(port) is the lcore in question.
  [[nodiscard]] std::uint32_t dense_index(std::uint16_t port) const noexcept {
    const std::uint32_t k = static_cast<std::uint32_t>(bases_[class_owner(port)].size());
    return (std::uint32_t{port} >> shift_) * k + class_slot_[port & mask()];
  }
  /// Size of the dense numbering of lcore `index`: class_span() * (classes it owns).
  [[nodiscard]] std::uint32_t dense_size(std::size_t index) const noexcept {
    return class_span() * static_cast<std::uint32_t>(bases_[index].size());
  }

  /// The smallest lcore's share of the ports relative to a fair share: min over lcores of
  /// port_count(i) / (ports in range / n). ~1 for a power-of-two lcore count (the range edges cost a
  /// few ports); 0.75 for 3 lcores on 2 class
  /// bits (shares 2:1:1 of 4 classes, the smallest is 3/4 of a third). O(n).
  [[nodiscard]] double min_share() const noexcept {
    std::uint64_t total = 0, least = ~std::uint64_t{0};
    for (std::uint32_t c : port_counts_) {
      total += c;
      least = std::min<std::uint64_t>(least, c);
    }
    return total == 0 ? 0.0 : static_cast<double>(least) * static_cast<double>(size()) / static_cast<double>(total);
  }

  /// Calls f(port) for every port lcore `index` owns in [low, high], ascending. O(ports of the lcore).
  template <class F>
  void for_each_port(std::size_t index, F&& f) const {
    const std::uint32_t first_hi = std::uint32_t{low_} >> shift_;
    const std::uint32_t last_hi = std::uint32_t{high_} >> shift_;
    for (std::uint32_t hi = first_hi; hi <= last_hi; ++hi)
      for (std::uint16_t base : bases_[index]) {
        const std::uint32_t port = (hi << shift_) | base;
        if (port >= low_ && port <= high_) f(static_cast<std::uint16_t>(port));
      }
  }

  /// The plan as an operator reads it: one line per lcore with its rx queue, class bases (hex) and
  /// port count.
  [[nodiscard]] std::string describe() const {
    std::string s = "port plan: " + std::to_string(size()) + " lcores, " + std::to_string(shift_) + " class bits (" +
                    std::to_string(class_count()) + " classes, mask " + detail::hex(mask(), 4) + "), ports " +
                    std::to_string(low_) + "-" + std::to_string(high_) + "\n";
    s += "  lcore  rx_queue   ports  bases\n";
    for (std::size_t i = 0; i < size(); ++i) {
      std::string line = "  " + pad(std::to_string(lcores_[i].lcore_id), 5) + "  " +
                         pad(std::to_string(lcores_[i].rx_queue), 8) + "  " + pad(std::to_string(port_counts_[i]), 6) +
                         "  ";
      const auto& b = bases_[i];
      constexpr std::size_t shown = 8;
      for (std::size_t j = 0; j < b.size() && j < shown; ++j) line.append(j ? "," : "").append(detail::hex(b[j], 4));
      if (b.size() > shown) line.append(",... (").append(std::to_string(b.size())).append(" classes)");
      s += line + "\n";
    }
    return s;
  }

 private:
  port_plan() = default;

  std::uint32_t class_size_in_range(std::size_t c) const noexcept {
    std::uint32_t count = 0;
    for (std::uint32_t hi = std::uint32_t{low_} >> shift_; hi <= (std::uint32_t{high_} >> shift_); ++hi) {
      const std::uint32_t port = (hi << shift_) | static_cast<std::uint32_t>(c);
      count += (port >= low_ && port <= high_) ? 1u : 0u;
    }
    return count;
  }
  static std::string pad(std::string s, std::size_t width) {
    if (s.size() < width) s.insert(0, width - s.size(), ' ');
    return s;
  }

  std::vector<lcore_queue> lcores_;
  std::vector<std::uint16_t> class_owner_;             // class -> lcore index
  std::vector<std::uint16_t> class_slot_;              // class -> position among its owner's bases
  std::vector<std::vector<std::uint16_t>> bases_;      // lcore index -> owned classes, ascending
  std::vector<std::uint32_t> port_counts_;             // lcore index -> ports in range
  std::uint16_t low_ = 1025;
  std::uint16_t high_ = 65535;
  unsigned shift_ = 0;
};

/// The class bits choose_class_bits picked, and what they give.
struct class_bits_choice {
  unsigned bits = 0;          ///< class bits (port_plan_config::class_bits)
  std::size_t classes = 0;    ///< 2^bits: flow rules per (LIP, protocol) for a non-power-of-two lcore count
  double min_share = 0;       ///< port_plan::min_share() of the resulting plan
  bool target_met = false;    ///< min_share >= the target within the class budget
};

/// Picks class bits for a plan: the fewest bits, from ceil(log2 n) up, whose plan gives every lcore at
/// least `target` of a fair share of [port_low, port_high] (port_plan::min_share), without more than
/// `max_classes` classes. Each class is a flow rule per (LIP, protocol) when the lcore count is not a
/// power of two (class_cover.hpp), so a caller with a rule budget R for L LIPs and P protocols passes
/// R / (L * P). When the budget stops short of the target, the bits with the best share within it are
/// chosen and target_met is false. cfg.class_bits is ignored.
/// With the full range 1025-65535 and no budget, the choice and smallest share for n lcores are
/// (the fewest bits' share in brackets; powers of two are 1.0 on ceil(log2 n) bits):
///     n   bits share [fewest]      n   bits share [fewest]      n   bits share [fewest]
///     3    4   0.938 [2: 0.750]     9    6   0.984 [4: 0.563]    17    7   0.930 [5: 0.531]
///     5    4   0.938 [3: 0.625]    10    5   0.938 [4: 0.625]    24    7   0.938 [5: 0.750]
///     6    5   0.938 [3: 0.750]    11    7   0.945 [4: 0.688]    33    8   0.902 [6: 0.516]
///     7    6   0.984 [3: 0.875]    12    6   0.938 [4: 0.750]    57   10   0.946 [6: 0.891]
/// Over 1..64 every count reaches 0.90 within 10 bits (the worst is 33 lcores, 0.902 on 8 bits, where
/// the fewest bits give 0.516); tests/unit/test_port_plan.cpp pins the whole table.
/// Errors: those of port_plan::make for the fewest bits (no lcore, range too narrow, ...), and
/// errc::invalid_argument for a target outside (0, 1].
/// Complexity: O(12 * (65536 / 2^bits * 2^bits + n)), about a million steps; configuration time.
[[nodiscard]] inline result<class_bits_choice> choose_class_bits(const port_plan_config& cfg,
                                                                 std::size_t max_classes = port_plan::max_lcores,
                                                                 double target = 0.9) {
  if (!(target > 0.0 && target <= 1.0))
    return error(errc::invalid_argument, "class bits: target share " + std::to_string(target) +
                                             " is outside (0, 1]; 0.9 keeps every lcore within 10% of a fair share");
  const std::size_t n = cfg.lcores.size();
  const unsigned need = n == 0 ? 0u : static_cast<unsigned>(std::bit_width(n - 1));
  class_bits_choice best;
  bool have = false;
  for (unsigned bits = need; bits <= port_plan::max_class_bits; ++bits) {
    const std::size_t classes = std::size_t{1} << bits;
    if (have && classes > max_classes) break;  // the fewest bits are always tried, whatever the budget
    port_plan_config c = cfg;
    c.class_bits = bits == 0 ? 0 : bits;
    auto plan = port_plan::make(c);
    if (!plan) {
      if (!have) return plan.err();
      break;  // more bits leave some lcore without a port in a narrow range
    }
    const double share = plan->min_share();
    if (!have || share > best.min_share + 1e-12) best = {bits, classes, share, share >= target};
    have = true;
    if (share >= target) break;
  }
  return best;
}

}  // namespace fnat
