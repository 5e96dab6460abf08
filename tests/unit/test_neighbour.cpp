// SPDX-License-Identifier: BSD-3-Clause
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fnat/core/neighbour.hpp>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using fnat::errc;
using fnat::learn_mode;
using fnat::mac_addr;
using fnat::neigh_state;

namespace {

// Packets are plain numbers here: the cache only stores and returns handles.
using cache = fnat::neighbour_cache<std::uint32_t, 4>;

constexpr std::uint64_t ms = 1'000'000;  // ticks are nanoseconds (the default ticks_per_second)

fnat::inet_addr v4(std::uint32_t host) { return fnat::ipv4_addr::from_host(host); }
fnat::inet_addr v6(std::uint8_t last) {
  auto a = fnat::ipv6_addr::parse("2001:2:0:2::").value();
  a.bytes[15] = last;
  return a;
}
mac_addr mac(std::uint8_t last) { return mac_addr{{0x02, 0, 0, 0, 0, last}}; }

cache make(fnat::neighbour_config cfg = {}) {
  auto c = cache::make(cfg);
  REQUIRE(c);
  return std::move(*c);
}

// Collects what the cache hands back, so that every test can check that no packet is lost.
struct sink {
  std::vector<std::pair<std::uint32_t, mac_addr>> released;
  std::vector<std::uint32_t> dropped;
  auto on_release() {
    return [this](std::uint32_t p, const mac_addr& m) { released.emplace_back(p, m); };
  }
  auto on_drop() {
    return [this](std::uint32_t p) { dropped.push_back(p); };
  }
};

}  // namespace

TEST_CASE("neighbour cache: configuration errors", "[neighbour]") {
  CHECK(cache::make({.capacity = 0}).err().code() == errc::invalid_argument);
  CHECK(cache::make({.capacity = cache::max_capacity + 1}).err().message().find("outside 1..1048576") !=
        std::string::npos);
  CHECK(cache::make({.ticks_per_second = 10}).err().message().find("rte_get_tsc_hz") != std::string::npos);
  CHECK_FALSE(cache::make({.request_interval_ms = 0}));
  auto c = cache::make({.capacity = 3});
  REQUIRE(c);
  CHECK(c->capacity() == 3);
  CHECK(c->size() == 0);
}

TEST_CASE("neighbour cache: unresolved packets wait, one request per interval, learn releases them in order",
          "[neighbour]") {
  auto c = make();
  sink s;
  const auto rs = v4(0xc612020b);  // 198.18.2.11
  std::uint64_t now = 5000 * ms;

  auto r = c.resolve(rs, now, 1);
  CHECK(r.rc == errc::not_found);
  CHECK(r.held);
  CHECK(r.request);
  CHECK(c.find(rs, now)->state == neigh_state::incomplete);

  now += 10 * ms;
  r = c.resolve(rs, now, 2);
  CHECK(r.held);
  CHECK_FALSE(r.request);  // asked 10 ms ago
  r = c.resolve(rs, now, 3);
  CHECK(r.held);
  now += 990 * ms;  // a whole interval after the first request
  r = c.resolve(rs, now, 4);
  CHECK(r.held);
  CHECK(r.request);
  r = c.resolve(rs, now, 5);  // hold queue full (4): the caller drops it
  CHECK(r.rc == errc::not_found);
  CHECK_FALSE(r.held);
  CHECK_FALSE(r.request);
  CHECK(c.stats().unresolved_drops == 1);
  CHECK(c.held_packets() == 4);
  CHECK(c.find(rs, now)->held == 4);

  CHECK(c.learn(rs, mac(11), now, learn_mode::update, s.on_release()) == errc::ok);
  REQUIRE(s.released.size() == 4);
  for (std::uint32_t i = 0; i < 4; ++i) {
    CHECK(s.released[i].first == i + 1);  // oldest first
    CHECK(s.released[i].second == mac(11));
  }
  CHECK(c.held_packets() == 0);

  r = c.resolve(rs, now, 6);
  CHECK(r.rc == errc::ok);
  CHECK_FALSE(r.held);
  CHECK_FALSE(r.request);
  CHECK(r.mac == mac(11));
  auto info = c.find(rs, now);
  REQUIRE(info);
  CHECK(info->state == neigh_state::reachable);
  CHECK(info->confirmed == now);
  CHECK(c.stats().requests == 2);
  CHECK(c.stats().held == 4);
}

TEST_CASE("neighbour cache: a flood to an unresolved address asks once per interval", "[neighbour]") {
  auto c = make({.request_interval_ms = 250, .incomplete_ms = 60'000});
  sink s;
  const auto a = v6(0x11), b = v4(0xc6120211);
  std::uint64_t requests_a = 0, requests_b = 0;
  // 10 s of packets every 1 ms to two unresolved addresses.
  for (std::uint64_t t = 0; t < 10'000; ++t) {
    const std::uint64_t now = t * ms;
    auto ra = c.resolve(a, now, static_cast<std::uint32_t>(t));
    auto rb = c.resolve(b, now, static_cast<std::uint32_t>(t));
    requests_a += ra.request;
    requests_b += rb.request;
  }
  CHECK(requests_a == 40);
  CHECK(requests_b == 40);
  CHECK(c.stats().unresolved_drops == 2 * (10'000 - 4));
  c.clear(s.on_drop());
  CHECK(s.dropped.size() == 8);
  CHECK(c.held_packets() == 0);
}

TEST_CASE("neighbour cache: stale entries stay usable and ask for a refresh, expire removes old ones", "[neighbour]") {
  // Times are 64-bit: the same story from 0, across 2^63 ns, and ending 10 s below 2^64.
  const std::uint64_t base = GENERATE(std::uint64_t{0}, (std::uint64_t{1} << 63) - 45'000 * ms,
                                      ~std::uint64_t{0} - 100'000 * ms);
  INFO("time base " << base);
  auto c = make({.reachable_ms = 30'000, .stale_ms = 60'000, .incomplete_ms = 3'000});
  sink s;
  const auto gw = v4(0xc61200fe), rs = v4(0xc612020c), lost = v4(0xc612020d);
  std::uint64_t now = base;
  REQUIRE(c.learn(gw, mac(1), now, learn_mode::create, s.on_release()) == errc::ok);
  REQUIRE(c.learn(rs, mac(2), now, learn_mode::create, s.on_release()) == errc::ok);
  CHECK(c.resolve(lost, now, 77).held);

  now = base + 2'999 * ms;
  CHECK(c.expire(now, s.on_drop()) == 0);
  now = base + 3'000 * ms;
  CHECK(c.expire(now, s.on_drop()) == 1);  // the incomplete one, with its packet
  CHECK(s.dropped == std::vector<std::uint32_t>{77});
  CHECK_FALSE(c.find(lost, now));
  CHECK(c.stats().expired_packets == 1);

  now = base + 30'000 * ms;
  CHECK(c.find(gw, now)->state == neigh_state::stale);
  auto r = c.resolve(gw, now, 1);
  CHECK(r.rc == errc::ok);  // still used
  CHECK(r.request);         // and refreshed
  CHECK(c.resolve(gw, now + 10 * ms, 2).request == false);
  CHECK(c.learn(gw, mac(1), now + 20 * ms, learn_mode::update, s.on_release()) == errc::ok);
  CHECK(c.find(gw, now + 20 * ms)->state == neigh_state::reachable);

  now = base + 90'000 * ms;  // rs unconfirmed for 30 s + 60 s: gone; gw confirmed at 30.02 s: stays
  CHECK(c.expire(now, s.on_drop()) == 1);
  CHECK_FALSE(c.find(rs, now));
  CHECK(c.find(gw, now)->state == neigh_state::stale);
  CHECK(s.released.empty());
}

TEST_CASE("neighbour cache: static entries win over the wire and never expire", "[neighbour]") {
  auto c = make({.capacity = 4});
  sink s;
  const auto rs = v4(0xc612020b);
  REQUIRE(c.add_static(rs, mac(11)));
  auto r = c.resolve(rs, 0, 1);
  CHECK(r.rc == errc::ok);
  CHECK(r.mac == mac(11));
  CHECK(c.learn(rs, mac(66), 0, learn_mode::create, s.on_release()) == errc::exists);  // spoof ignored
  CHECK(c.stats().static_conflicts == 1);
  CHECK(c.learn(rs, mac(11), 0, learn_mode::create, s.on_release()) == errc::ok);
  CHECK(c.find(rs, 0)->mac == mac(11));
  const std::uint64_t year = 365ull * 24 * 3600 * 1000 * ms;
  CHECK(c.expire(year, s.on_drop()) == 0);
  auto later = c.resolve(rs, year, 2);
  CHECK(later.rc == errc::ok);
  CHECK_FALSE(later.request);
  CHECK(c.find(rs, year)->state == neigh_state::permanent);

  auto again = c.add_static(rs, mac(12));
  REQUIRE_FALSE(again);
  CHECK(again.err().code() == errc::exists);
  CHECK(again.err().message() ==
        "neighbour 198.18.2.11 is already static with MAC 02:00:00:00:00:0b, not 02:00:00:00:00:0c");
  CHECK(c.add_static(rs, mac(11)));  // same again: fine
  CHECK_FALSE(c.add_static(v4(0), mac(1)));
  CHECK(c.add_static(v4(1), mac_addr::parse("ff:ff:ff:ff:ff:ff").value()).err().code() == errc::invalid_argument);

  // A learned entry becomes static; one being resolved with packets must be removed first.
  const auto other = v4(0xc612020c);
  REQUIRE(c.learn(other, mac(3), year, learn_mode::create, s.on_release()) == errc::ok);
  REQUIRE(c.add_static(other, mac(4)));
  CHECK(c.find(other, year)->state == neigh_state::permanent);
  CHECK(c.find(other, year)->mac == mac(4));
  const auto pending = v4(0xc612020d);
  CHECK(c.resolve(pending, year, 9).held);
  CHECK(c.add_static(pending, mac(5)).err().code() == errc::exists);
  CHECK(c.remove(pending, s.on_drop()) == errc::ok);
  CHECK(s.dropped == std::vector<std::uint32_t>{9});
  CHECK(c.add_static(pending, mac(5)));
  CHECK(c.remove(pending, s.on_drop()) == errc::ok);
  CHECK(c.remove(pending, s.on_drop()) == errc::not_found);
}

TEST_CASE("neighbour cache: learning policy and rejected input", "[neighbour]") {
  auto c = make();
  sink s;
  CHECK(c.learn(v4(0xc6120201), mac(1), 0, learn_mode::update, s.on_release()) == errc::not_found);
  CHECK(c.size() == 0);
  CHECK(c.learn(v4(0xc6120201), mac_addr{}, 0, learn_mode::create, s.on_release()) == errc::invalid_argument);
  CHECK(c.learn(v4(0xc6120201), *mac_addr::parse("01:00:5e:00:00:01"), 0, learn_mode::create, s.on_release()) ==
        errc::invalid_argument);
  CHECK(c.learn(v4(0), mac(1), 0, learn_mode::create, s.on_release()) == errc::invalid_argument);
  CHECK(c.learn(fnat::inet_addr{}, mac(1), 0, learn_mode::create, s.on_release()) == errc::invalid_argument);
  CHECK(c.stats().rejected == 4);
  CHECK(c.size() == 0);
  // IPv4 and IPv6 addresses with the same low bytes are different neighbours.
  auto a4 = v4(0x00000011);
  auto a6 = v6(0x11);
  REQUIRE(c.learn(a4, mac(4), 0, learn_mode::create, s.on_release()) == errc::ok);
  REQUIRE(c.learn(a6, mac(6), 0, learn_mode::create, s.on_release()) == errc::ok);
  CHECK(c.resolve(a4, 0, 1).mac == mac(4));
  CHECK(c.resolve(a6, 0, 2).mac == mac(6));
  // A MAC change on the wire is followed (a replaced real server).
  CHECK(c.learn(a4, mac(40), 1, learn_mode::update, s.on_release()) == errc::ok);
  CHECK(c.resolve(a4, 1, 3).mac == mac(40));
  // solicit(): resolution without a packet.
  auto r = c.solicit(v4(0xc6120209), 2);
  CHECK(r.rc == errc::not_found);
  CHECK_FALSE(r.held);
  CHECK(r.request);
  CHECK(c.find(v4(0xc6120209), 2)->state == neigh_state::incomplete);
}

TEST_CASE("neighbour cache: a full cache evicts by second chance, never static or waiting entries", "[neighbour]") {
  // A fixed hash key: the clock hand walks slots, and backward-shift deletion moves entries between
  // them, so which referenced entry an eviction spares depends on where the keys land. With the
  // process's random key this test's exact survivors held in ~91% of runs; the placement is pinned
  // here, and what holds for any key (size, eviction count, new entries kept) is checked the same.
  auto made = cache::make({.capacity = 8}, fnat::tuple_hash(fnat::hash_secret{0x0123456789abcdefULL, 0xfedcba9876543210ULL}));
  REQUIRE(made);
  cache c = std::move(*made);
  sink s;
  for (std::uint32_t i = 0; i < 8; ++i)
    REQUIRE(c.learn(v4(0xc6120200 + i), mac(static_cast<std::uint8_t>(i + 1)), 0, learn_mode::create, s.on_release()) ==
            errc::ok);
  CHECK(c.size() == 8);
  auto original = [](std::uint32_t i) { return v4(0xc6120200 + i); };
  // Every entry is referenced when it is made, so the first insertion into the full cache sweeps
  // once (clearing every bit) and evicts on the second sweep.
  REQUIRE(c.learn(v4(0xc6120300), mac(0x40), 1, learn_mode::create, s.on_release()) == errc::ok);
  CHECK(c.stats().evictions == 1);
  std::vector<std::uint32_t> used;
  for (std::uint32_t i = 0; i < 8; i += 2)
    if (c.find(original(i), 1)) {
      REQUIRE(c.resolve(original(i), 1, i).rc == errc::ok);  // referenced again
      used.push_back(i);
    }
  // Three more: they evict unreferenced entries only (odd originals), not the used ones, nor the new.
  for (std::uint32_t i = 1; i < 4; ++i)
    REQUIRE(c.learn(v4(0xc6120300 + i), mac(0x40), 2, learn_mode::create, s.on_release()) == errc::ok);
  CHECK(c.size() == 8);
  CHECK(c.stats().evictions == 4);
  for (auto i : used) CHECK(c.find(original(i), 2));
  for (std::uint32_t i = 0; i < 4; ++i) CHECK(c.find(v4(0xc6120300 + i), 2));
  std::size_t odd_left = 0;
  for (std::uint32_t i = 1; i < 8; i += 2) odd_left += c.find(original(i), 2).has_value();
  CHECK(odd_left + used.size() == 4);

  // Only static entries and entries with waiting packets: nothing can go.
  auto full = make({.capacity = 4});
  REQUIRE(full.add_static(v4(1), mac(1)));
  REQUIRE(full.add_static(v4(2), mac(2)));
  CHECK(full.resolve(v4(3), 0, 30).held);
  CHECK(full.resolve(v4(4), 0, 40).held);
  auto r = full.resolve(v4(5), 0, 50);
  CHECK(r.rc == errc::table_full);
  CHECK_FALSE(r.held);
  CHECK_FALSE(r.request);
  CHECK(full.stats().unresolved_drops == 1);
  CHECK(full.learn(v4(6), mac(6), 0, learn_mode::create, s.on_release()) == errc::table_full);
  CHECK(full.add_static(v4(7), mac(7)).err().code() == errc::table_full);
  full.clear(s.on_drop());
  std::sort(s.dropped.begin(), s.dropped.end());
  CHECK(s.dropped == std::vector<std::uint32_t>{30, 40});
  CHECK(full.size() == 0);
  CHECK(full.add_static(v4(7), mac(7)));
}

TEST_CASE("neighbour cache: random operations agree with a reference map (probing and deletion)", "[neighbour]") {
  // Small capacity, many collisions in the probe runs: backward-shift deletion must keep every
  // remaining key reachable.
  auto c = make({.capacity = 48, .incomplete_ms = 1'000'000});
  sink s;
  std::map<fnat::inet_addr, mac_addr> model;  // learned entries
  std::set<fnat::inet_addr> pending;          // incomplete ones
  std::mt19937 rng(11);
  std::vector<fnat::inet_addr> keys;
  for (std::uint32_t i = 0; i < 40; ++i)
    keys.push_back(i % 3 ? v4(0xc6120000 + i * 7919) : v6(static_cast<std::uint8_t>(i)));
  std::uint32_t next_packet = 1;
  for (int step = 0; step < 20000; ++step) {
    const auto& k = keys[rng() % keys.size()];
    const std::uint64_t now = static_cast<std::uint64_t>(step);
    switch (rng() % 4) {
      case 0: {
        const mac_addr m = mac(static_cast<std::uint8_t>(1 + rng() % 200));
        REQUIRE(c.learn(k, m, now, learn_mode::create, s.on_release()) == errc::ok);
        model[k] = m;
        pending.erase(k);
        break;
      }
      case 1:
        REQUIRE(c.remove(k, s.on_drop()) == (model.count(k) || pending.count(k) ? errc::ok : errc::not_found));
        model.erase(k);
        pending.erase(k);
        break;
      default: {
        auto r = c.resolve(k, now, next_packet++);
        if (model.count(k)) {
          REQUIRE(r.rc == errc::ok);
          REQUIRE(r.mac == model[k]);
        } else {
          REQUIRE(r.rc == errc::not_found);
          pending.insert(k);
          if (!r.held) REQUIRE(c.find(k, now)->held == 4);
        }
      }
    }
    REQUIRE(c.size() == model.size() + pending.size());
    if (step % 97 == 0)
      for (const auto& key : keys) {
        auto f = c.find(key, now);
        REQUIRE(f.has_value() == (model.count(key) + pending.count(key) == 1));
        if (model.count(key)) REQUIRE(f->mac == model[key]);
      }
  }
  c.clear(s.on_drop());
  // Every packet that went in came out once, released or dropped.
  CHECK(s.released.size() + s.dropped.size() == c.stats().held);
  std::set<std::uint32_t> seen;
  for (auto& [p, m] : s.released) CHECK(seen.insert(p).second);
  for (auto p : s.dropped) CHECK(seen.insert(p).second);
}

TEST_CASE("neighbour cache: moving keeps entries and held packets", "[neighbour]") {
  auto c = make();
  sink s;
  CHECK(c.resolve(v4(1), 0, 5).held);
  REQUIRE(c.add_static(v4(2), mac(2)));
  cache moved = std::move(c);
  CHECK(moved.size() == 2);
  CHECK(moved.held_packets() == 1);
  CHECK(moved.resolve(v4(2), 0, 6).mac == mac(2));
  CHECK(moved.learn(v4(1), mac(1), 1, learn_mode::update, s.on_release()) == errc::ok);
  CHECK(s.released.size() == 1);
  auto other = make();
  other = std::move(moved);
  CHECK(other.size() == 2);
  std::size_t n = 0;
  other.for_each(1, [&](const fnat::neighbour_info& i) {
    ++n;
    CHECK((i.state == neigh_state::permanent || i.state == neigh_state::reachable));
  });
  CHECK(n == 2);
}
