// SPDX-License-Identifier: BSD-3-Clause
// rte_flow rule builder and installer: rules as values, the affinity invariant through the NIC model for
// 1..64 lcores, driver quirks and rollback with fake PMDs, and real virtual devices without rte_flow.
#include <fnat/dpdk/flow_rules.hpp>
#include <fnat/dpdk/nic_model.hpp>

#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/eal.hpp"
#include "support/nic_wire.hpp"

using fnat::errc;
using fnat::port_plan;
using fnat::dpdk::flow_rule;
using fnat::dpdk::flow_variant;
using fnat::dpdk::nic_model;
using fnat::dpdk::nic_model_ports;
using inet = fnat::inet_addr;

namespace {

inet addr(const char* s) { return *inet::parse(s); }

bool contains(const std::string& text, const std::string& words) { return text.find(words) != std::string::npos; }

std::vector<fnat::lcore_queue> lcores(std::size_t n) {
  // Lcore ids and queues both differ from the plan index: nothing may confuse the three.
  std::vector<fnat::lcore_queue> v;
  for (std::size_t i = 0; i < n; ++i)
    v.push_back({static_cast<unsigned>(2 * i + 1), static_cast<std::uint16_t>(n - 1 - i)});
  return v;
}

nic_model make_model(std::uint16_t queues) {
  auto m = nic_model::make({.rx_queues = queues, .reta_size = 128});
  REQUIRE(m);
  return std::move(*m);
}

// ---- a quirky PMD -------------------------------------------------------------------------------
// Wraps nic_model_ops (a working device) and rejects what real PMDs reject, with their messages.
struct pmd_quirks {
  bool reject_priority = false;    // ice: "Not support priority."
  bool reject_eth = false;         // some PMDs want the pattern to start at L3
  bool reject_ipv6 = false;        // ixgbe FDIR perfect mode
  bool one_mask_per_port = false;  // ixgbe FDIR: create fails when the port mask differs
  bool no_flow = false;            // no rte_flow at all (-ENOSYS)
  int fail_create_from = -1;       // this create (0-based count) and every later one fail: table full
  int fail_create_once = -1;       // only this create fails
  bool fail_destroy = false;
  std::set<std::uint16_t> refuse_ports;
};

struct pmd_state {
  pmd_quirks q;
  int validates = 0, creates = 0, destroys = 0;
  std::map<rte_flow*, std::pair<std::uint16_t, std::uint16_t>> live;  // flow -> (port, L4 mask)
};

struct quirky_ops {
  fnat::dpdk::nic_model_ops inner;
  pmd_state* st;

  static std::uint16_t l4_mask(const rte_flow_item* p) {
    for (; p->type != RTE_FLOW_ITEM_TYPE_END; ++p) {
      if (p->mask == nullptr) continue;
      if (p->type == RTE_FLOW_ITEM_TYPE_TCP) return static_cast<const rte_flow_item_tcp*>(p->mask)->hdr.dst_port;
      if (p->type == RTE_FLOW_ITEM_TYPE_UDP) return static_cast<const rte_flow_item_udp*>(p->mask)->hdr.dst_port;
    }
    return 0;
  }
  static int fail(rte_flow_error* err, int rc, rte_flow_error_type t, const char* msg) {
    err->type = t;
    err->cause = nullptr;
    err->message = msg;
    return rc;
  }
  int quirk(std::uint16_t port, const rte_flow_attr* attr, const rte_flow_item* pattern, rte_flow_error* err) const {
    if (st->q.no_flow) return fail(err, -ENOSYS, RTE_FLOW_ERROR_TYPE_UNSPECIFIED, "Function not implemented");
    if (st->q.refuse_ports.count(port)) return fail(err, -EINVAL, RTE_FLOW_ERROR_TYPE_UNSPECIFIED, "port refuses");
    if (st->q.reject_priority && attr->priority != 0)
      return fail(err, -EINVAL, RTE_FLOW_ERROR_TYPE_ATTR_PRIORITY, "Not support priority.");
    for (const rte_flow_item* p = pattern; p->type != RTE_FLOW_ITEM_TYPE_END; ++p) {
      if (st->q.reject_eth && p->type == RTE_FLOW_ITEM_TYPE_ETH)
        return fail(err, -EINVAL, RTE_FLOW_ERROR_TYPE_ITEM, "Invalid ETH item");
      if (st->q.reject_ipv6 && p->type == RTE_FLOW_ITEM_TYPE_IPV6)
        return fail(err, -ENOTSUP, RTE_FLOW_ERROR_TYPE_ITEM, "IPv6 is not supported in perfect mode");
    }
    return 0;
  }

  int dev_info(std::uint16_t port, rte_eth_dev_info* info) const { return inner.dev_info(port, info); }
  int flow_validate(std::uint16_t port, const rte_flow_attr* attr, const rte_flow_item* pattern,
                    const rte_flow_action* actions, rte_flow_error* err) const {
    ++st->validates;
    if (int rc = quirk(port, attr, pattern, err)) return rc;
    return inner.flow_validate(port, attr, pattern, actions, err);
  }
  int flow_create(std::uint16_t port, const rte_flow_attr* attr, const rte_flow_item* pattern,
                  const rte_flow_action* actions, rte_flow** out, rte_flow_error* err) const {
    const int k = st->creates++;
    if (int rc = quirk(port, attr, pattern, err)) return rc;
    if (k == st->q.fail_create_once || (st->q.fail_create_from >= 0 && k >= st->q.fail_create_from))
      return fail(err, -ENOSPC, RTE_FLOW_ERROR_TYPE_HANDLE, "no free flow director entry");
    const std::uint16_t mask = l4_mask(pattern);
    if (st->q.one_mask_per_port)
      for (const auto& [f, pm] : st->live)
        if (pm.first == port && pm.second != mask)
          return fail(err, -EINVAL, RTE_FLOW_ERROR_TYPE_ITEM_MASK, "only one global mask is supported");
    const int rc = inner.flow_create(port, attr, pattern, actions, out, err);
    if (rc == 0) st->live[*out] = {port, mask};
    return rc;
  }
  int flow_destroy(std::uint16_t port, rte_flow* flow, rte_flow_error* err) const {
    ++st->destroys;
    if (st->q.fail_destroy) return fail(err, -EBUSY, RTE_FLOW_ERROR_TYPE_HANDLE, "flow is busy");
    st->live.erase(flow);
    return inner.flow_destroy(port, flow, err);
  }
  int rss_hash_update(std::uint16_t p, rte_eth_rss_conf* c) const { return inner.rss_hash_update(p, c); }
  int rss_hash_conf_get(std::uint16_t p, rte_eth_rss_conf* c) const { return inner.rss_hash_conf_get(p, c); }
  int rss_reta_update(std::uint16_t p, rte_eth_rss_reta_entry64* r, std::uint16_t n) const {
    return inner.rss_reta_update(p, r, n);
  }
  int rss_reta_query(std::uint16_t p, rte_eth_rss_reta_entry64* r, std::uint16_t n) const {
    return inner.rss_reta_query(p, r, n);
  }
  int bond_members(std::uint16_t p, std::uint16_t* m, std::uint16_t n) const { return inner.bond_members(p, m, n); }
};
static_assert(fnat::dpdk::ethdev_ops<quirky_ops>);

// A model port 0 behind a quirky PMD of a given driver name.
struct quirky_port {
  nic_model model;
  nic_model_ports ports;
  pmd_state st;
  explicit quirky_port(std::string driver = "net_fake", std::uint16_t queues = 16) : model(make_model(queues)) {
    REQUIRE(ports.attach(0, model, std::move(driver)));
  }
  quirky_ops ops() { return quirky_ops{ports.ops(), &st}; }
};

std::vector<flow_rule> plan_rules(std::size_t n, std::vector<inet> lips, fnat::dpdk::flow_build_options o = {},
                                  unsigned class_bits = 0) {
  auto plan = port_plan::make({.lcores = lcores(n), .class_bits = class_bits});
  REQUIRE(plan);
  auto rules = fnat::dpdk::build_flow_rules(*plan, lips, o);
  REQUIRE(rules);
  return *rules;
}

}  // namespace

// ---- rules as values ------------------------------------------------------------------------------

TEST_CASE("a flow rule owns its specs: copies point into themselves, compare by content, print for testpmd",
          "[flow_rules]") {
  std::optional<flow_rule> original = *flow_rule::make(
      {.dst = addr("198.18.0.1"), .proto = fnat::ipproto::tcp, .port_base = 0x13, .port_mask = 0x7, .queue = 3});
  REQUIRE(original->desc().port_base == 3);  // spec ANDed with mask
  const flow_rule copy = *original;
  REQUIRE(copy == *original);
  original.reset();  // the copy must not depend on the original's storage

  const auto v = copy.view();
  const auto* lo = reinterpret_cast<const char*>(&copy);
  const auto* hi = lo + sizeof copy;
  auto inside = [&](const void* p) {
    const auto* c = static_cast<const char*>(p);
    return c >= lo && c < hi;
  };
  REQUIRE(v.pattern_size() == 4);
  REQUIRE(v.attr()->ingress == 1);
  REQUIRE(inside(v.attr()));
  REQUIRE(v.pattern()[0].type == RTE_FLOW_ITEM_TYPE_ETH);
  REQUIRE(v.pattern()[0].spec == nullptr);
  REQUIRE(v.pattern()[1].type == RTE_FLOW_ITEM_TYPE_IPV4);
  REQUIRE(inside(v.pattern()[1].spec));
  REQUIRE(inside(v.pattern()[1].mask));
  REQUIRE(static_cast<const rte_flow_item_ipv4*>(v.pattern()[1].spec)->hdr.dst_addr == addr("198.18.0.1").v4().be);
  REQUIRE(static_cast<const rte_flow_item_ipv4*>(v.pattern()[1].mask)->hdr.dst_addr == 0xffffffffu);
  REQUIRE(static_cast<const rte_flow_item_ipv4*>(v.pattern()[1].mask)->hdr.src_addr == 0);
  REQUIRE(v.pattern()[2].type == RTE_FLOW_ITEM_TYPE_TCP);
  REQUIRE(inside(v.pattern()[2].spec));
  REQUIRE(static_cast<const rte_flow_item_tcp*>(v.pattern()[2].spec)->hdr.dst_port == fnat::hton16(3));
  REQUIRE(static_cast<const rte_flow_item_tcp*>(v.pattern()[2].mask)->hdr.dst_port == fnat::hton16(7));
  REQUIRE(static_cast<const rte_flow_item_tcp*>(v.pattern()[2].mask)->hdr.src_port == 0);
  REQUIRE(v.pattern()[2].last == nullptr);
  REQUIRE(v.pattern()[3].type == RTE_FLOW_ITEM_TYPE_END);
  REQUIRE(v.actions()[0].type == RTE_FLOW_ACTION_TYPE_QUEUE);
  REQUIRE(inside(v.actions()[0].conf));
  REQUIRE(static_cast<const rte_flow_action_queue*>(v.actions()[0].conf)->index == 3);
  REQUIRE(v.actions()[1].type == RTE_FLOW_ACTION_TYPE_END);

  REQUIRE(copy.to_testpmd(0) ==
          "flow create 0 group 0 priority 0 ingress pattern eth / ipv4 dst is 198.18.0.1 / tcp dst spec 3 dst mask "
          "0x0007 / end actions queue index 3 / end");
  REQUIRE(copy.describe() == "tcp 198.18.0.1 dport&0x0007=0x0003 -> queue 3");

  const auto v6 = *flow_rule::make({.group = 2,
                                    .priority = 5,
                                    .eth_item = false,
                                    .dst = addr("2001:2::1"),
                                    .proto = fnat::ipproto::udp,
                                    .port_base = 8080,
                                    .port_mask = 0xffff,
                                    .queue = 1});
  REQUIRE(v6.to_testpmd(7, "validate") ==
          "flow validate 7 group 2 priority 5 ingress pattern ipv6 dst is 2001:2::1 / udp dst is 8080 / end actions "
          "queue index 1 / end");
  REQUIRE(v6.view().pattern_size() == 3);
  const auto any = *flow_rule::make({.dst = addr("198.18.0.1"), .proto = fnat::ipproto::tcp, .queue = 0});
  REQUIRE(any.to_testpmd(0) ==
          "flow create 0 group 0 priority 0 ingress pattern eth / ipv4 dst is 198.18.0.1 / tcp / end actions queue "
          "index 0 / end");
  REQUIRE(any.view().pattern()[2].spec == nullptr);
  REQUIRE_FALSE(any == copy);

  auto bad = flow_rule::make({.proto = fnat::ipproto::tcp});
  REQUIRE_FALSE(bad);
  REQUIRE(contains(bad.err().message(), "unspecified"));
  bad = flow_rule::make({.dst = addr("198.18.0.1"), .proto = fnat::ipproto::icmp});
  REQUIRE_FALSE(bad);
  REQUIRE(contains(bad.err().message(), "neither TCP (6), UDP (17) nor any (0, address only)"));
  // An address-only rule (one LIP per lcore): no L4 item, printed without one; it takes no port mask.
  auto addr_only = flow_rule::make({.dst = addr("2001:2::5"), .proto = fnat::dpdk::flow_any_proto, .queue = 3});
  REQUIRE(addr_only);
  REQUIRE(addr_only->view().pattern_size() == 3);  // ETH / IPV6 / END
  REQUIRE(addr_only->view().pattern()[1].type == RTE_FLOW_ITEM_TYPE_IPV6);
  REQUIRE(addr_only->view().pattern()[2].type == RTE_FLOW_ITEM_TYPE_END);
  REQUIRE(addr_only->to_testpmd(0) ==
          "flow create 0 group 0 priority 0 ingress pattern eth / ipv6 dst is 2001:2::5 / end actions queue index 3 / end");
  REQUIRE(addr_only->describe() == "any 2001:2::5 -> queue 3");
  bad = flow_rule::make({.dst = addr("198.18.0.1"), .proto = fnat::dpdk::flow_any_proto, .port_mask = 7});
  REQUIRE_FALSE(bad);
  REQUIRE(contains(bad.err().message(), "cannot match a port"));
}

TEST_CASE("the builder reproduces DPVS's rules for 8 lcores and merges extra class bits away", "[flow_rules]") {
  std::vector<fnat::lcore_queue> v;
  for (unsigned i = 0; i < 8; ++i) v.push_back({i + 1, static_cast<std::uint16_t>(i)});
  const inet lips[] = {addr("198.18.0.1"), addr("2001:2::1")};
  for (unsigned bits : {0u, 7u}) {
    auto plan = port_plan::make({.lcores = v, .class_bits = bits});
    REQUIRE(plan);
    for (std::size_t i = 0; i < 8; ++i) {
      auto r = fnat::dpdk::build_lcore_flow_rules(*plan, i, lips);
      REQUIRE(r);
      REQUIRE(r->size() == 4);  // (2 LIPs) x (TCP, UDP), one cube each
      std::size_t k = 0;
      for (const inet& lip : lips)
        for (std::uint8_t proto : {fnat::ipproto::tcp, fnat::ipproto::udp}) {
          const auto& d = (*r)[k++].desc();
          REQUIRE(d.dst == lip);
          REQUIRE(d.proto == proto);
          REQUIRE(d.port_base == i);
          REQUIRE(d.port_mask == 7);
          REQUIRE(d.queue == i);
          REQUIRE(d.priority == 0);
          REQUIRE(d.group == 0);
          REQUIRE(d.eth_item);
        }
    }
    // Without merging: one rule per class (16 per lcore with 7 bits).
    auto unmerged = fnat::dpdk::build_lcore_flow_rules(*plan, 3, lips, {.tcp = false, .merge_classes = false});
    REQUIRE(unmerged);
    REQUIRE(unmerged->size() == 2 * plan->bases(3).size());
  }
  // 6 lcores: lcore 0 owns classes 0 and 6, which cannot merge.
  auto plan6 = port_plan::make({.lcores = lcores(6)});
  REQUIRE(plan6);
  auto r6 = fnat::dpdk::build_lcore_flow_rules(*plan6, 0, std::span(lips, 1), {.udp = false});
  REQUIRE(r6);
  REQUIRE(r6->size() == 2);
  REQUIRE((*r6)[0].desc().port_base == 0);
  REQUIRE((*r6)[1].desc().port_base == 6);
  REQUIRE((*r6)[1].desc().port_mask == 7);

  auto expect_error = [&](const fnat::result<std::vector<flow_rule>>& r, const char* words) {
    REQUIRE_FALSE(r);
    REQUIRE(r.err().code() == errc::invalid_argument);
    INFO(r.err().message());
    REQUIRE(contains(r.err().message(), words));
  };
  expect_error(fnat::dpdk::build_lcore_flow_rules(*plan6, 6, lips), "outside the plan");
  expect_error(fnat::dpdk::build_lcore_flow_rules(*plan6, 0, {}), "no local address");
  const inet twice[] = {addr("198.18.0.1"), addr("198.18.0.1")};
  expect_error(fnat::dpdk::build_lcore_flow_rules(*plan6, 0, twice), "listed twice");
  const inet zero[] = {inet(fnat::ipv4_addr{})};
  expect_error(fnat::dpdk::build_lcore_flow_rules(*plan6, 0, zero), "unspecified");
  expect_error(fnat::dpdk::build_lcore_flow_rules(*plan6, 0, lips, {.tcp = false, .udp = false}),
               "neither TCP nor UDP");
}

// ---- the affinity invariant ----------------------------------------------------------------------

TEST_CASE("for 1..64 lcores, every port of every lcore reaches its lcore's queue and other addresses go to RSS",
          "[flow_rules][affinity]") {
  const inet lip4 = addr("198.18.0.1"), lip6 = addr("2001:2::1");
  const inet rs4 = addr("198.18.1.1"), rs6 = addr("2001:2::1:1");
  const inet other4 = addr("198.18.0.2"), other6 = addr("2001:2::2");
  struct config {
    std::size_t n;
    unsigned class_bits;
  };
  std::vector<config> configs;
  for (std::size_t n = 1; n <= 64; ++n) configs.push_back({n, 0});
  for (std::size_t n : {3u, 6u, 8u, 12u}) configs.push_back({n, static_cast<unsigned>(std::bit_width(n - 1)) + 2});
  for (const auto& [n, bits] : configs) {
    INFO("lcores " << n << ", class bits " << bits);
    auto plan = port_plan::make({.lcores = lcores(n), .class_bits = bits});
    REQUIRE(plan);
    nic_model model = make_model(static_cast<std::uint16_t>(n));
    nic_model_ports ports;
    REQUIRE(ports.attach(0, model));
    const inet lips[] = {lip4, lip6};
    auto rules = fnat::dpdk::build_flow_rules(*plan, lips);
    REQUIRE(rules);
    // Rule count: one cube per lcore for powers of two, one per class otherwise; x 2 LIPs x 2 protocols.
    REQUIRE(rules->size() == 4 * (std::has_single_bit(n) ? n : plan->class_count()));
    auto installed = fnat::dpdk::install_flow_rules(ports.ops(), 0, *rules);
    REQUIRE(installed);
    REQUIRE(installed->size() == rules->size());
    REQUIRE(installed->variant(0) == flow_variant::as_built);
    REQUIRE(model.rule_count() == rules->size());

    std::vector<std::vector<std::uint8_t>> frames;
    for (std::uint8_t proto : {fnat::ipproto::tcp, fnat::ipproto::udp}) {
      frames.push_back(fnat::test::make_frame({.proto = proto, .src = rs4, .sport = 80, .dst = lip4}));
      frames.push_back(fnat::test::make_frame({.proto = proto, .src = rs6, .sport = 80, .dst = lip6}));
    }
    std::size_t checked = 0, wrong = 0;
    std::string first_wrong;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint16_t queue = plan->lcore(i).rx_queue;
      plan->for_each_port(i, [&](std::uint16_t port) {
        for (auto& f : frames) {
          fnat::test::set_dport(f, port);
          const auto s = model.steer(f);
          ++checked;
          if (s.rule == 0 || s.drop || s.queue != queue) {
            if (wrong++ == 0)
              first_wrong = "port " + std::to_string(port) + " of lcore index " + std::to_string(i) +
                            " went to queue " + std::to_string(s.queue) + " (rule " + std::to_string(s.rule) +
                            "), expected " + std::to_string(queue);
          }
        }
      });
    }
    INFO(first_wrong);
    REQUIRE(wrong == 0);
    REQUIRE(checked == 4 * (65535 - 1025 + 1));
    // Replies to an address that is not a LIP are left to RSS, on every port.
    std::vector<std::vector<std::uint8_t>> others = {
        fnat::test::make_frame({.proto = fnat::ipproto::tcp, .src = rs4, .sport = 80, .dst = other4}),
        fnat::test::make_frame({.proto = fnat::ipproto::udp, .src = rs6, .sport = 80, .dst = other6})};
    std::size_t steered = 0;
    for (std::uint32_t port = 0; port < 65536; port += 61)
      for (auto& f : others) {
        fnat::test::set_dport(f, static_cast<std::uint16_t>(port));
        const auto s = model.steer(f);
        steered += (s.rule != 0 || !s.hashed || s.queue != model.reta()[s.hash & 127]) ? 1 : 0;
      }
    REQUIRE(steered == 0);
    REQUIRE(installed->destroy());
    REQUIRE(model.rule_count() == 0);
  }
}

TEST_CASE("end to end through real mbufs and rx bursts: each lcore's queue receives exactly its own ports",
          "[flow_rules][affinity][eal]") {
  fnat::test::require_eal();
  constexpr std::size_t n = 6;  // not a power of two: one rule per class
  auto plan = port_plan::make({.lcores = lcores(n)});
  REQUIRE(plan);
  fnat::test::ring_port port("flow_rules_e2e", n);
  nic_model model = make_model(n);
  nic_model_ports ports;
  REQUIRE(ports.attach(port.port_id(), model));
  const inet lips[] = {addr("198.18.0.1"), addr("2001:2::1")};
  auto rules = fnat::dpdk::build_flow_rules(*plan, lips);
  REQUIRE(rules);
  auto installed = fnat::dpdk::install_flow_rules(ports.ops(), port.port_id(), *rules);
  REQUIRE(installed);
  REQUIRE(installed->entries()[0].port == port.port_id());
  // 40 ports of each lcore, in four flavours (IPv4/IPv6 x TCP/UDP), interleaved across lcores in one burst.
  std::vector<rte_mbuf*> burst;
  std::vector<std::vector<std::uint16_t>> expect(n);
  std::vector<std::vector<std::uint16_t>> owned(n);
  for (std::size_t i = 0; i < n; ++i)
    plan->for_each_port(i, [&](std::uint16_t p) {
      if (owned[i].size() < 40 || p > 65000) owned[i].push_back(p);
    });
  for (std::size_t k = 0; k < 40; ++k)
    for (std::size_t i = 0; i < n; ++i)
      for (std::uint8_t proto : {fnat::ipproto::tcp, fnat::ipproto::udp})
        for (const char* rs : {"198.18.1.1", "2001:2::1:1"}) {
          const std::uint16_t p = owned[i][k * owned[i].size() / 40];
          const inet dst = addr(rs).is_v4() ? lips[0] : lips[1];
          burst.push_back(fnat::test::make_mbuf(
              fnat::test::make_frame({.proto = proto, .src = addr(rs), .sport = 80, .dst = dst, .dport = p})));
          expect[plan->lcore(i).rx_queue].push_back(p);
        }
  const auto st = fnat::test::wire_deliver(model, port, burst.data(), burst.size());
  REQUIRE(st.delivered == burst.size());
  for (std::uint16_t q = 0; q < n; ++q) {
    std::vector<std::uint16_t> got;
    rte_mbuf* rx[64];
    for (std::uint16_t m; (m = rte_eth_rx_burst(port.port_id(), q, rx, 64)) > 0;) {
      for (std::uint16_t j = 0; j < m; ++j) got.push_back(fnat::test::mbuf_dport(rx[j]));
      // The lcore answers on its own tx queue: the burst goes out whole.
      REQUIRE(rte_eth_tx_burst(port.port_id(), q, rx, m) == m);
    }
    INFO("queue " << q);
    REQUIRE(got == expect[q]);
    REQUIRE(rte_ring_count(port.tx_ring(q)) == expect[q].size());
    for (std::uint16_t p : got) REQUIRE(plan->lcore(plan->owner_index(p)).rx_queue == q);
  }
}

// ---- installing on quirky PMDs --------------------------------------------------------------------

TEST_CASE("installed flows are destroyed by their owner, newest first, and can be released", "[flow_rules]") {
  quirky_port p;
  const auto rules = plan_rules(4, {addr("198.18.0.1")});
  {
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    REQUIRE(p.model.rule_count() == rules.size());
    REQUIRE(p.st.validates == static_cast<int>(rules.size()));  // every rule validated before any create
    REQUIRE(p.st.creates == static_cast<int>(rules.size()));
    REQUIRE(h->entries()[0].rule == rules[0]);
    REQUIRE(h->entries()[0].port == 0);
    auto moved = std::move(*h);
    REQUIRE(h->empty());
    REQUIRE(moved.size() == rules.size());
  }
  REQUIRE(p.model.rule_count() == 0);
  REQUIRE(p.st.destroys == static_cast<int>(rules.size()));
  {
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    h->release();
  }
  REQUIRE(p.model.rule_count() == rules.size());
  p.model.flush();
  // An empty rule set installs nothing and is fine.
  auto none = fnat::dpdk::install_flow_rules(p.ops(), 0, std::span<const flow_rule>());
  REQUIRE(none);
  REQUIRE(none->empty());
}

TEST_CASE("a PMD that rejects priority != 0 gets priority 0 and one that rejects the ETH item gets none",
          "[flow_rules][quirks]") {
  const auto rules = plan_rules(4, {addr("198.18.0.1")}, {.priority = 3});
  SECTION("priority") {
    quirky_port p;
    p.st.q.reject_priority = true;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    REQUIRE(h->variant(0) == flow_variant::priority_zero);
    for (const auto& e : h->entries()) REQUIRE(e.rule.desc().priority == 0);
    REQUIRE(p.model.rule_count() == rules.size());
  }
  SECTION("eth") {
    quirky_port p;
    p.st.q.reject_eth = true;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    REQUIRE(h->variant(0) == flow_variant::no_eth);
    for (const auto& e : h->entries()) {
      REQUIRE_FALSE(e.rule.desc().eth_item);
      REQUIRE(e.rule.desc().priority == 3);
    }
  }
  SECTION("both") {
    quirky_port p;
    p.st.q.reject_eth = true;
    p.st.q.reject_priority = true;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    REQUIRE(h->variant(0) == (flow_variant::priority_zero | flow_variant::no_eth));
    REQUIRE(fnat::dpdk::to_string(h->variant(0)) == "priority 0 + no eth item");
  }
  SECTION("the quirk table starts ice at priority 0, saving the rejected round trip") {
    quirky_port p("net_ice");
    p.st.q.reject_priority = true;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    REQUIRE(h->variant(0) == flow_variant::priority_zero);
    REQUIRE(p.st.validates == static_cast<int>(rules.size()));  // no rejected attempt
  }
  SECTION("variants off: the rejection is the answer, with the PMD's words") {
    quirky_port p;
    p.st.q.reject_priority = true;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules, {.try_variants = false});
    REQUIRE_FALSE(h);
    REQUIRE(h.err().code() == errc::device_error);
    INFO(h.err().message());
    REQUIRE(contains(h.err().message(), "port 0 (net_fake)"));
    REQUIRE(contains(h.err().message(), "Not support priority."));
    REQUIRE(contains(h.err().message(), "blames priority"));
    REQUIRE(contains(h.err().message(), rules[0].to_testpmd(0)));
    REQUIRE(p.model.rule_count() == 0);
  }
}

TEST_CASE("one mask per port: merged rules are split to the widest mask after a create-time conflict",
          "[flow_rules][quirks]") {
  // Hand-made cover with two masks: classes {0, 4} as one cube (mask 3) and class 1 alone (mask 7).
  std::vector<flow_rule> rules;
  for (auto [base, mask, queue] : {std::tuple{0, 3, 1}, std::tuple{1, 7, 2}})
    rules.push_back(*flow_rule::make({.dst = addr("198.18.0.1"),
                                      .proto = fnat::ipproto::tcp,
                                      .port_base = static_cast<std::uint16_t>(base),
                                      .port_mask = static_cast<std::uint16_t>(mask),
                                      .queue = static_cast<std::uint16_t>(queue)}));
  quirky_port p;
  p.st.q.one_mask_per_port = true;
  auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
  REQUIRE(h);
  REQUIRE(h->variant(0) == flow_variant::uniform_mask);
  REQUIRE(h->size() == 3);  // (0, 3) split into (0, 7) and (4, 7), plus (1, 7)
  for (const auto& e : h->entries()) REQUIRE(e.rule.desc().port_mask == 7);
  REQUIRE(p.model.rule_count() == 3);  // the failed first attempt left nothing behind
  for (std::uint16_t port = 1024; port < 1088; ++port) {
    const auto s = p.model.steer(fnat::test::make_frame({.proto = fnat::ipproto::tcp,
                                                         .src = addr("198.18.1.1"),
                                                         .sport = 80,
                                                         .dst = addr("198.18.0.1"),
                                                         .dport = port}));
    const auto c = port & 7;
    if (c == 0 || c == 4)
      REQUIRE(s.queue == 1);
    else if (c == 1)
      REQUIRE(s.queue == 2);
    else
      REQUIRE(s.rule == 0);
  }
}

TEST_CASE("known quirks rule rules out before any PMD call: ixgbe and IPv6, i40e and partial masks",
          "[flow_rules][quirks]") {
  SECTION("ixgbe: IPv6 not supported, IPv4 fine") {
    quirky_port p("net_ixgbe");
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, plan_rules(4, {addr("198.18.0.1"), addr("2001:2::1")}));
    REQUIRE_FALSE(h);
    REQUIRE(h.err().code() == errc::not_supported);
    INFO(h.err().message());
    REQUIRE(contains(h.err().message(), "IPv6 rules"));
    REQUIRE(contains(h.err().message(), "#507"));
    REQUIRE(p.st.validates == 0);
    auto v4 = fnat::dpdk::install_flow_rules(p.ops(), 0, plan_rules(4, {addr("198.18.0.1")}));
    REQUIRE(v4);
    REQUIRE(v4->variant(0) == flow_variant::uniform_mask);  // the table's starting variant
  }
  SECTION("i40e: partial port masks would validate and then steer nothing right") {
    quirky_port p("net_i40e");
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, plan_rules(4, {addr("198.18.0.1")}));
    REQUIRE_FALSE(h);
    REQUIRE(h.err().code() == errc::not_supported);
    INFO(h.err().message());
    REQUIRE(contains(h.err().message(), "#433"));
    REQUIRE(p.st.validates == 0);
    // One lcore needs no port mask at all: fine on i40e.
    auto one = fnat::dpdk::install_flow_rules(p.ops(), 0, plan_rules(1, {addr("198.18.0.1")}));
    REQUIRE(one);
    auto cap = fnat::dpdk::probe_flow_capability(p.ops(), 0);
    REQUIRE(cap);
    REQUIRE_FALSE(cap->supported());
    REQUIRE(cap->status == errc::not_supported);
    REQUIRE(contains(cap->reason, "#433"));
  }
  SECTION("a caller's own table replaces fnat's") {
    static constexpr fnat::dpdk::driver_quirk mine[] = {
        {.driver = "net_fake", .no_ipv6 = true, .note = "lab NIC firmware 1.2 drops IPv6 rules"}};
    quirky_port p;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, plan_rules(2, {addr("2001:2::1")}), {.quirks = mine});
    REQUIRE_FALSE(h);
    REQUIRE(contains(h.err().message(), "lab NIC firmware 1.2"));
  }
}

TEST_CASE("a PMD that rejects IPv6 reports not supported and leaves nothing installed", "[flow_rules][quirks]") {
  quirky_port p;
  p.st.q.reject_ipv6 = true;
  auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, plan_rules(4, {addr("198.18.0.1"), addr("2001:2::1")}));
  REQUIRE_FALSE(h);
  REQUIRE(h.err().code() == errc::not_supported);
  INFO(h.err().message());
  REQUIRE(contains(h.err().message(), "IPv6 is not supported in perfect mode"));
  REQUIRE(contains(h.err().message(), "ipv6 dst is 2001:2::1"));
  REQUIRE(contains(h.err().message(), "then no eth item"));  // the variant was tried too
  REQUIRE(contains(h.err().message(), "nothing was left installed"));
  REQUIRE(p.model.rule_count() == 0);
  REQUIRE(p.st.creates == 0);  // validation failed first: nothing was created to roll back
}

TEST_CASE("a create that fails part way rolls back every rule already created", "[flow_rules][rollback]") {
  const auto rules = plan_rules(8, {addr("198.18.0.1"), addr("2001:2::1")});  // 32 rules
  SECTION("the table fills up after k rules: every variant fails, nothing is left") {
    for (int k : {0, 1, 5, 31}) {
      quirky_port p;
      p.st.q.fail_create_from = k;
      auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
      REQUIRE_FALSE(h);
      REQUIRE(h.err().code() == errc::device_error);
      INFO(h.err().message());
      REQUIRE(contains(h.err().message(), "rte_flow_create"));
      REQUIRE(contains(h.err().message(), "no free flow director entry"));
      REQUIRE(contains(h.err().message(), "rule " + std::to_string(k + 1) + " of 32"));
      REQUIRE(p.model.rule_count() == 0);
      REQUIRE(p.st.live.empty());
    }
  }
  SECTION("one failure: rolled back, then the next variant installs everything exactly once") {
    quirky_port p;
    p.st.q.fail_create_once = 20;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    REQUIRE(h->variant(0) == flow_variant::no_eth);
    REQUIRE(p.model.rule_count() == rules.size());
    REQUIRE(p.st.destroys == 20);
  }
  SECTION("a rollback that cannot destroy says so") {
    quirky_port p;
    p.st.q.fail_create_from = 3;
    p.st.q.fail_destroy = true;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE_FALSE(h);
    INFO(h.err().message());
    REQUIRE(contains(h.err().message(), "rolling back then failed"));
    REQUIRE(contains(h.err().message(), "flow is busy"));
    REQUIRE(contains(h.err().message(), "rte_flow_flush"));
  }
  SECTION("destroy() reports what it could not destroy") {
    quirky_port p;
    auto h = fnat::dpdk::install_flow_rules(p.ops(), 0, rules);
    REQUIRE(h);
    p.st.q.fail_destroy = true;
    auto d = h->destroy();
    REQUIRE_FALSE(d);
    REQUIRE(d.err().code() == errc::device_error);
    REQUIRE(contains(d.err().message(), "(and 31 more)"));
    REQUIRE(h->empty());
  }
}

TEST_CASE("bonded ports: rules go to every member, all or none", "[flow_rules][bond]") {
  nic_model m1 = make_model(4), m2 = make_model(4);
  nic_model_ports ports;
  REQUIRE(ports.attach(1, m1, "net_fake"));
  REQUIRE(ports.attach(2, m2, "net_fake"));
  REQUIRE(ports.attach_bond(5, {1, 2}));
  pmd_state st;
  const quirky_ops ops{ports.ops(), &st};
  const auto rules = plan_rules(4, {addr("198.18.0.1")});
  {
    auto h = fnat::dpdk::install_flow_rules(ops, 5, rules);
    REQUIRE(h);
    REQUIRE(h->size() == 2 * rules.size());
    REQUIRE(m1.rule_count() == rules.size());
    REQUIRE(m2.rule_count() == rules.size());
    REQUIRE(h->entries()[0].port == 1);
    REQUIRE(h->entries()[rules.size()].port == 2);
    auto cap = fnat::dpdk::probe_flow_capability(ops, 5);
    REQUIRE(cap);
    REQUIRE(cap->supported());
    REQUIRE(contains(cap->driver, "net_bonding (members: 1 net_fake 2 net_fake)"));
  }
  REQUIRE(m1.rule_count() == 0);
  REQUIRE(m2.rule_count() == 0);
  st.q.refuse_ports = {2};
  auto h = fnat::dpdk::install_flow_rules(ops, 5, rules);
  REQUIRE_FALSE(h);
  INFO(h.err().message());
  REQUIRE(contains(h.err().message(), "bond port 5, member port 2 (net_fake)"));
  REQUIRE(m1.rule_count() == 0);  // member 1's rules were rolled back
  auto cap = fnat::dpdk::probe_flow_capability(ops, 5);
  REQUIRE(cap);
  REQUIRE_FALSE(cap->supported());
  REQUIRE(fnat::dpdk::install_flow_rules(ops, 9, rules).err().code() == errc::invalid_argument);  // no such port
}

TEST_CASE("the capability probe tells whether, how, and why not", "[flow_rules][probe]") {
  SECTION("a capable port") {
    quirky_port p;
    auto cap = fnat::dpdk::probe_flow_capability(p.ops(), 0);
    REQUIRE(cap);
    REQUIRE(cap->supported());
    REQUIRE(cap->variant == flow_variant::as_built);
    REQUIRE(cap->driver == "net_fake");
    REQUIRE(p.model.rule_count() == 0);  // probing creates nothing
    REQUIRE(p.st.validates == 4);        // IPv4/IPv6 x TCP/UDP
  }
  SECTION("a port that needs variants says which") {
    quirky_port p;
    p.st.q.reject_priority = true;
    p.st.q.reject_eth = true;
    auto cap = fnat::dpdk::probe_flow_capability(p.ops(), 0, {.priority = 2});
    REQUIRE(cap);
    REQUIRE(cap->supported());
    REQUIRE(cap->variant == (flow_variant::priority_zero | flow_variant::no_eth));
    REQUIRE(contains(cap->reason, "accepted as priority 0 + no eth item"));
  }
  SECTION("no rte_flow at all") {
    quirky_port p;
    p.st.q.no_flow = true;
    auto cap = fnat::dpdk::probe_flow_capability(p.ops(), 0);
    REQUIRE(cap);
    REQUIRE(cap->status == errc::not_supported);
    REQUIRE(contains(cap->reason, "Function not implemented"));
    REQUIRE(p.st.validates == 1);  // ENOSYS: no variant can help
  }
  SECTION("IPv6 refused by the PMD, IPv4 alone is fine") {
    quirky_port p;
    p.st.q.reject_ipv6 = true;
    auto cap = fnat::dpdk::probe_flow_capability(p.ops(), 0);
    REQUIRE(cap);
    REQUIRE(cap->status == errc::not_supported);
    REQUIRE(contains(cap->reason, "IPv6 is not supported"));
    cap = fnat::dpdk::probe_flow_capability(p.ops(), 0, {.ipv6 = false});
    REQUIRE(cap);
    REQUIRE(cap->supported());
  }
  SECTION("an unknown port is an error, not an answer") {
    quirky_port p;
    auto cap = fnat::dpdk::probe_flow_capability(p.ops(), 3);
    REQUIRE_FALSE(cap);
    REQUIRE(cap.err().code() == errc::invalid_argument);
  }
}

// ---- real virtual devices -------------------------------------------------------------------------

TEST_CASE("real PMDs without rte_flow (net_ring, net_null, net_af_packet) are reported not supported",
          "[flow_rules][eal]") {
  fnat::test::require_eal();
  const auto rules = plan_rules(2, {addr("198.18.0.1")});
  const fnat::dpdk::rte_ethdev_ops ops;
  auto check_port = [&](std::uint16_t port, const char* driver) {
    INFO(driver);
    auto h = fnat::dpdk::install_flow_rules(ops, port, rules);
    REQUIRE_FALSE(h);
    REQUIRE(h.err().code() == errc::not_supported);
    INFO(h.err().message());
    REQUIRE(contains(h.err().message(), std::string("(") + driver + ")"));
    REQUIRE(contains(h.err().message(), "Function not implemented"));
    REQUIRE(contains(h.err().message(), "RSS-aware ports or software redirect"));
    auto cap = fnat::dpdk::probe_flow_capability(ops, port);
    REQUIRE(cap);
    REQUIRE(cap->status == errc::not_supported);
    REQUIRE(cap->driver == driver);
  };
  fnat::test::ring_port ring("flow_rules_ring", 2);
  check_port(ring.port_id(), "net_ring");
  fnat::test::vdev_port null_port("net_null_flow0");
  REQUIRE(null_port.ok());
  check_port(null_port.port_id(), "net_null");
  fnat::test::private_netns ns;
  if (!ns.ok()) {
    WARN("net_af_packet not checked: no privilege to create a network namespace");
    return;
  }
  fnat::test::vdev_port af("net_af_packet_flow0", "iface=lo");
  INFO(af.why());
  REQUIRE(af.ok());
  check_port(af.port_id(), "net_af_packet");
  // A port id that does not exist is an argument error.
  REQUIRE(fnat::dpdk::install_flow_rules(ops, RTE_MAX_ETHPORTS - 1, rules).err().code() == errc::invalid_argument);
}
