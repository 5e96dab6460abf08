// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/class_cover.hpp>
#include <fnat/core/port_plan.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <random>
#include <vector>

using fnat::class_cube;
using fnat::errc;

namespace {

// The cover is exact: every cube inside the set, every class of the set in some cube.
void check_exact(const std::vector<std::uint16_t>& set, std::uint16_t mask, const std::vector<class_cube>& cubes) {
  std::vector<bool> in(std::size_t{mask} + 1, false), hit(std::size_t{mask} + 1, false);
  for (auto c : set) in[c] = true;
  for (const auto& cube : cubes) {
    REQUIRE((cube.mask & ~mask) == 0);
    REQUIRE((cube.base & ~cube.mask) == 0);
    for (std::uint32_t c = 0; c <= mask; ++c)
      if (cube.contains(static_cast<std::uint16_t>(c))) {
        REQUIRE(in[c]);  // never reaches another lcore's class
        hit[c] = true;
      }
  }
  for (std::uint32_t c = 0; c <= mask; ++c) REQUIRE(hit[c] == in[c]);
}

// Fewest cubes covering exactly `set` (3-bit space), by trying every combination of the cubes inside it.
std::size_t brute_minimum(std::uint8_t set_bits) {
  if (set_bits == 0) return 0;
  std::vector<std::uint8_t> cubes;  // each as the bit set of its classes
  for (unsigned free = 0; free < 8; ++free)
    for (unsigned base = 0; base < 8; ++base) {
      if (base & free) continue;
      std::uint8_t bits = 0;
      for (unsigned c = 0; c < 8; ++c)
        if ((c & ~free) == base) bits = static_cast<std::uint8_t>(bits | (1u << c));
      if ((bits & ~set_bits) == 0) cubes.push_back(bits);
    }
  // Smallest k first: some k-combination of the cubes has the set as its union.
  const std::size_t n = cubes.size();
  auto reach = [&](auto&& self, std::size_t from, std::size_t k, std::uint8_t u) -> bool {
    if (k == 0) return u == set_bits;
    for (std::size_t i = from; i < n; ++i)
      if (self(self, i + 1, k - 1, static_cast<std::uint8_t>(u | cubes[i]))) return true;
    return false;
  };
  for (std::size_t k = 1;; ++k)
    if (reach(reach, 0, k, 0)) return k;
}

}  // namespace

TEST_CASE("the issue's example: classes {2, 6} of mask 7 are one cube, base 2 mask 3", "[class_cover]") {
  auto c = fnat::cover_classes(std::vector<std::uint16_t>{2, 6}, 7);
  REQUIRE(c);
  REQUIRE(*c == std::vector<class_cube>{{2, 3}});
  auto whole = fnat::cover_classes(std::vector<std::uint16_t>{0, 1, 2, 3, 4, 5, 6, 7}, 7);
  REQUIRE(whole);
  REQUIRE(*whole == std::vector<class_cube>{{0, 0}});
  auto single = fnat::cover_classes(std::vector<std::uint16_t>{5}, 7);
  REQUIRE(single);
  REQUIRE(*single == std::vector<class_cube>{{5, 7}});
  auto zero_bits = fnat::cover_classes(std::vector<std::uint16_t>{0}, 0);
  REQUIRE(zero_bits);
  REQUIRE(*zero_bits == std::vector<class_cube>{{0, 0}});
}

TEST_CASE("the cover is minimal for every subset of a 3-bit class space", "[class_cover]") {
  for (unsigned bits = 1; bits < 256; ++bits) {
    std::vector<std::uint16_t> set;
    for (std::uint16_t c = 0; c < 8; ++c)
      if (bits & (1u << c)) set.push_back(c);
    auto cubes = fnat::cover_classes(set, 7);
    REQUIRE(cubes);
    INFO("set bits " << bits);
    check_exact(set, 7, *cubes);
    REQUIRE(cubes->size() == brute_minimum(static_cast<std::uint8_t>(bits)));
  }
}

TEST_CASE("the cover is exact for random sets up to 12 class bits", "[class_cover]") {
  std::mt19937 rng(99);
  for (unsigned k : {4u, 6u, 9u, 12u}) {
    const auto mask = static_cast<std::uint16_t>((1u << k) - 1);
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<std::uint16_t> set;
      const unsigned density = 1 + rng() % 9;  // tenths
      for (std::uint32_t c = 0; c <= mask; ++c)
        if (rng() % 10 < density) set.push_back(static_cast<std::uint16_t>(c));
      if (set.empty()) continue;
      auto cubes = fnat::cover_classes(set, mask);
      REQUIRE(cubes);
      check_exact(set, mask, *cubes);
      REQUIRE(cubes->size() <= set.size());
    }
  }
}

TEST_CASE("port plan class sets: one cube for power-of-two lcore counts, one per class otherwise", "[class_cover]") {
  for (std::size_t n = 1; n <= 64; ++n) {
    std::vector<fnat::lcore_queue> lc;
    for (std::size_t i = 0; i < n; ++i) lc.push_back({static_cast<unsigned>(i), static_cast<std::uint16_t>(i)});
    const unsigned need = static_cast<unsigned>(std::bit_width(n - 1));
    for (unsigned extra : {0u, 2u}) {
      if (need + extra > fnat::port_plan::max_class_bits) continue;
      auto plan = fnat::port_plan::make({.lcores = lc, .class_bits = need + extra});
      REQUIRE(plan);
      for (std::size_t i = 0; i < n; ++i) {
        const auto b = plan->bases(i);
        const std::vector<std::uint16_t> set(b.begin(), b.end());
        auto cubes = fnat::cover_classes(set, plan->mask());
        REQUIRE(cubes);
        INFO("lcores " << n << ", class bits " << need + extra << ", lcore " << i);
        check_exact(set, plan->mask(), *cubes);
        if (std::has_single_bit(n)) {
          REQUIRE(cubes->size() == 1);
          REQUIRE((*cubes)[0] == class_cube{static_cast<std::uint16_t>(i), static_cast<std::uint16_t>(n - 1)});
        } else {
          REQUIRE(cubes->size() == set.size());  // no two classes are neighbours: nothing can merge
        }
      }
    }
  }
}

TEST_CASE("class cover refuses bad masks and stray classes", "[class_cover]") {
  auto a = fnat::cover_classes(std::vector<std::uint16_t>{1}, 6);
  REQUIRE_FALSE(a);
  REQUIRE(a.err().code() == errc::invalid_argument);
  auto b = fnat::cover_classes(std::vector<std::uint16_t>{9}, 7);
  REQUIRE_FALSE(b);
  REQUIRE(b.err().message().find("class 9") != std::string::npos);
  auto c = fnat::cover_classes(std::vector<std::uint16_t>{}, 7);
  REQUIRE(c);
  REQUIRE(c->empty());
}
