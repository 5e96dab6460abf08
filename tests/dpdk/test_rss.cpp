// SPDX-License-Identifier: BSD-3-Clause
// RSS key and RETA programmer: round trips through a device policy (the NIC model), PMDs that lack or
// mangle RSS, and real virtual devices.
#include <fnat/core/reta.hpp>
#include <fnat/core/rss_ports.hpp>
#include <fnat/core/sa_pool.hpp>
#include <fnat/dpdk/nic_model.hpp>
#include <fnat/dpdk/rss.hpp>

#include <rte_ethdev.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "support/eal.hpp"
#include "support/nic_wire.hpp"

using fnat::errc;
using fnat::dpdk::nic_model;
using fnat::dpdk::nic_model_ports;
using fnat::dpdk::rss_key_choice;
using inet = fnat::inet_addr;

namespace {

inet addr(const char* s) { return *inet::parse(s); }
bool contains(const std::string& text, const std::string& words) { return text.find(words) != std::string::npos; }

// PMD misbehaviours around RSS, over a working model port.
struct rss_faults {
  bool no_reta = false;           // dev_info reports reta_size 0
  bool reta_enotsup = false;      // reta update/query answer -ENOTSUP
  bool first_group_only = false;  // reta update silently applies only entries 0..63
  bool hash_enotsup = false;      // hash update answers -ENOTSUP
  bool conf_get_enotsup = false;  // the key cannot be read back
  int reta_updates = 0, reta_queries = 0;
};

struct faulty_ops {
  fnat::dpdk::nic_model_ops inner;
  rss_faults* f;

  int dev_info(std::uint16_t p, rte_eth_dev_info* i) const {
    const int rc = inner.dev_info(p, i);
    if (rc == 0 && f->no_reta) i->reta_size = 0;
    return rc;
  }
  int flow_validate(std::uint16_t p, const rte_flow_attr* a, const rte_flow_item* i, const rte_flow_action* x,
                    rte_flow_error* e) const {
    return inner.flow_validate(p, a, i, x, e);
  }
  int flow_create(std::uint16_t p, const rte_flow_attr* a, const rte_flow_item* i, const rte_flow_action* x,
                  rte_flow** o, rte_flow_error* e) const {
    return inner.flow_create(p, a, i, x, o, e);
  }
  int flow_destroy(std::uint16_t p, rte_flow* fl, rte_flow_error* e) const { return inner.flow_destroy(p, fl, e); }
  int rss_hash_update(std::uint16_t p, rte_eth_rss_conf* c) const {
    return f->hash_enotsup ? -ENOTSUP : inner.rss_hash_update(p, c);
  }
  int rss_hash_conf_get(std::uint16_t p, rte_eth_rss_conf* c) const {
    return f->conf_get_enotsup ? -ENOTSUP : inner.rss_hash_conf_get(p, c);
  }
  int rss_reta_update(std::uint16_t p, rte_eth_rss_reta_entry64* r, std::uint16_t n) const {
    ++f->reta_updates;
    if (f->reta_enotsup) return -ENOTSUP;
    if (f->first_group_only)
      for (std::size_t g = 1; g * RTE_ETH_RETA_GROUP_SIZE < n; ++g) r[g].mask = 0;
    return inner.rss_reta_update(p, r, n);
  }
  int rss_reta_query(std::uint16_t p, rte_eth_rss_reta_entry64* r, std::uint16_t n) const {
    ++f->reta_queries;
    return f->reta_enotsup ? -ENOTSUP : inner.rss_reta_query(p, r, n);
  }
  int bond_members(std::uint16_t p, std::uint16_t* m, std::uint16_t n) const { return inner.bond_members(p, m, n); }
};
static_assert(fnat::dpdk::ethdev_ops<faulty_ops>);

struct model_port {
  nic_model model;
  nic_model_ports ports;
  rss_faults faults;
  model_port(std::uint16_t queues, std::uint16_t reta_size, std::size_t key_size = 40)
      : model(*nic_model::make(
            {.rx_queues = queues, .reta_size = reta_size, .rss_key = std::vector<std::uint8_t>(key_size, 0x42)})) {
    REQUIRE(ports.attach(0, model, "net_fake"));
  }
  faulty_ops ops() { return faulty_ops{ports.ops(), &faults}; }
};

}  // namespace

TEST_CASE("program_rss writes periodic (default), round-robin and weighted tables of 64, 128 and 512 entries and "
          "reads them back",
          "[rss]") {
  const std::vector<std::uint16_t> queues = {3, 1, 4, 9, 5, 2, 6};
  const std::vector<std::uint32_t> weights = {1, 2, 3, 4, 0, 7, 1};
  for (std::uint16_t size : {64, 128, 512}) {
    INFO("reta size " << size);
    model_port p(10, size);
    // Default: periodic, 7 queues -> a 128-entry period (balance 16), capped at the table.
    auto st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues});
    REQUIRE(st);
    const auto per = fnat::reta_periodic(queues, size);
    REQUIRE(per);
    REQUIRE(st->reta == *per);
    REQUIRE(st->reta_period == std::min<std::size_t>(size, 128));
    REQUIRE(std::vector<std::uint16_t>(p.model.reta().begin(), p.model.reta().end()) == *per);
    auto back = fnat::dpdk::query_reta(p.ops(), 0);
    REQUIRE(back);
    REQUIRE(*back == *per);
    REQUIRE(p.faults.reta_updates == 1);                      // one call carries every group
    REQUIRE(st->key == std::vector<std::uint8_t>(40, 0x42));  // key kept and reported
    // Up to the period, the periodic table is round robin; past it, it differs.
    const auto rr = fnat::reta_round_robin(queues, size);
    REQUIRE(rr);
    REQUIRE((size <= 128) == (*per == *rr));

    // DPVS's layout on request.
    st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues, .fill = fnat::reta_fill::round_robin});
    REQUIRE(st);
    REQUIRE(st->reta == *rr);
    REQUIRE(st->reta_period == size);
    back = fnat::dpdk::query_reta(p.ops(), 0);
    REQUIRE(back);
    REQUIRE(*back == *rr);

    // An explicit period, and a balance target.
    st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues, .periodic = {.period_bits = 3}});
    REQUIRE(st);
    REQUIRE(st->reta_period == 8);
    REQUIRE(st->reta == *fnat::reta_periodic(queues, size, {.period_bits = 3}));
    st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues, .periodic = {.balance = 2}});
    REQUIRE(st);
    REQUIRE(st->reta_period == 16);  // 7 x 2 = 14 -> 16

    // Weighted: periodic by default, whole table with round_robin.
    st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues, .weights = weights});
    REQUIRE(st);
    const auto wp = fnat::reta_periodic_weighted(queues, weights, size);
    REQUIRE(wp);
    REQUIRE(st->reta == *wp);
    st = fnat::dpdk::program_rss(p.ops(), 0,
                                 {.queues = queues, .weights = weights, .fill = fnat::reta_fill::round_robin});
    REQUIRE(st);
    const auto w = fnat::reta_weighted(queues, weights, size);
    REQUIRE(w);
    REQUIRE(st->reta == *w);
    back = fnat::dpdk::query_reta(p.ops(), 0);
    REQUIRE(back);
    REQUIRE(*back == *w);
    // The device now steers by that table.
    std::mt19937 rng(size);
    for (int i = 0; i < 100; ++i) {
      const auto s = p.model.steer(fnat::test::make_frame({.proto = fnat::ipproto::tcp,
                                                           .src = fnat::ipv4_addr{static_cast<std::uint32_t>(rng())},
                                                           .sport = static_cast<std::uint16_t>(rng()),
                                                           .dst = addr("198.18.0.1"),
                                                           .dport = static_cast<std::uint16_t>(rng())}));
      REQUIRE(s.hashed);
      REQUIRE(s.queue == (*w)[s.hash & (size - 1)]);
    }
    // Default queue list: every configured rx queue.
    st = fnat::dpdk::program_rss(p.ops(), 0);
    REQUIRE(st);
    REQUIRE(st->reta[9] == 9);
    REQUIRE(st->reta[10] == 0);
    // A period the table cannot take is refused before anything is written.
    const int updates = p.faults.reta_updates;
    auto bad = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues, .periodic = {.period_bits = 10}});
    REQUIRE_FALSE(bad);
    REQUIRE(bad.err().code() == errc::invalid_argument);
    REQUIRE(contains(bad.err().message(), "port 0 (net_fake)"));
    REQUIRE(contains(bad.err().message(), "longer than the"));
    REQUIRE(p.faults.reta_updates == updates);
  }
}

TEST_CASE("RSS-aware ports over the programmed default table: few buckets, and the model delivers every reply to "
          "the lcore that fetched its port",
          "[rss]") {
  // program_rss with the default (periodic) fill on a 6-queue, 512-entry model port, then one
  // rss_buckets sa_pool per queue: replies to the fetched ports, steered by the model (Toeplitz +
  // RETA as a NIC would), reach the fetching lcore's queue.
  for (const bool v6 : {false, true}) {
    INFO((v6 ? "IPv6" : "IPv4"));
    nic_model model = *nic_model::make({.rx_queues = 6, .reta_size = 512});
    nic_model_ports ports;
    REQUIRE(ports.attach(0, model, "net_fake"));
    auto st = fnat::dpdk::program_rss(ports.ops(), 0,
                                      {.key = rss_key_choice::microsoft, .rss_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP});
    REQUIRE(st);
    REQUIRE(st->reta_period == 128);
    const inet lip = v6 ? addr("2001:2::1") : addr("198.18.0.1");
    std::mt19937_64 rng(v6 ? 6 : 4);
    std::size_t wrong = 0;
    for (std::uint16_t q = 0; q < 6; ++q) {
      auto policy = fnat::rss_buckets::make({.family = v6 ? fnat::ip_family::v6 : fnat::ip_family::v4,
                                             .key = st->key,
                                             .reta = st->reta,
                                             .queue = q});
      REQUIRE(policy);
      REQUIRE(policy->bucket_count() == 128);  // 512 with round robin
      auto pool = fnat::sa_pool<fnat::rss_buckets>::make(lip, policy->bound_to(lip));
      REQUIRE(pool);
      for (int i = 0; i < 150; ++i) {
        inet rs;
        if (v6) {
          fnat::ipv6_addr a = *fnat::ipv6_addr::parse("2001:2:0:1::");
          for (std::size_t k = 8; k < 16; ++k) a.bytes[k] = static_cast<std::uint8_t>(rng());
          rs = a;
        } else {
          rs = fnat::ipv4_addr::from_host(0xc6130000u | static_cast<std::uint32_t>(rng() & 0xffff));
        }
        const fnat::endpoint dest{rs, static_cast<std::uint16_t>(1 + rng() % 65535)};
        const auto r = pool->fetch(dest);
        REQUIRE(r.status == fnat::errc::ok);
        const auto s = model.steer(fnat::test::make_frame(
            {.proto = fnat::ipproto::tcp, .src = rs, .sport = dest.port, .dst = lip, .dport = r.port}));
        REQUIRE(s.hashed);
        wrong += s.queue != q ? 1 : 0;
      }
    }
    REQUIRE(wrong == 0);
  }
}

TEST_CASE("program_rss sets the symmetric key: both directions of a connection meet on one queue", "[rss]") {
  for (std::size_t key_size : {40u, 52u}) {
    model_port p(8, 128, key_size);
    auto st = fnat::dpdk::program_rss(p.ops(), 0, {.key = rss_key_choice::symmetric});
    REQUIRE(st);
    REQUIRE(st->key == fnat::make_symmetric_rss_key(key_size));
    REQUIRE(st->rss_hf == fnat::dpdk::nic_model_rss_types);  // rss_hf 0 kept the device's types
    REQUIRE(std::vector<std::uint8_t>(p.model.rss_key().begin(), p.model.rss_key().end()) == st->key);
    std::mt19937 rng(static_cast<unsigned>(key_size));
    std::size_t split = 0;
    for (int i = 0; i < 500; ++i) {
      const inet c = fnat::ipv4_addr{static_cast<std::uint32_t>(rng())};
      const inet s = fnat::ipv4_addr{static_cast<std::uint32_t>(rng())};
      const auto cp = static_cast<std::uint16_t>(rng()), sp = static_cast<std::uint16_t>(rng());
      const auto fwd = p.model.steer(
          fnat::test::make_frame({.proto = fnat::ipproto::udp, .src = c, .sport = cp, .dst = s, .dport = sp}));
      const auto rev = p.model.steer(
          fnat::test::make_frame({.proto = fnat::ipproto::udp, .src = s, .sport = sp, .dst = c, .dport = cp}));
      split += fwd.queue != rev.queue ? 1 : 0;
    }
    REQUIRE(split == 0);
  }
  // The key choices a device cannot take are refused before touching it.
  model_port wide(8, 128, 52);
  auto ms = fnat::dpdk::program_rss(wide.ops(), 0, {.key = rss_key_choice::microsoft});
  REQUIRE_FALSE(ms);
  REQUIRE(ms.err().code() == errc::invalid_argument);
  REQUIRE(contains(ms.err().message(), "RSS key of 40 bytes, the device takes 52"));
  auto no_key = fnat::dpdk::program_rss(wide.ops(), 0, {.key = rss_key_choice::custom});
  REQUIRE_FALSE(no_key);
  REQUIRE(contains(no_key.err().message(), "without custom_key"));
  auto types =
      fnat::dpdk::program_rss(wide.ops(), 0, {.key = rss_key_choice::symmetric, .rss_hf = RTE_ETH_RSS_L2_PAYLOAD});
  REQUIRE_FALSE(types);
  REQUIRE(contains(types.err().message(), "not offered by the device"));
  // A custom key and explicit types are written as given.
  std::vector<std::uint8_t> k(52);
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 7);
  auto custom = fnat::dpdk::program_rss(wide.ops(), 0,
                                        {.key = rss_key_choice::custom, .custom_key = k, .rss_hf = RTE_ETH_RSS_IPV4});
  REQUIRE(custom);
  REQUIRE(wide.model.rss_hf() == RTE_ETH_RSS_IPV4);
  REQUIRE(std::vector<std::uint8_t>(wide.model.rss_key().begin(), wide.model.rss_key().end()) == k);
}

TEST_CASE("PMDs without RSS, or that mangle it, get clear errors", "[rss]") {
  const std::vector<std::uint16_t> queues = {0, 1};
  SECTION("reta_size 0") {
    model_port p(4, 128);
    p.faults.no_reta = true;
    auto st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues});
    REQUIRE_FALSE(st);
    REQUIRE(st.err().code() == errc::not_supported);
    INFO(st.err().message());
    REQUIRE(contains(st.err().message(), "port 0 (net_fake)"));
    REQUIRE(contains(st.err().message(), "reta_size 0"));
    REQUIRE(fnat::dpdk::query_reta(p.ops(), 0).err().code() == errc::not_supported);
    REQUIRE(fnat::dpdk::program_reta(p.ops(), 0, std::vector<std::uint16_t>(128, 0)).err().code() ==
            errc::not_supported);
    REQUIRE(p.faults.reta_updates == 0);
  }
  SECTION("-ENOTSUP from the PMD") {
    model_port p(4, 128);
    p.faults.reta_enotsup = true;
    auto st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = queues});
    REQUIRE_FALSE(st);
    REQUIRE(st.err().code() == errc::not_supported);
    INFO(st.err().message());
    REQUIRE(contains(st.err().message(), "rte_eth_dev_rss_reta_update"));
    REQUIRE(contains(st.err().message(), "RTE_ETH_MQ_RX_RSS"));
    p.faults.reta_enotsup = false;
    p.faults.hash_enotsup = true;
    st = fnat::dpdk::program_rss(p.ops(), 0, {.key = rss_key_choice::symmetric});
    REQUIRE_FALSE(st);
    REQUIRE(st.err().code() == errc::not_supported);
    REQUIRE(contains(st.err().message(), "rte_eth_dev_rss_hash_update"));
  }
  SECTION("a PMD that applies only the first group is caught by the read-back") {
    model_port p(4, 512);
    p.faults.first_group_only = true;
    auto st = fnat::dpdk::program_rss(p.ops(), 0, {.queues = {3, 2}});
    REQUIRE_FALSE(st);
    REQUIRE(st.err().code() == errc::device_error);
    INFO(st.err().message());
    REQUIRE(contains(st.err().message(), "RETA entry 64 reads back queue 0 after writing 3"));
    auto unchecked = fnat::dpdk::program_rss(p.ops(), 0, {.queues = {3, 2}, .verify = false});
    REQUIRE(unchecked);  // without verification the damage goes unnoticed: that is what verify is for
  }
  SECTION("a key that cannot be read back is trusted, rss_hf 0 then needs explicit types") {
    model_port p(4, 128);
    p.faults.conf_get_enotsup = true;
    auto st = fnat::dpdk::program_rss(p.ops(), 0, {.key = rss_key_choice::microsoft, .rss_hf = RTE_ETH_RSS_IP});
    REQUIRE(st);
    REQUIRE(p.model.rss_key()[0] == 0x6d);
    st = fnat::dpdk::program_rss(p.ops(), 0, {.key = rss_key_choice::symmetric});
    REQUIRE_FALSE(st);
    REQUIRE(contains(st.err().message(), "give rss_config::rss_hf"));
  }
  SECTION("rss_hf 0 on a port that reports no types is refused, never written (0 turns RSS off)") {
    model_port p(4, 128);
    REQUIRE(p.model.set_rss(p.model.rss_key(), 0));
    auto st = fnat::dpdk::program_rss(p.ops(), 0, {.key = rss_key_choice::symmetric});
    REQUIRE_FALSE(st);
    REQUIRE(st.err().code() == errc::invalid_argument);
    REQUIRE(contains(st.err().message(), "reports no current RSS types"));
    REQUIRE(p.model.rss_key()[0] == 0x42);  // untouched
  }
  SECTION("tables the port cannot hold") {
    model_port p(4, 128);
    auto small = fnat::dpdk::program_reta(p.ops(), 0, std::vector<std::uint16_t>(64, 0));
    REQUIRE_FALSE(small);
    REQUIRE(contains(small.err().message(), "RETA of 64 entries, the port's has 128"));
    auto far = fnat::dpdk::program_reta(p.ops(), 0, std::vector<std::uint16_t>(128, 4));
    REQUIRE_FALSE(far);
    REQUIRE(contains(far.err().message(), "names rx queue 4 but the port has 4 configured"));
    auto bad_list = fnat::dpdk::program_rss(p.ops(), 0, {.queues = {0, 1}, .weights = {1}});
    REQUIRE_FALSE(bad_list);
    REQUIRE(contains(bad_list.err().message(), "2 queues but 1 weights"));
    REQUIRE(fnat::dpdk::program_rss(p.ops(), 7).err().code() == errc::invalid_argument);  // no such port
  }
}

TEST_CASE("real virtual devices: net_ring and net_af_packet have no RETA, net_null keeps one", "[rss][eal]") {
  fnat::test::require_eal();
  const fnat::dpdk::rte_ethdev_ops ops;
  auto no_rss = [&](std::uint16_t port, const char* driver) {
    INFO(driver);
    auto st = fnat::dpdk::program_rss(ops, port, {.key = rss_key_choice::symmetric});
    REQUIRE_FALSE(st);
    REQUIRE(st.err().code() == errc::not_supported);
    INFO(st.err().message());
    REQUIRE(contains(st.err().message(), std::string("(") + driver + ")"));
    REQUIRE(fnat::dpdk::query_reta(ops, port).err().code() == errc::not_supported);
    auto key = fnat::dpdk::set_rss_hash(ops, port, fnat::rss_key_symmetric, RTE_ETH_RSS_IP);
    REQUIRE_FALSE(key);
    REQUIRE(key.err().code() == errc::not_supported);
  };
  fnat::test::ring_port ring("rss_ring", 2);
  no_rss(ring.port_id(), "net_ring");

  // net_null implements reta_update/query and rss_hash_update/conf_get (in software): the programmer
  // works end to end against a real PMD, through ethdev's own checks.
  fnat::test::vdev_port null_port("net_null_rss0");
  REQUIRE(null_port.ok());
  REQUIRE(null_port.configure(4) == 0);
  rte_eth_dev_info info{};
  REQUIRE(rte_eth_dev_info_get(null_port.port_id(), &info) == 0);
  REQUIRE(info.reta_size > 0);
  // net_null reports its current hash types, so "keep them" (rss_hf 0) works there.
  const std::uint64_t hf = RTE_ETH_RSS_IP & info.flow_type_rss_offloads;
  auto st = fnat::dpdk::program_rss(ops, null_port.port_id(), {.key = rss_key_choice::symmetric, .queues = {3, 1, 2}});
  INFO((st ? std::string("ok") : st.err().message()));
  REQUIRE(st);
  REQUIRE(st->reta.size() == info.reta_size);
  auto back = fnat::dpdk::query_reta(ops, null_port.port_id());
  REQUIRE(back);
  REQUIRE(*back == st->reta);
  REQUIRE((*back)[0] == 3);
  REQUIRE((*back)[1] == 1);
  REQUIRE((*back)[2] == 2);
  auto hash = fnat::dpdk::query_rss_hash(ops, null_port.port_id());
  REQUIRE(hash);
  REQUIRE(hash->key == st->key);
  REQUIRE(hash->rss_hf == hf);
  REQUIRE(st->rss_hf == hf);

  fnat::test::private_netns ns;
  if (!ns.ok()) {
    WARN("net_af_packet not checked: no privilege to create a network namespace");
    return;
  }
  fnat::test::vdev_port af("net_af_packet_rss0", "iface=lo");
  INFO(af.why());
  REQUIRE(af.ok());
  no_rss(af.port_id(), "net_af_packet");
}
