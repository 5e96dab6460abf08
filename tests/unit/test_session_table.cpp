// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/conn_state.hpp>
#include <fnat/core/port_plan.hpp>
#include <fnat/core/session_table.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

using fnat::direction;
using fnat::endpoint;
using fnat::errc;
using fnat::inet_tuple;
using fnat::session_refusal;
namespace ipproto = fnat::ipproto;

namespace {

fnat::inet_addr ip(const char* s) { return *fnat::inet_addr::parse(s); }

const fnat::inet_addr vip4 = ip("198.18.1.1");
const fnat::inet_addr lip4 = ip("198.18.2.100");
const fnat::inet_addr lip4b = ip("198.18.2.101");
const fnat::inet_addr lip6 = ip("2001:2:0:2::100");
const endpoint rs4{ip("198.18.3.10"), 80};
const endpoint rs6{ip("2001:2:0:3::10"), 80};

inet_tuple client_tuple(std::uint32_t n, std::uint8_t proto = ipproto::tcp, const fnat::inet_addr& vip = vip4) {
  const bool v4 = vip.is_v4();
  const std::string a = v4 ? "198.18.0." + std::to_string(1 + n % 250) : "2001:2:0:1::" + std::to_string(1 + n % 250);
  return fnat::make_tuple(proto, ip(a.c_str()), static_cast<std::uint16_t>(1024 + n / 250), vip, std::uint16_t{80});
}

struct payload {
  int service = -1;
};

// One lcore's world: a port plan of `lcores` lcores, this lcore's pools for two IPv4 LIPs and one
// IPv6 LIP over ports [low, high] with one bucket, a rotation over them, and a session table.
struct world {
  using table_type = fnat::session_table<payload>;
  using pool_type = fnat::sa_pool<fnat::hashed_buckets>;

  world(std::size_t capacity = 1024, std::uint16_t low = 20000, std::uint16_t high = 20063, std::size_t max_chain = 32,
        std::size_t lcores = 1)
      : plan(make_plan(lcores, low, high)) {
    for (const fnat::inet_addr& lip : {lip4, lip4b, lip6}) {
      auto pol = fnat::hashed_buckets::make(plan, 0, {.buckets = 1});
      REQUIRE(pol);
      auto p = pool_type::make(lip, std::move(*pol));
      REQUIRE(p);
      pools.push_back(std::make_unique<pool_type>(std::move(*p)));
      REQUIRE(rotation.add(*pools.back()));
    }
    auto t = table_type::make({.capacity = capacity, .max_chain = max_chain,
                               .wheel = {.slots = 64, .tick = std::chrono::milliseconds(1)}});
    REQUIRE(t);
    table = std::make_unique<table_type>(std::move(*t));
    auto g = table->add_group(rotation);
    REQUIRE(g);
    group = *g;
  }

  static fnat::port_plan make_plan(std::size_t lcores, std::uint16_t low, std::uint16_t high) {
    std::vector<fnat::lcore_queue> v;
    for (std::size_t i = 0; i < lcores; ++i) v.push_back({static_cast<unsigned>(i + 1), static_cast<std::uint16_t>(i)});
    auto p = fnat::port_plan::make({.lcores = v, .port_low = low, .port_high = high});
    REQUIRE(p);
    return *p;
  }

  fnat::session_request request(const inet_tuple& in, const endpoint& dest = rs4, std::uint64_t timeout = 10,
                                std::uint8_t state = 0) const {
    return {.in = in, .dest = dest, .group = group, .state = state, .timeout = timeout, .tag = 7};
  }

  std::size_t ports_used() const {
    std::size_t n = 0;
    for (const auto& p : pools) n += p->stats().used;
    return n;
  }
  // Nothing claimed beyond the open sessions: pools, objects, timers, state counts agree.
  void check_whole() const {
    CHECK(table->leak_report().empty());
    CHECK(ports_used() == table->size());
    CHECK(table->conn_pool().in_use() == table->size());
  }

  fnat::port_plan plan;
  std::vector<std::unique_ptr<pool_type>> pools;
  fnat::sa_pool_rotation<fnat::hashed_buckets> rotation;
  std::unique_ptr<table_type> table;
  std::uint16_t group = 0;
};

}  // namespace

TEST_CASE("session table: open files both tuples, a port of this lcore and an armed timer, and close gives all back",
          "[session_table]") {
  world w(1024, 20000, 20063, 32, 4);  // 4 lcores: this lcore (index 0) owns one port class in four
  const inet_tuple in = client_tuple(1);
  auto r = w.table->open(w.request(in), payload{3});
  REQUIRE(r);
  fnat::session<payload>& s = *r.session;
  CHECK(s.data.service == 3);
  CHECK(s.tag == 7);
  CHECK(s.in() == in);
  CHECK(s.real_server().addr == rs4.addr);
  CHECK(s.real_server().port == 80);
  CHECK((s.lip() == lip4 || s.lip() == lip4b));
  CHECK(w.plan.class_owner(s.lport()) == 0);  // the reply to this lport is steered to this lcore
  CHECK(s.lport() >= 20000);
  CHECK(s.lport() <= 20063);
  CHECK(s.out() == fnat::make_tuple(ipproto::tcp, rs4.addr, std::uint16_t{80}, s.lip(), s.lport()));

  const auto hin = w.table->lookup(in);
  REQUIRE(hin.conn == &s);
  CHECK(hin.dir == direction::inbound);
  const auto hout = w.table->lookup(s.out());
  REQUIRE(hout.conn == &s);
  CHECK(hout.dir == direction::outbound);
  CHECK(fnat::session_table<payload>::wheel_type::is_armed(s));
  CHECK(w.ports_used() == 1);
  w.check_whole();

  const inet_tuple out = s.out();
  REQUIRE(w.table->close(s) == errc::ok);
  CHECK(!w.table->lookup(in));
  CHECK(!w.table->lookup(out));
  CHECK(w.table->size() == 0);
  CHECK(w.ports_used() == 0);
  CHECK(w.table->stats().opened == 1);
  CHECK(w.table->stats().closed == 1);
  w.check_whole();
}

TEST_CASE("session table: close by either tuple gives everything back and an unknown tuple changes nothing",
          "[session_table]") {
  world w;
  const inet_tuple a = client_tuple(1), b = client_tuple(2);
  auto ra = w.table->open(w.request(a));
  auto rb = w.table->open(w.request(b));
  REQUIRE(ra);
  REQUIRE(rb);
  const inet_tuple b_out = rb.session->out();
  CHECK(w.table->close(a) == errc::ok);      // by the inbound tuple
  CHECK(w.table->close(b_out) == errc::ok);  // by the outbound tuple
  CHECK(w.table->close(a) == errc::not_found);
  CHECK(w.table->close(client_tuple(3)) == errc::not_found);
  CHECK(w.table->size() == 0);
  CHECK(w.ports_used() == 0);
  CHECK(w.table->stats().closed == 2);
  w.check_whole();
}

TEST_CASE("session table: every refusal names its resource and leaves nothing claimed", "[session_table]") {
  SECTION("ports run out: no_port, and the port of each refused open is back") {
    world w(1024, 20000, 20007);  // 8 ports per LIP, two IPv4 LIPs
    for (std::uint32_t i = 0; i < 16; ++i) REQUIRE(w.table->open(w.request(client_tuple(i))));
    auto r = w.table->open(w.request(client_tuple(100)));
    CHECK(!r);
    CHECK(r.why == session_refusal::no_port);
    CHECK(w.table->stats().refused[static_cast<std::size_t>(session_refusal::no_port)] == 1);
    CHECK(w.ports_used() == 16);
    w.check_whole();
    // Another destination has its own ports (one bucket per pool here, so none: still no_port).
    CHECK(w.table->open(w.request(client_tuple(101), endpoint{ip("198.18.3.11"), 80})).why == session_refusal::no_port);
  }
  SECTION("no LIP of the destination's family: no_local_address") {
    world w;
    fnat::sa_pool_rotation<fnat::hashed_buckets> only4;
    REQUIRE(only4.add(*w.pools[0]));
    auto g = w.table->add_group(only4);
    REQUIRE(g);
    auto rq = w.request(client_tuple(1, ipproto::tcp, ip("2001:2:0:1::1")), rs6);
    rq.group = *g;
    CHECK(w.table->open(rq).why == session_refusal::no_local_address);
    w.check_whole();
  }
  SECTION("an unknown group: bad_group") {
    world w;
    auto rq = w.request(client_tuple(1));
    rq.group = 9;
    CHECK(w.table->open(rq).why == session_refusal::bad_group);
  }
  SECTION("capacity: no_session before a port is taken") {
    world w(4);
    for (std::uint32_t i = 0; i < 4; ++i) REQUIRE(w.table->open(w.request(client_tuple(i))));
    CHECK(w.table->open(w.request(client_tuple(9))).why == session_refusal::no_session);
    CHECK(w.ports_used() == 4);
    w.check_whole();
  }
  SECTION("a conn table smaller than the pool: table_full once the table holds its capacity, nothing claimed") {
    world w;
    auto t = world::table_type::make({.capacity = 16, .table_capacity = 3});
    REQUIRE(t);
    REQUIRE(t->add_group(w.rotation));
    for (std::uint32_t i = 0; i < 3; ++i) REQUIRE(t->open(w.request(client_tuple(i))));
    const auto r = t->open(w.request(client_tuple(9)));
    CHECK(r.why == session_refusal::table_full);
    CHECK(t->stats().refused[static_cast<std::size_t>(session_refusal::table_full)] == 1);
    CHECK(t->stats().refused[static_cast<std::size_t>(session_refusal::no_session)] == 0);
    CHECK(t->capacity() == 3);
    CHECK(t->conn_pool().capacity() == 16);
    CHECK(w.ports_used() == 3);
    CHECK(t->drain() == 3);
    CHECK(w.ports_used() == 0);
  }
  SECTION("the same inbound tuple twice: tuple_in_use, its port back") {
    world w;
    REQUIRE(w.table->open(w.request(client_tuple(1))));
    const auto r = w.table->open(w.request(client_tuple(1)));
    CHECK(r.why == session_refusal::tuple_in_use);
    CHECK(w.ports_used() == 1);
    CHECK(w.table->size() == 1);
    w.check_whole();
  }
}

namespace {
// Every tuple in one bucket: what a flood that knew the hash key could do.
struct constant_hash {
  std::uint32_t operator()(const inet_tuple&) const noexcept { return 42; }
};
struct flooded_traits : fnat::session_table_traits {
  using hash = constant_hash;
};
}  // namespace

TEST_CASE("session table: a chain at max_chain refuses with chain_full, nothing claimed", "[session_table]") {
  fnat::port_plan plan = world::make_plan(1, 20000, 20063);
  auto pol = fnat::hashed_buckets::make(plan, 0, {.buckets = 1});
  REQUIRE(pol);
  auto pool = fnat::sa_pool<fnat::hashed_buckets>::make(lip4, std::move(*pol));
  REQUIRE(pool);
  fnat::sa_pool_rotation<fnat::hashed_buckets> rot;
  REQUIRE(rot.add(*pool));
  auto t = fnat::session_table<fnat::no_payload, flooded_traits>::make({.capacity = 64, .max_chain = 8});
  REQUIRE(t);
  auto g = t->add_group(rot);
  REQUIRE(g);
  // Each session puts two nodes in the one bucket: 4 sessions fill a chain of 8.
  for (std::uint32_t i = 0; i < 4; ++i)
    REQUIRE(t->open({.in = client_tuple(i), .dest = rs4, .group = *g, .timeout = 5}));
  const auto r = t->open({.in = client_tuple(4), .dest = rs4, .group = *g, .timeout = 5});
  CHECK(r.why == session_refusal::chain_full);
  CHECK(pool->stats().used == 4);
  CHECK(t->leak_report().empty());
  CHECK(t->drain() == 4);
  CHECK(pool->stats().used == 0);
}

TEST_CASE("session table: the lazy idle timer expires a session timeout after its last packet, not before",
          "[session_table]") {
  world w;
  auto r = w.table->open(w.request(client_tuple(1), rs4, 10));
  REQUIRE(r);
  fnat::session<payload>* s = r.session;
  std::vector<int> expired;
  auto on_expire = [&](fnat::session<payload>& x) { expired.push_back(x.data.service); };

  CHECK(w.table->advance_to(5, on_expire) == 0);
  w.table->touch(*s);  // last packet at tick 5
  CHECK(w.table->advance_to(10, on_expire) == 0);  // its first deadline: touched since, re-armed
  CHECK(w.table->stats().rearmed == 1);
  CHECK(w.table->advance_to(14, on_expire) == 0);
  CHECK(expired.empty());
  CHECK(w.table->advance_to(15, on_expire) == 1);  // 10 ticks after the last packet
  CHECK(expired.size() == 1);
  CHECK(w.table->size() == 0);
  CHECK(w.ports_used() == 0);
  CHECK(w.table->stats().expired == 1);
  w.check_whole();
}

TEST_CASE("session table: a state change re-arms at once, so a shorter timeout is served on time",
          "[session_table]") {
  world w;
  const auto est = static_cast<std::uint8_t>(fnat::tcp_state::established);
  const auto tw = static_cast<std::uint8_t>(fnat::tcp_state::time_wait);
  auto r = w.table->open(w.request(client_tuple(1), rs4, 1000, est));
  REQUIRE(r);
  CHECK(w.table->count_in_state(ipproto::tcp, est) == 1);
  CHECK(w.table->advance_to(3, [](auto&) {}) == 0);
  w.table->set_state(*r.session, tw, 2);
  CHECK(w.table->count_in_state(ipproto::tcp, est) == 0);
  CHECK(w.table->count_in_state(ipproto::tcp, tw) == 1);
  CHECK(w.table->count_in_state(ipproto::udp, tw) == 0);  // states are counted per protocol
  CHECK(w.table->advance_to(4, [](auto&) {}) == 0);
  CHECK(w.table->advance_to(5, [](auto&) {}) == 1);
  w.check_whole();
}

TEST_CASE("session table: 64-bit ticks: sessions opened around 2^32 ticks live exactly their timeout",
          "[session_table]") {
  world w;
  const std::uint64_t t0 = (std::uint64_t{1} << 32) - 3;
  CHECK(w.table->advance_to(t0, [](auto&) {}) == 0);  // one pass over the slots, however far
  auto r = w.table->open(w.request(client_tuple(1), rs4, 10));
  REQUIRE(r);
  CHECK(r.session->last_seen == t0);
  CHECK(w.table->advance_to(t0 + 6, [](auto&) {}) == 0);  // past 2^32
  w.table->touch(*r.session);
  CHECK(r.session->last_seen == t0 + 6);
  CHECK(w.table->advance_to(t0 + 15, [](auto&) {}) == 0);
  CHECK(w.table->advance_to(t0 + 16, [](auto&) {}) == 1);
  w.check_whole();
}

TEST_CASE("session table: drain closes everything and gives every port back", "[session_table]") {
  world w;
  for (std::uint32_t i = 0; i < 20; ++i) REQUIRE(w.table->open(w.request(client_tuple(i)), payload{1}));
  for (std::uint32_t i = 0; i < 5; ++i)
    REQUIRE(w.table->open(w.request(client_tuple(1000 + i, ipproto::tcp, ip("2001:2:0:1::1")), rs6), payload{2}));
  std::map<int, int> seen;
  CHECK(w.table->drain([&](auto& s) { ++seen[s.data.service]; }) == 25);
  CHECK(seen[1] == 20);
  CHECK(seen[2] == 5);
  CHECK(w.table->size() == 0);
  CHECK(w.ports_used() == 0);
  CHECK(w.table->stats().drained == 25);
  w.check_whole();
}

TEST_CASE("session table: random opens, packets, closes and time against a model", "[session_table]") {
  world w(256, 20000, 20127);
  std::mt19937_64 rng(20261207);
  struct model_entry {
    fnat::session<payload>* s;
    std::uint64_t last;
    std::uint64_t timeout;
  };
  std::map<std::uint32_t, model_entry> live;  // client id -> session
  std::uint64_t now = 0;
  std::size_t expired_total = 0;
  for (int step = 0; step < 20000; ++step) {
    const unsigned op = rng() % 10;
    if (op < 4) {
      const auto id = static_cast<std::uint32_t>(rng() % 600);
      const auto r = w.table->open(w.request(client_tuple(id), rs4, 1 + rng() % 40), payload{static_cast<int>(id)});
      if (live.count(id) != 0) {
        CHECK(r.why == session_refusal::tuple_in_use);
      } else if (live.size() == 256) {
        CHECK(r.why == session_refusal::no_session);
      } else if (r) {
        live[id] = {r.session, now, r.session->timeout};
      } else {
        CHECK(r.why == session_refusal::no_port);  // 2 x 128 ports, as many as sessions
      }
    } else if (op < 7 && !live.empty()) {
      auto it = std::next(live.begin(), static_cast<long>(rng() % live.size()));
      w.table->touch(*it->second.s);
      it->second.last = now;
    } else if (op < 8 && !live.empty()) {
      auto it = std::next(live.begin(), static_cast<long>(rng() % live.size()));
      REQUIRE(w.table->close(*it->second.s) == errc::ok);
      live.erase(it);
    } else {
      now += rng() % 4;
      std::set<std::uint32_t> fired;
      expired_total += w.table->advance_to(now, [&](fnat::session<payload>& s) {
        fired.insert(static_cast<std::uint32_t>(s.data.service));
      }, 1u << 20);
      for (auto it = live.begin(); it != live.end();) {
        const bool due = now >= it->second.last + it->second.timeout + 1;  // a tick of slack at most
        const bool gone = fired.count(it->first) != 0;
        if (gone) {
          CHECK(now >= it->second.last + it->second.timeout);  // never before its timeout
          it = live.erase(it);
        } else {
          CHECK(!due);  // never later than one tick after it
          ++it;
        }
      }
    }
    REQUIRE(w.table->size() == live.size());
  }
  CHECK(expired_total > 0);
  w.check_whole();
  w.table->drain();
  CHECK(w.ports_used() == 0);
  w.check_whole();
}

namespace {
struct plain_conn : fnat::conn_hooks<inet_tuple> {};
}  // namespace

TEST_CASE("conn_table: prepare_insert then commit_insert links both tuples without a second search",
          "[conn_table][session_table]") {
  using table_t = fnat::conn_table<plain_conn>;
  auto t = table_t::make({.capacity = 4});
  REQUIRE(t);
  plain_conn a, b, c;
  const inet_tuple in_a = client_tuple(1), out_a = client_tuple(2);
  table_t::insert_ticket ticket;
  REQUIRE(t->prepare_insert(in_a, out_a, ticket) == errc::ok);
  CHECK(ticket.in_hash == t->hash_of(in_a));
  CHECK(ticket.out_hash == t->hash_of(out_a));
  CHECK(t->size() == 0);  // the first phase changes nothing
  REQUIRE(t->commit_insert(a, in_a, out_a, ticket) == errc::ok);
  CHECK(t->find(in_a).conn == &a);
  CHECK(t->find(in_a).dir == direction::inbound);
  CHECK(t->find(out_a).conn == &a);
  CHECK(t->find(out_a).dir == direction::outbound);
  CHECK(t->size() == 1);
  CHECK(t->stats().inserts == 1);
  // Taken tuples are refused in the first phase, in insert()'s order of reasons.
  CHECK(t->prepare_insert(in_a, client_tuple(3), ticket) == errc::exists);
  CHECK(t->prepare_insert(client_tuple(3), out_a, ticket) == errc::exists);
  CHECK(t->prepare_insert(client_tuple(3), client_tuple(3), ticket) == errc::exists);
  // A ticket made before another insert is stale: checked mode refuses it, links nothing.
  table_t::insert_ticket old;
  REQUIRE(t->prepare_insert(client_tuple(4), client_tuple(5), old) == errc::ok);
  REQUIRE(t->insert(b, client_tuple(6), client_tuple(7)) == errc::ok);
#if defined(FNAT_CHECKED)
  CHECK(t->commit_insert(c, client_tuple(4), client_tuple(5), old) == errc::invalid_argument);
  CHECK(!t->find(client_tuple(4)));
  CHECK(t->size() == 2);
#endif
  REQUIRE(t->prepare_insert(client_tuple(4), client_tuple(5), ticket) == errc::ok);
  REQUIRE(t->commit_insert(c, client_tuple(4), client_tuple(5), ticket) == errc::ok);
  CHECK(t->size() == 3);
  t->clear();
}
