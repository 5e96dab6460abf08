// SPDX-License-Identifier: BSD-3-Clause
// The software NIC model: RSS known answers, rte_flow matching semantics, loud refusals, the mbuf path,
// the wire into net_ring ports, and models served as ports (nic_model_ports / nic_model_ops).
#include <fnat/dpdk/nic_model.hpp>

#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_mbuf.h>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "support/eal.hpp"
#include "support/nic_wire.hpp"

using fnat::errc;
using inet = fnat::inet_addr;
using fnat::dpdk::nic_model;
using fnat::dpdk::nic_model_config;
using fnat::test::make_frame;

namespace {

inet addr(const char* s) { return *inet::parse(s); }

nic_model make_model(std::uint16_t queues, std::uint16_t reta_size = 128) {
  auto m = nic_model::make({.rx_queues = queues, .reta_size = reta_size});
  REQUIRE(m);
  return std::move(*m);
}

rte_flow_attr ingress(std::uint32_t priority = 0) {
  rte_flow_attr a{};
  a.ingress = 1;
  a.priority = priority;
  return a;
}

rte_flow_item item(rte_flow_item_type t, const void* spec = nullptr, const void* mask = nullptr,
                   const void* last = nullptr) {
  rte_flow_item it{};
  it.type = t;
  it.spec = spec;
  it.mask = mask;
  it.last = last;
  return it;
}

rte_flow_action action(rte_flow_action_type t, const void* conf = nullptr) {
  rte_flow_action a{};
  a.type = t;
  a.conf = conf;
  return a;
}

// A QUEUE rule "ipv4 dst = addr / tcp dst port & mask = base".
struct v4_tcp_rule {
  rte_flow_item_ipv4 ip_spec{}, ip_mask{};
  rte_flow_item_tcp tcp_spec{}, tcp_mask{};
  rte_flow_action_queue q{};
  std::array<rte_flow_item, 4> pattern{};
  std::array<rte_flow_action, 2> actions{};
  v4_tcp_rule(const char* dst, std::uint16_t base, std::uint16_t mask, std::uint16_t queue) {
    ip_spec.hdr.dst_addr = addr(dst).v4().be;
    ip_mask.hdr.dst_addr = 0xffffffffu;
    tcp_spec.hdr.dst_port = fnat::hton16(base);
    tcp_mask.hdr.dst_port = fnat::hton16(mask);
    q.index = queue;
    pattern = {item(RTE_FLOW_ITEM_TYPE_ETH), item(RTE_FLOW_ITEM_TYPE_IPV4, &ip_spec, &ip_mask),
               item(RTE_FLOW_ITEM_TYPE_TCP, &tcp_spec, &tcp_mask), item(RTE_FLOW_ITEM_TYPE_END)};
    actions = {action(RTE_FLOW_ACTION_TYPE_QUEUE, &q), action(RTE_FLOW_ACTION_TYPE_END)};
  }
  v4_tcp_rule(const v4_tcp_rule&) = delete;
};

std::vector<std::uint8_t> tcp4(const char* src, std::uint16_t sport, const char* dst, std::uint16_t dport) {
  return make_frame({.proto = fnat::ipproto::tcp, .src = addr(src), .sport = sport, .dst = addr(dst), .dport = dport});
}

}  // namespace

TEST_CASE("RSS fallback reproduces Microsoft's published Toeplitz verification hashes", "[nic_model]") {
  // "Verifying the RSS Hash Calculation" (Microsoft), default key: the first row of each table.
  auto m = make_model(16, 128);
  const auto f4 = tcp4("66.9.149.187", 2794, "161.142.100.80", 1766);
  auto s = m.steer(f4);
  REQUIRE(s.hashed);
  REQUIRE(s.rule == 0);
  REQUIRE(s.hash == 0x51ccc178u);
  REQUIRE(s.queue == m.reta()[0x51ccc178u & 127]);
  const auto f6 = make_frame({.proto = fnat::ipproto::tcp,
                              .src = addr("3ffe:2501:200:1fff::7"),
                              .sport = 2794,
                              .dst = addr("3ffe:2501:200:3::1"),
                              .dport = 1766});
  s = m.steer(f6);
  REQUIRE(s.hashed);
  REQUIRE(s.hash == 0x40207d3du);
  // IP-only types hash the addresses alone.
  REQUIRE(m.set_rss(m.rss_key(), RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_IPV6));
  REQUIRE(m.steer(f4).hash == 0x323e8fc2u);
  REQUIRE(m.steer(f6).hash == 0x2cc18cd5u);
  // UDP with only TCP types enabled and no IP type: not hashed, queue 0.
  REQUIRE(m.set_rss(m.rss_key(), RTE_ETH_RSS_NONFRAG_IPV4_TCP));
  REQUIRE(m.steer(f4).hash == 0x51ccc178u);
  const auto u4 = make_frame({.proto = fnat::ipproto::udp,
                              .src = addr("66.9.149.187"),
                              .sport = 2794,
                              .dst = addr("161.142.100.80"),
                              .dport = 1766});
  s = m.steer(u4);
  REQUIRE_FALSE(s.hashed);
  REQUIRE(s.queue == 0);
  // An IPv4 fragment hashes on addresses only (FRAG_IPV4), never on ports.
  REQUIRE(m.set_rss(m.rss_key(), RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP));
  auto frag = f4;
  frag[14 + 6] = 0x20;  // MF
  s = m.steer(frag);
  REQUIRE(s.hashed);
  REQUIRE(s.hash == 0x323e8fc2u);
  // Not IP at all: queue 0, not hashed.
  auto arp = f4;
  arp[12] = 0x08;
  arp[13] = 0x06;
  REQUIRE_FALSE(m.steer(arp).hashed);
  REQUIRE(m.steer(std::span<const std::uint8_t>(f4.data(), 10)).queue == 0);  // runt
}

TEST_CASE("RSS fallback is reta[toeplitz(key, tuple) & (size - 1)] for any key and table", "[nic_model]") {
  std::mt19937 rng(3);
  for (std::uint16_t size : {64, 128, 512}) {
    std::vector<std::uint16_t> reta(size);
    for (auto& e : reta) e = static_cast<std::uint16_t>(rng() % 7);
    std::vector<std::uint8_t> key(52);
    for (auto& b : key) b = static_cast<std::uint8_t>(rng());
    auto m = nic_model::make({.rx_queues = 7, .reta_size = size, .rss_key = key, .reta = reta});
    REQUIRE(m);
    for (int i = 0; i < 300; ++i) {
      const bool v6 = i % 2 == 1;
      inet src, dst;
      if (v6) {
        fnat::ipv6_addr a, b;
        for (auto& x : a.bytes) x = static_cast<std::uint8_t>(rng());
        for (auto& x : b.bytes) x = static_cast<std::uint8_t>(rng());
        a.bytes[0] = b.bytes[0] = 0x20;  // never IPv4-mapped
        src = a;
        dst = b;
      } else {
        src = fnat::ipv4_addr{static_cast<std::uint32_t>(rng())};
        dst = fnat::ipv4_addr{static_cast<std::uint32_t>(rng())};
      }
      const auto sport = static_cast<std::uint16_t>(rng()), dport = static_cast<std::uint16_t>(rng());
      const std::uint8_t proto = i % 4 < 2 ? fnat::ipproto::tcp : fnat::ipproto::udp;
      const auto f = make_frame({.proto = proto, .src = src, .sport = sport, .dst = dst, .dport = dport});
      std::vector<std::uint8_t> in;
      const std::size_t alen = v6 ? 16 : 4;
      in.insert(in.end(), src.raw().end() - static_cast<std::ptrdiff_t>(alen), src.raw().end());
      in.insert(in.end(), dst.raw().end() - static_cast<std::ptrdiff_t>(alen), dst.raw().end());
      for (std::uint16_t p : {sport, dport}) {
        in.push_back(static_cast<std::uint8_t>(p >> 8));
        in.push_back(static_cast<std::uint8_t>(p));
      }
      const std::uint32_t h = fnat::toeplitz_hash_reference(key, in);
      const auto s = m->steer(f);
      REQUIRE(s.hashed);
      REQUIRE(s.hash == h);
      REQUIRE(s.queue == reta[h & (size - 1)]);
    }
  }
}

TEST_CASE("the model's fast Toeplitz agrees with the bit-serial reference: every input shape, key changes, "
          "RSS action keys, copies",
          "[nic_model]") {
  // The model hashes with fnat::toeplitz (built once per key); the reference is the definition.
  std::mt19937 rng(11);
  auto random_key = [&](std::size_t n) {
    std::vector<std::uint8_t> k(n);
    for (auto& b : k) b = static_cast<std::uint8_t>(rng());
    return k;
  };
  auto m = nic_model::make({.rx_queues = 8, .reta_size = 512, .rss_key = random_key(40)});
  REQUIRE(m);
  const std::uint16_t rss_queues[] = {1, 4, 6, 7, 3};
  const auto action_key = random_key(52);
  rte_flow_action_rss rss{};
  rss.types = RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV4;
  rss.key_len = static_cast<std::uint32_t>(action_key.size());
  rss.key = action_key.data();
  rss.queue_num = 5;
  rss.queue = rss_queues;
  rte_flow_item_ipv4 ip_spec{}, ip_mask{};
  ip_spec.hdr.dst_addr = addr("198.18.7.7").v4().be;
  ip_mask.hdr.dst_addr = 0xffffffffu;
  const rte_flow_item pattern[] = {item(RTE_FLOW_ITEM_TYPE_IPV4, &ip_spec, &ip_mask), item(RTE_FLOW_ITEM_TYPE_END)};
  const rte_flow_action actions[] = {action(RTE_FLOW_ACTION_TYPE_RSS, &rss), action(RTE_FLOW_ACTION_TYPE_END)};
  const auto attr = ingress();
  REQUIRE(m->create(&attr, pattern, actions));

  auto reference = [](std::span<const std::uint8_t> key, const inet& src, const inet& dst, std::uint16_t sport,
                      std::uint16_t dport, bool ports) {
    std::vector<std::uint8_t> in;
    const std::size_t alen = src.is_v4() ? 4 : 16;
    in.insert(in.end(), src.raw().end() - static_cast<std::ptrdiff_t>(alen), src.raw().end());
    in.insert(in.end(), dst.raw().end() - static_cast<std::ptrdiff_t>(alen), dst.raw().end());
    if (ports)
      for (std::uint16_t p : {sport, dport}) {
        in.push_back(static_cast<std::uint8_t>(p >> 8));
        in.push_back(static_cast<std::uint8_t>(p));
      }
    return fnat::toeplitz_hash_reference(key, in);
  };
  auto random_addr = [&](bool v6) -> inet {
    if (!v6) return fnat::ipv4_addr{static_cast<std::uint32_t>(rng())};
    fnat::ipv6_addr a;
    for (auto& x : a.bytes) x = static_cast<std::uint8_t>(rng());
    a.bytes[0] = 0x20;
    return a;
  };
  nic_model original = std::move(*m);
  for (int round = 0; round < 3; ++round) {
    // Round 1 changes the port's key (the hasher must follow), round 2 checks a copy of the model.
    if (round == 1) REQUIRE(original.set_rss(random_key(52), fnat::dpdk::nic_model_rss_types));
    const nic_model copy = original;
    const nic_model& model = round == 2 ? copy : original;
    const std::vector<std::uint8_t> port_key(model.rss_key().begin(), model.rss_key().end());
    int mismatches = 0;
    for (int i = 0; i < 400; ++i) {
      const bool v6 = i % 2 == 1, udp = i % 3 == 0, to_rule = !v6 && i % 5 == 0;
      const inet src = random_addr(v6);
      const inet dst = to_rule ? addr("198.18.7.7") : random_addr(v6);
      const auto sport = static_cast<std::uint16_t>(rng()), dport = static_cast<std::uint16_t>(rng());
      auto f = make_frame({.proto = udp ? fnat::ipproto::udp : fnat::ipproto::tcp,
                           .src = src,
                           .sport = sport,
                           .dst = dst,
                           .dport = dport});
      const bool fragment = !v6 && i % 7 == 0;  // addresses only
      if (fragment) f[14 + 6] = 0x20;
      const auto s = model.steer(f);
      REQUIRE(s.hashed);
      if (to_rule) {
        // The rule's own key and types: UDP over its 4-tuple, TCP and fragments over the addresses.
        const std::uint32_t h = reference(action_key, src, dst, sport, dport, udp && !fragment);
        mismatches += s.hash != h || s.queue != rss_queues[(h & 7) % 5] ? 1 : 0;
      } else {
        const std::uint32_t h = reference(port_key, src, dst, sport, dport, !fragment);
        mismatches += s.hash != h || s.queue != model.reta()[h & 511] ? 1 : 0;
      }
    }
    REQUIRE(mismatches == 0);
  }
}

TEST_CASE("rules: first match by priority then creation - QUEUE, DROP and RSS fates - destroy", "[nic_model]") {
  auto m = make_model(8);
  v4_tcp_rule low("198.18.0.1", 0, 0, 5);        // every TCP port, priority 2
  v4_tcp_rule high("198.18.0.1", 0x3, 0x7, 3);   // class 3 of 8, priority 1
  v4_tcp_rule later("198.18.0.1", 0x3, 0x7, 4);  // same match, same priority, created later
  const auto a2 = ingress(2), a1 = ingress(1);
  auto id_low = m.create(&a2, low.pattern.data(), low.actions.data());
  auto id_high = m.create(&a1, high.pattern.data(), high.actions.data());
  auto id_later = m.create(&a1, later.pattern.data(), later.actions.data());
  REQUIRE(id_low);
  REQUIRE(id_high);
  REQUIRE(id_later);
  REQUIRE(m.rule_count() == 3);
  auto s = m.steer(tcp4("198.18.2.1", 80, "198.18.0.1", 1027));  // 1027 & 7 == 3
  REQUIRE(s.queue == 3);
  REQUIRE(s.rule == *id_high);
  REQUIRE_FALSE(s.hashed);
  s = m.steer(tcp4("198.18.2.1", 80, "198.18.0.1", 1028));
  REQUIRE(s.queue == 5);
  REQUIRE(s.rule == *id_low);
  REQUIRE(m.steer(tcp4("198.18.2.1", 80, "198.18.0.9", 1027)).rule == 0);  // other address: RSS
  REQUIRE(m.destroy(*id_high));
  REQUIRE(m.steer(tcp4("198.18.2.1", 80, "198.18.0.1", 1027)).rule == *id_later);
  REQUIRE_FALSE(m.destroy(*id_high));

  // DROP, and RSS over a queue subset with its own key.
  rte_flow_item_udp u{}, um{};
  u.hdr.dst_port = fnat::hton16(53);
  um.hdr.dst_port = 0xffff;
  const rte_flow_item drop_pattern[] = {item(RTE_FLOW_ITEM_TYPE_UDP, &u, &um), item(RTE_FLOW_ITEM_TYPE_END)};
  const rte_flow_action drop_actions[] = {action(RTE_FLOW_ACTION_TYPE_DROP), action(RTE_FLOW_ACTION_TYPE_END)};
  const auto a0 = ingress(0);
  REQUIRE(m.create(&a0, drop_pattern, drop_actions));
  const auto dns = make_frame(
      {.proto = fnat::ipproto::udp, .src = addr("198.18.2.1"), .sport = 999, .dst = addr("198.18.0.7"), .dport = 53});
  REQUIRE(m.steer(dns).drop);

  const std::uint16_t rss_queues[] = {6, 2, 7};
  rte_flow_action_rss rss{};
  rss.types = RTE_ETH_RSS_NONFRAG_IPV6_TCP;
  rss.key_len = static_cast<std::uint32_t>(fnat::rss_key_symmetric.size());
  rss.key = fnat::rss_key_symmetric.data();
  rss.queue_num = 3;
  rss.queue = rss_queues;
  const rte_flow_item rss_pattern[] = {item(RTE_FLOW_ITEM_TYPE_IPV6), item(RTE_FLOW_ITEM_TYPE_TCP),
                                       item(RTE_FLOW_ITEM_TYPE_END)};
  const rte_flow_action rss_actions[] = {action(RTE_FLOW_ACTION_TYPE_RSS, &rss), action(RTE_FLOW_ACTION_TYPE_END)};
  REQUIRE(m.create(&a0, rss_pattern, rss_actions));
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    const auto sp = static_cast<std::uint16_t>(rng()), dp = static_cast<std::uint16_t>(rng());
    const auto fwd = make_frame(
        {.proto = fnat::ipproto::tcp, .src = addr("2001:2::1"), .sport = sp, .dst = addr("2001:2::2:5"), .dport = dp});
    const auto rev = make_frame(
        {.proto = fnat::ipproto::tcp, .src = addr("2001:2::2:5"), .sport = dp, .dst = addr("2001:2::1"), .dport = sp});
    const auto s1 = m.steer(fwd), s2 = m.steer(rev);
    REQUIRE(s1.hashed);
    REQUIRE((s1.queue == 6 || s1.queue == 2 || s1.queue == 7));
    REQUIRE(s1.queue == rss_queues[(s1.hash & 3) % 3]);  // mlx5's table: 4 entries, queue[i mod 3]
    REQUIRE(s1.queue == s2.queue);                       // symmetric key: both directions alike
  }
  m.flush();
  REQUIRE(m.rule_count() == 0);
}

TEST_CASE("matching follows rte_flow: default masks, ranges, skipped layers, fragments", "[nic_model]") {
  auto m = make_model(4);
  const auto a = ingress();
  const rte_flow_action_queue q1{1}, q2{2}, q3{3};
  const rte_flow_action to1[] = {action(RTE_FLOW_ACTION_TYPE_QUEUE, &q1), action(RTE_FLOW_ACTION_TYPE_END)};
  const rte_flow_action to2[] = {action(RTE_FLOW_ACTION_TYPE_QUEUE, &q2), action(RTE_FLOW_ACTION_TYPE_END)};
  const rte_flow_action to3[] = {action(RTE_FLOW_ACTION_TYPE_QUEUE, &q3), action(RTE_FLOW_ACTION_TYPE_END)};

  // Spec without mask: the default mask (src and dst port) applies; no ETH item: any L2.
  rte_flow_item_tcp t{};
  t.hdr.src_port = fnat::hton16(80);
  t.hdr.dst_port = fnat::hton16(5000);
  const rte_flow_item p1[] = {item(RTE_FLOW_ITEM_TYPE_IPV4), item(RTE_FLOW_ITEM_TYPE_TCP, &t),
                              item(RTE_FLOW_ITEM_TYPE_END)};
  REQUIRE(m.create(&a, p1, to1));
  REQUIRE(m.steer(tcp4("198.18.2.1", 80, "198.18.0.1", 5000)).queue == 1);
  REQUIRE(m.steer(tcp4("198.18.2.1", 81, "198.18.0.1", 5000)).rule == 0);
  // A first fragment carries the TCP header, yet a NIC classifies it as a fragment: no L4 match.
  auto frag = tcp4("198.18.2.1", 80, "198.18.0.1", 5000);
  frag[14 + 6] = 0x20;
  REQUIRE(m.steer(frag).rule == 0);

  // A range on the destination port (last), masked: ports 6000..6099.
  rte_flow_item_udp lo{}, hi{}, mk{};
  lo.hdr.dst_port = fnat::hton16(6000);
  hi.hdr.dst_port = fnat::hton16(6099);
  mk.hdr.dst_port = 0xffff;
  const rte_flow_item p2[] = {item(RTE_FLOW_ITEM_TYPE_ETH), item(RTE_FLOW_ITEM_TYPE_UDP, &lo, &mk, &hi),
                              item(RTE_FLOW_ITEM_TYPE_END)};
  REQUIRE(m.create(&a, p2, to2));
  auto udp_to = [](std::uint16_t port, const char* dst) {
    const inet d = addr(dst);
    return make_frame({.proto = fnat::ipproto::udp,
                       .src = d.is_v4() ? addr("198.18.2.1") : addr("2001:2::9"),
                       .sport = 7,
                       .dst = d,
                       .dport = port});
  };
  REQUIRE(m.steer(udp_to(5999, "198.18.0.1")).rule == 0);
  REQUIRE(m.steer(udp_to(6000, "198.18.0.1")).queue == 2);
  REQUIRE(m.steer(udp_to(6099, "2001:2::1")).queue == 2);  // no L3 item: either family
  REQUIRE(m.steer(udp_to(6100, "198.18.0.1")).rule == 0);

  // An IPv6 /64 prefix and the Ethernet type field.
  rte_flow_item_ipv6 v6{}, v6m{};
  const auto net = addr("2001:2:0:7::").raw();
  for (int i = 0; i < 8; ++i) {
    v6.hdr.dst_addr[i] = net[static_cast<std::size_t>(i)];
    v6m.hdr.dst_addr[i] = 0xff;
  }
  rte_flow_item_eth e{}, em{};
  e.hdr.ether_type = fnat::hton16(0x86dd);
  em.hdr.ether_type = 0xffff;
  const rte_flow_item p3[] = {item(RTE_FLOW_ITEM_TYPE_ETH, &e, &em), item(RTE_FLOW_ITEM_TYPE_VOID),
                              item(RTE_FLOW_ITEM_TYPE_IPV6, &v6, &v6m), item(RTE_FLOW_ITEM_TYPE_END)};
  REQUIRE(m.create(&a, p3, to3));
  auto tcp6 = [](const char* dst) {
    return make_frame(
        {.proto = fnat::ipproto::tcp, .src = addr("2001:2::9"), .sport = 1, .dst = addr(dst), .dport = 2});
  };
  REQUIRE(m.steer(tcp6("2001:2:0:7::1234")).queue == 3);
  REQUIRE(m.steer(tcp6("2001:2:0:8::1234")).rule == 0);
}

TEST_CASE("rules the model cannot model are refused loudly, with the reason", "[nic_model]") {
  auto m = make_model(4);
  const rte_flow_action_queue q{1}, bad_q{9};
  const rte_flow_action to1[] = {action(RTE_FLOW_ACTION_TYPE_QUEUE, &q), action(RTE_FLOW_ACTION_TYPE_END)};
  const rte_flow_item any_tcp[] = {item(RTE_FLOW_ITEM_TYPE_TCP), item(RTE_FLOW_ITEM_TYPE_END)};
  auto refused = [&](const rte_flow_attr& a, const rte_flow_item* p, const rte_flow_action* acts, errc code,
                     const char* words) {
    auto r = m.check(&a, p, acts);
    REQUIRE(r.has_value());
    INFO(r->message);
    REQUIRE(r->code == code);
    REQUIRE(r->message.find(words) != std::string::npos);
    REQUIRE_FALSE(m.create(&a, p, acts));
    REQUIRE(m.rule_count() == 0);
  };
  rte_flow_attr a = ingress();
  a.group = 1;
  refused(a, any_tcp, to1, errc::not_supported, "only group 0");
  a = ingress();
  a.egress = 1;
  refused(a, any_tcp, to1, errc::not_supported, "only ingress");
  a = ingress();
  const rte_flow_item vlan[] = {item(RTE_FLOW_ITEM_TYPE_ETH), item(RTE_FLOW_ITEM_TYPE_VLAN),
                                item(RTE_FLOW_ITEM_TYPE_END)};
  refused(a, vlan, to1, errc::not_supported, "only ETH, IPV4, IPV6, TCP, UDP");
  const rte_flow_item upside_down[] = {item(RTE_FLOW_ITEM_TYPE_TCP), item(RTE_FLOW_ITEM_TYPE_IPV4),
                                       item(RTE_FLOW_ITEM_TYPE_END)};
  refused(a, upside_down, to1, errc::not_supported, "lowest layer first");
  const rte_flow_item twice[] = {item(RTE_FLOW_ITEM_TYPE_IPV4), item(RTE_FLOW_ITEM_TYPE_IPV6),
                                 item(RTE_FLOW_ITEM_TYPE_END)};
  refused(a, twice, to1, errc::not_supported, "one per layer");
  rte_flow_item_tcp spec{}, mask{};
  spec.hdr.dst_port = fnat::hton16(0x0013);  // bit 4 set
  mask.hdr.dst_port = fnat::hton16(0x0007);
  const rte_flow_item unmasked[] = {item(RTE_FLOW_ITEM_TYPE_TCP, &spec, &mask), item(RTE_FLOW_ITEM_TYPE_END)};
  refused(a, unmasked, to1, errc::not_supported, "AND the spec with the mask");
  const rte_flow_item mask_only[] = {item(RTE_FLOW_ITEM_TYPE_TCP, nullptr, &mask), item(RTE_FLOW_ITEM_TYPE_END)};
  refused(a, mask_only, to1, errc::not_supported, "mask or last without spec");
  rte_flow_item_eth e{}, em{};
  em.has_vlan = 1;
  const rte_flow_item vlan_flag[] = {item(RTE_FLOW_ITEM_TYPE_ETH, &e, &em), item(RTE_FLOW_ITEM_TYPE_END)};
  refused(a, vlan_flag, to1, errc::not_supported, "has_vlan");
  rte_flow_item_udp lo{}, hi{}, um{};
  lo.hdr.dst_port = fnat::hton16(100);
  hi.hdr.dst_port = fnat::hton16(50);
  um.hdr.dst_port = 0xffff;
  const rte_flow_item empty_range[] = {item(RTE_FLOW_ITEM_TYPE_UDP, &lo, &um, &hi), item(RTE_FLOW_ITEM_TYPE_END)};
  refused(a, empty_range, to1, errc::invalid_argument, "last below spec");
  const rte_flow_action to9[] = {action(RTE_FLOW_ACTION_TYPE_QUEUE, &bad_q), action(RTE_FLOW_ACTION_TYPE_END)};
  refused(a, any_tcp, to9, errc::invalid_argument, "queue 9 does not exist");
  const rte_flow_action mark[] = {action(RTE_FLOW_ACTION_TYPE_COUNT), action(RTE_FLOW_ACTION_TYPE_QUEUE, &q),
                                  action(RTE_FLOW_ACTION_TYPE_END)};
  refused(a, any_tcp, mark, errc::not_supported, "only QUEUE, DROP, RSS");
  const rte_flow_action two[] = {action(RTE_FLOW_ACTION_TYPE_QUEUE, &q), action(RTE_FLOW_ACTION_TYPE_DROP),
                                 action(RTE_FLOW_ACTION_TYPE_END)};
  refused(a, any_tcp, two, errc::not_supported, "second fate");
  const rte_flow_action none[] = {action(RTE_FLOW_ACTION_TYPE_END)};
  refused(a, any_tcp, none, errc::not_supported, "no fate action");
  const std::uint16_t qs[] = {0, 1};
  rte_flow_action_rss xor_rss{};
  xor_rss.func = RTE_ETH_HASH_FUNCTION_SIMPLE_XOR;
  xor_rss.queue_num = 2;
  xor_rss.queue = qs;
  const rte_flow_action xr[] = {action(RTE_FLOW_ACTION_TYPE_RSS, &xor_rss), action(RTE_FLOW_ACTION_TYPE_END)};
  refused(a, any_tcp, xr, errc::not_supported, "only Toeplitz");
  rte_flow_action_rss sctp = xor_rss;
  sctp.func = RTE_ETH_HASH_FUNCTION_TOEPLITZ;
  sctp.types = RTE_ETH_RSS_NONFRAG_IPV4_SCTP;
  const rte_flow_action sr[] = {action(RTE_FLOW_ACTION_TYPE_RSS, &sctp), action(RTE_FLOW_ACTION_TYPE_END)};
  refused(a, any_tcp, sr, errc::not_supported, "are not modelled");
  // The permissive setting models the rte_flow text (spec ANDed with mask) instead.
  auto lax = nic_model::make({.rx_queues = 4, .refuse_unmasked_spec = false});
  REQUIRE(lax);
  REQUIRE(lax->create(&a, unmasked, to1));
  REQUIRE(lax->steer(tcp4("198.18.2.1", 1, "198.18.0.1", 0x0003)).queue == 1);  // 0x13 & 7 == 3
}

TEST_CASE("model configuration errors are reported", "[nic_model]") {
  REQUIRE_FALSE(nic_model::make({.rx_queues = 0}));
  REQUIRE_FALSE(nic_model::make({.reta_size = 100}));
  REQUIRE_FALSE(nic_model::make({.rss_key = std::vector<std::uint8_t>(20, 1)}));
  REQUIRE_FALSE(nic_model::make({.rss_hf = RTE_ETH_RSS_L2_PAYLOAD}));
  REQUIRE_FALSE(nic_model::make({.rx_queues = 2, .reta_size = 64, .reta = std::vector<std::uint16_t>(64, 2)}));
  auto e = nic_model::make({.rx_queues = 2, .reta_size = 64, .reta = std::vector<std::uint16_t>(32, 1)});
  REQUIRE_FALSE(e);
  REQUIRE(e.err().message().find("RETA of 32 entries") != std::string::npos);
}

TEST_CASE("mbufs steer like their bytes, segmented or not", "[nic_model][eal]") {
  fnat::test::require_eal();
  auto m = make_model(8);
  v4_tcp_rule r("198.18.0.1", 5, 7, 6);
  const auto a = ingress();
  REQUIRE(m.create(&a, r.pattern.data(), r.actions.data()));
  std::mt19937 rng(11);
  for (int i = 0; i < 64; ++i) {
    const auto f = tcp4("198.18.2.1", static_cast<std::uint16_t>(rng()), i % 2 ? "198.18.0.1" : "198.18.0.2",
                        static_cast<std::uint16_t>(rng()));
    rte_mbuf* one = fnat::test::make_mbuf(f);
    const auto expect = m.steer(f);
    REQUIRE(m.steer(one).queue == expect.queue);
    REQUIRE(m.steer(one).rule == expect.rule);
    // The same frame split after 20 bytes, mid IP header.
    rte_mbuf* head = rte_pktmbuf_alloc(fnat::test::mbuf_pool());
    rte_mbuf* tail = rte_pktmbuf_alloc(fnat::test::mbuf_pool());
    REQUIRE(head != nullptr);
    REQUIRE(tail != nullptr);
    std::memcpy(rte_pktmbuf_append(head, 20), f.data(), 20);
    std::memcpy(rte_pktmbuf_append(tail, static_cast<std::uint16_t>(f.size() - 20)), f.data() + 20, f.size() - 20);
    REQUIRE(rte_pktmbuf_chain(head, tail) == 0);
    const auto seg = m.steer(head);
    REQUIRE(seg.queue == expect.queue);
    REQUIRE(seg.rule == expect.rule);
    REQUIRE(seg.hash == expect.hash);
    rte_pktmbuf_free(one);
    rte_pktmbuf_free(head);
  }
}

TEST_CASE("the wire delivers each packet on the rx queue the model picks, through real rx bursts", "[nic_model][eal]") {
  fnat::test::require_eal();
  constexpr std::uint16_t queues = 4;
  fnat::test::ring_port port("nic_model_wire", queues);
  auto m = make_model(queues);
  // Class c of 4 (port & 3) -> queue 3 - c on 198.18.0.1; everything else by RSS.
  std::vector<std::unique_ptr<v4_tcp_rule>> rules;
  const auto a = ingress();
  for (std::uint16_t c = 0; c < 4; ++c) {
    rules.push_back(std::make_unique<v4_tcp_rule>("198.18.0.1", c, 3, static_cast<std::uint16_t>(3 - c)));
    REQUIRE(m.create(&a, rules.back()->pattern.data(), rules.back()->actions.data()));
  }
  std::vector<rte_mbuf*> burst;
  std::array<std::vector<std::uint16_t>, queues> expect;
  for (std::uint16_t p = 2000; p < 2064; ++p) {
    burst.push_back(fnat::test::make_mbuf(tcp4("198.18.2.1", 80, "198.18.0.1", p)));
    expect[3 - (p & 3)].push_back(p);
  }
  for (std::uint16_t p = 3000; p < 3032; ++p) {
    const auto f = tcp4("198.18.2.1", 80, "198.18.0.200", p);
    expect[m.steer(f).queue].push_back(p);
    burst.push_back(fnat::test::make_mbuf(f));
  }
  const auto st = fnat::test::wire_deliver(m, port, burst.data(), burst.size());
  REQUIRE(st.delivered == burst.size());
  for (std::uint16_t q = 0; q < queues; ++q) {
    std::vector<std::uint16_t> got;
    rte_mbuf* rx[128];
    const auto n = rte_eth_rx_burst(port.port_id(), q, rx, 128);
    for (std::uint16_t i = 0; i < n; ++i) {
      got.push_back(fnat::test::mbuf_dport(rx[i]));
      rte_pktmbuf_free(rx[i]);
    }
    INFO("queue " << q);
    REQUIRE(got == expect[q]);
  }
}

TEST_CASE("models served as ports answer the ethdev calls like a PMD", "[nic_model]") {
  auto m1 = make_model(4, 64);
  auto m2 = make_model(4, 64);
  fnat::dpdk::nic_model_ports ports;
  REQUIRE(ports.attach(1, m1, "net_fake"));
  REQUIRE(ports.attach(2, m2));
  REQUIRE_FALSE(ports.attach(1, m2));
  REQUIRE(ports.attach_bond(5, {1, 2}));
  REQUIRE_FALSE(ports.attach_bond(6, {1, 9}));
  auto ops = ports.ops();

  rte_eth_dev_info info{};
  REQUIRE(ops.dev_info(1, &info) == 0);
  REQUIRE(std::string(info.driver_name) == "net_fake");
  REQUIRE(info.reta_size == 64);
  REQUIRE(info.nb_rx_queues == 4);
  REQUIRE(info.hash_key_size == 40);
  REQUIRE(ops.dev_info(5, &info) == 0);
  REQUIRE(std::string(info.driver_name) == "net_bonding");
  REQUIRE(ops.dev_info(7, &info) == -ENODEV);
  std::uint16_t members[8];
  REQUIRE(ops.bond_members(5, members, 8) == 2);
  REQUIRE(members[0] == 1);
  REQUIRE(members[1] == 2);
  REQUIRE(ops.bond_members(1, members, 8) < 0);

  // rte_flow: errors carry a message that stays valid, and the flow handle maps back to the rule.
  v4_tcp_rule r("198.18.0.1", 1, 3, 9);  // queue 9 does not exist
  const auto a = ingress();
  rte_flow_error err{};
  REQUIRE(ops.flow_validate(1, &a, r.pattern.data(), r.actions.data(), &err) == -EINVAL);
  REQUIRE(err.type == RTE_FLOW_ERROR_TYPE_ACTION_CONF);
  REQUIRE(std::string(err.message).find("queue 9 does not exist") != std::string::npos);
  REQUIRE(ops.flow_validate(5, &a, r.pattern.data(), r.actions.data(), &err) == -ENOTSUP);  // a bond
  r.q.index = 2;
  rte_flow* f = nullptr;
  REQUIRE(ops.flow_create(1, &a, r.pattern.data(), r.actions.data(), &f, &err) == 0);
  REQUIRE(f != nullptr);
  REQUIRE(m1.rule_count() == 1);
  REQUIRE(m1.steer(tcp4("198.18.2.1", 1, "198.18.0.1", 5)).rule == fnat::dpdk::nic_model_ports::rule_of(f));
  REQUIRE(ops.flow_destroy(1, f, &err) == 0);
  REQUIRE(ops.flow_destroy(1, f, &err) == -EINVAL);
  REQUIRE(m1.rule_count() == 0);

  // RETA through the group-of-64 masks: only the masked entries change.
  std::vector<rte_eth_rss_reta_entry64> conf(1);
  conf[0].mask = 0x5;  // entries 0 and 2
  conf[0].reta[0] = 3;
  conf[0].reta[2] = 3;
  REQUIRE(ops.rss_reta_update(1, conf.data(), 64) == 0);
  REQUIRE(m1.reta()[0] == 3);
  REQUIRE(m1.reta()[1] == 1);
  REQUIRE(m1.reta()[2] == 3);
  REQUIRE(ops.rss_reta_update(1, conf.data(), 128) == -EINVAL);
  conf[0].mask = ~0ull;
  REQUIRE(ops.rss_reta_query(1, conf.data(), 64) == 0);
  REQUIRE(conf[0].reta[2] == 3);
  REQUIRE(conf[0].reta[3] == 3);
  conf[0].reta[7] = 4;  // no such queue
  REQUIRE(ops.rss_reta_update(1, conf.data(), 64) == -EINVAL);
}
