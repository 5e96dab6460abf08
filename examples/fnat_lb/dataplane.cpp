// SPDX-License-Identifier: BSD-3-Clause
#include "fnat_lb/dataplane.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <type_traits>

#include <fnat/core/proxy_protocol.hpp>
#include <fnat/core/tcp_mss.hpp>
#include <fnat/core/tcp_reset.hpp>
#include <fnat/core/toa.hpp>
#include <fnat/dpdk/rx_checksum.hpp>

namespace fnat::lb {

std::string_view to_string(port_steering s) noexcept {
  switch (s) {
    case port_steering::none: return "none";
    case port_steering::flow: return "flow";
    case port_steering::rss: return "rss";
    case port_steering::redirect: return "redirect";
    case port_steering::lip_per_lcore: return "lip_per_lcore";
  }
  return "unknown";
}

std::uint64_t tsc_clock::now() const noexcept { return rte_rdtsc(); }
std::uint64_t tsc_clock::frequency() const noexcept { return rte_get_tsc_hz(); }

namespace {

std::uint64_t ms_to_tsc(std::uint64_t ms) { return rte_get_tsc_hz() / 1000 * ms; }

// Ethernet addresses of a frame about to leave: destination and source MAC at offsets 0 and 6.
void write_l2(rte_mbuf* m, const mac_addr& dst, const mac_addr& src) noexcept {
  auto* p = rte_pktmbuf_mtod(m, std::uint8_t*);
  std::memcpy(p, dst.bytes.data(), 6);
  std::memcpy(p + 6, src.bytes.data(), 6);
}

// True when `a` is on a connected network of port `port`. Neighbours are learned only from the port
// that reaches them: an ARP or ND message that claims an address of another port's network would
// otherwise point that address at the sender's MAC (a client poisoning a real server's entry takes
// the service down).
bool on_link(const lb_config& cfg, const inet_addr& a, std::uint16_t port) noexcept {
  const next_hop nh = cfg.routes.lookup(a);
  return nh && nh.connected && nh.port == port;
}

}  // namespace

worker::worker(lb_shared& shared, std::size_t index)
    : sh_(shared), index_(index), queue_(static_cast<std::uint16_t>(index)) {}

worker::~worker() {
  // Held packets are ours to free; conns are unlinked by the table's destructor.
  if (neigh_) neigh_->clear([](rte_mbuf* m) { rte_pktmbuf_free(m); });
  for (std::uint16_t i = 0; i < reassembled_count_; ++i) rte_pktmbuf_free(reassembled_[i]);
  if (frag_tbl_ != nullptr) rte_ip_frag_table_destroy(frag_tbl_);  // frees the fragments it holds
  if (death_row_) rte_ip_frag_free_death_row(death_row_.get(), 0);
  for (auto& b : tx_)
    for (std::uint16_t i = 0; i < b.count; ++i) rte_pktmbuf_free(b.pkts[i]);
}

result<std::unique_ptr<worker>> worker::make(lb_shared& sh, std::size_t index, int socket) {
  const lb_config& cfg = *sh.cfg;
  std::unique_ptr<worker> w(new worker(sh, index));
  const dpdk::rte_allocator<std::byte> alloc(socket);
  const std::string who = "worker " + std::to_string(index) + " (lcore " + std::to_string(cfg.global.workers[index]) + ")";

  auto sessions = lb_sessions::make({.capacity = cfg.global.conns_per_lcore,
                                     .table_capacity = cfg.global.table_capacity(),
                                     .wheel = {.slots = 4096, .tick = std::chrono::milliseconds(cfg.global.timer_tick_ms)}},
                                    tsc_clock{}, tuple_hash{}, alloc);
  if (!sessions) return error(sessions.err().code(), who + ": " + sessions.err().message());
  w->sessions_.emplace(std::move(*sessions));
  auto neigh = lb_neighbours::make({.capacity = 1024, .ticks_per_second = rte_get_tsc_hz()});
  if (!neigh) return error(neigh.err().code(), who + ": neighbour cache: " + neigh.err().message());
  w->neigh_.emplace(std::move(*neigh));
  for (const auto& p : cfg.ports)
    for (const auto& n : p.neighbours)
      if (auto r = w->neigh_->add_static(n.addr, n.mac); !r)
        return error(r.err().code(), who + ": static neighbour " + n.addr.to_string() + ": " + r.err().message());

  for (std::size_t s = 0; s < tcp_state_count; ++s)
    w->tcp_ticks_[s] = w->sessions_->ticks_for(cfg.timeouts.of(static_cast<tcp_state>(s)));
  w->udp_ticks_[0] = w->sessions_->ticks_for(cfg.timeouts.of(udp_state::oneway));
  w->udp_ticks_[1] = w->sessions_->ticks_for(cfg.timeouts.of(udp_state::normal));

  // One sa_pool per LIP, with the policy of the LIP's port.
  const port_plan& plan = *sh.plan;
  for (const lb_lip& lip : sh.lips) {
    const lb_port& port = sh.ports[lip.port];
    std::optional<lb_pool_policy> policy;
    if (port.steering == port_steering::rss) {
      auto p = rss_buckets::make({.family = lip.addr.family(),
                                  .key = port.rss_hash->key(),
                                  .reta = port.reta,
                                  .queue = w->queue_,
                                  .port_low = cfg.global.port_low,
                                  .port_high = cfg.global.port_high});
      if (!p) return error(p.err().code(), who + ": RSS-aware ports for LIP " + lip.addr.to_string() + ": " + p.err().message());
      policy.emplace(p->bound_to(lip.addr));
    } else if (port.steering == port_steering::lip_per_lcore && port.owner.owner_of_lip(lip.addr) == index) {
      // This worker's own LIP: every port of it (a one-lcore plan over the range).
      auto solo = port_plan::make({.lcores = {plan.lcore(index)}, .port_low = plan.port_low(), .port_high = plan.port_high()});
      if (!solo) return error(solo.err().code(), who + ": sa_pool plan: " + solo.err().message());
      auto p = hashed_buckets::make(*solo, 0, {.buckets = cfg.global.sa_pool_buckets});
      if (!p) return error(p.err().code(), who + ": sa_pool policy: " + p.err().message());
      policy.emplace(std::move(*p));
    } else {
      auto p = hashed_buckets::make(plan, index, {.buckets = cfg.global.sa_pool_buckets});
      if (!p) return error(p.err().code(), who + ": sa_pool policy: " + p.err().message());
      policy.emplace(std::move(*p));
    }
    auto pool_r = lb_sa_pool::make(lip.addr, std::move(*policy), alloc);
    if (!pool_r) return error(pool_r.err().code(), who + ": sa_pool of LIP " + lip.addr.to_string() + ": " + pool_r.err().message());
    w->sa_pools_.push_back(std::make_unique<lb_sa_pool>(std::move(*pool_r)));
  }
  w->lips_ = sh.lips.size();
  w->lip_gauges_ = std::make_unique<lip_gauges[]>(std::max<std::size_t>(1, w->lips_));

  std::size_t rs_total = 0;
  w->rotations_.reserve(sh.services.size());  // the session table keeps their addresses
  for (const lb_service& svc : sh.services) {
    lb_rotation rot;
    for (std::uint16_t li : svc.lips) {
      const lb_port& lp = sh.ports[sh.lips[li].port];  // one LIP per lcore: a worker uses its own LIPs only
      if (lp.steering == port_steering::lip_per_lcore && lp.owner.owner_of_lip(sh.lips[li].addr) != index) continue;
      if (auto r = rot.add(*w->sa_pools_[li]); !r) return error(r.err().code(), who + ": service " + svc.name + ": " + r.err().message());
    }
    w->rotations_.push_back(std::move(rot));
    // Port group g is service g: a conn's group names its service on the per-packet path.
    auto group = w->sessions_->add_group(w->rotations_.back());
    if (!group) return error(group.err().code(), who + ": service " + svc.name + ": " + group.err().message());
    // The schedulers live in sh.live (one row per worker); conn counters per slot (live.hpp).
    w->rs_base_.push_back(rs_total);
    rs_total += lb_max_slots;
  }
  w->rs_conns_ = std::make_unique<counter[]>(std::max<std::size_t>(1, rs_total));
  w->ca_stats_ = std::make_unique<client_address_stats[]>(std::max<std::size_t>(1, sh.services.size()));
  w->tx_.resize(sh.ports.size());

  // First packets: sources we never accept (our own addresses, the broadcasts of our networks),
  // the per-state bounds, the reset rate limit and the recent-refusals cache.
  for (const auto& p : cfg.ports)
    for (const inet_prefix& a : p.addresses) {
      (void)w->martians_.insert(a.addr, martian_own);
      if (a.family() == ip_family::v4 && a.len <= 30) {
        const std::uint32_t host_bits = a.len == 0 ? ~0u : (~0u >> a.len);
        (void)w->martians_.insert(inet_addr(ipv4_addr{hton32(ntoh32(a.addr.v4().be) | host_bits)}), martian_broadcast);
      }
    }
  for (const lb_service& svc : sh.services) (void)w->martians_.insert(svc.vip.addr, martian_own);
  for (const lb_lip& lip : sh.lips) (void)w->martians_.insert(lip.addr, martian_own);
  w->half_open_max_ = cfg.global.half_open_bound();
  w->udp_oneway_max_ = cfg.global.udp_oneway_bound();
  auto bucket = token_bucket::make({.rate = cfg.global.rst_rate, .burst = cfg.global.rst_burst, .hz = rte_get_tsc_hz()},
                                   rte_rdtsc());
  if (!bucket) return error(bucket.err().code(), who + ": reset rate limit: " + bucket.err().message());
  w->rst_bucket_.emplace(*bucket);
  w->refusals_ = std::make_unique<refusal_slot[]>(refusal_slots);

  // Reassembly: a bounded table (8-way buckets, twice the entries for slack), and the flag that
  // marks what it completed.
  const std::uint32_t fe = cfg.global.frag_entries;
  w->frag_tbl_ = rte_ip_frag_table_create(std::max<std::uint32_t>(4, fe / 4), 8, fe, ms_to_tsc(cfg.global.frag_timeout_ms), socket);
  if (w->frag_tbl_ == nullptr)
    return error(errc::no_memory, who + ": IP reassembly table of " + std::to_string(fe) + " entries: " +
                                      rte_strerror(rte_errno) + "; lower frag_entries or give EAL more memory");
  w->death_row_ = std::make_unique<rte_ip_frag_death_row>();
  w->death_row_->cnt = 0;
  static const rte_mbuf_dynflag flag_desc{"fnat_lb_reassembled", 0};
  const int bit = rte_mbuf_dynflag_register(&flag_desc);
  if (bit < 0) return error(errc::no_memory, who + ": mbuf dynflag: " + rte_strerror(rte_errno));
  w->reassembled_flag_ = std::uint64_t{1} << bit;
  w->frag6_id_ = static_cast<std::uint32_t>(rte_rdtsc()) * 2654435761u + static_cast<std::uint32_t>(index);
  w->frag_cycles_ = ms_to_tsc(cfg.global.frag_timeout_ms);
  w->young_cycles_ = ms_to_tsc(std::min<std::uint32_t>(100, cfg.global.frag_timeout_ms / 2));
  w->sweep_every_ = std::max<std::uint32_t>(1, fe / 2);
  return w;
}

// ---- the loop ----------------------------------------------------------------------------------

void worker::run() {
  const bool backoff = sh_.cfg->global.idle == idle_policy::backoff;
  const auto sleep = std::chrono::microseconds(sh_.cfg->global.idle_sleep_us);
  // Neighbours of the real servers and gateways: ask once at start so first packets find a MAC.
  if (index_ == 0) {
    now_ = rte_rdtsc();
    for (const lb_service& svc : sh_.services)
      for (const lb_real_server& rs : svc.rss) {
        const neigh_result r = neigh_->solicit(rs.to.next_hop, now_);
        if (r.request) solicit(rs.to.port, rs.to.next_hop, std::nullopt);
      }
    flush();
  }
  sh_.live->online(static_cast<unsigned>(index_));
  while (!sh_.stop.load(std::memory_order_relaxed)) {
    const unsigned n = poll_once();
    if (n != 0) {
      idle_rounds_ = 0;
    } else if (backoff && ++idle_rounds_ > 16) {
      // Short sleeps once the queues stayed empty a while: small VMs and CI share their cores.
      // Offline while asleep, so that a reload never waits for a sleeping worker.
      sh_.live->offline(static_cast<unsigned>(index_));
      std::this_thread::sleep_for(sleep);
      sh_.live->online(static_cast<unsigned>(index_));
    }
  }
  sh_.live->offline(static_cast<unsigned>(index_));
  flush();
  publish();
}

unsigned worker::poll_once() {
  now_ = rte_rdtsc();
  rte_mbuf* pkts[64];
  const std::uint16_t burst = std::min<std::uint16_t>(sh_.burst, 64);
  unsigned total = 0;
  for (std::uint16_t p = 0; p < sh_.ports.size(); ++p) {
    const std::uint16_t n = rte_eth_rx_burst(sh_.ports[p].port_id, queue_, pkts, burst);
    if (n == 0) continue;
    stats_.rx_packets.add(n);
    process_burst(p, pkts, n);
    process_reassembled();
    total += n;
  }
  if (sh_.redirect) {
    const unsigned n = sh_.redirect->drain(index_, pkts, burst);
    if (n != 0) {
      stats_.redirected_in.add(n);
      // Each packet came in on some port; group consecutive ones by port.
      unsigned i = 0;
      while (i < n) {
        const std::uint16_t port = sh_.port_index_of_id[pkts[i]->port];
        unsigned j = i + 1;
        while (j < n && pkts[j]->port == pkts[i]->port) ++j;
        process_burst(port, pkts + i, static_cast<std::uint16_t>(j - i), true);
        i = j;
      }
      process_reassembled();
      total += n;
    }
  }
  drain_neighbour_ring();
  flush();
  expire(now_);
  if (now_ >= next_publish_) {
    // Incomplete datagrams leave on time, not only when their bucket is needed: each holds mbufs.
    sweep_fragments(now_);
    publish();
    next_publish_ = now_ + ms_to_tsc(100);
  }
  if (now_ >= next_neigh_expire_) {
    neigh_->expire(now_, [&](rte_mbuf* m) { drop(m, lb_drop::unknown_neighbour); });
    next_neigh_expire_ = now_ + ms_to_tsc(500);
  }
  return total;
}

void worker::process_burst(std::uint16_t port, rte_mbuf** pkts, std::uint16_t n, bool redirected) {
  // The live configuration for this burst (live.hpp): one load now, a quiescent state when the burst
  // is done, after which this worker holds no pointer into it.
  live_ = sh_.live->read();
  const struct burst_end {
    dpdk::rcu_cell<lb_live>& cell;
    unsigned id;
    ~burst_end() { cell.quiescent(id); }
  } end_of_burst{*sh_.live, static_cast<unsigned>(index_)};
  const lb_port& lp = sh_.ports[port];
  // Scratch of the burst, kept in the worker: as locals they would be zeroed (default member
  // initialisers) on every burst, 7 KiB of stores for nothing.
  packet_info* info = scratch_.info.data();
  inet_tuple* keys = scratch_.keys.data();
  rte_mbuf** fwd = scratch_.fwd.data();
  std::uint16_t* fwd_info = scratch_.fwd_info.data();
  unsigned k = 0;
  const port_plan& plan = *sh_.plan;
  for (std::uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    packet_info& pi = info[i];
    if (const drop_reason r = dpdk::parse(m, pi); r != drop_reason::none) {
      if (r == drop_reason::fragment) {
        handle_fragment(port, m, redirected);
        continue;
      }
      drop(m, r);
      continue;
    }
    // A header a router would not forward is not one whose addresses we look up (RFC 1812 5.2.2).
    if (const drop_reason r = dpdk::verify_ip_checksum(m, pi); r != drop_reason::none) {
      drop(m, r);
      continue;
    }
    if (pi.kind == packet_kind::arp) {
      handle_arp(port, m, pi);
      continue;
    }
    if (pi.proto != ipproto::tcp && pi.proto != ipproto::udp) {
      if (is_icmp_error(pi.proto, pi.icmp_type)) {
        handle_icmp_error(port, m, pi, redirected);
        continue;
      }
      handle_icmp(port, m, pi);
      continue;
    }
    // A reply to a LIP that another worker owns goes to that worker before any lookup.
    if (sh_.lip_map.find(pi.tuple.daddr) != nullptr) {
      const std::size_t owner = owner_of_reply(lp, pi);
      if (owner != index_ && owner < plan.size()) {
        if (redirected)
          drop(m, lb_drop::misdirected);
        else
          hand_off(m, lp.port_id, owner);
        continue;
      }
    }
    keys[k] = pi.tuple;
    fwd[k] = m;
    fwd_info[k] = i;
    ++k;
  }
  if (k == 0) return;
  lb_table::hit* hits = scratch_.hits.data();
  sessions_->lookup_bulk({keys, k}, hits);
  for (unsigned j = 0; j < k; ++j) {
    packet_info& pi = info[fwd_info[j]];
    if (hits[j])
      handle_hit(fwd[j], pi, *hits[j].conn, hits[j].dir);
    else
      handle_miss(port, fwd[j], pi, redirected);
  }
}

// ---- forwarding ---------------------------------------------------------------------------------

// Passes m to worker `to` over its redirect ring. The receiver finds the port by m->port, which
// some PMDs (net_ring) leave unset, so it is set here, for every kind of hand-off.
void worker::hand_off(rte_mbuf* m, std::uint16_t port_id, std::size_t to) {
  m->port = port_id;
  if (sh_.redirect && sh_.redirect->try_handoff(index_, to, &m, 1) == 1)
    stats_.redirected_out.add();
  else
    drop(m, lb_drop::ring_full);
}

void worker::handle_hit(rte_mbuf* m, packet_info& info, lb_conn& c, direction dir) {
  // A packet that expires here never reaches the other side: it neither moves the conn's state (a
  // RST with TTL 1 must not close it) nor counts as forwarded.
  if (info.ttl_expired()) {
    drop(m, drop_reason::ttl_expired);
    return;
  }
  // State first: the session's timer (a cold line) is re-armed only when the state changes.
  if (c.proto == ipproto::tcp) {
    const tcp_state next = tcp_transition(static_cast<tcp_state>(c.state), dir, info.tcp_flags);
    sessions_->set_state(c, static_cast<std::uint8_t>(next), ticks_of(next));
  } else {
    const udp_state next = udp_transition(static_cast<udp_state>(c.state), dir);
    sessions_->set_state(c, static_cast<std::uint8_t>(next), ticks_of(next));
  }
  if (info.proto == ipproto::tcp && (info.tcp_flags & tcp_flag::syn) != 0)  // a SYN again, or the SYN-ACK
    if (const std::uint16_t bound = sh_.services[c.group].mss_clamp; bound != 0) clamp_syn_mss(m, info, bound);
  if (const lb_service& svc = sh_.services[c.group]; svc.client_address != client_address_mode::none) [[unlikely]] {
    if (!(dir == direction::inbound ? ca_inbound(m, info, c, svc) : ca_outbound(m, info, c, svc))) return;
  }
  if (dir == direction::inbound) {
    const lb_slot& rs = live_->services[c.group].slots[c.tag];  // the conn's server, stable across reloads
    if (forward(m, info, c.out().reversed(), egress{rs.next_hop, rs.port})) stats_.inbound.add();
  } else {
    const next_hop nh = sh_.cfg->routes.lookup(c.in().saddr);
    if (forward(m, info, c.in().reversed(), egress{nh.addr, nh.port})) stats_.outbound.add();
  }
}

void worker::handle_miss(std::uint16_t port, rte_mbuf* m, packet_info& info, bool redirected) {
  // A packet of a conn this burst created (a retransmitted SYN, a burst of UDP datagrams). The
  // tuple's hash serves this lookup and, if it misses, the open.
  const std::uint32_t in_hash = sessions_->hash_of(info.tuple);
  if (const auto h = sessions_->lookup_with_hash(info.tuple, in_hash)) {
    handle_hit(m, info, *h.conn, h.dir);
    return;
  }
  const service_key key{info.tuple.daddr, info.tuple.dport, info.proto, 0};
  const std::uint16_t* svc_index = sh_.service_map.find(key);
  if (svc_index == nullptr) {
    // To a LIP we own but have no conn for (an old reply), or to nobody we serve.
    drop(m, sh_.lip_map.find(info.tuple.daddr) != nullptr ? lb_drop::no_conn : lb_drop::not_for_us);
    return;
  }
  (void)redirected;
  if (info.proto == ipproto::tcp && !info.is_tcp_syn()) {
    drop(m, lb_drop::non_syn_first);
    return;
  }
  if (info.ttl_expired()) {
    drop(m, drop_reason::ttl_expired);
    return;
  }
  if (!trusted_first(port, m, info)) return;
  // Per-state bounds: a flood of one kind (spoofed SYNs never complete, spoofed datagrams are never
  // answered) fills its own share of the conns, not the worker's whole table.
  if (info.proto == ipproto::tcp ? half_open_now() >= half_open_max_ : udp_oneway_now() >= udp_oneway_max_) {
    refuse(port, m, info, info.proto == ipproto::tcp ? lb_drop::half_open_limit : lb_drop::udp_oneway_limit);
    return;
  }
  const lb_service& svc = sh_.services[*svc_index];
  const std::uint64_t flow_hash = hash_bytes(info.tuple.saddr.raw().data(), 16, info.tuple.sport);
  const pick_result pick = live_->sched[index_][*svc_index].pick(flow_hash);
  if (!pick) {
    drop(m, lb_drop::no_real_server);
    return;
  }
  const lb_live_service& live_svc = live_->services[*svc_index];
  const std::uint32_t slot = live_svc.slot_of[pick.index];
  const lb_slot& rs = live_svc.slots[slot];
  std::uint8_t state;
  std::uint64_t timeout;
  if (info.proto == ipproto::tcp) {
    const tcp_state st = tcp_transition(tcp_state::none, direction::inbound, info.tcp_flags);
    state = static_cast<std::uint8_t>(st);
    timeout = ticks_of(st);
  } else {
    state = static_cast<std::uint8_t>(udp_state::oneway);
    timeout = ticks_of(udp_state::oneway);
  }
  const session_request rq{.in = info.tuple,
                           .dest = rs.addr,
                           .group = *svc_index,
                           .state = state,
                           .timeout = timeout,
                           .tag = slot};
  const lb_sessions::open_result opened = sessions_->open_with_hash(rq, in_hash);
  if (!opened) {
    switch (opened.why) {
      case session_refusal::no_session: refuse(port, m, info, lb_drop::conn_pool_empty); break;
      case session_refusal::table_full: refuse(port, m, info, lb_drop::table_full); break;
      case session_refusal::chain_full: refuse(port, m, info, lb_drop::chain_full); break;
      case session_refusal::tuple_in_use: drop(m, lb_drop::tuple_in_use); break;
      default: refuse(port, m, info, lb_drop::port_exhausted); break;  // no_port, no_local_address
    }
    return;
  }
  stats_.conns_created.add();
  rs_conns_[rs_base_[*svc_index] + slot].add();
  if (svc.mss_clamp != 0 && info.proto == ipproto::tcp) clamp_syn_mss(m, info, svc.mss_clamp);
  if (svc.client_address != client_address_mode::none) [[unlikely]] {
    ca_open(*opened.session, svc);
    if (!ca_inbound(m, info, *opened.session, svc)) return;
  }
  if (forward(m, info, opened.session->out().reversed(), egress{rs.next_hop, rs.port})) stats_.inbound.add();
}

bool worker::forward(rte_mbuf* m, packet_info& info, const inet_tuple& to, const egress& e) {
  // Too big for the egress link: checksums in software (fragments cannot be offloaded).
  const bool oversize = info.frame_len - info.l3_off > sh_.cfg->ports[e.port].mtu;
  if (oversize) {
    // IPv4 may be fragmented on the way unless DF says no; IPv6 only by its source, or by us when
    // we reassembled it (we are its receiver as far as fragments go). Otherwise: path MTU discovery.
    const auto* ip = rte_pktmbuf_mtod_offset(m, const std::uint8_t*, info.l3_off);
    const bool may = info.family == ip_family::v4 ? (load_be16(ip + 6) & ipv4_frag::dont_fragment) == 0
                                                  : (m->ol_flags & reassembled_flag_) != 0;
    if (!may) {
      refuse_too_big(m, info, e);
      return false;
    }
  }
  const rewrite_result r = dpdk::rewrite(m, info, to, oversize ? checksum_offload{} : sh_.ports[e.port].offload);
  if (!r.ok()) {
    drop(m, r.reason);
    return false;
  }
  if (info.has_vlan) {
    // An 802.1Q tag belongs to the link the frame came in on; the balancer's ports are untagged, so
    // the frame leaves without it (the server side would otherwise see the client's VLAN).
    auto* p = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::memmove(p + vlan_hdr_len, p, 12);
    (void)rte_pktmbuf_adj(m, vlan_hdr_len);
    m->l2_len = ether_hdr_len;
  }
  if (oversize) {
    send_oversize(m, info, e);
    return true;
  }
  return send(m, e);
}

bool worker::send(rte_mbuf* m, const egress& e) {
  const neigh_result r = neigh_->resolve(e.next_hop, now_, m);
  if (r.rc == errc::ok) {
    send_l2(m, e.port, r.mac);
    if (r.request) solicit(e.port, e.next_hop, r.mac);  // stale: confirm it at its known MAC
    return true;
  }
  if (r.held) {
    stats_.held.add();
  } else {
    drop(m, lb_drop::unknown_neighbour);
  }
  if (r.request) solicit(e.port, e.next_hop, std::nullopt);
  return r.held;
}

void worker::send_l2(rte_mbuf* m, std::uint16_t port, const mac_addr& dst) {
  write_l2(m, dst, sh_.ports[port].mac);
  tx(port, m);
}

void worker::tx(std::uint16_t port, rte_mbuf* m) {
  tx_buffer& b = tx_[port];
  b.pkts[b.count++] = m;
  if (b.count == b.pkts.size()) flush();
}

void worker::flush() {
  for (std::uint16_t p = 0; p < tx_.size(); ++p) {
    tx_buffer& b = tx_[p];
    if (b.count == 0) continue;
    const std::uint16_t sent = sh_.tx(sh_.tx_ctx, sh_.ports[p].port_id, queue_, b.pkts.data(), b.count);
    stats_.tx_packets.add(sent);
    for (std::uint16_t i = sent; i < b.count; ++i) drop(b.pkts[i], lb_drop::tx_full);
    b.count = 0;
  }
}

// ---- neighbours and our own addresses -------------------------------------------------------------

void worker::handle_arp(std::uint16_t port, rte_mbuf* m, const packet_info& info) {
  const lb_port& lp = sh_.ports[port];
  const arp_message a = parse_arp({rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)}, info);
  const bool for_us = lp.local.find(inet_addr(a.tpa)) != nullptr;
  // Learn the sender when it talks to us (request or reply) or refresh it when we know it already.
  if (a.spa.be != 0 && on_link(*sh_.cfg, inet_addr(a.spa), port)) {
    if (for_us)
      learn(inet_addr(a.spa), a.sha, true);
    else
      (void)neigh_->learn(inet_addr(a.spa), a.sha, now_, learn_mode::update,
                          [&](rte_mbuf* held, const mac_addr& mac) { send_l2(held, port, mac); });
  }
  if (for_us && a.op == arp_op::request && !a.is_gratuitous()) {
    if (dpdk::arp_reply_in_place(m, info, lp.mac) == errc::ok) {
      stats_.arp_replies.add();
      tx(port, m);
      return;
    }
    drop(m, lb_drop::no_mbuf);
    return;
  }
  rte_pktmbuf_free(m);  // answers and announcements end here once learned
}

void worker::handle_icmp(std::uint16_t port, rte_mbuf* m, packet_info& info) {
  const lb_port& lp = sh_.ports[port];
  if (info.proto == ipproto::icmpv6 &&
      (info.icmp_type == icmp6_type::neighbour_solicitation || info.icmp_type == icmp6_type::neighbour_advertisement)) {
    nd_message nd;
    const std::span<const std::uint8_t> head{rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)};
    if (const drop_reason r = parse_nd(head, info, nd); r != drop_reason::none) {
      drop(m, r);
      return;
    }
    if (nd.type == icmp6_type::neighbour_solicitation) {
      if (nd.has_lladdr && !info.tuple.saddr.is_unspecified() && on_link(*sh_.cfg, info.tuple.saddr, port)) learn(info.tuple.saddr, nd.lladdr, lp.local.find(inet_addr(nd.target)) != nullptr);
      if (lp.local.find(inet_addr(nd.target)) == nullptr) {
        drop(m, lb_drop::not_for_us);
        return;
      }
      if (dpdk::na_reply_in_place(m, info, nd, lp.mac) == errc::ok) {
        stats_.arp_replies.add();
        tx(port, m);
      } else {
        drop(m, lb_drop::no_mbuf);
      }
      return;
    }
    if (nd.has_lladdr && on_link(*sh_.cfg, inet_addr(nd.target), port)) learn(inet_addr(nd.target), nd.lladdr, true);
    rte_pktmbuf_free(m);
    return;
  }
  if (info.is_echo_request() && lp.local.find(info.tuple.daddr) != nullptr) {
    if (dpdk::echo_reply_in_place(m, info, lp.mac) == errc::ok) {
      stats_.echo_replies.add();
      tx(port, m);
      return;
    }
    drop(m, lb_drop::unsupported);
    return;
  }
  drop(m, lp.local.find(info.tuple.daddr) != nullptr ? lb_drop::unsupported : lb_drop::not_for_us);
}

void worker::handle_icmp_error(std::uint16_t port, rte_mbuf* m, packet_info& info, bool redirected) {
  const std::span<std::uint8_t> head{rte_pktmbuf_mtod(m, std::uint8_t*), rte_pktmbuf_data_len(m)};
  icmp_error_info err;
  if (const icmp_error_status s = parse_icmp_error(head, info, err); s != icmp_error_status::ok) {
    drop(m, s == icmp_error_status::unsupported_inner ? lb_drop::icmp_error_unsupported : lb_drop::icmp_error_malformed);
    return;
  }
  const inet_tuple key = err.conn_key();
  const std::size_t workers = sh_.plan->size();
  const bool to_lip = sh_.lip_map.find(key.daddr) != nullptr;
  if (to_lip) {
    // About LIP:lport -> RS: owned like the conn's replies, whose tuple the key is.
    packet_info as_reply = info;
    as_reply.tuple = key;
    const std::size_t owner = owner_of_reply(sh_.ports[port], as_reply);
    if (owner != index_ && owner < workers) {
      if (redirected)
        drop(m, lb_drop::misdirected);
      else
        hand_off(m, sh_.ports[port].port_id, owner);
      return;
    }
  }
  const auto hit = sessions_->lookup(key);
  if (!hit) {
    // A client's error: its conn lives on whichever worker the client's first packet reached, which
    // nothing here can compute (the NIC hashed the client's tuple, the error's differs). The error
    // visits the workers in turn, each once; the mbuf's user hash field carries the visits so far
    // (written only here, for the ring; a redirected packet is never re-hashed by a NIC).
    const std::uint32_t visited = redirected ? m->hash.usr : 0;
    if (!to_lip && sh_.redirect && visited + 1 < workers) {
      m->hash.usr = visited + 1;
      hand_off(m, sh_.ports[port].port_id, (index_ + 1) % workers);
      return;
    }
    drop(m, lb_drop::icmp_error_no_conn);
    return;
  }
  const lb_conn& c = *hit.conn;
  egress e;
  if (hit.dir == direction::outbound) {  // to the client, as the VIP's
    const next_hop nh = sh_.cfg->routes.lookup(c.in().saddr);
    if (!nh) {
      drop(m, lb_drop::no_route);
      return;
    }
    e = egress{nh.addr, nh.port};
  } else {  // to the real server, as the LIP's
    const lb_slot& rs = live_->services[c.group].slots[c.tag];
    e = egress{rs.next_hop, rs.port};
  }
  const rewrite_result r = translate_icmp_error(head, info, err, translated_quote(hit.dir, c.in(), c.out()));
  if (!r.ok()) {
    drop(m, r.reason);
    return;
  }
  // Every checksum is complete in software: clear tx offload requests an mbuf may carry.
  dpdk::rte_mbuf_ops::set_tx_offload(m, 0, info.l2_len(), info.l3_len(), 0);
  if (info.has_vlan) {  // as forward(): the tag belongs to the link the frame came in on
    auto* p = rte_pktmbuf_mtod(m, std::uint8_t*);
    std::memmove(p + vlan_hdr_len, p, 12);
    (void)rte_pktmbuf_adj(m, vlan_hdr_len);
    m->l2_len = ether_hdr_len;
  }
  // Counted once sent or held (as forward() counts): a dropped error is counted as that drop only.
  if (send(m, e)) (hit.dir == direction::outbound ? stats_.icmp_errors_out : stats_.icmp_errors_in).add();
}

// ---- IP fragments --------------------------------------------------------------------------------

void worker::handle_fragment(std::uint16_t port, rte_mbuf* m, bool redirected) {
  const lb_port& lp = sh_.ports[port];
  fragment_info fi;
  const std::span<const std::uint8_t> head{rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)};
  if (const drop_reason r = parse_fragment(head, rte_pktmbuf_pkt_len(m), fi); r != drop_reason::none) {
    drop(m, r);
    return;
  }
  const bool to_lip = sh_.lip_map.find(fi.daddr) != nullptr;
  const std::size_t home = fragment_home(fi, to_lip, sh_.frag_key, sh_.plan->size());
  if (home != index_) {
    if (redirected)
      drop(m, lb_drop::misdirected);
    else
      hand_off(m, lp.port_id, home);
    return;
  }
  stats_.frags_in.add();
  if (++frags_since_sweep_ >= sweep_every_) {
    // Pressure: half the table's worth of fragments came in since the last sweep. rte_ip_frag frees
    // an entry early only once it expired, so a flood of datagrams that never complete would hold
    // the table for the whole timeout and starve everyone else. A real datagram completes within
    // milliseconds of its first fragment, so under pressure an entry older than young_cycles_ is
    // given up (expiry as seen from a clock moved forward by timeout - young).
    frags_since_sweep_ = 0;
    sweep_fragments(now_ + frag_cycles_ - young_cycles_);
  }
  const std::uint32_t len = std::uint32_t{fi.l3_off} + fi.l3_len + fi.payload_len;
  dpdk::rte_mbuf_ops::trim_to(m, len);  // Ethernet padding would become part of the datagram
  m->l2_len = fi.l3_off;
  m->l3_len = fi.l3_len;
  rte_mbuf* whole = nullptr;
  if (fi.family == ip_family::v4) {
    whole = rte_ipv4_frag_reassemble_packet(frag_tbl_, death_row_.get(), m, now_,
                                            rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, fi.l3_off));
  } else {
    auto* ip6 = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, fi.l3_off);
    whole = rte_ipv6_frag_reassemble_packet(frag_tbl_, death_row_.get(), m, now_, ip6,
                                            rte_pktmbuf_mtod_offset(m, rte_ipv6_fragment_ext*, fi.l3_off + 40));
  }
  free_death_row();
  if (whole == nullptr) return;  // held until its datagram is complete (or dropped, counted)
  if (fi.family == ip_family::v4) {  // rte_ip_frag leaves the header checksum to us
    auto* ip = rte_pktmbuf_mtod_offset(whole, std::uint8_t*, whole->l2_len);
    store(ip + 10, std::uint16_t{0});
    store(ip + 10, internet_checksum({ip, ipv4_hdr_len}));
  }
  whole->ol_flags |= reassembled_flag_;
  whole->port = lp.port_id;
  stats_.reassembled.add();
  if (reassembled_count_ == reassembled_.size()) {  // cannot happen: a burst completes at most 64
    drop(whole, lb_drop::frag_dropped);
    return;
  }
  reassembled_[reassembled_count_++] = whole;
}

void worker::process_reassembled() {
  // Whole datagrams go the way of any packet (their conn's owner may be another worker: a second
  // hand-off is allowed, the owner sees a whole packet that it owns). Grouped by port.
  while (reassembled_count_ != 0) {
    std::array<rte_mbuf*, 64> batch;
    const std::uint16_t n = reassembled_count_;
    std::copy_n(reassembled_.begin(), n, batch.begin());
    reassembled_count_ = 0;
    std::uint16_t i = 0;
    while (i < n) {
      std::uint16_t j = static_cast<std::uint16_t>(i + 1);
      while (j < n && batch[j]->port == batch[i]->port) ++j;
      process_burst(sh_.port_index_of_id[batch[i]->port], batch.data() + i, static_cast<std::uint16_t>(j - i), false);
      i = j;
    }
  }
}

void worker::sweep_fragments(std::uint64_t tms) {
  // rte_ip_frag stops a sweep when its death row is full: sweep until a pass gives up nothing.
  // (Experimental in DPDK 22.11, stable since 23.03.)
  for (;;) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    rte_ip_frag_table_del_expired_entries(frag_tbl_, death_row_.get(), tms);
#pragma GCC diagnostic pop
    if (death_row_->cnt == 0) return;
    free_death_row();
  }
}

void worker::refuse_too_big(rte_mbuf* m, const packet_info& info, const egress& e) {
  // Answered before any rewrite: the error quotes the packet as its sender sent it, and comes from
  // the address the sender talked to (VIP or LIP). Rate-limited per worker (a flood of big DF
  // packets must not turn into a flood of errors).
  if (now_ - too_big_window_ >= ms_to_tsc(100)) {
    too_big_window_ = now_;
    too_big_sent_ = 0;
  }
  const next_hop back = sh_.cfg->routes.lookup(info.tuple.saddr);
  if (too_big_sent_ < too_big_per_window && back) {
    if (rte_mbuf* n = rte_pktmbuf_alloc(sh_.mbufs); n != nullptr) {
      const std::span<const std::uint8_t> pkt{rte_pktmbuf_mtod_offset(m, const std::uint8_t*, info.l3_off),
                                              std::min<std::size_t>(rte_pktmbuf_data_len(m), info.frame_len) - info.l3_off};
      const l2_spec l2{.dst = {}, .src = sh_.ports[back.port].mac, .vlan = false, .vlan_tci = 0};
      const std::uint16_t mtu = sh_.cfg->ports[e.port].mtu;
      if (dpdk::build_frame(n, 1300, [&](std::span<std::uint8_t> out) {
            return build_too_big(out, l2, info.tuple.daddr, pkt, mtu);
          }) == errc::ok) {
        ++too_big_sent_;
        if (send(n, egress{back.addr, back.port})) stats_.icmp_too_big_sent.add();
      } else {
        rte_pktmbuf_free(n);
      }
    } else {
      stats_.drops[static_cast<std::size_t>(lb_drop::no_mbuf)].add();
    }
  }
  drop(m, lb_drop::too_big);
}

void worker::free_death_row() {
  if (death_row_->cnt == 0) return;
  stats_.drops[static_cast<std::size_t>(lb_drop::frag_dropped)].add(death_row_->cnt);
  rte_ip_frag_free_death_row(death_row_.get(), 3);
}

void worker::send_oversize(rte_mbuf* m, const packet_info& info, const egress& e) {
  const std::uint16_t mtu = sh_.cfg->ports[e.port].mtu;
  const std::uint16_t l2 = m->l2_len;
  const bool v4 = info.family == ip_family::v4;
  const auto* ip = rte_pktmbuf_mtod_offset(m, const std::uint8_t*, l2);
  // IPv4 may be fragmented on the way unless DF says no; IPv6 only by its source, or by us when we
  // reassembled it (we are its receiver as far as fragments go).
  const bool may = v4 ? (load_be16(ip + 6) & ipv4_frag::dont_fragment) == 0 : (m->ol_flags & reassembled_flag_) != 0;
  if (!may) {
    drop(m, lb_drop::too_big);
    return;
  }
  (void)rte_pktmbuf_adj(m, l2);  // rte_ip_frag wants the IP header first
  std::array<rte_mbuf*, 64> frags;
  const int n = v4 ? rte_ipv4_fragment_packet(m, frags.data(), frags.size(), mtu, sh_.mbufs, sh_.mbufs)
                   : rte_ipv6_fragment_packet(m, frags.data(), frags.size(), mtu, sh_.mbufs, sh_.mbufs);
  rte_pktmbuf_free(m);  // the fragments hold references to its data
  if (n <= 0) {
    stats_.drops[static_cast<std::size_t>(lb_drop::frag_failed)].add();
    return;
  }
  stats_.fragmented.add();
  const std::uint32_t id6 = hton32(++frag6_id_);
  for (int i = 0; i < n; ++i) {
    rte_mbuf* f = frags[static_cast<std::size_t>(i)];
    auto* l2p = reinterpret_cast<std::uint8_t*>(rte_pktmbuf_prepend(f, ether_hdr_len));
    if (l2p == nullptr) {
      drop(f, lb_drop::frag_failed);
      continue;
    }
    store_be16(l2p + 12, v4 ? ethertype::ipv4 : ethertype::ipv6);
    std::uint8_t* fip = l2p + ether_hdr_len;
    if (v4) {  // each fragment's header is new: its checksum too
      store(fip + 10, std::uint16_t{0});
      store(fip + 10, internet_checksum({fip, ipv4_hdr_len}));
    } else {  // one identification per datagram, ours (RFC 8200 4.5)
      store(fip + ipv6_hdr_len + 4, id6);
    }
    dpdk::rte_mbuf_ops::set_tx_offload(f, 0, ether_hdr_len, v4 ? ipv4_hdr_len : ipv6_hdr_len + 8, 0);
    if (send(f, e)) stats_.frags_out.add();
  }
}

void worker::learn(const inet_addr& addr, const mac_addr& mac, bool broadcast) {
  const errc rc = neigh_->learn(addr, mac, now_, learn_mode::create, [&](rte_mbuf* held, const mac_addr& m) {
    // The held packet's next hop resolved: find the port that reaches it.
    const next_hop nh = sh_.cfg->routes.lookup(addr);
    send_l2(held, nh ? nh.port : 0, m);
  });
  if (rc != errc::ok || !broadcast) return;
  stats_.neigh_learned.add();
  neigh_update u{addr, mac, {}};
  for (std::size_t i = 0; i < sh_.neigh_rings.size(); ++i)
    if (i != index_) (void)rte_ring_mp_enqueue_elem(sh_.neigh_rings[i], &u, sizeof u);
}

void worker::drain_neighbour_ring() {
  neigh_update u[16];
  const unsigned n = rte_ring_sc_dequeue_burst_elem(sh_.neigh_rings[index_], u, sizeof(neigh_update), 16, nullptr);
  for (unsigned i = 0; i < n; ++i) learn(u[i].addr, u[i].mac, false);
}

void worker::solicit(std::uint16_t port, const inet_addr& target, std::optional<mac_addr> unicast) {
  const lb_port& lp = sh_.ports[port];
  rte_mbuf* m = rte_pktmbuf_alloc(sh_.mbufs);
  if (m == nullptr) {
    stats_.drops[static_cast<std::size_t>(lb_drop::no_mbuf)].add();
    return;
  }
  errc rc = errc::not_supported;
  if (target.is_v4() && lp.src4)
    rc = dpdk::build_arp_request(m, lp.mac, *lp.src4, target.v4(), false, 0, unicast);
  else if (target.is_v6() && lp.src6)
    rc = dpdk::build_ns(m, lp.mac, *lp.src6, target.v6(), false, 0, unicast);
  if (rc != errc::ok) {
    rte_pktmbuf_free(m);
    return;
  }
  stats_.neigh_requests.add();
  tx(port, m);
}

// ---- ownership, expiry, drops -----------------------------------------------------------------------

std::size_t worker::owner_of_reply(const lb_port& port, const packet_info& info) const noexcept {
  return port.owner.owner_of(info.tuple);  // reply_steering's answer for the port's mode
}

std::size_t worker::expire(std::uint64_t now) {
  return sessions_->advance(now, [&](lb_conn&) noexcept { stats_.conns_expired.add(); }, 4096);
}

bool worker::remove_conn(const inet_tuple& key) noexcept {
  if (sessions_->close(key) != errc::ok) return false;
  stats_.conns_expired.add();
  return true;
}

void worker::drain_all() {
  (void)sessions_->drain();
  neigh_->clear([](rte_mbuf* m) { rte_pktmbuf_free(m); });
  flush();
  publish();
}

void worker::publish() {
  stats_.conns_live.set(sessions_->size());
  stats_.conn_objects_in_use.set(sessions_->conn_pool().in_use());
  std::uint64_t used = 0, free = 0, misses = 0;
  for (std::size_t i = 0; i < sa_pools_.size(); ++i) {
    const sa_pool_stats s = sa_pools_[i]->stats();
    lip_gauges_[i].used.set(s.used);
    lip_gauges_[i].free.set(s.free);
    lip_gauges_[i].misses.set(s.misses);
    used += s.used;
    free += s.free;
    misses += s.misses;
  }
  stats_.ports_in_use.set(used);
  stats_.ports_free.set(free);
  stats_.port_misses.set(misses);
  stats_.half_open.set(half_open_now());
  stats_.udp_oneway.set(udp_oneway_now());
}

std::string worker::leak_report() const {
  std::string out = sessions_->leak_report();
  if (sessions_->conn_pool().in_use() != 0)
    out += " conn objects in use: " + std::to_string(sessions_->conn_pool().in_use()) + ";";
  if (sessions_->size() != 0) out += " conns in table: " + std::to_string(sessions_->size()) + ";";
  for (std::size_t i = 0; i < sa_pools_.size(); ++i) {
    const sa_pool_stats s = sa_pools_[i]->stats();
    if (s.used != 0 || s.free != s.capacity)
      out += " LIP " + sa_pools_[i]->lip().to_string() + ": " + std::to_string(s.used) + " ports in use;";
  }
  return out;
}

// ---- first packets: trust checks, refusals -----------------------------------------------------------
//
// A first packet spends a conn object and a local port for a timeout's worth of time, so before it
// does, the worker checks what it is about to trust (the header checksum was checked for every IPv4
// packet in process_burst):
//  - its TCP / UDP checksum (the NIC's verdict, or software): a corrupted or carelessly forged
//    segment gets nothing (bad_l4_checksum);
//  - its source: not one of our own addresses (a "land" packet from the VIP to the VIP, or from a LIP
//    or an interface address: own_source), not the broadcast address of a connected network
//    (broadcast_source); parse already refused loopback, multicast, limited broadcast and
//    unspecified sources (bad_source);
//  - the reverse path (strict uRPF, RFC 3704 2.2): the route back to the source must leave by the
//    port the packet came in on. A real server's address arriving on the client port, or a client's
//    on the server port, is spoofed (reverse_path); no route at all is no_route.
// A SYN that passes and still finds no room (a per-state bound, no local port, no conn object, a full
// table) is refused: counted per packet by its drop reason and per connection in refused_conns, then
// dropped or, with syn_refusal = rst, answered with a reset from the VIP so that the client's
// connect() fails at once instead of timing out. A retransmitted SYN (same tuple and ISN) is
// recognised in a small direct-mapped cache of recent refusals (keyed by a random per-process seed,
// full tuples compared, so a collision can only evict, never merge two connections) and not counted
// as a new refusal. Resets are rate-limited per lcore (rst_rate, rst_burst): a reset goes to whatever
// source the SYN claimed; it is no larger than the SYN (no amplification) but under a spoofed flood
// it is reflected to innocent hosts, so its rate is bounded and what the bound suppressed is counted
// (rsts_limited).

bool worker::trusted_first(std::uint16_t port, rte_mbuf* m, const packet_info& info) {
  if (const drop_reason r = dpdk::verify_l4_checksum(m, info); r != drop_reason::none) {
    drop(m, r);
    return false;
  }
  if (const std::uint8_t* k = martians_.find(info.tuple.saddr)) {
    drop(m, *k == martian_own ? lb_drop::own_source : lb_drop::broadcast_source);
    return false;
  }
  const next_hop back = sh_.cfg->routes.lookup(info.tuple.saddr);
  if (!back) {
    drop(m, lb_drop::no_route);
    return false;
  }
  if (back.port != port) {
    drop(m, lb_drop::reverse_path);
    return false;
  }
  return true;
}

void worker::refuse(std::uint16_t port, rte_mbuf* m, const packet_info& info, lb_drop why) {
  stats_.drops[static_cast<std::size_t>(why)].add();
  if (info.proto != ipproto::tcp) {
    rte_pktmbuf_free(m);
    return;
  }
  const std::span<const std::uint8_t> head{rte_pktmbuf_mtod(m, const std::uint8_t*), rte_pktmbuf_data_len(m)};
  const std::uint32_t isn = load_be32(head.data() + info.l4_off + 4);
  // The slot comes from the process's keyed hash of the tuple and the ISN (both the sender's choice).
  struct refusal_key {
    inet_tuple tuple;
    std::uint32_t isn;
  };
  static_assert(std::has_unique_object_representations_v<refusal_key>);
  refusal_slot& slot = refusals_[hash_key(refusal_key{info.tuple, isn}) & (refusal_slots - 1)];
  if (!slot.used || slot.isn != isn || std::memcmp(&slot.tuple, &info.tuple, sizeof(inet_tuple)) != 0) {
    slot = refusal_slot{info.tuple, isn, true};
    stats_.refused_conns.add();
  }
  if (sh_.cfg->global.refusal != syn_refusal::rst) {
    rte_pktmbuf_free(m);
    return;
  }
  const std::optional<tcp_reset_spec> rst = reset_for(head, info);
  if (!rst) {
    rte_pktmbuf_free(m);
    return;
  }
  if (!rst_bucket_->take(now_)) {
    stats_.rsts_limited.add();
    rte_pktmbuf_free(m);
    return;
  }
  const l2_spec l2 = reply_l2(head, info, sh_.ports[port].mac);
  const errc rc = dpdk::build_frame(m, 96, [&](std::span<std::uint8_t> out) { return build_tcp_reset(out, l2, *rst); });
  if (rc != errc::ok) {
    drop(m, lb_drop::no_mbuf);
    return;
  }
  stats_.rsts_sent.add();
  tx(port, m);
}

void worker::drop(rte_mbuf* m, lb_drop why) {
  stats_.drops[static_cast<std::size_t>(why)].add();
  rte_pktmbuf_free(m);
}

void worker::drop(rte_mbuf* m, drop_reason why) {
  stats_.parse_drops[static_cast<std::size_t>(why)].add();
  rte_pktmbuf_free(m);
}

// ---- MSS clamping ------------------------------------------------------------------------------

void worker::clamp_syn_mss(rte_mbuf* m, const packet_info& info, std::uint16_t bound) {
  // The TCP header is in the first segment (parse checked its data offset against it); Ethernet
  // padding is not part of it. The checksum is updated incrementally, so the rewrite that follows
  // (incremental too, or a checksum offload that starts from the pseudo-header) keeps it right.
  const std::size_t end = std::min<std::size_t>(rte_pktmbuf_data_len(m), info.frame_len);
  if (info.l4_off >= end) return;
  const std::span<std::uint8_t> tcp{rte_pktmbuf_mtod_offset(m, std::uint8_t*, info.l4_off), end - info.l4_off};
  switch (clamp_mss(tcp, bound).status) {
    case mss_status::clamped: stats_.mss_clamped.add(); break;
    case mss_status::malformed: stats_.mss_malformed.add(); break;
    default: break;  // at or below the bound, or no MSS option: nothing to lower
  }
}

// ---- client address: Proxy Protocol and TOA (issue 18) --------------------------------------------
//
// FullNAT hides the client behind a LIP; a service with client_address tells its real servers who
// the client is. Proxy Protocol (TCP): at open, the conn's client space is shifted by the header's
// length H from the client's first data byte on (seq_adjust::insert_inbound(ISN + 1, H)). The
// segment whose data starts there gets the header in front of its data, and so does each
// retransmission of it; every later inbound seq moves by H, every outbound ack and SACK edge back by
// H (seq_adjust::apply). The servers' SYN-ACK MSS is lowered so that H plus a full segment fit the
// server link. UDP (v2 only): a header in front of every datagram towards the servers. TOA: the
// option goes into the SYN and into the segments that acknowledge the SYN-ACK (ack == server ISN + 1,
// not SYN, not RST), as DPVS's tcp_fnat_in_handler does: the toa module reads it from the segment
// that completes the handshake, or the first data segment when that ACK was lost; a segment with no
// room crosses without it (counted). Growth needs room in the mbuf's first segment: a header that
// does not fit is a counted drop (the client retransmits), never a truncated segment.

namespace {

// The frame of `m` with `grow` more bytes of room after info.frame_len in its first (only) segment;
// empty when there is no such room (chained mbufs are not grown).
std::span<std::uint8_t> frame_room(rte_mbuf* m, const packet_info& info, std::size_t grow) noexcept {
  if (m->nb_segs != 1) return {};
  const std::size_t cap = std::size_t{rte_pktmbuf_data_len(m)} + rte_pktmbuf_tailroom(m);
  if (info.frame_len + grow > cap) return {};
  return {rte_pktmbuf_mtod(m, std::uint8_t*), cap};
}

// The mbuf's lengths follow the frame after an insertion (Ethernet padding, if any, is gone).
void fit_to_frame(rte_mbuf* m, const packet_info& info) noexcept {
  m->data_len = static_cast<std::uint16_t>(info.frame_len);
  m->pkt_len = info.frame_len;
}

enum class udp_insert : std::uint8_t { ok, no_room, bad_checksum, too_big };

// Puts `data` in front of a parsed UDP datagram's payload: UDP and IP lengths grow (IPv4 header
// checksum updated incrementally), the UDP checksum is recomputed in full after the old one verified
// (an odd-length insertion moves every payload byte within its 16-bit word: no O(1) update); an IPv4
// datagram sent without a checksum (0) stays without. Refusals change nothing. O(frame length).
udp_insert insert_udp_payload(std::span<std::uint8_t> frame, packet_info& info, std::span<const std::uint8_t> data) noexcept {
  const std::size_t n = data.size();
  if (info.frame_len + n > frame.size()) return udp_insert::no_room;
  const bool v4 = info.family == ip_family::v4;
  const std::size_t ip_len = info.frame_len - info.l3_off;
  if (info.l4_len() + n > 65535 || (v4 && ip_len + n > 65535)) return udp_insert::too_big;
  std::uint8_t* const base = frame.data();
  if (!l4_checksum_ok(std::span<const std::uint8_t>(base, info.frame_len), info)) return udp_insert::bad_checksum;
  std::uint8_t* const udp = base + info.l4_off;
  const bool no_sum = v4 && load_raw16(udp + 6) == 0;
  std::memmove(base + info.payload_off + n, base + info.payload_off, info.frame_len - info.payload_off);
  std::memcpy(base + info.payload_off, data.data(), n);
  std::uint8_t* const ip = base + info.l3_off;
  if (v4) {
    const std::uint16_t old_tl = load_raw16(ip + 2), new_tl = hton16(static_cast<std::uint16_t>(ip_len + n));
    store(ip + 2, new_tl);
    store(ip + 10, csum_update16(load_raw16(ip + 10), old_tl, new_tl));
  } else {
    store(ip + 4, hton16(static_cast<std::uint16_t>(ip_len + n - ipv6_hdr_len)));
  }
  info.frame_len = static_cast<std::uint32_t>(info.frame_len + n);
  store_be16(udp + 4, static_cast<std::uint16_t>(info.l4_len()));
  store(udp + 6, std::uint16_t{0});
  if (!no_sum) {
    const std::span<const std::uint8_t> whole(base, info.frame_len);
    std::uint16_t sum = internet_checksum({udp, info.l4_len()}, l4_pseudo_header_sum(whole, info));
    if (sum == 0) sum = 0xffff;  // 0 means "none" in UDP (RFC 768); its complement is the same sum
    store(udp + 6, sum);
  }
  return udp_insert::ok;
}

}  // namespace

std::size_t worker::ca_header(const lb_conn& c, const lb_service& svc, std::span<std::uint8_t> out) const noexcept {
  // The client as it connected: its address and port, and the VIP:vport it asked for.
  const inet_tuple& in = c.in();
  const endpoint src{in.saddr, ntoh16(in.sport)}, dst{in.daddr, ntoh16(in.dport)};
  if (svc.client_address == client_address_mode::proxy_protocol_v1) return encode_proxy_v1(out, src, dst);
  return encode_proxy_v2(out, src, dst, c.proto);
}

void worker::ca_open(lb_conn& c, const lb_service& svc) {
  c.data = lb_payload{};  // conn objects are reused: nothing of a previous conn may survive
  if (c.proto != ipproto::tcp || svc.client_address == client_address_mode::toa) return;
  std::array<std::uint8_t, proxy_v1_max_len + 1> hdr;
  c.data.header_len = static_cast<std::uint8_t>(ca_header(c, svc, hdr));  // the shift starts at the SYN (ca_inbound)
}

bool worker::ca_inbound(rte_mbuf* m, packet_info& info, lb_conn& c, const lb_service& svc) {
  client_address_stats& st = ca_stats_[c.group];
  std::array<std::uint8_t, proxy_v1_max_len + 1> hdr;
  if (info.proto == ipproto::udp) {  // proxy_protocol_v2 (the configuration allows nothing else)
    const std::size_t n = ca_header(c, svc, hdr);
    const std::span<std::uint8_t> room = frame_room(m, info, n);
    const udp_insert r = room.empty() ? udp_insert::no_room : insert_udp_payload(room, info, {hdr.data(), n});
    if (r != udp_insert::ok) {
      (r == udp_insert::bad_checksum ? st.refused : st.no_room).add();
      drop(m, r == udp_insert::bad_checksum ? lb_drop::client_address_refused : lb_drop::client_address_no_room);
      return false;
    }
    fit_to_frame(m, info);
    st.pp_headers.add();
    return true;
  }
  const std::size_t seg_end = std::min<std::size_t>(rte_pktmbuf_data_len(m), info.frame_len);
  if (std::size_t{info.l4_off} + 20 > seg_end) return true;  // parse keeps the TCP header in the first segment
  auto* tcp = rte_pktmbuf_mtod_offset(m, std::uint8_t*, info.l4_off);
  const std::uint8_t fl = info.tcp_flags;
  const bool syn = (fl & tcp_flag::syn) != 0 && (fl & tcp_flag::ack) == 0;
  if (svc.client_address == client_address_mode::toa) {
    if (syn) c.data.syn_ack_seen = false;  // a new handshake (or this one again): wait for its SYN-ACK
    const bool acks_syn_ack = c.data.syn_ack_seen && (fl & tcp_flag::ack) != 0 &&
                              (fl & (tcp_flag::syn | tcp_flag::rst)) == 0 && load_be32(tcp + 8) == c.data.server_next;
    if (syn || acks_syn_ack) ca_toa(m, info, c, st);
    return true;
  }
  seq_adjust& sa = c.data.seq;
  const std::uint32_t seq = load_be32(tcp + 4);
  if (syn && ((sa.flags & seq_adjust::in_on) == 0 || sa.in_start != seq + 1)) {
    // The client's first data byte follows its ISN. A SYN with another ISN reopens the conn (its tuple
    // came back while the conn lingered in TIME_WAIT): a new byte stream, nothing of the old shift.
    sa = seq_adjust{};
    sa.insert_inbound(seq + 1, c.data.header_len);
    c.data.header_sent = false;
  }
  const std::uint32_t first = seq + ((fl & tcp_flag::syn) != 0 ? 1u : 0u);
  const bool carry = info.frame_len > info.payload_off && (sa.flags & seq_adjust::in_unbounded) == 0 && first == sa.in_start;
  if (carry) {
    const std::size_t n = ca_header(c, svc, hdr);
    const std::span<std::uint8_t> room = frame_room(m, info, n);
    const tcp_option_error r = room.empty() ? tcp_option_error::no_buffer_room
                                            : insert_tcp_payload(room, info, {hdr.data(), n}, {.capacity = room.size()});
    if (r != tcp_option_error::none) {
      const bool full = r == tcp_option_error::no_buffer_room || r == tcp_option_error::too_big;
      (full ? st.no_room : st.refused).add();
      drop(m, full ? lb_drop::client_address_no_room : lb_drop::client_address_refused);
      return false;
    }
    fit_to_frame(m, info);
    st.pp_headers.add();
    if (c.data.header_sent) st.pp_again.add();
    c.data.header_sent = true;
  }
  if (sa.apply({tcp, info.frame_len - info.l4_off}, direction::inbound, !carry) != tcp_option_error::none) {
    st.refused.add();
    drop(m, lb_drop::client_address_refused);
    return false;
  }
  st.translated.add();
  return true;
}

bool worker::ca_outbound(rte_mbuf* m, packet_info& info, lb_conn& c, const lb_service& svc) {
  if (info.proto != ipproto::tcp) return true;
  client_address_stats& st = ca_stats_[c.group];
  const std::size_t seg_end = std::min<std::size_t>(rte_pktmbuf_data_len(m), info.frame_len);
  if (std::size_t{info.l4_off} + 20 > seg_end) return true;
  auto* tcp = rte_pktmbuf_mtod_offset(m, std::uint8_t*, info.l4_off);
  const std::uint8_t fl = info.tcp_flags;
  const bool toa = svc.client_address == client_address_mode::toa;
  if ((fl & (tcp_flag::syn | tcp_flag::ack)) == (tcp_flag::syn | tcp_flag::ack)) {
    c.data.server_next = load_be32(tcp + 4) + 1;
    c.data.syn_ack_seen = true;
    // The client sizes its segments by this MSS; each may grow by the header (its first) or the
    // TOA option on its way to the server, over the server's link.
    const std::size_t grow = toa ? (info.family == ip_family::v4 ? toa::len_v4 : toa::len_v6) : c.data.header_len;
    const std::size_t mtu = sh_.cfg->ports[svc.rss[c.tag].to.port].mtu;
    const std::size_t fixed = (info.family == ip_family::v4 ? ipv4_hdr_len : ipv6_hdr_len) + 20 + grow;
    if (mtu > fixed + 64) clamp_syn_mss(m, info, static_cast<std::uint16_t>(std::min<std::size_t>(mtu - fixed, 65535)));
  }
  if (toa) return true;
  if (c.data.seq.apply({tcp, seg_end - info.l4_off}, direction::outbound) != tcp_option_error::none) {
    st.refused.add();
    drop(m, lb_drop::client_address_refused);
    return false;
  }
  st.translated.add();
  return true;
}

void worker::ca_toa(rte_mbuf* m, packet_info& info, const lb_conn& c, client_address_stats& st) {
  const inet_tuple& in = c.in();
  const endpoint client{in.saddr, ntoh16(in.sport)};
  const std::size_t grow = tcp_option_padded_len(client.addr.is_v4() ? toa::len_v4 : toa::len_v6);
  const std::span<std::uint8_t> room = frame_room(m, info, grow);
  if (room.empty() || insert_toa(room, info, client, {.capacity = room.size()}) != tcp_option_error::none) {
    st.toa_no_room.add();  // forwarded as it came: the server sees the LIP, never a broken segment
    return;
  }
  fit_to_frame(m, info);
  st.toa_inserted.add();
}

}  // namespace fnat::lb
