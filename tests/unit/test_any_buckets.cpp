// SPDX-License-Identifier: BSD-3-Clause
// any_buckets: a pool built through it hands out exactly what a pool of the held policy hands out,
// refuses the same foreign ports, and keeps the held policy's build shortcuts.
#include <fnat/core/any_buckets.hpp>
#include <fnat/core/sa_pool.hpp>
#include <fnat/core/toeplitz.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

using fnat::endpoint;
using fnat::errc;

namespace {

fnat::inet_addr ip(const char* s) { return *fnat::inet_addr::parse(s); }

fnat::port_plan plan_of(std::size_t lcores) {
  std::vector<fnat::lcore_queue> v;
  for (std::size_t i = 0; i < lcores; ++i) v.push_back({static_cast<unsigned>(i + 1), static_cast<std::uint16_t>(i)});
  auto p = fnat::port_plan::make({.lcores = v, .port_low = 20000, .port_high = 24095});
  REQUIRE(p);
  return *p;
}

std::vector<endpoint> destinations() {
  std::vector<endpoint> d;
  for (int i = 0; i < 24; ++i) d.push_back(endpoint{ip(("198.18.3." + std::to_string(10 + i)).c_str()), 8080});
  return d;
}

// Fetches from both pools in the same order until both run dry for every destination; every answer
// (status, port, bucket) must be the same. Then releases through both and compares the stats.
template <class A, class B>
void same_pools(A& direct, B& through) {
  const auto dests = destinations();
  std::vector<std::pair<endpoint, fnat::sa_fetch_result>> taken;
  for (int round = 0; round < 40000; ++round) {
    const endpoint& d = dests[static_cast<std::size_t>(round) % dests.size()];
    const fnat::sa_fetch_result a = direct.fetch(d);
    const fnat::sa_fetch_result b = through.fetch(d);
    REQUIRE(a.status == b.status);
    if (a.status != errc::ok) continue;
    REQUIRE(a.port == b.port);
    REQUIRE(a.bucket == b.bucket);
    taken.emplace_back(d, a);
  }
  CHECK(direct.stats().used == through.stats().used);
  CHECK(direct.stats().capacity == through.stats().capacity);
  for (const auto& [d, r] : taken) {
    REQUIRE(direct.release_in(r.bucket, r.port) == errc::ok);
    REQUIRE(through.release_in(r.bucket, r.port) == errc::ok);
  }
  CHECK(through.stats().used == 0);
  CHECK(through.stats().free == through.stats().capacity);
}

}  // namespace

TEST_CASE("any_buckets holding hashed_buckets: the same ports as hashed_buckets, and its build shortcuts",
          "[any_buckets]") {
  const fnat::port_plan plan = plan_of(3);  // 3 lcores: the lcore owns some of the classes
  const fnat::inet_addr lip = ip("198.18.2.100");
  auto pol = fnat::hashed_buckets::make(plan, 1, {.buckets = 4});
  REQUIRE(pol);
  const fnat::any_buckets any(*pol);
  CHECK(any.is_hashed());
  CHECK(any.hashed() != nullptr);
  CHECK(any.rss() == nullptr);
  CHECK(any.has_uniform_buckets());
  CHECK(any.has_verified_contract());
  CHECK(fnat::detail::policy_uniform_buckets(any));
  CHECK(any.port_count(2) == pol->port_count(2));
  auto direct = fnat::sa_pool<fnat::hashed_buckets>::make(lip, *pol);
  auto through = fnat::sa_pool<fnat::any_buckets>::make(lip, any);
  REQUIRE(direct);
  REQUIRE(through);
  same_pools(*direct, *through);
  // A port of another lcore's class is foreign to both.
  std::uint16_t foreign = 0;
  for (std::uint32_t p = 20000; p <= 24095 && foreign == 0; ++p)
    if (plan.class_owner(static_cast<std::uint16_t>(p)) != 1) foreign = static_cast<std::uint16_t>(p);
  REQUIRE(foreign != 0);
  CHECK(through->release_in(0, foreign) == direct->release_in(0, foreign));
  CHECK(through->release_in(0, foreign) != errc::ok);
}

TEST_CASE("any_buckets holding rss_buckets: the same ports as rss_buckets, built bucket by bucket", "[any_buckets]") {
  const fnat::inet_addr lip = ip("198.18.2.100");
  std::vector<std::uint16_t> reta(128);
  for (std::size_t i = 0; i < reta.size(); ++i) reta[i] = static_cast<std::uint16_t>(i % 3);
  auto pol = fnat::rss_buckets::make({.family = fnat::ip_family::v4,
                                      .key = fnat::rss_key_microsoft,
                                      .reta = reta,
                                      .queue = 1,
                                      .port_low = 20000,
                                      .port_high = 24095});
  REQUIRE(pol);
  const fnat::any_buckets any(pol->bound_to(lip));
  CHECK_FALSE(any.is_hashed());
  CHECK(any.rss() != nullptr);
  CHECK_FALSE(any.has_uniform_buckets());
  CHECK_FALSE(any.has_verified_contract());
  CHECK(any.bucket_count() == pol->bucket_count());
  auto direct = fnat::sa_pool<fnat::rss_buckets>::make(lip, pol->bound_to(lip));
  auto through = fnat::sa_pool<fnat::any_buckets>::make(lip, any);
  REQUIRE(direct);
  REQUIRE(through);
  same_pools(*direct, *through);
}
