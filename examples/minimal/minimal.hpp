// SPDX-License-Identifier: BSD-3-Clause
// A complete FullNAT forwarder for one service (VIP:vport, TCP and UDP, IPv4 and IPv6) from fnat's
// public headers alone; main.cpp adds the command line, the ports and the lcores. The wiring, in the
// order docs/WIRING.md explains: 1. port plan; 2. per lcore, one sa_pool per LIP and a rotation over
// them; 3. per lcore, a session table; 4. reply steering; 5. per lcore, the rx/tx loop with expiry.
// Clients are on one port, real servers and LIPs on the other; each port sends every frame to one
// next-hop MAC and answers ARP / neighbour solicitations for the VIPs and LIPs.
#pragma once

#include <fnat/core.hpp>
#include <fnat/dpdk.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace minimal {

struct config {
  std::uint16_t client_port = 0, server_port = 1;  ///< ethdev ports: clients / real servers and LIPs
  std::vector<fnat::endpoint> vips;      ///< the service (TCP and UDP), at most one VIP per family
  std::vector<fnat::endpoint> servers;   ///< real servers; a client is sent to one of its family
  std::vector<fnat::inet_addr> lips;     ///< local addresses, at least one per family served
  fnat::mac_addr client_gw{}, server_gw{};  ///< the next hop of each port
  std::vector<unsigned> lcores;          ///< worker lcore ids; worker i polls queue i of both ports
  std::size_t sessions = 65536;          ///< per lcore
  fnat::conn_timeouts timeouts{};        ///< idle timeout of each TCP / UDP state
};

/// Why a worker dropped a packet (parse failures count by fnat::drop_reason, refusals in the table).
enum class drop : std::uint8_t { not_ours, no_session, no_server, refused, ttl, tx_full, count };

/// One lcore's state, touched by that lcore alone: no locks.
struct worker {
  using table_type = fnat::session_table<>;
  std::uint16_t queue = 0;
  std::deque<fnat::sa_pool<>> pools;   // one per LIP (a deque: the rotation holds their addresses)
  table_type::rotation_type rotation;  // over the pools: the table's port group 0
  std::optional<table_type> table;
  std::size_t next_server = 0;         // round robin
  std::uint64_t rx = 0, tx = 0;
  std::array<std::uint64_t, fnat::drop_reason_count> parse_drops{};
  std::array<std::uint64_t, static_cast<std::size_t>(drop::count)> drops{};

  /// "" when the ports in use, conn objects and timers all agree with the open sessions.
  std::string leak_report() const {
    std::size_t used = 0;
    for (const auto& p : pools) used += p.stats().used;
    return table->leak_report() + (used == table->size() ? "" : " ports in use != sessions;");
  }
};

/// The forwarder. Ops is the device seam of steering (the tests pass the NIC model's).
template <fnat::dpdk::ethdev_ops Ops = fnat::dpdk::rte_ethdev_ops>
struct forwarder {
  /// Builds the workers and installs reply steering on started ports (one rx and tx queue per
  /// worker). `clock` reads the time that poll() will be given (TSC cycles in main.cpp).
  static fnat::result<std::unique_ptr<forwarder>> make(const config& c, fnat::manual_clock clock, Ops ops = {}) {
    if (c.vips.empty() || c.servers.empty() || c.lips.empty() || c.lcores.empty())
      return fnat::error(fnat::errc::invalid_argument, "minimal: give a VIP, a real server, a LIP and a worker lcore");
    std::vector<fnat::lcore_queue> lq;
    for (std::size_t i = 0; i < c.lcores.size(); ++i) lq.push_back({c.lcores[i], static_cast<std::uint16_t>(i)});
    // 1. + 4. The port plan (which local ports each lcore owns) and the reply steering that makes the
    // NIC deliver them there. Modes whose pools are hashed_buckets with the NIC doing the work only:
    // rss needs RSS-aware pools and redirect rings between the workers (with one lcore, nothing).
    using mode = fnat::dpdk::reply_steering_mode;
    fnat::dpdk::reply_steering_config sc;  // assigned, not designated: g++ 12 -O3 warns falsely on the vectors
    sc.port = c.server_port, sc.plan.lcores = lq, sc.lips = c.lips;
    sc.modes = lq.size() == 1 ? std::vector{mode::redirect} : std::vector{mode::flow, mode::lip_per_lcore};
    auto steering = fnat::dpdk::reply_steering<Ops>::make(ops, sc);
    if (!steering) return steering.err();
    auto f = std::unique_ptr<forwarder>(new forwarder{c, std::move(*steering)});
    for (std::size_t i = 0; i < f->steering.plan().size(); ++i) {
      auto& w = *f->workers.emplace_back(std::make_unique<worker>());
      w.queue = static_cast<std::uint16_t>(i);
      for (const fnat::inet_addr& lip : f->steering.lips_of(i)) {  // 2. this lcore's ports on its LIPs
        auto policy = f->steering.make_pool_policy(i, lip);
        auto pool = policy ? fnat::sa_pool<>::make(lip, std::get<fnat::hashed_buckets>(std::move(*policy)))
                           : policy.err();
        if (!pool) return pool.err();
        if (auto r = w.rotation.add(w.pools.emplace_back(std::move(*pool))); !r) return r.err();
      }
      auto table = worker::table_type::make({.capacity = c.sessions}, clock);  // 3. its sessions
      if (!table) return table.err();
      if (auto g = w.table.emplace(std::move(*table)).add_group(w.rotation); !g) return g.err();
    }
    for (int side = 0; side < 2; ++side) {
      rte_ether_addr a{};
      if (rte_eth_macaddr_get(f->port(side), &a) != 0)
        return fnat::error(fnat::errc::device_error, "minimal: port " + std::to_string(f->port(side)) + " has no MAC");
      std::memcpy(f->mac[side].bytes.data(), a.addr_bytes, 6);
    }
    return f;
  }
  ~forwarder() {  // every port goes back to its pool before the pools go
    for (auto& w : workers) w->table->drain();
  }

  /// 5. One round of worker i, on its lcore: a burst from each port's queue i, each packet forwarded
  /// or dropped (counted), a burst to each port, then idle expiry up to clock reading `now`.
  void poll(std::size_t i, std::uint64_t now) {
    worker& w = *workers[i];
    std::array<std::array<rte_mbuf*, 2 * burst>, 2> out;
    std::array<std::uint16_t, 2> n_out{0, 0};
    for (int side = 0; side < 2; ++side) {
      std::array<rte_mbuf*, burst> rx;
      const std::uint16_t n = rte_eth_rx_burst(port(side), w.queue, rx.data(), burst);
      w.rx += n;
      for (std::uint16_t k = 0; k < n; ++k)
        if (const int to = handle(w, rx[k], side); to >= 0) out[to][n_out[to]++] = rx[k];
        else rte_pktmbuf_free(rx[k]);
    }
    for (int side = 0; side < 2; ++side) {
      const std::uint16_t sent = rte_eth_tx_burst(port(side), w.queue, out[side].data(), n_out[side]);
      w.tx += sent;
      for (std::uint16_t k = sent; k < n_out[side]; ++k) count(w, drop::tx_full), rte_pktmbuf_free(out[side][k]);
    }
    w.table->advance(now, [](worker::table_type::session_type&) noexcept {});
  }

  static constexpr std::uint16_t burst = 32;
  config cfg;
  fnat::dpdk::reply_steering<Ops> steering;  // owns the flow rules it installed
  std::vector<std::unique_ptr<worker>> workers{};
  std::array<fnat::mac_addr, 2> mac{};

 private:
  std::uint16_t port(int side) const noexcept { return side == 0 ? cfg.client_port : cfg.server_port; }
  static int count(worker& w, drop d) noexcept { return ++w.drops[static_cast<std::size_t>(d)], -1; }
  bool ours(const fnat::inet_addr& a) const noexcept {  // a VIP or a LIP: answer ARP / ND for it
    return std::any_of(cfg.vips.begin(), cfg.vips.end(), [&](const auto& v) { return v.addr == a; }) ||
           std::find(cfg.lips.begin(), cfg.lips.end(), a) != cfg.lips.end();
  }

  // The side (0 clients, 1 servers) to send m out of, or -1: drop it (counted).
  int handle(worker& w, rte_mbuf* m, int from) {
    fnat::packet_info pi;
    fnat::nd_message ns;
    if (const fnat::drop_reason r = fnat::dpdk::parse(m, pi); r != fnat::drop_reason::none)
      return ++w.parse_drops[static_cast<std::size_t>(r)], -1;
    if (pi.kind == fnat::packet_kind::arp)  // a neighbour asks for a VIP or a LIP
      return ours(pi.tuple.daddr) && fnat::dpdk::arp_reply_in_place(m, pi, mac[from]) == fnat::errc::ok
                 ? from : count(w, drop::not_ours);
    if (pi.proto == fnat::ipproto::icmpv6 && pi.icmp_type == fnat::icmp6_type::neighbour_solicitation)
      return fnat::parse_nd(fnat::dpdk::rte_mbuf_ops::head(m), pi, ns) == fnat::drop_reason::none && ours(ns.target) &&
                     fnat::dpdk::na_reply_in_place(m, pi, ns, mac[from]) == fnat::errc::ok
                 ? from : count(w, drop::not_ours);
    if (pi.proto != fnat::ipproto::tcp && pi.proto != fnat::ipproto::udp) return count(w, drop::not_ours);
    if (pi.ttl_expired()) return count(w, drop::ttl);
    const bool tcp = pi.proto == fnat::ipproto::tcp;
    const std::uint32_t h = w.table->hash_of(pi.tuple);
    auto [s, dir] = w.table->lookup_with_hash(pi.tuple, h);
    if (s != nullptr && (dir == fnat::direction::inbound) != (from == 0)) return count(w, drop::no_session);  // spoofed
    if (s == nullptr) {  // a first packet: a client's SYN or datagram to the VIP opens a session
      const fnat::endpoint to_vip{pi.tuple.daddr, fnat::ntoh16(pi.tuple.dport)};
      const bool opening = !tcp || pi.is_tcp_syn();
      if (from != 0 || !opening || std::find(cfg.vips.begin(), cfg.vips.end(), to_vip) == cfg.vips.end())
        return count(w, drop::no_session);
      const fnat::endpoint* rs = pick(w, pi.family);
      if (rs == nullptr) return count(w, drop::no_server);
      const auto state = tcp ? std::uint8_t(fnat::tcp_state::syn_recv) : std::uint8_t(fnat::udp_state::oneway);
      const auto idle = tcp ? cfg.timeouts.of(fnat::tcp_state::syn_recv) : cfg.timeouts.of(fnat::udp_state::oneway);
      const auto opened = w.table->open_with_hash(
          {.in = pi.tuple, .dest = *rs, .state = state, .timeout = w.table->ticks_for(idle)}, h);
      if (!opened) return count(w, drop::refused);  // why: table->stats().refused
      s = opened.session, dir = fnat::direction::inbound;
    } else if (tcp) {  // follow the TCP state machine; its state decides the idle timeout
      const auto st = fnat::tcp_transition(fnat::tcp_state(s->state), dir, pi.tcp_flags);
      w.table->set_state(*s, std::uint8_t(st), w.table->ticks_for(cfg.timeouts.of(st)));
    } else {
      const auto st = fnat::udp_transition(fnat::udp_state(s->state), dir);
      w.table->set_state(*s, std::uint8_t(st), w.table->ticks_for(cfg.timeouts.of(st)));
    }
    const bool inbound = dir == fnat::direction::inbound;
    // Inbound client -> VIP becomes LIP:lport -> RS; outbound RS -> LIP:lport becomes VIP -> client.
    if (!fnat::dpdk::rewrite(m, pi, inbound ? s->out().reversed() : s->in().reversed()).ok())
      return count(w, drop::ttl);
    const int to = inbound ? 1 : 0;
    auto* eth = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::memcpy(eth, (to == 0 ? cfg.client_gw : cfg.server_gw).bytes.data(), 6);
    std::memcpy(eth + 6, mac[to].bytes.data(), 6);
    return to;
  }

  // Round robin over the real servers of the client's family (FullNAT does not translate families).
  const fnat::endpoint* pick(worker& w, fnat::ip_family fam) const noexcept {
    for (std::size_t k = 0; k < cfg.servers.size(); ++k)
      if (const auto& rs = cfg.servers[w.next_server++ % cfg.servers.size()]; rs.addr.family() == fam) return &rs;
    return nullptr;
  }
};

}  // namespace minimal
