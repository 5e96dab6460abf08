// SPDX-License-Identifier: BSD-3-Clause
// Reply steering, all four modes in one place, against the software NIC model (nic_model.hpp) behind
// the ethdev_ops seam: for several lcore counts (3, 5, 6, 7 among them), IPv4 and IPv6, TCP and UDP,
// every port each lcore's pools hand out comes back to that lcore - through the model's rules (flow,
// lip_per_lcore), its RSS (rss), or owner_of and redirect (redirect) - and owner_of agrees; a NIC that
// cannot mask ports falls back to one LIP per lcore, one without rte_flow to RSS, one without RSS to
// redirect; failures part way leave nothing installed; the reasons are reported.
#include <fnat/dpdk/reply_steering.hpp>
#include <fnat/dpdk/nic_model.hpp>

#include <rte_flow.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "support/nic_wire.hpp"

using fnat::errc;
using fnat::port_plan;
using fnat::dpdk::nic_model;
using fnat::dpdk::nic_model_ports;
using fnat::dpdk::reply_pool_kind;
using fnat::dpdk::reply_steering_mode;
using inet = fnat::inet_addr;

namespace {

inet addr(const std::string& s) { return *inet::parse(s); }
bool contains(const std::string& text, const std::string& words) { return text.find(words) != std::string::npos; }

std::vector<fnat::lcore_queue> lcores(std::size_t n) {
  // Lcore ids, queues and plan indices all differ: worker i does not poll queue i.
  std::vector<fnat::lcore_queue> v;
  for (std::size_t i = 0; i < n; ++i)
    v.push_back({static_cast<unsigned>(3 * i + 2), static_cast<std::uint16_t>(n - 1 - i)});
  return v;
}

// What the PMD behind the model refuses, the way real ones do.
struct nic_limits {
  bool no_masked_ports = false;  // L4 items with a partial port mask: -ENOTSUP
  bool no_flow = false;          // no rte_flow: -ENOSYS
  bool no_rss = false;           // reta_size 0, RSS calls -ENOTSUP
  int fail_create_from = -1;     // this create (0-based) and every later one: -ENOSPC
  int creates = 0;
};

struct limited_ops {
  fnat::dpdk::nic_model_ops inner;
  nic_limits* lim;

  static int fail(rte_flow_error* err, int rc, const char* msg) {
    err->type = RTE_FLOW_ERROR_TYPE_ITEM_MASK;
    err->cause = nullptr;
    err->message = msg;
    return rc;
  }
  int refuse(const rte_flow_item* p, rte_flow_error* err) const {
    if (lim->no_flow) return fail(err, -ENOSYS, "Function not implemented");
    if (!lim->no_masked_ports) return 0;
    for (; p->type != RTE_FLOW_ITEM_TYPE_END; ++p) {
      std::uint16_t m = 0;
      if (p->mask != nullptr && p->type == RTE_FLOW_ITEM_TYPE_TCP)
        m = static_cast<const rte_flow_item_tcp*>(p->mask)->hdr.dst_port;
      if (p->mask != nullptr && p->type == RTE_FLOW_ITEM_TYPE_UDP)
        m = static_cast<const rte_flow_item_udp*>(p->mask)->hdr.dst_port;
      if (m != 0 && m != 0xffff) return fail(err, -ENOTSUP, "partial L4 port mask not supported by flow director");
    }
    return 0;
  }
  int dev_info(std::uint16_t port, rte_eth_dev_info* info) const {
    const int rc = inner.dev_info(port, info);
    if (rc == 0 && lim->no_rss) info->reta_size = 0;
    return rc;
  }
  int flow_validate(std::uint16_t port, const rte_flow_attr* a, const rte_flow_item* p, const rte_flow_action* x,
                    rte_flow_error* err) const {
    if (int rc = refuse(p, err)) return rc;
    return inner.flow_validate(port, a, p, x, err);
  }
  int flow_create(std::uint16_t port, const rte_flow_attr* a, const rte_flow_item* p, const rte_flow_action* x,
                  rte_flow** out, rte_flow_error* err) const {
    const int k = lim->creates++;
    if (int rc = refuse(p, err)) return rc;
    if (lim->fail_create_from >= 0 && k >= lim->fail_create_from)
      return fail(err, -ENOSPC, "no free flow director entry");
    return inner.flow_create(port, a, p, x, out, err);
  }
  int flow_destroy(std::uint16_t port, rte_flow* f, rte_flow_error* err) const { return inner.flow_destroy(port, f, err); }
  int rss_hash_update(std::uint16_t p, rte_eth_rss_conf* c) const {
    return lim->no_rss ? -ENOTSUP : inner.rss_hash_update(p, c);
  }
  int rss_hash_conf_get(std::uint16_t p, rte_eth_rss_conf* c) const {
    return lim->no_rss ? -ENOTSUP : inner.rss_hash_conf_get(p, c);
  }
  int rss_reta_update(std::uint16_t p, rte_eth_rss_reta_entry64* r, std::uint16_t n) const {
    return lim->no_rss ? -ENOTSUP : inner.rss_reta_update(p, r, n);
  }
  int rss_reta_query(std::uint16_t p, rte_eth_rss_reta_entry64* r, std::uint16_t n) const {
    return lim->no_rss ? -ENOTSUP : inner.rss_reta_query(p, r, n);
  }
  int bond_members(std::uint16_t p, std::uint16_t* m, std::uint16_t n) const { return inner.bond_members(p, m, n); }
};
static_assert(fnat::dpdk::ethdev_ops<limited_ops>);
using steering = fnat::dpdk::reply_steering<limited_ops>;

// Model port 0 with n queues behind limited_ops.
struct test_nic {
  nic_model model;
  nic_model_ports ports;
  nic_limits lim;
  explicit test_nic(std::size_t n, std::string driver = "net_model") : model(make(n)) {
    REQUIRE(ports.attach(0, model, std::move(driver)));
  }
  static nic_model make(std::size_t n) {
    auto m = nic_model::make({.rx_queues = static_cast<std::uint16_t>(n), .reta_size = 128});
    REQUIRE(m);
    return std::move(*m);
  }
  limited_ops ops() { return limited_ops{ports.ops(), &lim}; }
};

// k IPv4 and k IPv6 LIPs.
std::vector<inet> make_lips(std::size_t k) {
  std::vector<inet> v;
  for (std::size_t j = 0; j < k; ++j) v.push_back(addr("198.18.0." + std::to_string(j + 1)));
  for (std::size_t j = 0; j < k; ++j) v.push_back(addr("2001:2::" + std::to_string(j + 1)));
  return v;
}

fnat::dpdk::reply_steering_config config(std::size_t n, std::vector<inet> lips, std::vector<reply_steering_mode> modes = {}) {
  // Filled member by member: g++ 12 -O3 reports a bogus -Wuse-after-free for the nested designated
  // initializer of a temporary vector here.
  fnat::dpdk::reply_steering_config c;
  c.plan.lcores = lcores(n);
  c.lips = std::move(lips);
  if (!modes.empty()) c.modes = std::move(modes);
  return c;
}

// The invariant, exhaustively: for every lcore, every LIP it may use, a few real servers and every
// port its pool for that LIP hands out to them, TCP and UDP: the NIC model delivers the reply to the
// lcore's queue (flow, lip_per_lcore, rss) or owner_of names the lcore (all modes; in redirect mode the
// lcore that receives it hands it there). Returns the number of (lcore, port) pairs checked per LIP.
std::size_t check_invariant(const steering& s, const nic_model& model) {
  const port_plan& plan = s.plan();
  const std::size_t n = plan.size();
  const bool nic_steers = s.mode() != reply_steering_mode::redirect;
  std::vector<std::size_t> ports_per_lip(s.lips().size(), 0);
  std::size_t wrong = 0;
  std::string first_wrong;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t queue = plan.lcore(i).rx_queue;
    const auto my_lips = s.lips_of(i);
    if (s.mode() == reply_steering_mode::lip_per_lcore) REQUIRE(my_lips.size() == s.lips().size() / n);
    for (const inet& lip : my_lips) {
      REQUIRE(s.may_use(i, lip));
      auto pol = s.make_pool_policy(i, lip);
      REQUIRE(pol);
      CHECK(std::holds_alternative<fnat::rss_buckets>(*pol) == (s.mode() == reply_steering_mode::rss));
      const std::vector<fnat::endpoint> servers =
          lip.is_v4() ? std::vector<fnat::endpoint>{{addr("198.18.1.1"), 80}, {addr("198.18.200.7"), 8443}}
                      : std::vector<fnat::endpoint>{{addr("2001:2::1:1"), 80}, {addr("2001:2::ab:7"), 8443}};
      std::size_t per_lip = 0;
      for (std::size_t k = 0; k < servers.size(); ++k) {
        const fnat::endpoint& rs = servers[k];
        std::vector<std::vector<std::uint8_t>> frames;
        for (std::uint8_t proto : {fnat::ipproto::tcp, fnat::ipproto::udp})
          frames.push_back(fnat::test::make_frame({.proto = proto, .src = rs.addr, .sport = rs.port, .dst = lip}));
        std::visit(
            [&](const auto& p) {
              const std::size_t b = p.bucket_of(lip, rs);
              p.for_each_port(b, [&](std::uint16_t port) {
                if (k == 0) ++per_lip;
                for (auto& f : frames) {
                  fnat::test::set_dport(f, port);
                  const auto st = model.steer(f);
                  fnat::inet_tuple t{};
                  t.saddr = rs.addr;
                  t.daddr = lip;
                  t.sport = fnat::hton16(rs.port);
                  t.dport = fnat::hton16(port);
                  t.proto = f[f[12] == 0x08 ? 23 : 20];
                  const std::size_t owner = s.owner_of(t);
                  const bool ok = owner == i && s.owner_of(lip, port, rs) == i &&
                                  (nic_steers ? (st.queue == queue && !st.drop) : st.rule == 0);
                  if (!ok && wrong++ == 0)
                    first_wrong = std::string(to_string(s.mode())) + ": " + lip.to_string() + ":" +
                                  std::to_string(port) + " from " + rs.addr.to_string() + " of lcore index " +
                                  std::to_string(i) + " went to queue " + std::to_string(st.queue) + " (rule " +
                                  std::to_string(st.rule) + "), owner_of says " + std::to_string(owner) +
                                  ", expected queue " + std::to_string(queue);
                }
              });
            },
            *pol);
      }
      const auto li = static_cast<std::size_t>(std::find(s.lips().begin(), s.lips().end(), lip) - s.lips().begin());
      ports_per_lip[li] += per_lip;
    }
  }
  INFO(first_wrong);
  CHECK(wrong == 0);
  // Class and all-port pools partition each LIP's range: every port once over the lcores.
  if (s.mode() != reply_steering_mode::rss)
    for (std::size_t c : ports_per_lip) CHECK(c == 65535 - 1025 + 1);
  return wrong;
}

}  // namespace

TEST_CASE("all four modes, forced, steer every port of every lcore back to it (v4, v6, TCP, UDP)",
          "[reply_steering][affinity]") {
  for (std::size_t n : {1u, 2u, 3u, 4u, 5u, 6u, 7u}) {
    for (reply_steering_mode m : fnat::dpdk::all_reply_steering_modes) {
      INFO("lcores " << n << ", mode " << to_string(m));
      test_nic nic(n);
      // One LIP of each family, n of each for lip_per_lcore (whose every lcore needs its own).
      const std::size_t k = m == reply_steering_mode::lip_per_lcore ? n : 1;
      auto s = steering::make(nic.ops(), config(n, make_lips(k), {m}));
      REQUIRE(s);
      REQUIRE(s->mode() == m);
      CHECK(s->skipped().empty());
      CHECK(s->owner().mode() == m);
      CHECK(s->owner().size() == n);
      // Default class bits: at least 90% of a fair share for every lcore (the budget allows it here:
      // 1024 rules / (2 LIPs x 2 protocols) = 256 classes; lip_per_lcore's 2n LIPs allow 6 bits for
      // n = 7, whose plan matters only for owner_of's fallback tables there).
      CHECK(s->plan().min_share() >= 0.9);
      CHECK(s->class_bits().target_met);
      switch (m) {
        case reply_steering_mode::flow:
          CHECK(s->pool_kind() == reply_pool_kind::class_buckets);
          CHECK(nic.model.rule_count() == s->flows().size());
          // One rule per (LIP, protocol, cube): n cubes for powers of two, else one per class.
          CHECK(s->flows().size() == 2 * s->lips().size() * (std::has_single_bit(n) ? n : s->plan().class_count()));
          break;
        case reply_steering_mode::lip_per_lcore:
          CHECK(s->pool_kind() == reply_pool_kind::all_ports);
          CHECK(nic.model.rule_count() == s->lips().size());  // one address rule per LIP
          break;
        case reply_steering_mode::rss:
          CHECK(s->pool_kind() == reply_pool_kind::rss_aware);
          CHECK(nic.model.rule_count() == 0);
          REQUIRE(s->rss() != nullptr);
          CHECK(std::vector<std::uint16_t>(nic.model.reta().begin(), nic.model.reta().end()) == s->rss()->reta);
          break;
        case reply_steering_mode::redirect:
          CHECK(s->pool_kind() == reply_pool_kind::class_buckets);
          CHECK(nic.model.rule_count() == 0);
          break;
      }
      check_invariant(*s, nic.model);
      CHECK(contains(s->describe(), "reply steering " + std::string(to_string(m))));
      // The object owns its rules: moving keeps them, destruction removes them.
      const std::size_t rules = nic.model.rule_count();
      {
        steering moved = std::move(*s);
        CHECK(nic.model.rule_count() == rules);
        CHECK(moved.owner().mode() == m);
      }
      CHECK(nic.model.rule_count() == 0);
    }
  }
}

TEST_CASE("a NIC that cannot mask ports falls back to one LIP per lcore, the reason in the PMD's words",
          "[reply_steering][fallback]") {
  for (std::size_t n : {3u, 6u}) {
    INFO("lcores " << n);
    test_nic nic(n);
    nic.lim.no_masked_ports = true;
    auto s = steering::make(nic.ops(), config(n, make_lips(n)));
    REQUIRE(s);
    CHECK(s->mode() == reply_steering_mode::lip_per_lcore);
    REQUIRE(s->skipped().size() == 1);
    CHECK(s->skipped()[0].mode == reply_steering_mode::flow);
    CHECK(s->skipped()[0].code == errc::not_supported);
    CHECK(contains(s->skipped()[0].reason, "partial L4 port mask not supported by flow director"));
    CHECK(contains(s->describe(), "skipped flow"));
    check_invariant(*s, nic.model);
    // Each lcore may use its own LIPs only, and is refused a pool on another's.
    const inet other = s->lips_of(1)[0];
    CHECK_FALSE(s->may_use(0, other));
    auto refused = s->make_pool_policy(0, other);
    REQUIRE_FALSE(refused);
    CHECK(contains(refused.err().message(), "belongs to lcore " + std::to_string(s->plan().lcore(1).lcore_id)));
    // A reply to an address that is not a LIP has no owner.
    CHECK(s->owner().owner_of_lip(addr("198.18.9.9")) == fnat::dpdk::reply_owner::npos);
  }
  // The same on a driver the quirk table knows (i40e: partial masks validate but do not steer).
  test_nic i40e(3, "net_i40e");
  auto s = steering::make(i40e.ops(), config(3, make_lips(3)));
  REQUIRE(s);
  CHECK(s->mode() == reply_steering_mode::lip_per_lcore);
  REQUIRE(s->skipped().size() == 1);
  CHECK(contains(s->skipped()[0].reason, "DPVS #433"));
  check_invariant(*s, i40e.model);
}

TEST_CASE("too few LIPs for one per lcore, or no rte_flow at all: RSS. No RSS either: redirect",
          "[reply_steering][fallback]") {
  {
    test_nic nic(5);
    nic.lim.no_masked_ports = true;
    auto s = steering::make(nic.ops(), config(5, make_lips(2)));  // 4 LIPs for 5 lcores
    REQUIRE(s);
    CHECK(s->mode() == reply_steering_mode::rss);
    REQUIRE(s->skipped().size() == 2);
    CHECK(s->skipped()[1].mode == reply_steering_mode::lip_per_lcore);
    CHECK(s->skipped()[1].code == errc::invalid_argument);
    CHECK(contains(s->skipped()[1].reason, "needs at least 5 LIPs"));
    CHECK(contains(s->skipped()[1].reason, "add 1 LIP"));
    check_invariant(*s, nic.model);
  }
  {
    test_nic nic(7);
    nic.lim.no_flow = true;
    auto s = steering::make(nic.ops(), config(7, make_lips(7)));
    REQUIRE(s);
    CHECK(s->mode() == reply_steering_mode::rss);
    REQUIRE(s->skipped().size() == 2);
    for (const auto& sk : s->skipped()) {
      CHECK(sk.code == errc::not_supported);
      CHECK(contains(sk.reason, "Function not implemented"));
    }
    CHECK(nic.model.rule_count() == 0);
    check_invariant(*s, nic.model);
  }
  {
    test_nic nic(6);
    nic.lim.no_flow = true;
    nic.lim.no_rss = true;
    auto s = steering::make(nic.ops(), config(6, make_lips(6)));
    REQUIRE(s);
    CHECK(s->mode() == reply_steering_mode::redirect);
    REQUIRE(s->skipped().size() == 3);
    CHECK(s->skipped()[2].mode == reply_steering_mode::rss);
    CHECK(contains(s->skipped()[2].reason, "reta_size 0"));
    check_invariant(*s, nic.model);
    const std::string d = s->describe();
    CHECK(contains(d, "skipped flow"));
    CHECK(contains(d, "skipped lip_per_lcore"));
    CHECK(contains(d, "skipped rss"));
  }
}

TEST_CASE("a failure part way leaves nothing installed, in every mode, and a forced mode reports why",
          "[reply_steering][rollback]") {
  {
    // The table fills after 5 rules: flow rolls back, lip_per_lcore cannot start, RSS is taken.
    test_nic nic(3);
    nic.lim.fail_create_from = 5;
    auto s = steering::make(nic.ops(), config(3, make_lips(3)));
    REQUIRE(s);
    CHECK(s->mode() == reply_steering_mode::rss);
    CHECK(nic.model.rule_count() == 0);
    REQUIRE(s->skipped().size() == 2);
    CHECK(contains(s->skipped()[0].reason, "no free flow director entry"));
    CHECK(contains(s->skipped()[0].reason, "nothing was left installed"));
  }
  {
    // LIP-per-lcore fails on its third rule (masked ports refused before any create): all gone.
    test_nic nic(3);
    nic.lim.no_masked_ports = true;
    nic.lim.fail_create_from = 2;
    auto s = steering::make(nic.ops(), config(3, make_lips(3), {reply_steering_mode::lip_per_lcore}));
    REQUIRE_FALSE(s);
    CHECK(s.err().code() == errc::device_error);
    CHECK(contains(s.err().message(), "steering = lip_per_lcore was asked for"));
    CHECK(contains(s.err().message(), "no free flow director entry"));
    CHECK(nic.model.rule_count() == 0);
  }
  {
    // RSS programmed, then the RSS-aware policy cannot be built (too many buckets for the limit):
    // the RETA and key read before are written back.
    test_nic nic(6);
    const std::vector<std::uint16_t> before(nic.model.reta().begin(), nic.model.reta().end());
    auto cfg = config(6, make_lips(1), {reply_steering_mode::rss, reply_steering_mode::redirect});
    cfg.rss_max_buckets = 1;
    auto s = steering::make(nic.ops(), cfg);
    REQUIRE(s);
    CHECK(s->mode() == reply_steering_mode::redirect);
    REQUIRE(s->skipped().size() == 1);
    CHECK(contains(s->skipped()[0].reason, "max_buckets"));
    CHECK(std::vector<std::uint16_t>(nic.model.reta().begin(), nic.model.reta().end()) == before);
  }
  {
    // Without redirect in the list, no mode: the error lists every reason.
    test_nic nic(4);
    nic.lim.no_flow = true;
    nic.lim.no_rss = true;
    auto s = steering::make(nic.ops(), config(4, make_lips(4), {reply_steering_mode::flow, reply_steering_mode::rss}));
    REQUIRE_FALSE(s);
    CHECK(contains(s.err().message(), "no mode could be had"));
    CHECK(contains(s.err().message(), "flow: "));
    CHECK(contains(s.err().message(), "rss: "));
    CHECK(contains(s.err().message(), "add redirect"));
  }
}

TEST_CASE("class bits follow the rule budget, bad configurations are refused with a fix", "[reply_steering][config]") {
  test_nic nic(3);
  // 2 LIPs x 2 protocols: 1024 rules allow 256 classes, 4 bits are enough for 0.94.
  auto s = steering::make(nic.ops(), config(3, make_lips(1), {reply_steering_mode::flow}));
  REQUIRE(s);
  CHECK(s->plan().shift() == 4);
  CHECK(s->flows().size() == 2 * 2 * 16);
  CHECK(contains(s->describe(), "class bits 4 (smallest lcore share 0.93"));
  s = steering::make(nic.ops(), [] {
    auto c = config(3, make_lips(1), {reply_steering_mode::flow});
    c.rule_budget = 16;  // 4 classes: the fewest bits, 2:1:1
    return c;
  }());
  REQUIRE(s);
  CHECK(s->plan().shift() == 2);
  CHECK_FALSE(s->class_bits().target_met);
  CHECK(contains(s->describe(), "below the target"));
  // A plan's own class bits are kept.
  auto fixed = config(3, make_lips(1), {reply_steering_mode::redirect});
  fixed.plan.class_bits = 8;
  s = steering::make(nic.ops(), fixed);
  REQUIRE(s);
  CHECK(s->plan().shift() == 8);

  auto none = steering::make(nic.ops(), config(3, {}));
  REQUIRE_FALSE(none);
  CHECK(contains(none.err().message(), "has no LIP"));
  auto twice = steering::make(nic.ops(), config(3, {addr("198.18.0.1"), addr("198.18.0.1")}));
  REQUIRE_FALSE(twice);
  CHECK(contains(twice.err().message(), "listed twice"));
  auto modes = steering::make(nic.ops(), config(3, make_lips(1), {reply_steering_mode::rss, reply_steering_mode::rss}));
  REQUIRE_FALSE(modes);
  CHECK(contains(modes.err().message(), "mode rss is listed twice"));
  auto word = fnat::dpdk::parse_reply_steering_mode("lip_per_lcore");
  REQUIRE(word);
  CHECK(*word == reply_steering_mode::lip_per_lcore);
  CHECK(contains(fnat::dpdk::parse_reply_steering_mode("auto").err().message(), "use flow, lip_per_lcore, rss or redirect"));
}

TEST_CASE("the probe says what each mode would get without installing anything", "[reply_steering][probe]") {
  {
    test_nic nic(4);
    const std::vector<std::uint16_t> before(nic.model.reta().begin(), nic.model.reta().end());
    auto p = fnat::dpdk::probe_reply_steering(nic.ops(), config(4, make_lips(2)));
    REQUIRE(p);
    CHECK(nic.model.rule_count() == 0);
    CHECK(std::vector<std::uint16_t>(nic.model.reta().begin(), nic.model.reta().end()) == before);
    REQUIRE(p->modes.size() == 4);
    for (const auto& a : p->modes) CHECK(a.accepted);
    CHECK(p->would_choose == reply_steering_mode::flow);
    CHECK(p->reta_size == 128);
    CHECK(p->key_size == 40);
    CHECK(p->reta_programmable);
    CHECK(p->key_programmable);
    CHECK(contains(p->describe(), "would choose: flow"));
  }
  {
    test_nic nic(4);
    nic.lim.no_masked_ports = true;
    nic.lim.no_rss = true;
    auto p = fnat::dpdk::probe_reply_steering(nic.ops(), config(4, make_lips(1)));  // 2 LIPs, 4 lcores
    REQUIRE(p);
    CHECK_FALSE(p->modes[0].accepted);
    CHECK(contains(p->modes[0].detail, "partial L4 port mask not supported"));
    CHECK_FALSE(p->modes[1].accepted);  // the NIC would, but 2 LIPs cannot serve 4 lcores
    CHECK(contains(p->modes[1].detail, "the NIC accepts address-only rules"));
    CHECK_FALSE(p->modes[2].accepted);
    CHECK_FALSE(p->reta_programmable);
    CHECK(p->would_choose == reply_steering_mode::redirect);
    CHECK(contains(p->describe(), "would choose: redirect"));
  }
}
