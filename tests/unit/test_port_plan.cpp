// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/port_plan.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

using fnat::errc;
using fnat::lcore_queue;
using fnat::port_plan;

namespace {

std::vector<lcore_queue> lcores(std::size_t n) {
  // Non-contiguous lcore ids, queues in another order: the plan must not confuse the two.
  std::vector<lcore_queue> v;
  for (std::size_t i = 0; i < n; ++i)
    v.push_back({static_cast<unsigned>(3 * i + 1), static_cast<std::uint16_t>((i * 7) % n)});
  // (i*7) % n repeats when gcd(7, n) > 1; fall back to identity queues then.
  std::vector<std::uint16_t> q;
  for (auto& l : v) q.push_back(l.rx_queue);
  std::sort(q.begin(), q.end());
  if (std::adjacent_find(q.begin(), q.end()) != q.end())
    for (std::size_t i = 0; i < n; ++i) v[i].rx_queue = static_cast<std::uint16_t>(n - 1 - i);
  return v;
}

// The affinity invariant of the plan itself: every port in range has exactly one owner, each lcore's
// iteration yields exactly the ports owner_index gives it, and port counts are balanced.
void check_partition(const port_plan& p) {
  std::vector<int> seen(65536, -1);
  std::uint32_t total = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    std::uint32_t count = 0;
    int last = -1;
    p.for_each_port(i, [&](std::uint16_t port) {
      REQUIRE(static_cast<int>(port) > last);  // ascending
      last = port;
      REQUIRE(seen[port] == -1);                // owned once
      seen[port] = static_cast<int>(i);
      REQUIRE(p.owner_index(port) == i);
      REQUIRE(p.owns(i, port));
      REQUIRE(std::find(p.bases(i).begin(), p.bases(i).end(), port & p.mask()) != p.bases(i).end());
      ++count;
    });
    REQUIRE(count == p.port_count(i));
    REQUIRE(count > 0);
    total += count;
  }
  for (std::uint32_t port = 0; port < 65536; ++port) {
    const bool in = port >= p.port_low() && port <= p.port_high();
    REQUIRE((seen[port] != -1) == in);  // none unowned
    if (!in) REQUIRE(p.owner_index(static_cast<std::uint16_t>(port)) == port_plan::npos);
  }
  REQUIRE(total == std::uint32_t{p.port_high()} - p.port_low() + 1);
  std::uint32_t lo = UINT32_MAX, hi = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    lo = std::min(lo, p.port_count(i));
    hi = std::max(hi, p.port_count(i));
  }
  REQUIRE(hi - lo <= p.class_span());
  // Classes are spread evenly: class counts differ by at most one.
  std::size_t cmin = SIZE_MAX, cmax = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    cmin = std::min(cmin, p.bases(i).size());
    cmax = std::max(cmax, p.bases(i).size());
  }
  REQUIRE(cmax - cmin <= 1);
}

}  // namespace

TEST_CASE("port plan partitions the range exactly for 1..64 lcores and some up to 128", "[port_plan]") {
  std::vector<std::size_t> counts;
  for (std::size_t n = 1; n <= 64; ++n) counts.push_back(n);
  for (std::size_t n : {65, 96, 100, 127, 128}) counts.push_back(n);
  for (std::size_t n : counts) {
    INFO("lcores = " << n);
    auto p = port_plan::make({.lcores = lcores(n)});
    REQUIRE(p);
    REQUIRE(p->class_count() >= n);
    REQUIRE(p->class_count() < 2 * n + (n == 1 ? 1 : 0));  // ceil(log2 n) bits by default
    check_partition(*p);
  }
}

TEST_CASE("extra class bits keep the partition and tighten the balance", "[port_plan]") {
  for (std::size_t n : {3u, 5u, 6u, 7u, 12u, 24u, 48u}) {
    for (unsigned extra : {1u, 2u, 4u}) {
      const unsigned bits = static_cast<unsigned>(std::bit_width(n - 1)) + extra;
      INFO("lcores = " << n << ", class bits = " << bits);
      auto p = port_plan::make({.lcores = lcores(n), .class_bits = bits});
      REQUIRE(p);
      REQUIRE(p->shift() == bits);
      check_partition(*p);
    }
  }
  // The example in the header comment: 6 lcores on 8 bits own 43,43,43,43,42,42 classes.
  auto p = port_plan::make({.lcores = lcores(6), .class_bits = 8});
  REQUIRE(p);
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < 6; ++i) sizes.push_back(p->bases(i).size());
  REQUIRE(sizes == std::vector<std::size_t>{43, 43, 43, 43, 42, 42});
}

TEST_CASE("no class is wasted where DPVS would waste one", "[port_plan]") {
  // DPVS: 6 lcores on 3 bits use classes 0..5 and leave 6 and 7 (1/4 of the ports) unused.
  auto p = port_plan::make({.lcores = lcores(6)});
  REQUIRE(p);
  REQUIRE(p->class_count() == 8);
  std::uint32_t total = 0;
  for (std::size_t i = 0; i < 6; ++i) total += p->port_count(i);
  REQUIRE(total == 65535 - 1025 + 1);
  REQUIRE(p->bases(0).size() == 2);  // classes 0 and 6
  REQUIRE(p->bases(1).size() == 2);  // classes 1 and 7
}

TEST_CASE("power-of-two lcore counts reproduce DPVS's sa_flows table", "[port_plan]") {
  // The walkthrough's dpvs.conf.sample: slave lcores 1..8 on rx queues 0..7, shift 3, port_base = i.
  std::vector<lcore_queue> v;
  for (unsigned i = 0; i < 8; ++i) v.push_back({i + 1, static_cast<std::uint16_t>(i)});
  auto p = port_plan::make({.lcores = v});
  REQUIRE(p);
  REQUIRE(p->shift() == 3);
  REQUIRE(p->mask() == 7);
  for (std::size_t i = 0; i < 8; ++i) {
    REQUIRE(p->bases(i).size() == 1);
    REQUIRE(p->bases(i)[0] == i);
  }
  auto first_ports = [&](std::size_t i, std::size_t k) {
    std::vector<std::uint16_t> out;
    p->for_each_port(i, [&](std::uint16_t port) {
      if (out.size() < k) out.push_back(port);
    });
    return out;
  };
  auto last_port = [&](std::size_t i) {
    std::uint16_t last = 0;
    p->for_each_port(i, [&](std::uint16_t port) { last = port; });
    return last;
  };
  REQUIRE(first_ports(0, 4) == std::vector<std::uint16_t>{1032, 1040, 1048, 1056});
  REQUIRE(last_port(0) == 65528);
  REQUIRE(first_ports(1, 4) == std::vector<std::uint16_t>{1025, 1033, 1041, 1049});
  REQUIRE(last_port(1) == 65529);
  REQUIRE(first_ports(7, 4) == std::vector<std::uint16_t>{1031, 1039, 1047, 1055});
  REQUIRE(last_port(7) == 65535);
  // With 4 extra bits, lcore i owns exactly the classes congruent to i mod 8: the same ports.
  auto q = port_plan::make({.lcores = v, .class_bits = 7});
  REQUIRE(q);
  for (std::uint32_t port = 1025; port <= 65535; ++port)
    REQUIRE(q->owner_index(static_cast<std::uint16_t>(port)) == p->owner_index(static_cast<std::uint16_t>(port)));
}

TEST_CASE("dense index numbers an lcore's ports without gaps or repeats", "[port_plan]") {
  for (std::size_t n : {1u, 3u, 6u, 8u, 13u}) {
    auto p = port_plan::make({.lcores = lcores(n), .class_bits = 5});
    REQUIRE(p);
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<bool> hit(p->dense_size(i), false);
      for (std::uint32_t port = 0; port < 65536; ++port) {
        if (p->class_owner(static_cast<std::uint16_t>(port)) != i) continue;
        const auto d = p->dense_index(static_cast<std::uint16_t>(port));
        REQUIRE(d < hit.size());
        REQUIRE_FALSE(hit[d]);
        hit[d] = true;
      }
      REQUIRE(std::all_of(hit.begin(), hit.end(), [](bool b) { return b; }));
    }
  }
}

TEST_CASE("the plan carries lcore ids and rx queues separately", "[port_plan]") {
  auto p = port_plan::make({.lcores = {{7, 2}, {3, 0}, {12, 1}}});
  REQUIRE(p);
  REQUIRE(p->size() == 3);
  REQUIRE(p->index_of(3) == 1u);
  REQUIRE(p->index_of(12) == 2u);
  REQUIRE_FALSE(p->index_of(5));
  REQUIRE(p->lcore(0).rx_queue == 2);
  const std::string text = p->describe();
  REQUIRE(text.find("3 lcores, 2 class bits") != std::string::npos);
  REQUIRE(text.find("      7         2") != std::string::npos);
  REQUIRE(text.find("0x0000,0x0003") != std::string::npos);  // lcore 7 owns classes 0 and 3
}

TEST_CASE("bad plans are refused with a clear error", "[port_plan]") {
  auto expect = [](const fnat::port_plan_config& cfg, const char* words) {
    auto p = port_plan::make(cfg);
    REQUIRE_FALSE(p);
    REQUIRE(p.err().code() == errc::invalid_argument);
    INFO(p.err().message());
    REQUIRE(p.err().message().find(words) != std::string::npos);
  };
  expect({}, "no lcore");
  expect({.lcores = {{1, 0}, {1, 1}}}, "lcore 1 is listed twice");
  expect({.lcores = {{1, 0}, {2, 0}}}, "rx queue 0 is given to lcores 1 and 2");
  expect({.lcores = {{1, 0}}, .port_low = 2000, .port_high = 1000}, "port_low 2000 is above port_high 1000");
  expect({.lcores = {{1, 0}}, .port_low = 0}, "port 0");
  expect({.lcores = lcores(5), .class_bits = 2}, "use at least 3");
  expect({.lcores = lcores(2), .class_bits = 13}, "above the maximum");
  // 8 lcores on ports 1025..1030: lcores owning classes 7 and 0 get nothing.
  expect({.lcores = lcores(8), .port_low = 1025, .port_high = 1030}, "without a port");
  std::vector<lcore_queue> too_many;
  for (unsigned i = 0; i <= port_plan::max_lcores; ++i) too_many.push_back({i, static_cast<std::uint16_t>(i)});
  expect({.lcores = too_many}, "at most");
}

TEST_CASE("a one-port range and a single lcore are fine", "[port_plan]") {
  auto p = port_plan::make({.lcores = {{0, 0}}, .port_low = 40000, .port_high = 40000});
  REQUIRE(p);
  REQUIRE(p->port_count(0) == 1);
  REQUIRE(p->owner_index(40000) == 0);
  REQUIRE(p->owner_index(40001) == port_plan::npos);
  check_partition(*p);
}

TEST_CASE("choose_class_bits: every lcore count 1..64 reaches 90% of a fair share, on the pinned bits", "[port_plan][class_bits]") {
  // The fewest bits whose plan gives the smallest lcore >= 0.9 of a fair share of 1025-65535 (the table
  // in port_plan.hpp and reply_steering.hpp comes from here).
  const unsigned want[64] = {0, 1, 4, 2, 4, 5, 6, 3, 6, 5, 7, 6, 7, 7, 4, 4, 7, 7, 8, 6, 6, 8,
                             8, 7, 7, 8, 8, 8, 5, 5, 5, 5, 8, 8, 8, 8, 9, 9, 7, 7, 7, 7, 9, 9,
                             9, 9, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 10, 6, 6, 6, 6, 6, 6, 6};
  for (std::size_t n = 1; n <= 64; ++n) {
    INFO("lcores " << n);
    auto c = fnat::choose_class_bits({.lcores = lcores(n)});
    REQUIRE(c);
    CHECK(c->bits == want[n - 1]);
    CHECK(c->classes == (std::size_t{1} << c->bits));
    CHECK(c->target_met);
    auto p = port_plan::make({.lcores = lcores(n), .class_bits = c->bits});
    REQUIRE(p);
    CHECK(p->min_share() == c->min_share);
    CHECK(c->min_share >= 0.9);
    // The smallest lcore holds >= 90% of total / n ports, counted port by port.
    std::uint32_t least = 65535;
    for (std::size_t i = 0; i < n; ++i) least = std::min(least, p->port_count(i));
    CHECK(static_cast<double>(least) >= 0.9 * (65535 - 1025 + 1) / static_cast<double>(n));
    if (std::has_single_bit(n)) CHECK(c->min_share > 0.998);  // exact but for the edges of the range
  }
  // The fewest bits' shares the choice improves on: 3 lcores 2:1:1, 5 lcores 2:2:2:1:1, ...
  const std::pair<std::size_t, double> fewest[] = {{3, 0.75}, {5, 0.625}, {6, 0.75}, {7, 0.875}};
  for (const auto& [n, share] : fewest) {
    auto p = port_plan::make({.lcores = lcores(n)});
    REQUIRE(p);
    CHECK(std::abs(p->min_share() - share) < 0.002);
  }
}

TEST_CASE("choose_class_bits: the class budget caps the bits and says when the target is missed", "[port_plan][class_bits]") {
  // 7 lcores want 6 bits (64 classes); with room for 16 classes the best of 3 and 4 bits is taken.
  auto c = fnat::choose_class_bits({.lcores = lcores(7)}, 16);
  REQUIRE(c);
  CHECK(c->bits == 3);  // 4 bits gives the same 0.875: no reason to double the rules
  CHECK_FALSE(c->target_met);
  CHECK(std::abs(c->min_share - 0.875) < 0.002);
  // A budget below even the fewest bits still yields a plan: the fewest bits are always allowed.
  auto d = fnat::choose_class_bits({.lcores = lcores(6)}, 1);
  REQUIRE(d);
  CHECK(d->bits == 3);
  // A narrow range stops the bits where an lcore would be left without a port.
  auto narrow = fnat::choose_class_bits({.lcores = lcores(3), .port_low = 1000, .port_high = 1003});
  REQUIRE(narrow);
  CHECK(narrow->bits == 2);
  auto e = fnat::choose_class_bits({.lcores = {}});
  REQUIRE_FALSE(e);
  CHECK(e.err().code() == errc::invalid_argument);
  CHECK(fnat::choose_class_bits({.lcores = lcores(3)}, 4096, 1.5).err().code() == errc::invalid_argument);
}
