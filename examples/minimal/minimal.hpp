// SPDX-License-Identifier: BSD-3-Clause
// A complete FullNAT forwarder for one service (VIP:vport, TCP and UDP, IPv4 and IPv6), built from
// fnat's public headers only. docs/WIRING.md walks through it; main.cpp adds the command line, the
// ports and the lcores. The wiring, in order (each step needs the one before):
//   1. port_plan: which local ports each lcore hands out (port classes; lcore i polls queue i);
//   2. per lcore, one sa_pool per LIP holding that lcore's ports, and a rotation over them;
//   3. per lcore, a session_table with the rotation as its port group;
//   4. reply steering: every lport of lcore i reaches rx queue i (flow rules on the server port);
//   5. per lcore, the rx/tx loop: parse, look up, open on a first packet, rewrite, send; expiry.
// Two ports: clients on one, real servers and LIPs on the other; each port sends every frame to one
// next-hop MAC (a router), and answers ARP / neighbour solicitations for the VIPs and LIPs.
#pragma once

#include <fnat/core.hpp>
#include <fnat/dpdk.hpp>

#include <array>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace minimal {

/// The forwarder's settings (main.cpp fills them from the command line).
struct config {
  std::uint16_t client_port = 0;         ///< ethdev port facing the clients
  std::uint16_t server_port = 1;         ///< ethdev port facing the real servers (LIPs live here)
  std::vector<fnat::endpoint> vips;      ///< the service, TCP and UDP: VIP:vport, one per family
  std::vector<fnat::endpoint> servers;   ///< real servers; a client reaches those of its family
  std::vector<fnat::inet_addr> lips;     ///< local addresses (at least one per family served)
  fnat::mac_addr client_gw{}, server_gw{};  ///< next hop of each port
  std::vector<unsigned> lcores;          ///< worker lcore ids; worker i polls rx/tx queue i of both ports
  std::size_t sessions = 65536;          ///< sessions per lcore
  fnat::conn_timeouts timeouts{};        ///< idle timeout per TCP/UDP state
};

/// Why a worker dropped a packet (parse failures are counted by fnat::drop_reason separately).
enum class drop : std::uint8_t { not_ours, no_session, no_server, refused, ttl, tx_full, count };

/// One lcore's state. Nothing here is shared: the worker runs without locks.
struct worker {
  using table_type = fnat::session_table<>;
  std::uint16_t queue = 0;
  std::deque<fnat::sa_pool<>> pools;           // one per LIP; a deque keeps their addresses fixed
  table_type::rotation_type rotation;          // over `pools`, registered as the table's group 0
  std::optional<table_type> table;
  std::size_t next_server = 0;                 // round robin
  std::uint64_t rx = 0, tx = 0;
  std::array<std::uint64_t, fnat::drop_reason_count> parse_drops{};
  std::array<std::uint64_t, static_cast<std::size_t>(drop::count)> drops{};
};

/// The forwarder: plan, workers, steering. Ops is the device seam (tests pass the NIC model's).
template <fnat::dpdk::ethdev_ops Ops = fnat::dpdk::rte_ethdev_ops>
class forwarder {
 public:
  /// Builds every worker and installs reply steering. The ports must be configured with one rx and
  /// one tx queue per lcore and started. `clock` reads the time poll() will be given (TSC in main).
  static fnat::result<std::unique_ptr<forwarder>> make(const config& c, fnat::manual_clock clock, Ops ops = {}) {
    if (c.vips.empty() || c.servers.empty() || c.lips.empty() || c.lcores.empty())
      return fnat::error(fnat::errc::invalid_argument, "minimal: give a VIP, a real server, a LIP and a worker lcore");
    std::vector<fnat::lcore_queue> lq;
    for (std::size_t i = 0; i < c.lcores.size(); ++i) lq.push_back({c.lcores[i], static_cast<std::uint16_t>(i)});
    auto plan = fnat::port_plan::make({.lcores = lq});  // 1. which lports each lcore owns
    if (!plan) return plan.err();
    std::unique_ptr<forwarder> f(new forwarder(c, std::move(*plan)));
    for (std::size_t i = 0; i < f->plan_.size(); ++i) {
      auto w = std::make_unique<worker>();
      w->queue = static_cast<std::uint16_t>(i);
      for (const fnat::inet_addr& lip : c.lips) {  // 2. this lcore's ports of every LIP
        auto policy = fnat::hashed_buckets::make(f->plan_, i);
        if (!policy) return policy.err();
        auto pool = fnat::sa_pool<>::make(lip, std::move(*policy));
        if (!pool) return pool.err();
        if (auto r = w->rotation.add(w->pools.emplace_back(std::move(*pool))); !r) return r.err();
      }
      auto table = worker::table_type::make({.capacity = c.sessions}, clock);  // 3. sessions
      if (!table) return table.err();
      w->table.emplace(std::move(*table));
      if (auto g = w->table->add_group(w->rotation); !g) return g.err();
      f->workers_.push_back(std::move(w));
    }
    // 4. Steering: flow rules send lport class k of each LIP to its owner's queue.
    // TODO(steering): fnat::dpdk::reply_steering picks flow rules, RSS-aware ports or redirect.
    if (f->plan_.size() > 1) {
      auto rules = fnat::dpdk::build_flow_rules(f->plan_, c.lips);
      if (!rules) return rules.err();
      auto flows = fnat::dpdk::install_flow_rules(ops, c.server_port, *rules);
      if (!flows) return flows.err();
      f->flows_.emplace(std::move(*flows));
    }
    for (int side = 0; side < 2; ++side) {
      rte_ether_addr a{};
      if (rte_eth_macaddr_get(side == 0 ? c.client_port : c.server_port, &a) != 0)
        return fnat::error(fnat::errc::device_error, "minimal: no MAC address for port " + std::to_string(side));
      std::memcpy(f->mac_[side].bytes.data(), a.addr_bytes, 6);
    }
    return f;
  }

  ~forwarder() {  // gives every port back before the pools go
    for (auto& w : workers_) w->table->drain();
  }

  /// 5. One round of worker i on its lcore: an rx burst from each port, the packets forwarded or
  /// dropped (counted), a tx burst to each port, then idle expiry up to clock reading `now`.
  void poll(std::size_t i, std::uint64_t now) {
    worker& w = *workers_[i];
    std::array<std::array<rte_mbuf*, 2 * burst>, 2> out;
    std::array<std::uint16_t, 2> n_out{0, 0};
    for (int side = 0; side < 2; ++side) {
      std::array<rte_mbuf*, burst> rx;
      const std::uint16_t n = rte_eth_rx_burst(port(side), w.queue, rx.data(), burst);
      w.rx += n;
      for (std::uint16_t k = 0; k < n; ++k) {
        const int to = handle(w, rx[k], side);
        if (to < 0) rte_pktmbuf_free(rx[k]);
        else out[to][n_out[to]++] = rx[k];
      }
    }
    for (int side = 0; side < 2; ++side) {
      const std::uint16_t sent = rte_eth_tx_burst(port(side), w.queue, out[side].data(), n_out[side]);
      w.tx += sent;
      for (std::uint16_t k = sent; k < n_out[side]; ++k) count(w, drop::tx_full), rte_pktmbuf_free(out[side][k]);
    }
    w.table->advance(now, [](worker::table_type::session_type&) noexcept {});
  }

  [[nodiscard]] const fnat::port_plan& plan() const noexcept { return plan_; }
  [[nodiscard]] std::size_t size() const noexcept { return workers_.size(); }
  [[nodiscard]] worker& at(std::size_t i) noexcept { return *workers_[i]; }

  /// "" when worker i's ports, conn objects and timers all agree with its open sessions.
  [[nodiscard]] std::string leak_report(std::size_t i) const {
    const worker& w = *workers_[i];
    std::size_t used = 0;
    for (const auto& p : w.pools) used += p.stats().used;
    std::string r = w.table->leak_report();
    if (used != w.table->size()) r += " ports in use " + std::to_string(used) + " != sessions;";
    return r;
  }

 private:
  static constexpr std::uint16_t burst = 32;
  forwarder(const config& c, fnat::port_plan plan) : cfg_(c), plan_(std::move(plan)) {}

  std::uint16_t port(int side) const noexcept { return side == 0 ? cfg_.client_port : cfg_.server_port; }
  static int count(worker& w, drop d) noexcept { return ++w.drops[static_cast<std::size_t>(d)], -1; }
  bool ours(const fnat::inet_addr& a) const noexcept {
    for (const auto& v : cfg_.vips) if (v.addr == a) return true;
    for (const auto& l : cfg_.lips) if (l == a) return true;
    return false;
  }
  bool is_vip(const fnat::inet_tuple& t) const noexcept {
    for (const auto& v : cfg_.vips) if (v.addr == t.daddr && fnat::hton16(v.port) == t.dport) return true;
    return false;
  }

  // The side (0 client, 1 server) to send m out of, or -1: drop it (counted).
  int handle(worker& w, rte_mbuf* m, int from) {
    fnat::packet_info pi;
    if (const fnat::drop_reason r = fnat::dpdk::parse(m, pi); r != fnat::drop_reason::none)
      return ++w.parse_drops[static_cast<std::size_t>(r)], -1;
    if (pi.kind == fnat::packet_kind::arp)  // a neighbour asks for a VIP or a LIP
      return ours(pi.tuple.daddr) && fnat::dpdk::arp_reply_in_place(m, pi, mac_[from]) == fnat::errc::ok
                 ? from : count(w, drop::not_ours);
    if (pi.proto == fnat::ipproto::icmpv6 && pi.icmp_type == fnat::icmp6_type::neighbour_solicitation) {
      fnat::nd_message ns;
      if (fnat::parse_nd(fnat::dpdk::rte_mbuf_ops::head(m), pi, ns) != fnat::drop_reason::none || !ours(ns.target))
        return count(w, drop::not_ours);
      return fnat::dpdk::na_reply_in_place(m, pi, ns, mac_[from]) == fnat::errc::ok ? from : count(w, drop::not_ours);
    }
    if (pi.proto != fnat::ipproto::tcp && pi.proto != fnat::ipproto::udp) return count(w, drop::not_ours);
    if (pi.ttl_expired()) return count(w, drop::ttl);
    const bool tcp = pi.proto == fnat::ipproto::tcp;
    const std::uint32_t h = w.table->hash_of(pi.tuple);
    auto hit = w.table->lookup_with_hash(pi.tuple, h);
    auto* s = hit.conn;
    if (s == nullptr) {  // a first packet: a client's SYN or UDP datagram to the VIP opens a session
      if (from != 0 || !is_vip(pi.tuple) || (tcp && !pi.is_tcp_syn())) return count(w, drop::no_session);
      const fnat::endpoint* rs = pick(w, pi.family);
      if (rs == nullptr) return count(w, drop::no_server);
      const std::uint8_t st = tcp ? std::uint8_t(fnat::tcp_state::syn_recv) : std::uint8_t(fnat::udp_state::oneway);
      const auto timeout = tcp ? cfg_.timeouts.of(fnat::tcp_state::syn_recv) : cfg_.timeouts.of(fnat::udp_state::oneway);
      const auto opened = w.table->open_with_hash(
          {.in = pi.tuple, .dest = *rs, .state = st, .timeout = w.table->ticks_for(timeout)}, h);
      if (!opened) return count(w, drop::refused);  // the reason is in table->stats().refused
      s = opened.session;
      hit.dir = fnat::direction::inbound;
    } else if (tcp) {
      const auto st = fnat::tcp_transition(fnat::tcp_state(s->state), hit.dir, pi.tcp_flags);
      w.table->set_state(*s, std::uint8_t(st), w.table->ticks_for(cfg_.timeouts.of(st)));
    } else {
      const auto st = fnat::udp_transition(fnat::udp_state(s->state), hit.dir);
      w.table->set_state(*s, std::uint8_t(st), w.table->ticks_for(cfg_.timeouts.of(st)));
    }
    const bool inbound = hit.dir == fnat::direction::inbound;
    if (inbound != (from == 0)) return count(w, drop::no_session);  // a tuple from the wrong side
    // Inbound: client -> VIP becomes LIP:lport -> RS; outbound: RS -> LIP:lport becomes VIP -> client.
    if (!fnat::dpdk::rewrite(m, pi, inbound ? s->out().reversed() : s->in().reversed()).ok())
      return count(w, drop::ttl);
    const int to = inbound ? 1 : 0;
    auto* eth = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::memcpy(eth, (to == 0 ? cfg_.client_gw : cfg_.server_gw).bytes.data(), 6);
    std::memcpy(eth + 6, mac_[to].bytes.data(), 6);
    return to;
  }

  // Round robin over the real servers of the client's family (FullNAT does not translate families).
  const fnat::endpoint* pick(worker& w, fnat::ip_family fam) const noexcept {
    for (std::size_t k = 0; k < cfg_.servers.size(); ++k) {
      const fnat::endpoint& rs = cfg_.servers[w.next_server++ % cfg_.servers.size()];
      if (rs.addr.family() == fam) return &rs;
    }
    return nullptr;
  }

  config cfg_;
  fnat::port_plan plan_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::optional<fnat::dpdk::installed_flows<Ops>> flows_;
  std::array<fnat::mac_addr, 2> mac_{};
};

}  // namespace minimal
