// SPDX-License-Identifier: BSD-3-Clause
// conn_table: both tuples of a conn in one table, checked against std::unordered_map as a model,
// together with the object_pool that holds the conns and the timer_wheel that expires them.
#include <fnat/core/conn_table.hpp>
#include <fnat/core/object_pool.hpp>
#include <fnat/core/timer_wheel.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <new>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include "../../bench/support/crc_flood.hpp"

using fnat::direction;
using fnat::errc;

namespace {

// ---- keys ---------------------------------------------------------------------------------------

template <class Key>
Key random_key(std::mt19937_64& rng);

template <>
fnat::tuple4 random_key<fnat::tuple4>(std::mt19937_64& rng) {
  const auto r = rng();
  return fnat::make_tuple(rng() & 1 ? fnat::ipproto::tcp : fnat::ipproto::udp,
                          fnat::ipv4_addr::from_host(static_cast<std::uint32_t>(r)), static_cast<std::uint16_t>(r >> 32),
                          fnat::ipv4_addr::from_host(static_cast<std::uint32_t>(rng())), static_cast<std::uint16_t>(r >> 48));
}

fnat::ipv6_addr random_v6(std::mt19937_64& rng) {
  fnat::ipv6_addr a;
  const std::uint64_t w[2] = {rng(), rng()};
  std::memcpy(a.bytes.data(), w, 16);
  a.bytes[0] = 0x20;  // never IPv4-mapped
  return a;
}

template <>
fnat::tuple6 random_key<fnat::tuple6>(std::mt19937_64& rng) {
  const auto r = rng();
  return fnat::make_tuple(fnat::ipproto::tcp, random_v6(rng), static_cast<std::uint16_t>(r), random_v6(rng),
                          static_cast<std::uint16_t>(r >> 16));
}

// Both families in one table.
template <>
fnat::inet_tuple random_key<fnat::inet_tuple>(std::mt19937_64& rng) {
  const auto r = rng();
  if (r & 1)
    return fnat::make_tuple(fnat::ipproto::udp, fnat::inet_addr(random_v6(rng)), static_cast<std::uint16_t>(r >> 8),
                            fnat::inet_addr(random_v6(rng)), static_cast<std::uint16_t>(r >> 24));
  return fnat::make_tuple(fnat::ipproto::tcp, fnat::inet_addr(fnat::ipv4_addr::from_host(static_cast<std::uint32_t>(rng()))),
                          static_cast<std::uint16_t>(r >> 8),
                          fnat::inet_addr(fnat::ipv4_addr::from_host(static_cast<std::uint32_t>(r >> 32))),
                          static_cast<std::uint16_t>(r >> 24));
}

template <class Key>
struct key_hash {
  std::size_t operator()(const Key& k) const noexcept { return fnat::crc32c_key(k, 0x9e3779b9u); }
};

// ---- the conn type a balancer would have ------------------------------------------------------

template <class Key>
struct alignas(64) test_conn : fnat::conn_hooks<Key>, fnat::timer_entry {
  std::uint64_t id = 0;
  Key in{};
  Key out{};
  explicit test_conn(std::uint64_t i) noexcept : id(i) {}
};

template <class Key>
using table_t = fnat::conn_table<test_conn<Key>>;
template <class Key>
using pool_t = fnat::object_pool<test_conn<Key>>;
template <class Key>
using wheel_t = fnat::timer_wheel<test_conn<Key>>;

template <class Key>
table_t<Key> make_table(std::size_t capacity, double lf = 0.5) {
  auto r = table_t<Key>::make({.capacity = capacity, .max_load_factor = lf});
  REQUIRE(r.has_value());
  return std::move(*r);
}

}  // namespace

// ---- the model test -----------------------------------------------------------------------------

TEMPLATE_TEST_CASE("conn table, pool and wheel follow an unordered_map model over 120k random operations",
                   "[conn_table][model]", fnat::tuple4, fnat::tuple6, fnat::inet_tuple) {
  using Key = TestType;
  using conn = test_conn<Key>;
  constexpr std::size_t capacity = 1024;
  std::mt19937_64 rng(20240611);

  // Declared first so that it is destroyed last: the table and the wheel link its objects.
  auto pool_r = pool_t<Key>::make(capacity + 32);  // more objects than the table takes: table_full is reachable
  REQUIRE(pool_r.has_value());
  auto& pool = *pool_r;
  auto table = make_table<Key>(capacity);
  auto wheel_r = wheel_t<Key>::make({.slots = 64, .tick = std::chrono::nanoseconds(1)});
  REQUIRE(wheel_r.has_value());
  auto& wheel = *wheel_r;

  // The model: every live key -> (conn id, direction); every live conn id -> (pointer, deadline).
  struct model_conn {
    conn* c;
    std::uint64_t deadline;
  };
  std::unordered_map<Key, std::pair<std::uint64_t, direction>, key_hash<Key>> keys;
  std::map<std::uint64_t, model_conn> live;
  std::uint64_t next_id = 1;

  // A small universe of keys, so that collisions (exists) are frequent.
  std::vector<Key> universe;
  for (std::size_t i = 0; i < 16 * capacity; ++i) universe.push_back(random_key<Key>(rng));
  auto pick = [&] { return universe[rng() % universe.size()]; };

  auto expect_absent = [&](const conn& c) {
    REQUIRE_FALSE(table.find(c.in));
    REQUIRE_FALSE(table.find(c.out));
  };
  auto remove_model = [&](conn& c) {
    REQUIRE(keys.erase(c.in) == 1);
    REQUIRE(keys.erase(c.out) == 1);
    REQUIRE(live.erase(c.id) == 1);
  };
  auto check_counts = [&] {
    REQUIRE(pool.in_use() + pool.available() == pool.capacity());
    REQUIRE(pool.in_use() == live.size());
    REQUIRE(table.size() == live.size());
    REQUIRE(wheel.armed() == live.size());
  };

  std::uint64_t ok_inserts = 0, full = 0, exists = 0, expired = 0, erased = 0, bulk_hits = 0;
  constexpr int ops = 120000;
  for (int op = 0; op < ops; ++op) {
    const auto what = rng() % 100;
    if (what < 35) {  // insert
      Key in = pick(), out = rng() % 50 == 0 ? in : pick();
      conn* c = pool.allocate(next_id);
      REQUIRE(c != nullptr);  // the pool outsizes the table
      c->in = in;
      c->out = out;
      errc want = errc::ok;
      if (live.size() >= capacity) want = errc::table_full;
      else if (keys.count(in) || keys.count(out) || in == out) want = errc::exists;
      const errc got = table.insert(*c, in, out);
      REQUIRE(got == want);
      if (got == errc::ok) {
        ++ok_inserts;
        ++next_id;
        keys.emplace(in, std::pair{c->id, direction::inbound});
        keys.emplace(out, std::pair{c->id, direction::outbound});
        const auto ticks = rng() % 7000;  // long enough that the table fills up now and then
        REQUIRE(wheel.arm(*c, ticks) == errc::ok);
        live.emplace(c->id, model_conn{c, wheel.now_tick() + std::max<std::uint64_t>(ticks, 1)});
        // Both directions are found at once.
        REQUIRE(table.find(in) == fnat::conn_hit<conn>{c, direction::inbound});
        REQUIRE(table.find(out) == fnat::conn_hit<conn>{c, direction::outbound});
      } else {
        (got == errc::table_full ? full : exists)++;
        REQUIRE_FALSE(table_t<Key>::is_linked(*c));
        // Rolled back: whatever the model had, the table still answers exactly that.
        for (const Key& k : {in, out}) {
          const auto h = table.find(k);
          const auto m = keys.find(k);
          REQUIRE(static_cast<bool>(h) == (m != keys.end()));
          if (h) REQUIRE(h.conn->id == m->second.first);
        }
        REQUIRE(pool.deallocate(c) == errc::ok);
      }
    } else if (what < 60) {  // single lookup
      const Key k = rng() % 4 == 0 ? random_key<Key>(rng) : pick();
      const auto h = table.find(k);
      const auto m = keys.find(k);
      REQUIRE(static_cast<bool>(h) == (m != keys.end()));
      if (h) {
        REQUIRE(h.conn->id == m->second.first);
        REQUIRE(h.dir == m->second.second);
      }
    } else if (what < 70) {  // bulk lookup
      Key ks[64];
      const std::size_t n = rng() % 65;
      for (std::size_t i = 0; i < n; ++i) ks[i] = pick();
      fnat::conn_hit<conn> out[64];
      const std::uint64_t mask = table.find_bulk(std::span<const Key>(ks, n), out);
      for (std::size_t i = 0; i < n; ++i) {
        const auto m = keys.find(ks[i]);
        REQUIRE(((mask >> i) & 1u) == (m != keys.end() ? 1u : 0u));
        REQUIRE(static_cast<bool>(out[i]) == (m != keys.end()));
        if (out[i]) {
          ++bulk_hits;
          REQUIRE(out[i].conn->id == m->second.first);
          REQUIRE(out[i].dir == m->second.second);
        }
      }
      if (n < 64) REQUIRE((mask >> n) == 0);
    } else if (what < 80) {  // erase a random live conn
      if (live.empty()) continue;
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      conn* c = it->second.c;
      REQUIRE(table.erase(*c) == errc::ok);
      REQUIRE(table.erase(*c) == errc::not_found);
      REQUIRE(wheel.cancel(*c));
      remove_model(*c);
      expect_absent(*c);
      REQUIRE(pool.deallocate(c) == errc::ok);
      ++erased;
    } else if (what < 90) {  // refresh or re-arm a live conn's timer (a state change)
      if (live.empty()) continue;
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      const auto ticks = rng() % 7000;
      const std::uint64_t d = wheel.now_tick() + std::max<std::uint64_t>(ticks, 1);
      if (rng() & 1) wheel.refresh(*it->second.c, ticks);
      else wheel.rearm(*it->second.c, ticks);
      it->second.deadline = d;
      REQUIRE(wheel_t<Key>::deadline(*it->second.c) == d);
    } else {  // time passes: expire what is due
      const std::uint64_t to = wheel.now_tick() + rng() % 12;
      std::set<std::uint64_t> due;
      for (const auto& [id, m] : live)
        if (m.deadline <= to) due.insert(id);
      std::set<std::uint64_t> fired;
      wheel.advance_to(to, [&](conn& c) {
        REQUIRE(c.deadline() <= to);
        fired.insert(c.id);
        REQUIRE(table.erase(c) == errc::ok);
        remove_model(c);
        expect_absent(c);
        REQUIRE(pool.deallocate(&c) == errc::ok);  // the callback frees the object
        ++expired;
      });
      REQUIRE(fired == due);
    }
    check_counts();
    if (op % 4000 == 0) {  // full audit
      for (const auto& [k, v] : keys) {
        const auto h = table.find(k);
        REQUIRE(h);
        REQUIRE(h.conn->id == v.first);
        REQUIRE(h.dir == v.second);
      }
      std::set<std::uint64_t> seen;
      table.for_each([&](conn& c) { REQUIRE(seen.insert(c.id).second); });
      REQUIRE(seen.size() == live.size());
      REQUIRE(pool.count_free() == pool.available());
      REQUIRE(wheel.count_armed() == live.size());
    }
  }
  // Every branch was taken many times.
  CHECK(ok_inserts > 10000);
  CHECK(full > 100);
  CHECK(exists > 1000);
  CHECK(expired > 1000);
  CHECK(erased > 1000);
  CHECK(bulk_hits > 1000);
  const auto s = table.stats();
  CHECK(s.inserts == ok_inserts);
  CHECK(s.insert_full == full);
  CHECK(s.insert_exists == exists);
  CHECK(s.erases == erased + expired);
  CHECK(wheel.stats().expirations == expired);

  // Tear down: everything back to the pool, nothing found.
  table.clear_and_dispose([&](conn& c) {
    wheel.cancel(c);
    REQUIRE(pool.deallocate(&c) == errc::ok);
  });
  for (const auto& [k, v] : keys) REQUIRE_FALSE(table.find(k));
  REQUIRE(table.size() == 0);
  REQUIRE(pool.in_use() == 0);
  REQUIRE(pool.count_free() == pool.capacity());
  REQUIRE(wheel.count_armed() == 0);
}

// ---- specific behaviours ------------------------------------------------------------------------

TEST_CASE("insert links both tuples, erase unlinks both, and the hit names the direction", "[conn_table]") {
  using conn = test_conn<fnat::tuple4>;
  auto t = make_table<fnat::tuple4>(8);
  const auto client = fnat::ipv4_addr::from_host(0xc6120001);  // 198.18.0.1
  const auto vip = fnat::ipv4_addr::from_host(0xc6120101);
  const auto lip = fnat::ipv4_addr::from_host(0xc6120201);
  const auto rs = fnat::ipv4_addr::from_host(0xc6130001);
  const auto in = fnat::make_tuple(fnat::ipproto::tcp, client, 40000, vip, 80);
  const auto out = fnat::make_tuple(fnat::ipproto::tcp, rs, 8080, lip, 1025);
  conn c(1);
  REQUIRE(t.insert(c, in, out) == errc::ok);
  REQUIRE(t.size() == 1);
  REQUIRE(c.is_linked());
  REQUIRE(c.tuple(direction::inbound) == in);
  REQUIRE(c.tuple(direction::outbound) == out);
  REQUIRE(c.tuple_hash(direction::outbound) == t.hash_of(out));
  REQUIRE(t.find(in) == fnat::conn_hit<conn>{&c, direction::inbound});
  REQUIRE(t.find(out) == fnat::conn_hit<conn>{&c, direction::outbound});
  REQUIRE(t.find_with_hash(out, t.hash_of(out)).dir == direction::outbound);
  // The reverse of each tuple (the reply of a packet) is not the other tuple in FullNAT.
  REQUIRE_FALSE(t.find(in.reversed()));
  REQUIRE_FALSE(t.find(out.reversed()));
  REQUIRE(t.contains(in));
  REQUIRE(t.insert(c, in.reversed(), out.reversed()) == errc::invalid_argument);  // already linked
  REQUIRE(t.erase(c) == errc::ok);
  REQUIRE_FALSE(c.is_linked());
  REQUIRE_FALSE(t.find(in));
  REQUIRE_FALSE(t.find(out));
  REQUIRE(t.erase(c) == errc::not_found);
  const auto s = t.stats();
  CHECK(s.inserts == 1);
  CHECK(s.erases == 1);
  CHECK(s.insert_invalid == 1);
  CHECK(s.lookup_hits == 3);
  CHECK(s.lookup_misses == 4);  // contains() is not counted
}

TEST_CASE("a table made for N conns refuses the N+1st and counts it, erasing one makes room", "[conn_table]") {
  using conn = test_conn<fnat::tuple4>;
  std::mt19937_64 rng(7);
  constexpr std::size_t n = 100;
  auto t = make_table<fnat::tuple4>(n);
  std::vector<std::unique_ptr<conn>> conns;
  for (std::size_t i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<conn>(i));
    REQUIRE(t.insert(*conns.back(), random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
  }
  REQUIRE(t.bucket_count() == 512);  // bit_ceil(2 x 100 / 0.5)
  REQUIRE(t.load_factor() == Approx(200.0 / 512));
  conn extra(999);
  const auto in = random_key<fnat::tuple4>(rng), out = random_key<fnat::tuple4>(rng);
  REQUIRE(t.check_insert(in, out) == errc::table_full);
  REQUIRE(t.insert(extra, in, out) == errc::table_full);
  REQUIRE(t.insert(extra, in, out) == errc::table_full);
  REQUIRE_FALSE(extra.is_linked());
  REQUIRE_FALSE(t.find(in));
  REQUIRE(t.size() == n);
  REQUIRE(t.stats().insert_full == 2);
  REQUIRE(t.stats().failed_inserts() == 2);
  REQUIRE(t.erase(*conns[17]) == errc::ok);
  REQUIRE(t.check_insert(in, out) == errc::ok);
  REQUIRE(t.insert(extra, in, out) == errc::ok);
  REQUIRE(t.bucket_count() == 512);  // never grows
  t.clear();
  REQUIRE(t.empty());
}

TEST_CASE("an insert whose second tuple collides is rolled back completely", "[conn_table]") {
  using conn = test_conn<fnat::tuple6>;
  std::mt19937_64 rng(11);
  auto t = make_table<fnat::tuple6>(16);
  const auto a_in = random_key<fnat::tuple6>(rng), a_out = random_key<fnat::tuple6>(rng);
  const auto b_in = random_key<fnat::tuple6>(rng), b_out = random_key<fnat::tuple6>(rng);
  conn a(1), b(2);
  REQUIRE(t.insert(a, a_in, a_out) == errc::ok);

  SECTION("second side taken: the first side, linked for a moment, is unlinked again") {
    REQUIRE(t.check_insert(b_in, a_out) == errc::exists);
    REQUIRE(t.insert(b, b_in, a_out) == errc::exists);
    REQUIRE_FALSE(b.is_linked());
    REQUIRE_FALSE(t.find(b_in));
    REQUIRE(t.find(a_out).conn == &a);
  }
  SECTION("first side taken") {
    REQUIRE(t.insert(b, a_in, b_out) == errc::exists);
    REQUIRE_FALSE(b.is_linked());
    REQUIRE_FALSE(t.find(b_out));
    REQUIRE(t.find(a_in).conn == &a);
  }
  SECTION("a conn whose two tuples are equal collides with itself") {
    REQUIRE(t.check_insert(b_in, b_in) == errc::exists);
    REQUIRE(t.insert(b, b_in, b_in) == errc::exists);
    REQUIRE_FALSE(b.is_linked());
    REQUIRE_FALSE(t.find(b_in));
  }
  REQUIRE(t.size() == 1);
  REQUIRE(t.stats().insert_exists == 1);
  // The refused conn can be inserted under free tuples afterwards.
  REQUIRE(t.insert(b, b_in, b_out) == errc::ok);
  REQUIRE(t.find(b_out) == fnat::conn_hit<conn>{&b, direction::outbound});
  t.clear();
}

TEST_CASE("erase refuses a conn linked in another lcore's table", "[conn_table]") {
  using conn = test_conn<fnat::tuple4>;
  std::mt19937_64 rng(13);
  auto t1 = make_table<fnat::tuple4>(64);
  auto t2 = make_table<fnat::tuple4>(64);
  conn c(1);
  const auto in = random_key<fnat::tuple4>(rng), out = random_key<fnat::tuple4>(rng);
  REQUIRE(t1.insert(c, in, out) == errc::ok);
  REQUIRE(t2.erase(c) == errc::foreign);
  REQUIRE(t1.find(in).conn == &c);
  REQUIRE(t1.find(out).conn == &c);
  REQUIRE(t1.size() == 1);
  REQUIRE(t2.size() == 0);
  REQUIRE(t1.erase(c) == errc::ok);
}

#if defined(FNAT_CHECKED)
TEST_CASE("checked mode refuses an insert given a hash that is not the key's", "[conn_table][checked]") {
  using conn = test_conn<fnat::tuple4>;
  std::mt19937_64 rng(17);
  auto t = make_table<fnat::tuple4>(8);
  conn c(1);
  const auto in = random_key<fnat::tuple4>(rng), out = random_key<fnat::tuple4>(rng);
  REQUIRE(t.insert_with_hash(c, in, t.hash_of(in) ^ 1u, out, t.hash_of(out)) == errc::invalid_argument);
  REQUIRE_FALSE(c.is_linked());
  REQUIRE(t.stats().insert_invalid == 1);
  REQUIRE(t.insert_with_hash(c, in, t.hash_of(in), out, t.hash_of(out)) == errc::ok);
  t.clear();
}
#endif

TEST_CASE("bulk lookup answers exactly as single lookups, for every burst size 0..64", "[conn_table][bulk]") {
  using conn = test_conn<fnat::inet_tuple>;
  std::mt19937_64 rng(19);
  constexpr std::size_t n = 3000;
  auto t = make_table<fnat::inet_tuple>(n, 1.0);  // long chains too
  std::vector<std::unique_ptr<conn>> conns;
  std::vector<fnat::inet_tuple> keys;
  for (std::size_t i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<conn>(i));
    const auto in = random_key<fnat::inet_tuple>(rng), out = random_key<fnat::inet_tuple>(rng);
    REQUIRE(t.insert(*conns.back(), in, out) == errc::ok);
    keys.push_back(in);
    keys.push_back(out);
  }
  for (std::size_t burst = 0; burst <= 64; ++burst) {
    for (int round = 0; round < 20; ++round) {
      std::vector<fnat::inet_tuple> ks(burst);
      for (auto& k : ks) k = rng() % 3 == 0 ? random_key<fnat::inet_tuple>(rng) : keys[rng() % keys.size()];
      fnat::conn_hit<conn> out[64];
      const auto before = t.stats();
      const std::uint64_t mask = t.find_bulk(ks, out);
      const auto after = t.stats();
      REQUIRE(after.lookup_hits + after.lookup_misses - before.lookup_hits - before.lookup_misses == burst);
      REQUIRE(((burst == 64 ? 0 : mask >> burst)) == 0);
      REQUIRE(static_cast<std::uint64_t>(std::popcount(mask)) == after.lookup_hits - before.lookup_hits);
      fnat::conn_hit<conn> again[64];
      REQUIRE(t.find_bulk(ks.data(), burst, again) == mask);  // the (pointer, count) form
      for (std::size_t i = 0; i < burst; ++i) {
        REQUIRE(again[i] == out[i]);
        const auto single = t.find(ks[i]);
        REQUIRE(out[i] == single);
        REQUIRE(((mask >> i) & 1u) == (single ? 1u : 0u));
      }
    }
  }
  // The hash-given form agrees too.
  std::uint32_t hs[4];
  for (int i = 0; i < 4; ++i) hs[i] = t.hash_of(keys[static_cast<std::size_t>(i)]);
  fnat::conn_hit<conn> out[4];
  REQUIRE(t.find_bulk_with_hash(std::span<const fnat::inet_tuple>(keys.data(), 4), hs, out) == 0xf);
  REQUIRE(out[1] == fnat::conn_hit<conn>{conns[0].get(), direction::outbound});
  t.clear();
}

TEST_CASE("iteration visits every conn once and survives erasing the visited conn", "[conn_table][iteration]") {
  using conn = test_conn<fnat::tuple4>;
  std::mt19937_64 rng(23);
  constexpr std::size_t n = 2000;
  // Load factor 4: most chains are long, so a conn's outbound node often follows its inbound one.
  auto pool = std::move(*pool_t<fnat::tuple4>::make(n));  // the pool outlives the table linking its conns
  auto t = make_table<fnat::tuple4>(n, 4.0);
  std::set<std::uint64_t> all;
  for (std::size_t i = 0; i < n; ++i) {
    conn* c = pool.allocate(i);
    REQUIRE(t.insert(*c, random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
    all.insert(i);
  }
  REQUIRE(pool.allocate(n + 1) == nullptr);  // the pool is exactly full
  SECTION("for_each") {
    std::set<std::uint64_t> seen;
    t.for_each([&](conn& c) { REQUIRE(seen.insert(c.id).second); });
    REQUIRE(seen == all);
  }
  SECTION("erase (and free) every other visited conn") {
    std::set<std::uint64_t> seen, kept;
    bool drop = false;
    t.for_each([&](conn& c) {
      REQUIRE(seen.insert(c.id).second);
      if ((drop = !drop)) {
        REQUIRE(t.erase(c) == errc::ok);
        REQUIRE(pool.deallocate(&c) == errc::ok);
      } else {
        kept.insert(c.id);
      }
    });
    REQUIRE(seen == all);
    REQUIRE(t.size() == kept.size());
    std::set<std::uint64_t> again;
    t.for_each([&](conn& c) { again.insert(c.id); });
    REQUIRE(again == kept);
  }
  SECTION("incremental dump by cursor") {
    std::set<std::uint64_t> seen;
    std::size_t cursor = 0, calls = 0;
    while (cursor < t.bucket_count()) {
      cursor = t.for_each_from(cursor, 37, [&](conn& c) { REQUIRE(seen.insert(c.id).second); });
      ++calls;
    }
    REQUIRE(seen == all);
    REQUIRE(calls == (t.bucket_count() + 36) / 37);
    REQUIRE(t.for_each_from(t.bucket_count() + 5, 10, [](conn&) { FAIL("nothing to visit"); }) == t.bucket_count());
  }
  t.clear_and_dispose([&](conn& c) { REQUIRE(pool.deallocate(&c) == errc::ok); });
  REQUIRE(pool.in_use() == 0);
}

TEST_CASE("iteration erasing a conn whose outbound node directly follows its inbound node", "[conn_table][iteration]") {
  using conn = test_conn<fnat::tuple4>;
  std::mt19937_64 rng(29);
  // Two buckets: every chain is long and nodes of one conn are often adjacent.
  auto t = make_table<fnat::tuple4>(1, 4.0);
  REQUIRE(t.bucket_count() == 2);
  for (int trial = 0; trial < 200; ++trial) {
    conn c(1);
    REQUIRE(t.insert(c, random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
    int visits = 0;
    t.for_each([&](conn& x) {
      ++visits;
      REQUIRE(t.erase(x) == errc::ok);
    });
    REQUIRE(visits == 1);
    REQUIRE(t.empty());
  }
}

TEST_CASE("chain lengths match the Poisson model the header's load-factor essay uses", "[conn_table][maths]") {
  using conn = test_conn<fnat::tuple4>;
  std::mt19937_64 rng(31);
  for (const double lf : {0.5, 1.0, 2.0}) {
    INFO("max_load_factor " << lf);
    constexpr std::size_t n = 1 << 14;
    auto pool = std::move(*pool_t<fnat::tuple4>::make(n));
    auto t = make_table<fnat::tuple4>(n, lf);
    REQUIRE(t.bucket_count() == table_t<fnat::tuple4>::bucket_count_for(n, lf));
    REQUIRE(t.bucket_count() == std::bit_ceil(static_cast<std::size_t>(std::ceil(2.0 * n / lf))));
    for (std::size_t i = 0; i < n; ++i) {
      conn* c = pool.allocate(i);
      REQUIRE(t.insert(*c, random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
    }
    const double m = 2.0 * n, b = static_cast<double>(t.bucket_count()), a = m / b;
    REQUIRE(t.load_factor() == Approx(a));
    REQUIRE(a <= lf);
    REQUIRE(a > lf / 2);
    double hit_nodes = 0, empty = 0, total = 0;
    for (std::size_t i = 0; i < t.bucket_count(); ++i) {
      const double len = static_cast<double>(t.bucket_size(i));
      hit_nodes += len * (len + 1) / 2;  // positions 1..len
      empty += len == 0;
      total += len;
    }
    REQUIRE(total == m);
    // Successful lookup: 1 + (m - 1) / (2B) nodes; a miss reads a nodes and stops at an empty
    // bucket with probability e^-a.
    CHECK(hit_nodes / m == Approx(1 + (m - 1) / (2 * b)).epsilon(0.02));
    // The hash key is random per process, so the empty count is a binomial draw over the buckets:
    // allow 5 standard deviations (at lf 2 a 3% margin was 1.5 sigma and failed ~1 run in 8).
    const double p_empty = std::exp(-a);
    CHECK(std::abs(empty / b - p_empty) <= 5 * std::sqrt(p_empty * (1 - p_empty) / b));
    t.clear_and_dispose([&](conn& c) { (void)pool.deallocate(&c); });
  }
}

TEST_CASE("make() validates its configuration and reports allocation failure", "[conn_table][config]") {
  using T = table_t<fnat::tuple4>;
  auto zero = T::make({.capacity = 0});
  REQUIRE_FALSE(zero);
  CHECK(zero.err().code() == errc::invalid_argument);
  CHECK_THAT(zero.err().message(), Catch::Contains("capacity 0"));
  auto huge = T::make({.capacity = T::max_capacity + 1});
  REQUIRE_FALSE(huge);
  CHECK(huge.err().code() == errc::invalid_argument);
  for (double lf : {0.0, 0.01, 4.5, -1.0, std::nan("")}) {
    auto bad = T::make({.capacity = 10, .max_load_factor = lf});
    REQUIRE_FALSE(bad);
    CHECK(bad.err().code() == errc::invalid_argument);
    CHECK_THAT(bad.err().message(), Catch::Contains("max_load_factor"));
  }
  auto ok = T::make({});
  REQUIRE(ok);
  CHECK(ok->capacity() == 65536);
  CHECK(ok->bucket_count() == 262144);
  CHECK(ok->bucket_bytes() == 262144 * sizeof(void*));
}

namespace {
// An allocator that has no memory.
template <class T>
struct empty_allocator {
  using value_type = T;
  empty_allocator() = default;
  template <class U>
  empty_allocator(const empty_allocator<U>&) noexcept {}
  T* allocate(std::size_t) { throw std::bad_alloc(); }
  void deallocate(T*, std::size_t) noexcept {}
  template <class U>
  friend bool operator==(const empty_allocator&, const empty_allocator<U>&) noexcept {
    return true;
  }
};
// An allocator that counts what it hands out.
struct alloc_counts {
  std::size_t live_bytes = 0, calls = 0;
};
template <class T>
struct counting_allocator {
  using value_type = T;
  alloc_counts* counts;
  explicit counting_allocator(alloc_counts* c) noexcept : counts(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& o) noexcept : counts(o.counts) {}
  T* allocate(std::size_t n) {
    counts->live_bytes += n * sizeof(T);
    ++counts->calls;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    counts->live_bytes -= n * sizeof(T);
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  friend bool operator==(const counting_allocator& a, const counting_allocator<U>& b) noexcept {
    return a.counts == b.counts;
  }
};
}  // namespace

TEST_CASE("the bucket array is the only memory, taken from the Allocator once", "[conn_table][config]") {
  using conn = test_conn<fnat::tuple4>;
  {
    using T = fnat::conn_table<conn, fnat::conn_hooks_base<conn>, fnat::tuple_hash, empty_allocator<std::byte>>;
    auto r = T::make({.capacity = 1000});
    REQUIRE_FALSE(r);
    CHECK(r.err().code() == errc::no_memory);
    CHECK_THAT(r.err().message(), Catch::Contains("4096 buckets"));
  }
  alloc_counts counts;
  {
    using T = fnat::conn_table<conn, fnat::conn_hooks_base<conn>, fnat::tuple_hash, counting_allocator<std::byte>>;
    auto r = T::make({.capacity = 1000}, {}, counting_allocator<std::byte>(&counts));
    REQUIRE(r);
    CHECK(counts.calls == 1);
    CHECK(counts.live_bytes == r->bucket_bytes());
    std::mt19937_64 rng(37);
    std::vector<std::unique_ptr<conn>> conns;
    for (int i = 0; i < 1000; ++i) {
      conns.push_back(std::make_unique<conn>(i));
      REQUIRE(r->insert(*conns.back(), random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
    }
    CHECK(counts.calls == 1);  // no allocation per insert
    T moved = std::move(*r);   // the old object is destroyed at scope end without freeing anything
    CHECK(moved.size() == 1000);
    CHECK(moved.find(conns[5]->tuple(direction::outbound)).conn == conns[5].get());
    T assigned = std::move(*T::make({.capacity = 4}, {}, counting_allocator<std::byte>(&counts)));
    assigned = std::move(moved);
    CHECK(assigned.find(conns[7]->tuple(direction::inbound)).conn == conns[7].get());
    CHECK(counts.calls == 2);
    // Destroying the table unlinks the conns it still holds (they are destroyed after it here).
  }
  CHECK(counts.live_bytes == 0);
}

TEST_CASE("destroying a table unlinks its conns", "[conn_table]") {
  using conn = test_conn<fnat::tuple4>;
  std::mt19937_64 rng(41);
  conn a(1), b(2);
  {
    auto t = make_table<fnat::tuple4>(4);
    REQUIRE(t.insert(a, random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
    REQUIRE(t.insert(b, random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
  }
  REQUIRE_FALSE(a.is_linked());
  REQUIRE_FALSE(b.is_linked());
}

namespace {
// Hooks and timer as members, and a hash policy of the user's.
struct member_conn {
  std::uint32_t state = 0;
  fnat::conn_hooks<fnat::tuple6> hooks;
  fnat::timer_entry timer;
};
struct seeded_hash {
  std::uint32_t operator()(const fnat::tuple6& k) const noexcept { return fnat::crc32c_key(k, 12345); }
};
}  // namespace

TEST_CASE("hooks and timer as members, with a user hash policy", "[conn_table]") {
  using table = fnat::conn_table<member_conn, fnat::conn_hooks_member<&member_conn::hooks>, seeded_hash>;
  using wheel = fnat::timer_wheel<member_conn, fnat::timer_member<&member_conn::timer>>;
  std::mt19937_64 rng(43);
  auto t = std::move(*table::make({.capacity = 100}));
  auto w = std::move(*wheel::make({.slots = 16}));
  std::vector<member_conn> conns(50);
  std::vector<fnat::tuple6> ins, outs;
  for (auto& c : conns) {
    ins.push_back(random_key<fnat::tuple6>(rng));
    outs.push_back(random_key<fnat::tuple6>(rng));
    REQUIRE(t.insert(c, ins.back(), outs.back()) == errc::ok);
    REQUIRE(w.arm(c, 3) == errc::ok);
  }
  REQUIRE(t.hash_of(ins[0]) == fnat::crc32c_key(ins[0], 12345));
  for (std::size_t i = 0; i < conns.size(); ++i) {
    REQUIRE(t.find(ins[i]) == fnat::conn_hit<member_conn>{&conns[i], direction::inbound});
    REQUIRE(t.find(outs[i]) == fnat::conn_hit<member_conn>{&conns[i], direction::outbound});
  }
  std::size_t fired = 0;
  w.advance_to(3, [&](member_conn& c) {
    REQUIRE(t.erase(c) == errc::ok);
    ++fired;
  });
  REQUIRE(fired == conns.size());
  REQUIRE(t.empty());
}

// ---- hash flooding: the chain bound and the keyed default ---------------------------------------

namespace {
struct flood_conn : fnat::conn_hooks<fnat::tuple4> {};
// Every key in bucket 0 (and a distinct stored hash per key, so nothing but the bound refuses).
struct bucket0_hash {
  std::uint32_t operator()(const fnat::tuple4& k) const noexcept { return fnat::crc32c_key(k) << 20; }
};
}  // namespace

TEST_CASE("a chain at max_chain refuses inserts with errc::bucket_full, counted, through check and insert",
          "[conn_table][flood]") {
  using table = fnat::conn_table<flood_conn, fnat::conn_hooks_base<flood_conn>, bucket0_hash>;
  REQUIRE(table::make({.capacity = 64, .max_chain = 1}).err().code() == errc::invalid_argument);
  // Conns first: a table unlinks what it still holds when it goes.
  std::vector<flood_conn> conns(4), more(40);
  auto t = std::move(*table::make({.capacity = 64, .max_chain = 5}));
  REQUIRE(t.max_chain() == 5);
  std::mt19937_64 rng(11);
  std::vector<fnat::tuple4> ins, outs;
  for (int i = 0; i < 4; ++i) {
    ins.push_back(random_key<fnat::tuple4>(rng));
    outs.push_back(random_key<fnat::tuple4>(rng));
  }
  // Two nodes per conn, all in bucket 0: 2, 4, then 6 > 5 is refused.
  REQUIRE(t.insert(conns[0], ins[0], outs[0]) == errc::ok);
  REQUIRE(t.insert(conns[1], ins[1], outs[1]) == errc::ok);
  REQUIRE(t.bucket_size(0) == 4);
  REQUIRE(t.check_insert(ins[2], outs[2]) == errc::bucket_full);
  REQUIRE(t.insert(conns[2], ins[2], outs[2]) == errc::bucket_full);
  REQUIRE_FALSE(table::is_linked(conns[2]));
  REQUIRE(t.size() == 2);
  REQUIRE(t.bucket_size(0) == 4);
  auto st = t.stats();
  CHECK(st.insert_chain_full == 1);
  CHECK(st.failed_inserts() == 1);
  CHECK(st.inserts == 2);
  // The existing conns are still found; freeing one makes room again.
  REQUIRE(t.find(ins[1]).conn == &conns[1]);
  REQUIRE(t.erase(conns[0]) == errc::ok);
  REQUIRE(t.check_insert(ins[2], outs[2]) == errc::ok);
  REQUIRE(t.insert(conns[2], ins[2], outs[2]) == errc::ok);
  // Unbounded (0): the chain grows.
  auto u = std::move(*table::make({.capacity = 64, .max_chain = 0}));
  for (auto& c : more)
    REQUIRE(u.insert(c, random_key<fnat::tuple4>(rng), random_key<fnat::tuple4>(rng)) == errc::ok);
  CHECK(u.bucket_size(0) == 80);
}

TEST_CASE("a SYN flood crafted against CRC32C fills one chain of a CRC table, spreads in a keyed one",
          "[conn_table][flood]") {
  constexpr std::size_t n = 2000;
  const auto vip = fnat::ipv4_addr::from_host(0xc6120101u);
  // Table for 4096 conns: 16384 buckets, 14 bits. The attacker solves for those 14 bits.
  const auto syns = fnat_flood::crc_colliding_syns(vip, 443, 14, n);
  REQUIRE(syns.size() == n);
  std::mt19937_64 rng(5);
  std::vector<fnat::tuple4> outs(n);
  for (auto& o : outs) o = random_key<fnat::tuple4>(rng);

  SECTION("CRC32C, default bound: 32 nodes, then every crafted SYN is refused and counted") {
    using table = fnat::conn_table<flood_conn, fnat::conn_hooks_base<flood_conn>, fnat::crc32c_tuple_hash>;
    std::vector<flood_conn> conns(n);
    auto t = std::move(*table::make({.capacity = 4096}));
    std::size_t ok = 0, refused = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const errc e = t.insert(conns[i], syns[i], outs[i]);
      ok += e == errc::ok;
      refused += e == errc::bucket_full;
    }
    const std::size_t b = t.bucket_of(t.hash_of(syns[0]));
    CHECK(t.bucket_size(b) <= 32);
    CHECK(ok <= 32);
    CHECK(ok + refused == n);
    CHECK(t.stats().insert_chain_full == refused);
  }
  SECTION("keyed tuple_hash (process key): every crafted SYN is taken, chains stay short") {
    using table = fnat::conn_table<flood_conn>;
    std::vector<flood_conn> conns(n);
    auto t = std::move(*table::make({.capacity = 4096}));
    for (std::size_t i = 0; i < n; ++i) REQUIRE(t.insert(conns[i], syns[i], outs[i]) == errc::ok);
    std::size_t longest = 0;
    for (std::size_t b = 0; b < t.bucket_count(); ++b) longest = std::max(longest, t.bucket_size(b));
    CHECK(longest <= 8);  // 4000 nodes in 16384 buckets: Poisson(0.24); P(any bucket >= 9) ~ 1e-8
    CHECK(t.stats().insert_chain_full == 0);
  }
}
