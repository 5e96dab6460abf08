// SPDX-License-Identifier: BSD-3-Clause
// RSS-aware ports: the invariant "every port handed out for a destination brings the reply back to
// this lcore's queue", checked against the bit-serial reference hash and the RETA, over RETA sizes
// 64/128/512, 1..16 lcores, IPv4 and IPv6; the bucket reduction; sa_pool integration; misuse errors.
#include <fnat/core/reta.hpp>
#include <fnat/core/rss_ports.hpp>
#include <fnat/core/sa_pool.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

using fnat::endpoint;
using fnat::errc;
using fnat::ip_family;
using fnat::ipv4_addr;
using fnat::ipv6_addr;
using fnat::rss_key_microsoft;

namespace {

using policy = fnat::rss_buckets;

// Queue ids deliberately not 0..n-1 ("any queue list").
std::vector<std::uint16_t> queue_ids(std::size_t n) {
  std::vector<std::uint16_t> q;
  for (std::size_t i = 0; i < n; ++i) q.push_back(static_cast<std::uint16_t>(2 * i + 5));
  return q;
}

std::vector<std::uint16_t> reta_round_robin(const std::vector<std::uint16_t>& q, std::size_t size) {
  std::vector<std::uint16_t> r(size);
  for (std::size_t i = 0; i < size; ++i) r[i] = q[i % q.size()];
  return r;
}

// Round robin's entry counts, placed at random: "mine" then depends on every index bit.
std::vector<std::uint16_t> reta_shuffled(const std::vector<std::uint16_t>& q, std::size_t size, std::mt19937_64& rng) {
  auto r = reta_round_robin(q, size);
  std::shuffle(r.begin(), r.end(), rng);
  return r;
}

fnat::inet_addr random_addr(ip_family f, std::mt19937_64& rng, bool lip) {
  if (f == ip_family::v4) {
    // 198.18.0.0/15 (RFC 2544): LIPs in 198.18.0.0/16, real servers in 198.19.0.0/16.
    const std::uint32_t host = (lip ? 0xc6120000u : 0xc6130000u) | static_cast<std::uint32_t>(rng() & 0xffffu);
    return ipv4_addr::from_host(host);
  }
  ipv6_addr a = *ipv6_addr::parse(lip ? "2001:2::" : "2001:2:0:1::");
  for (std::size_t i = 8; i < 16; ++i) a.bytes[i] = static_cast<std::uint8_t>(rng());
  return a;
}

// The NIC's view of the reply RS:rport -> LIP:lport, computed bit by bit from the definition.
std::uint16_t reference_queue(std::span<const std::uint8_t> key, std::span<const std::uint16_t> reta,
                              const fnat::inet_addr& lip, const endpoint& dest, std::uint16_t lport) {
  std::uint32_t h;
  if (lip.is_v4()) {
    const auto in = fnat::rss_input_v4(dest.addr.v4(), lip.v4(), fnat::hton16(dest.port), fnat::hton16(lport));
    h = fnat::toeplitz_hash_reference(key, in);
  } else {
    const auto in = fnat::rss_input_v6(dest.addr.v6(), lip.v6(), fnat::hton16(dest.port), fnat::hton16(lport));
    h = fnat::toeplitz_hash_reference(key, in);
  }
  return reta[h & (reta.size() - 1)];
}

// The same with the (reference-checked) table hasher, for exhaustive sweeps.
std::uint16_t fast_queue(const fnat::toeplitz_table& tz, std::span<const std::uint16_t> reta, const fnat::inet_addr& lip,
                         const endpoint& dest, std::uint16_t lport) {
  const std::uint32_t h = lip.is_v4() ? tz.hash_v4(dest.addr.v4(), lip.v4(), fnat::hton16(dest.port), fnat::hton16(lport))
                                      : tz.hash_v6(dest.addr.v6(), lip.v6(), fnat::hton16(dest.port), fnat::hton16(lport));
  return reta[h & (reta.size() - 1)];
}

// The reduction's definition: mine(i) == mine(i & D) for every index, and D is minimal.
void check_index_mask(const policy& p, std::span<const std::uint16_t> reta, std::uint16_t q) {
  const std::uint32_t d = p.index_mask();
  REQUIRE(p.bucket_count() == (std::size_t{1} << std::popcount(d)));
  REQUIRE((d & ~static_cast<std::uint32_t>(reta.size() - 1)) == 0);
  std::size_t differ = 0;
  for (std::uint32_t i = 0; i < reta.size(); ++i) differ += (reta[i] == q) == (reta[i & d] == q) ? 0 : 1;
  REQUIRE(differ == 0);
  for (std::uint32_t k = 1; k < reta.size(); k <<= 1) {
    if ((d & k) == 0) continue;
    bool matters = false;
    for (std::uint32_t i = 0; i < reta.size() && !matters; ++i) matters = (reta[i] == q) != (reta[i ^ k] == q);
    REQUIRE(matters);
  }
}

}  // namespace

TEST_CASE("every port handed out lands on the lcore's queue: RETA 64/128/512, 1..16 lcores, IPv4 and IPv6",
          "[rss_ports]") {
  std::mt19937_64 rng(2024);
  auto tz4 = fnat::toeplitz_table::make(rss_key_microsoft);
  REQUIRE(tz4);
  const std::uint16_t low = 1025, high = 65535;
  for (ip_family fam : {ip_family::v4, ip_family::v6})
    for (std::size_t rsize : {64u, 128u, 512u})
      for (std::size_t n = 1; n <= 16; ++n) {
        const bool shuffled = (n + rsize / 64) % 3 == 0;
        const auto q = queue_ids(n);
        const auto reta = shuffled ? reta_shuffled(q, rsize, rng) : reta_round_robin(q, rsize);
        INFO(fnat::to_string(fam) << ", RETA " << rsize << (shuffled ? " shuffled" : " round robin") << ", " << n
                                  << " lcores");
        std::vector<policy> lcores;
        for (std::size_t i = 0; i < n; ++i) {
          auto p = policy::make({.family = fam, .key = rss_key_microsoft, .reta = reta, .queue = q[i]});
          REQUIRE(p);
          check_index_mask(*p, reta, q[i]);
          if (!shuffled && std::has_single_bit(n)) REQUIRE(p->bucket_count() == n);
          lcores.push_back(std::move(*p));
        }
        // One destination swept exhaustively: for every port of the range, exactly one lcore admits
        // it, the one whose queue the NIC picks, and each lcore's bucket holds exactly those ports.
        {
          const fnat::inet_addr lip = random_addr(fam, rng, true);
          const endpoint dest{random_addr(fam, rng, false), static_cast<std::uint16_t>(rng())};
          std::vector<std::uint32_t> per_lcore(n, 0);
          std::vector<std::size_t> bucket(n);
          for (std::size_t i = 0; i < n; ++i) bucket[i] = lcores[i].bucket_of(lip, dest);
          std::uint32_t wrong_queue = 0, not_once = 0, not_admitted = 0;
          for (std::uint32_t port = low; port <= high; ++port) {
            const std::uint16_t nic = fast_queue(*tz4, reta, lip, dest, static_cast<std::uint16_t>(port));
            std::size_t admitted = 0;
            for (std::size_t i = 0; i < n; ++i) {
              if (lcores[i].admits(bucket[i], static_cast<std::uint16_t>(port))) {
                ++admitted;
                ++per_lcore[i];
                wrong_queue += nic != q[i] ? 1 : 0;
              }
            }
            not_once += admitted != 1 ? 1 : 0;
          }
          REQUIRE(wrong_queue == 0);  // every admitted port reaches the lcore's queue
          REQUIRE(not_once == 0);     // every port of the range is some lcore's, and one lcore's only
          for (std::size_t i = 0; i < n; ++i) {
            const std::size_t b = bucket[i];
            std::uint32_t visited = 0;
            lcores[i].for_each_port(b, [&](std::uint16_t port) {
              ++visited;
              not_admitted += lcores[i].admits(b, port) ? 0 : 1;
            });
            REQUIRE(not_admitted == 0);
            REQUIRE(visited == per_lcore[i]);
            REQUIRE(lcores[i].port_count(b) == per_lcore[i]);
          }
        }
        // Many random destinations per lcore: a sample of the ports its bucket hands out, checked
        // with the bit-serial reference hash.
        for (std::size_t i = 0; i < n; ++i)
          for (int d = 0; d < 24; ++d) {
            const fnat::inet_addr lip = random_addr(fam, rng, true);
            const endpoint dest{random_addr(fam, rng, false), static_cast<std::uint16_t>(rng())};
            const std::size_t b = lcores[i].bucket_of(lip, dest);
            REQUIRE(b < lcores[i].bucket_count());
            const std::uint32_t stride = std::max<std::uint32_t>(1, lcores[i].port_count(b) / 6);
            std::uint32_t k = 0, bad = 0;
            lcores[i].for_each_port(b, [&](std::uint16_t port) {
              if (k++ % stride == 0) {
                bad += reference_queue(rss_key_microsoft, reta, lip, dest, port) != q[i] ? 1 : 0;
                bad += lcores[i].queue_of(lip, dest, port) != q[i] ? 1 : 0;
              }
            });
            REQUIRE(bad == 0);
          }
      }
}

TEST_CASE("through sa_pool: fetched ports reach the lcore's queue, buckets exhaust and release exactly",
          "[rss_ports][sa_pool]") {
  std::mt19937_64 rng(99);
  struct shape {
    ip_family fam;
    std::size_t rsize;
    std::size_t n;
    bool shuffled;
  };
  for (const shape& sh : {shape{ip_family::v4, 128, 4, false}, shape{ip_family::v6, 512, 8, false},
                          shape{ip_family::v4, 64, 3, false}, shape{ip_family::v6, 64, 6, true},
                          shape{ip_family::v4, 512, 1, false}, shape{ip_family::v4, 128, 16, true}}) {
    const auto q = queue_ids(sh.n);
    const auto reta = sh.shuffled ? reta_shuffled(q, sh.rsize, rng) : reta_round_robin(q, sh.rsize);
    INFO(fnat::to_string(sh.fam) << ", RETA " << sh.rsize << ", " << sh.n << " lcores");
    const fnat::inet_addr lip = random_addr(sh.fam, rng, true);
    for (std::size_t i = 0; i < sh.n; ++i) {
      auto p = policy::make({.family = sh.fam, .reta = reta, .queue = q[i]});
      REQUIRE(p);
      auto pool = fnat::sa_pool<policy>::make(lip, i % 2 == 0 ? p->bound_to(lip) : *p);
      REQUIRE(pool);
      // Many destinations, a few connections each.
      std::vector<std::pair<endpoint, std::uint16_t>> held;
      for (int d = 0; d < 300; ++d) {
        const endpoint dest{random_addr(sh.fam, rng, false), static_cast<std::uint16_t>(rng())};
        std::set<std::uint16_t> mine;
        for (int c = 0; c < 3; ++c) {
          const auto r = pool->fetch(dest);
          REQUIRE(r.status == errc::ok);
          REQUIRE(mine.insert(r.port).second);  // never twice towards one destination
          REQUIRE(reference_queue(rss_key_microsoft, reta, lip, dest, r.port) == q[i]);
          held.emplace_back(dest, r.port);
        }
      }
      for (const auto& [dest, port] : held) REQUIRE(pool->release(dest, port) == errc::ok);
      REQUIRE(pool->stats().used == 0);
      // One destination drains its bucket: port_count(b) fetches, then exhausted.
      const endpoint dest{random_addr(sh.fam, rng, false), 443};
      const std::size_t b = pool->bucket_of(dest);
      std::vector<std::uint16_t> got;
      for (;;) {
        const auto r = pool->fetch(dest);
        if (r.status != errc::ok) {
          REQUIRE(r.status == errc::exhausted);
          break;
        }
        got.push_back(r.port);
      }
      REQUIRE(got.size() == p->port_count(b));
      // A port another lcore would hand out for this destination is foreign here.
      for (std::uint32_t port = 1025; port <= 65535; ++port)
        if (!p->admits(b, static_cast<std::uint16_t>(port))) {
          CHECK(pool->release(dest, static_cast<std::uint16_t>(port)) == errc::foreign);
          break;
        }
      for (std::uint16_t port : got) REQUIRE(pool->release(dest, port) == errc::ok);
      REQUIRE(pool->release(dest, got.front()) == errc::not_in_use);
    }
  }
}

TEST_CASE("buckets follow the index bits that decide the queue", "[rss_ports]") {
  const auto q4 = queue_ids(4);
  SECTION("round robin over 4 queues: 4 buckets whatever the RETA size") {
    for (std::size_t rsize : {64u, 128u, 512u, 2048u}) {
      const auto reta = reta_round_robin(q4, rsize);
      auto p = policy::make({.reta = reta, .queue = q4[2]});
      REQUIRE(p);
      CHECK(p->bucket_count() == 4);
      CHECK(p->index_mask() == 0x3);
      CHECK(p->reta_entries() == rsize / 4);
      const auto [lo, hi] = p->port_count_range();
      CHECK(lo > 16000);  // ~64511 / 4 each
      CHECK(hi < 16300);
    }
  }
  SECTION("one queue: one bucket holding the whole range") {
    const std::vector<std::uint16_t> reta(128, 9);
    auto p = policy::make({.reta = reta, .queue = 9, .port_low = 2000, .port_high = 3000});
    REQUIRE(p);
    CHECK(p->bucket_count() == 1);
    CHECK(p->port_count(0) == 1001);
    CHECK(p->dense_size() == 1001);
  }
  SECTION("halves of a 512-entry RETA: bit 8 decides, 2 buckets") {
    std::vector<std::uint16_t> reta(512, 1);
    std::fill(reta.begin() + 256, reta.end(), std::uint16_t{2});
    auto p = policy::make({.reta = reta, .queue = 2});
    REQUIRE(p);
    CHECK(p->bucket_count() == 2);
    CHECK(p->index_mask() == 0x100);
    check_index_mask(*p, reta, 2);
  }
  SECTION("6 queues round robin over 512 entries: every bit, 512 buckets; periodic fills: the period") {
    const auto q6 = queue_ids(6);
    const auto full = reta_round_robin(q6, 512);
    auto p = policy::make({.reta = full, .queue = q6[0]});
    REQUIRE(p);
    CHECK(p->bucket_count() == 512);
    for (unsigned m : {6u, 7u}) {
      auto periodic = fnat::reta_periodic(q6, 512, {.period_bits = m});
      REQUIRE(periodic);
      for (std::uint16_t q : q6) {
        auto r = policy::make({.reta = *periodic, .queue = q});
        REQUIRE(r);
        CHECK(r->bucket_count() == (std::size_t{1} << m));  // every bit of the period decides, none above
        CHECK(r->index_mask() == (1u << m) - 1);
        CHECK(r->describe().find(std::to_string(r->bucket_count()) + " buckets") != std::string::npos);
      }
    }
    // The default period for 6 queues is 128 entries (balance 16).
    auto def = fnat::reta_periodic(q6, 512);
    REQUIRE(def);
    auto r = policy::make({.reta = *def, .queue = q6[5]});
    REQUIRE(r);
    CHECK(r->bucket_count() == 128);
    // The bucket cap: 512 buckets refused below it, with a message that says what to do.
    auto capped = policy::make({.reta = full, .queue = q6[0], .max_buckets = 256});
    REQUIRE_FALSE(capped);
    CHECK(capped.err().code() == errc::invalid_argument);
    CHECK(capped.err().message().find("repeats every") != std::string::npos);
  }
}

TEST_CASE("the symmetric key and a narrow port range keep the invariant", "[rss_ports]") {
  std::array<std::uint8_t, 40> sym{};
  for (std::size_t i = 0; i < sym.size(); ++i) sym[i] = i % 2 == 0 ? 0x6d : 0x5a;
  std::mt19937_64 rng(5);
  const auto q = queue_ids(4);
  const auto reta = reta_round_robin(q, 128);
  for (ip_family fam : {ip_family::v4, ip_family::v6})
    for (std::uint16_t qi : q) {
      auto p = policy::make({.family = fam, .key = sym, .reta = reta, .queue = qi, .port_low = 40000, .port_high = 40999});
      REQUIRE(p);
      for (int d = 0; d < 50; ++d) {
        const fnat::inet_addr lip = random_addr(fam, rng, true);
        const endpoint dest{random_addr(fam, rng, false), static_cast<std::uint16_t>(rng())};
        const std::size_t b = p->bucket_of(lip, dest);
        std::uint32_t count = 0;
        p->for_each_port(b, [&](std::uint16_t port) {
          ++count;
          REQUIRE(port >= 40000);
          REQUIRE(port <= 40999);
          REQUIRE(reference_queue(sym, reta, lip, dest, port) == qi);
        });
        REQUIRE(count == p->port_count(b));
        REQUIRE(count > 0);
      }
    }
}

TEST_CASE("policy contract: admits, dense numbering, counts", "[rss_ports]") {
  const auto q = queue_ids(5);
  std::mt19937_64 rng(8);
  const auto reta = reta_shuffled(q, 64, rng);
  auto p = policy::make({.family = ip_family::v6, .reta = reta, .queue = q[3], .port_low = 5000, .port_high = 60000});
  REQUIRE(p);
  std::uint64_t total = 0;
  std::uint32_t faults = 0;
  for (std::size_t b = 0; b < p->bucket_count(); ++b) {
    std::vector<bool> seen(65536, false);
    std::uint32_t n = 0;
    int last = -1;
    p->for_each_port(b, [&](std::uint16_t port) {
      faults += static_cast<int>(port) > last ? 0 : 1;  // ascending, once each
      last = port;
      seen[port] = true;
      ++n;
      faults += p->dense_index(port) < p->dense_size() ? 0 : 1;
    });
    REQUIRE(faults == 0);
    REQUIRE(n == p->port_count(b));
    total += n;
    for (std::uint32_t port = 0; port < 65536; ++port)
      faults += p->admits(b, static_cast<std::uint16_t>(port)) == seen[port] ? 0 : 1;
    REQUIRE(faults == 0);  // admits() is exactly the set for_each_port() yields
  }
  // Each port sits in (its queue's entries / R) of the buckets: the counts add up to that share.
  CHECK(total == std::uint64_t{p->dense_size()} * p->bucket_count() * p->reta_entries() / 64);
  for (std::uint32_t port = 5000; port <= 60000; ++port) faults += p->dense_index(static_cast<std::uint16_t>(port)) == port - 5000 ? 0 : 1;
  CHECK(faults == 0);
  CHECK_FALSE(p->admits(p->bucket_count(), 6000));
  // Copies share the tables and answer alike.
  const policy copy = *p;
  const fnat::inet_addr lip = *fnat::inet_addr::parse("2001:2::7");
  const endpoint dest{*fnat::inet_addr::parse("2001:2:0:1::9"), 8080};
  CHECK(copy.bucket_of(lip, dest) == p->bucket_of(lip, dest));
  CHECK(&copy.hasher() == &p->hasher());
  // A copy bound to a LIP answers exactly like the unbound policy, for its LIP and any other.
  const policy bound = p->bound_to(lip);
  CHECK(bound.bound_to_lip(lip));
  CHECK_FALSE(p->bound_to_lip(lip));
  std::mt19937_64 r2(4);
  int differ = 0;
  for (int i = 0; i < 5000; ++i) {
    const fnat::inet_addr other = random_addr(ip_family::v6, r2, true);
    const endpoint d{random_addr(ip_family::v6, r2, false), static_cast<std::uint16_t>(r2())};
    differ += bound.bucket_of(lip, d) != p->bucket_of(lip, d) ? 1 : 0;
    differ += bound.bucket_of(other, d) != p->bucket_of(other, d) ? 1 : 0;
  }
  CHECK(differ == 0);
}

TEST_CASE("rss_buckets refuses what cannot work, saying why", "[rss_ports]") {
  const auto q = queue_ids(4);
  const auto reta = reta_round_robin(q, 128);
  auto code = [](const auto& r) { return r ? errc::ok : r.err().code(); };
  CHECK(code(policy::make({.reta = {}, .queue = 5})) == errc::invalid_argument);
  const std::vector<std::uint16_t> odd(96, 5);
  CHECK(code(policy::make({.reta = odd, .queue = 5})) == errc::invalid_argument);
  auto absent = policy::make({.reta = reta, .queue = 4});
  REQUIRE_FALSE(absent);
  CHECK(absent.err().message().find("no RETA entry") != std::string::npos);
  std::array<std::uint8_t, 16> short_key{};
  std::copy_n(rss_key_microsoft.begin(), 16, short_key.begin());
  CHECK(code(policy::make({.family = ip_family::v4, .key = short_key, .reta = reta, .queue = 5})) == errc::ok);
  auto v6short = policy::make({.family = ip_family::v6, .key = short_key, .reta = reta, .queue = 5});
  REQUIRE_FALSE(v6short);
  CHECK(v6short.err().message().find("40 bytes") != std::string::npos);
  CHECK(code(policy::make({.reta = reta, .queue = 5, .port_low = 0})) == errc::invalid_argument);
  CHECK(code(policy::make({.reta = reta, .queue = 5, .port_low = 9, .port_high = 8})) == errc::invalid_argument);
  // A key that is zero under the lport window: the port cannot move the RETA index, so classes whose
  // entry is not this queue's would get no port at all.
  std::array<std::uint8_t, 40> dead = rss_key_microsoft;
  for (std::size_t i = 10; i < 16; ++i) dead[i] = 0;
  auto d = policy::make({.key = dead, .reta = reta, .queue = 5});
  REQUIRE_FALSE(d);
  CHECK(d.err().code() == errc::not_supported);
  CHECK(d.err().message().find("key") != std::string::npos);
}

TEST_CASE("bucket_of's byte tables equal pext of the full fixed hash", "[rss_ports]") {
  // The fast path never computes the hash; this pins it to the hash path (fixed_hash is the table
  // Toeplitz, itself pinned to the reference) for random destinations and shuffled RETAs.
  std::mt19937_64 rng(31);
  const auto q = queue_ids(6);
  for (ip_family fam : {ip_family::v4, ip_family::v6})
    for (std::size_t rsize : {64u, 512u}) {
      const auto reta = reta_shuffled(q, rsize, rng);
      auto p = policy::make({.family = fam, .reta = reta, .queue = q[1]});
      REQUIRE(p);
      int bad = 0;
      for (int i = 0; i < 20000; ++i) {
        const fnat::inet_addr lip = random_addr(fam, rng, true);
        const endpoint dest{random_addr(fam, rng, false), static_cast<std::uint16_t>(rng())};
        bad += p->bucket_of(lip, dest) != p->bucket_of_hash(p->fixed_hash(lip, dest)) ? 1 : 0;
        if (i < 200) {
          const std::uint16_t port = static_cast<std::uint16_t>(rng());
          REQUIRE(p->queue_of(lip, dest, port) == reference_queue(rss_key_microsoft, reta, lip, dest, port));
        }
      }
      REQUIRE(bad == 0);
    }
}

TEST_CASE("periodic RETAs: at most one bucket per period entry, and the invariant holds", "[rss_ports]") {
  // reta_periodic's tables over queue counts that are not powers of two (and some that are), IPv4
  // and IPv6, RETA 128 / 512 / 2048: each lcore's policy needs at most `period` buckets, its index
  // bits lie inside the period, and every port it hands out reaches its queue.
  std::mt19937_64 rng(606);
  auto tz = fnat::toeplitz_table::make(rss_key_microsoft);
  REQUIRE(tz);
  struct shape {
    ip_family fam;
    std::size_t rsize;
    std::size_t n;
  };
  for (const shape& sh : {shape{ip_family::v4, 512, 6}, shape{ip_family::v6, 512, 6}, shape{ip_family::v4, 2048, 3},
                          shape{ip_family::v6, 128, 5}, shape{ip_family::v4, 512, 12}, shape{ip_family::v4, 512, 8},
                          shape{ip_family::v6, 2048, 7}}) {
    const auto q = queue_ids(sh.n);
    const auto reta = fnat::reta_periodic(q, sh.rsize);
    REQUIRE(reta);
    const std::size_t period = fnat::reta_period(*reta);
    INFO(fnat::to_string(sh.fam) << ", RETA " << sh.rsize << ", " << sh.n << " queues, period " << period);
    REQUIRE(period == std::size_t{1} << *fnat::reta_period_bits(sh.n, sh.rsize));
    std::vector<policy> lcores;
    for (std::uint16_t qi : q) {
      auto p = policy::make({.family = sh.fam, .reta = *reta, .queue = qi});
      REQUIRE(p);
      REQUIRE(p->bucket_count() <= period);
      REQUIRE((p->index_mask() & ~static_cast<std::uint32_t>(period - 1)) == 0);
      check_index_mask(*p, *reta, qi);
      lcores.push_back(std::move(*p));
    }
    // One destination, every port: exactly one lcore admits it, the one the NIC picks.
    const fnat::inet_addr lip = random_addr(sh.fam, rng, true);
    const endpoint dest{random_addr(sh.fam, rng, false), static_cast<std::uint16_t>(rng())};
    std::vector<std::size_t> bucket(sh.n);
    for (std::size_t i = 0; i < sh.n; ++i) bucket[i] = lcores[i].bucket_of(lip, dest);
    std::uint32_t wrong = 0;
    for (std::uint32_t port = 1025; port <= 65535; ++port) {
      const std::uint16_t nic = fast_queue(*tz, *reta, lip, dest, static_cast<std::uint16_t>(port));
      std::size_t admitted = 0;
      for (std::size_t i = 0; i < sh.n; ++i)
        if (lcores[i].admits(bucket[i], static_cast<std::uint16_t>(port))) {
          ++admitted;
          wrong += nic != q[i] ? 1 : 0;
        }
      wrong += admitted != 1 ? 1 : 0;
    }
    REQUIRE(wrong == 0);
    // Through sa_pool, checked with the bit-serial hash: many destinations, a few ports each.
    for (std::size_t i = 0; i < sh.n; i += 2) {
      auto pool = fnat::sa_pool<policy>::make(lip, lcores[i].bound_to(lip));
      REQUIRE(pool);
      std::uint32_t bad = 0;
      for (int d = 0; d < 100; ++d) {
        const endpoint to{random_addr(sh.fam, rng, false), static_cast<std::uint16_t>(rng())};
        for (int c = 0; c < 2; ++c) {
          const auto r = pool->fetch(to);
          REQUIRE(r.status == errc::ok);
          bad += reference_queue(rss_key_microsoft, *reta, lip, to, r.port) != q[i] ? 1 : 0;
        }
      }
      REQUIRE(bad == 0);
    }
  }
}

TEST_CASE("bound and unbound copies answer alike, whatever LIP they are asked about", "[rss_ports]") {
  // bucket_of's fast path compares 4 bytes (IPv4) or 16 (IPv6) against the bound LIP; LIPs that
  // share those bytes, or differ in one bit, must still take the right path.
  std::mt19937_64 rng(17);
  const auto q = queue_ids(6);
  const auto reta = fnat::reta_periodic(q, 512);
  REQUIRE(reta);
  for (ip_family fam : {ip_family::v4, ip_family::v6}) {
    INFO(fnat::to_string(fam));
    auto p = policy::make({.family = fam, .reta = *reta, .queue = q[2]});
    REQUIRE(p);
    const fnat::inet_addr lip = random_addr(fam, rng, true);
    std::vector<fnat::inet_addr> others = {random_addr(fam, rng, true)};
    for (std::size_t byte = fam == ip_family::v4 ? 12 : 0; byte < 16; byte += 3) {
      auto raw = lip.raw();  // one bit off, at several positions
      raw[byte] ^= 0x10;
      ipv6_addr a;
      std::copy(raw.begin(), raw.end(), a.bytes.begin());
      others.push_back(fnat::inet_addr(a));
    }
    if (fam == ip_family::v4)
      others.push_back(*fnat::inet_addr::parse("0.0.0.0"));
    else
      others.push_back(*fnat::inet_addr::parse("::"));
    const policy bound = p->bound_to(lip);
    const policy to_zero = p->bound_to(others.back());
    CHECK(bound.bound_to_lip(lip));
    CHECK_FALSE(bound.bound_to_lip(others[0]));
    CHECK(to_zero.bound_to_lip(others.back()));
    int differ = 0;
    for (int i = 0; i < 3000; ++i) {
      const endpoint d{random_addr(fam, rng, false), static_cast<std::uint16_t>(rng())};
      const std::size_t want = p->bucket_of_hash(p->fixed_hash(lip, d));
      differ += bound.bucket_of(lip, d) != want ? 1 : 0;
      differ += p->bucket_of(lip, d) != want ? 1 : 0;
      differ += to_zero.bucket_of(lip, d) != want ? 1 : 0;
      for (const auto& o : others) {
        const std::size_t w = p->bucket_of_hash(p->fixed_hash(o, d));
        differ += bound.bucket_of(o, d) != w ? 1 : 0;
        differ += p->bucket_of(o, d) != w ? 1 : 0;
      }
    }
    REQUIRE(differ == 0);
  }
}
