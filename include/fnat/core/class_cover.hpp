// SPDX-License-Identifier: BSD-3-Clause
// Port classes merged into (base, mask) cubes: fewer NIC flow rules for the same port set.
//
// ## The problem
// A NIC flow rule matches "dst port & mask == base". With a port plan of k class bits, a rule whose
// mask keeps all k bits matches one class; a rule that leaves j of the k bits out of its mask matches
// 2^j classes at once, an aligned cube {c : c & mask == base} of the k-bit class space. An lcore owning
// a set S of classes needs a set of cubes whose union is exactly S (a cube reaching outside S would
// steer another lcore's replies here). Fewer cubes mean fewer rules, which matters on NICs whose flow
// tables hold a few hundred or thousand entries shared by all LIPs and both protocols.
//
// Finding the fewest cubes is two-level logic minimisation without don't-cares (Quine-McCluskey
// followed by a set cover): NP-hard in general. This file uses a greedy that is always exact (every
// cube lies inside S, every class of S is covered) and is minimal where it matters:
//  - classes are visited fewest-neighbours first (a neighbour is a class of S one bit away), since an
//    isolated class has one cube only and a corner of a big cube has the fewest choices;
//  - from each class not yet covered, the cube grows one free bit at a time, taking the bit whose
//    doubled cube stays inside S and covers the most classes not yet covered (ties: lowest bit).
// The test checks the result against an exhaustive minimum for every one of the 256 subsets of a
// 3-bit class space (equal on all), and exactness on random larger sets.
//
// ## What a port_plan produces
// port_plan gives class c to lcore (c mod n). Two classes one bit apart differ by 2^b; both belong to
// the same lcore only if n divides 2^b, that is, only if n is a power of two. So:
//  - n a power of two, shift bits: lcore i owns {c : c & (n-1) == i}, one cube (base i, mask n-1):
//    one rule per (LIP, protocol) however many extra class bits the plan takes (DPVS's rule exactly);
//  - any other n: no two classes of an lcore are neighbours, every cube is a single class, and one
//    rule per class is already the minimum.
// Both cases are minimal by the greedy above, whatever the future of the plan's class assignment.
//
// Cost: O(|S| * k * 2^d) bit tests for cubes of dimension d; well under a millisecond for 4096 classes.
// Allocates its result and a bitmap of 2^k bits (configuration time).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fnat/core/error.hpp"

namespace fnat {

/// An aligned cube of port classes: every class c with (c & mask) == base. `mask` is the set of class
/// bits the rule matches (a subset of the plan's class mask), `base` has no bit outside `mask`; both
/// host order.
struct class_cube {
  std::uint16_t base = 0;
  std::uint16_t mask = 0;

  /// True when class (or port) c lies in the cube.
  [[nodiscard]] constexpr bool contains(std::uint16_t c) const noexcept { return (c & mask) == base; }
  friend constexpr bool operator==(const class_cube&, const class_cube&) noexcept = default;
};

/// Covers `classes` (a set of classes of a class space with mask `class_mask` = 2^k - 1) with aligned
/// cubes, exactly: their union is the set (file comment for the algorithm and its minimality).
/// Each cube's mask is a subset of class_mask. Duplicates in `classes` are ignored. The cubes are
/// returned in the order found (the first cube contains the class visited first).
/// Errors: errc::invalid_argument when class_mask is not 2^k - 1 with k <= 12, or a class has a bit
/// outside class_mask.
/// Complexity: see the file comment. Allocates its result.
[[nodiscard]] inline result<std::vector<class_cube>> cover_classes(std::span<const std::uint16_t> classes,
                                                                   std::uint16_t class_mask) {
  if ((class_mask & (class_mask + 1u)) != 0 || class_mask > 0x0fff)
    return error(errc::invalid_argument,
                 "class cover: mask " + std::to_string(class_mask) + " is not 2^k - 1 with k <= 12 class bits");
  const std::size_t space = std::size_t{class_mask} + 1;
  unsigned k = 0;
  while ((std::size_t{1} << k) < space) ++k;
  std::vector<bool> in(space, false), covered(space, false);
  std::vector<std::uint16_t> members;
  for (std::uint16_t c : classes) {
    if ((c & ~class_mask) != 0)
      return error(errc::invalid_argument,
                   "class cover: class " + std::to_string(c) + " has bits outside mask " + std::to_string(class_mask));
    if (!in[c]) members.push_back(c);
    in[c] = true;
  }
  auto neighbours = [&](std::uint16_t c) {
    unsigned n = 0;
    for (unsigned b = 0; b < k; ++b) n += in[c ^ (1u << b)] ? 1u : 0u;
    return n;
  };
  std::vector<std::pair<unsigned, std::uint16_t>> order;
  order.reserve(members.size());
  for (std::uint16_t c : members) order.emplace_back(neighbours(c), c);
  std::sort(order.begin(), order.end());

  // Calls f(x) for every class of the cube with fixed part `base` (no bit in `free`) and free bits `free`.
  auto for_each_corner = [](std::uint16_t base, std::uint16_t free, auto&& f) {
    std::uint16_t x = 0;  // enumerates the subsets of `free`
    do {
      if (!f(static_cast<std::uint16_t>(base | x))) return false;
      x = static_cast<std::uint16_t>((x - free) & free);
    } while (x != 0);
    return true;
  };

  std::vector<class_cube> out;
  for (const auto& [nb, c] : order) {
    (void)nb;
    if (covered[c]) continue;
    std::uint16_t free = 0;
    for (;;) {
      unsigned best_bit = k;
      std::size_t best_gain = 0;
      for (unsigned b = 0; b < k; ++b) {
        const std::uint16_t bit = static_cast<std::uint16_t>(1u << b);
        if (free & bit) continue;
        const std::uint16_t f2 = free | bit;
        const std::uint16_t base = static_cast<std::uint16_t>(c & ~f2);
        std::size_t gain = 0;
        const bool inside = for_each_corner(base, f2, [&](std::uint16_t x) {
          if (!in[x]) return false;
          gain += covered[x] ? 0u : 1u;
          return true;
        });
        if (inside && (best_bit == k || gain > best_gain)) {
          best_bit = b;
          best_gain = gain;
        }
      }
      if (best_bit == k) break;
      free = static_cast<std::uint16_t>(free | (1u << best_bit));
    }
    const std::uint16_t base = static_cast<std::uint16_t>(c & ~free);
    for_each_corner(base, free, [&](std::uint16_t x) {
      covered[x] = true;
      return true;
    });
    out.push_back(class_cube{base, static_cast<std::uint16_t>(class_mask & ~free)});
  }
  return out;
}

}  // namespace fnat
