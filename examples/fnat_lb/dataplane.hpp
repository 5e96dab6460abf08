// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's dataplane: what one worker lcore does with the packets of its rx queues.
//
// ## One packet's way (run to completion, DESIGN.md)
//   rx_burst(port, queue of this worker) on every port, then the worker's redirect ring
//   -> parse (fnat::dpdk::parse); malformed -> counted drop (fnat::drop_reason)
//   -> ARP / neighbour discovery / echo for one of our addresses -> answered in the same mbuf
//   -> ICMP error: the conn is found by the quote (its reversed tuple), on the lcore that owns the
//      quoted LIP:lport (a client's error, which has no such owner, visits the workers in turn);
//      outer and quoted headers translated back (core/icmp_error.hpp)
//   -> to a LIP and owned by another worker (port plan class, or the RETA in RSS mode)
//        -> redirect ring of the owner (never twice: a redirected packet is never redirected again)
//   -> conn table, bulk lookup of the burst's tuples
//        hit inbound   -> rewrite to LIP:lport -> RS:rport, follow TCP state, refresh the timer
//        hit outbound  -> rewrite to VIP:vport -> client:cport
//        miss, to a service (VIP:vport:proto), TCP SYN or any UDP
//                      -> scheduler picks a real server -> session_table::open (LIP:lport from
//                         the service's rotation, conn object, both tuples, idle timer; all or none)
//                      -> rewrite as inbound
//        otherwise     -> counted drop (lb_drop)
//   -> next hop (conn's cached route) -> neighbour cache (held while it resolves) -> tx buffer
//   timer tick: session_table::advance closes the conns idle past their state's timeout.
//
// ## What is shared and what is not
// `lb_shared` is built on the main lcore before the workers start and is read-only afterwards (its
// rings are multi-producer): ports, services, the port plan, the lookup maps, the redirect rings and
// the neighbour broadcast rings. Everything a worker writes is its own: conn table, conn objects,
// timer wheel, sa_pools, schedulers, neighbour cache, tx buffers and counters. No lock anywhere.
//
// Neighbours: ARP and ND answers reach one worker only (they have no ports to steer by), so the
// worker that learns a neighbour passes (address, MAC) to every other worker over a small ring.
#pragma once

#include <rte_ip_frag.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <fnat/core/any_buckets.hpp>
#include <fnat/core/conn_state.hpp>
#include <fnat/core/conn_table.hpp>
#include <fnat/core/fragment.hpp>
#include <fnat/core/icmp_error.hpp>
#include <fnat/core/neighbour.hpp>
#include <fnat/core/packet.hpp>
#include <fnat/core/port_plan.hpp>
#include <fnat/core/rss_ports.hpp>
#include <fnat/core/sa_pool.hpp>
#include <fnat/core/session_table.hpp>
#include <fnat/core/scheduler.hpp>
#include <fnat/core/seq_adjust.hpp>
#include <fnat/core/token_bucket.hpp>
#include <fnat/core/toeplitz.hpp>
#include <fnat/dpdk/memory.hpp>
#include <fnat/dpdk/packet.hpp>
#include <fnat/dpdk/rcu_publish.hpp>
#include <fnat/dpdk/redirect.hpp>
#include <fnat/dpdk/reply_steering.hpp>

#include "fnat_lb/config.hpp"
#include "fnat_lb/flat_map.hpp"
#include "fnat_lb/live.hpp"
#include "fnat_lb/stats.hpp"

namespace fnat::lb {

/// How replies reach their owner on one port (chosen at start, see balancer.hpp).
enum class port_steering : std::uint8_t {
  none,      ///< the port holds no LIP: nothing to steer (client side)
  flow,      ///< rte_flow rules per lcore class
  rss,       ///< RSS-aware local ports over the RETA we programmed
  redirect,  ///< software hand-off to the owner lcore
  lip_per_lcore,  ///< one LIP per worker, flow rules on the address alone; pools over all its ports
};
[[nodiscard]] std::string_view to_string(port_steering s) noexcept;

/// Where to send: a port (index in lb_config::ports) and the neighbour to resolve there.
struct egress {
  inet_addr next_hop{};
  std::uint16_t port = 0;
};

/// The sa_pool policy of a LIP: DPVS-style buckets over the lcore's port classes (flow and redirect
/// modes) or RSS-aware buckets (RSS mode), chosen per port at start.
using lb_pool_policy = any_buckets;
using lb_sa_pool = sa_pool<lb_pool_policy, dpdk::rte_allocator<std::byte>>;

/// The clock of the timer wheel and the neighbour cache: the TSC.
struct tsc_clock {
  [[nodiscard]] std::uint64_t now() const noexcept;
  [[nodiscard]] std::uint64_t frequency() const noexcept;
};

/// The policies of a worker's session table (core/session_table.hpp): LIP pools of the port's
/// steering mode, conn memory from the worker's NUMA socket, expiry on the TSC.
struct lb_traits : session_table_traits {
  using pool_policy = lb_pool_policy;
  using allocator = dpdk::rte_allocator<std::byte>;
  using clock = tsc_clock;
};
/// A conn's application data beyond the session's own fields. The service is the session's
/// port group (one LIP rotation per service, registered in service order) and the real server's
/// slot (live.hpp: a stable id that survives reloads) is its hot `tag`, so everything a forwarded packet reads sits in the lines the lookup
/// fetches. The next hop towards the client is looked up per outbound packet (a few compares over
/// the connected networks) rather than kept here, where it would cost a cache line per packet.
/// The payload is read only by conns of services with client_address != none (a branch on the
/// service decides), and written when such a conn opens: other conns never touch its line.
struct lb_payload {
  seq_adjust seq;                ///< Proxy Protocol over TCP: the client space shifted by the header
  std::uint32_t server_next = 0; ///< TOA: the server's ISN + 1 once its SYN-ACK passed (host order)
  std::uint8_t header_len = 0;   ///< Proxy Protocol: bytes of this conn's header
  bool syn_ack_seen = false;     ///< TOA: server_next is valid
  bool header_sent = false;      ///< Proxy Protocol: a header went out (a later one is a retransmission's)
};

using lb_sessions = session_table<lb_payload, lb_traits>;
/// A FullNAT connection: both tuples (inbound client -> VIP, outbound RS -> LIP:lport), so the
/// rewrite of one direction is the other direction's tuple reversed.
using lb_conn = lb_sessions::session_type;
using lb_table = lb_sessions::table_type;
using lb_rotation = lb_sessions::rotation_type;
using lb_neighbours = neighbour_cache<rte_mbuf*>;

// The per-packet path reads the tuples, last_seen, tag (real server), group (service), proto and
// state: they must end inside the first two cache lines, which the bulk lookup prefetches (offsetof
// on a class with a base: supported by g++ and clang, which warn that the standard does not promise it).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
static_assert(offsetof(lb_conn, last_seen) == 112 && offsetof(lb_conn, state) + 1 <= 128,
              "lb_conn: the per-packet fields must stay within the first two cache lines");
static_assert(offsetof(lb_conn, tag) + 4 <= 128 && offsetof(lb_conn, group) + 2 <= 128 &&
                  offsetof(lb_conn, proto) < 128,
              "lb_conn: the per-packet fields must stay within the first two cache lines");
#pragma GCC diagnostic pop

/// A port as the dataplane sees it.
struct lb_port {
  std::uint16_t port_id = 0;
  std::string name;
  mac_addr mac{};
  checksum_offload offload{};
  port_steering steering = port_steering::none;
  std::string steering_reason;
  /// Our addresses for ARP/ND sources on this port (first interface address of each family).
  std::optional<ipv4_addr> src4;
  std::optional<ipv6_addr> src6;
  /// Addresses we answer ARP, ND and echo for on this port.
  flat_map<inet_addr, std::uint8_t> local;
  /// RSS mode: the key and RETA as programmed, to find the owner of a stray reply.
  std::shared_ptr<const toeplitz> rss_hash;
  std::vector<std::uint16_t> reta;
  /// Which worker owns a reply on this port, in whatever mode (fnat/dpdk/reply_steering.hpp).
  dpdk::reply_owner owner;
};

/// A real server of a service, with its route.
struct lb_real_server {
  endpoint addr;
  egress to;
};

/// A service as the dataplane sees it.
struct lb_service {
  std::string name;
  endpoint vip;
  std::uint8_t proto = ipproto::tcp;
  std::vector<lb_real_server> rss;
  std::vector<std::uint16_t> lips;  ///< indices into lb_shared::lips
  scheduler_config sched;
  std::vector<sched_backend> backends;
  std::uint16_t mss_clamp = 0;  ///< service_config::mss_clamp: 0 = off
  client_address_mode client_address = client_address_mode::none;  ///< service_config::client_address
};

/// A LIP and the port it lives on.
struct lb_lip {
  inet_addr addr;
  std::uint16_t port = 0;
};

/// The key of the service map: VIP, vport (network order) and protocol.
struct service_key {
  inet_addr vip;
  std::uint16_t vport = 0;
  std::uint8_t proto = 0;
  std::uint8_t pad = 0;
};
static_assert(std::has_unique_object_representations_v<service_key>);

/// (address, MAC) a worker learned, for the others.
struct neigh_update {
  inet_addr addr;
  mac_addr mac;
  std::uint8_t pad[10] = {};
};
static_assert(sizeof(neigh_update) == 32);

/// Sends a burst on (port id, queue); returns how many the queue took. The default is
/// rte_eth_tx_burst; the pipeline benchmark substitutes a sink.
using tx_function = std::uint16_t (*)(void* ctx, std::uint16_t port_id, std::uint16_t queue, rte_mbuf** pkts,
                                      std::uint16_t n);

/// Everything the workers share, read-only while they run (see the file comment).
struct lb_shared {
  const lb_config* cfg = nullptr;
  std::optional<port_plan> plan;
  std::vector<lb_port> ports;
  std::vector<lb_service> services;
  std::vector<lb_lip> lips;
  flat_map<service_key, std::uint16_t> service_map;
  flat_map<inet_addr, std::uint16_t> lip_map;  ///< LIP -> index into lips
  std::array<std::uint16_t, RTE_MAX_ETHPORTS> port_index_of_id{};
  std::optional<dpdk::redirect> redirect;
  std::vector<rte_ring*> neigh_rings;  ///< one per worker, multi-producer
  rte_mempool* mbufs = nullptr;
  tx_function tx = nullptr;
  void* tx_ctx = nullptr;
  std::uint16_t burst = 32;
  std::atomic<bool> stop{false};
  std::uint32_t frag_key = 0;  ///< secret of fragment_home (core/fragment.hpp), the same for every worker
  /// The real servers and schedulers of the services, replaced while the workers run (live.hpp): a
  /// worker reads it once per burst (reader id = worker index) and is quiescent after each burst.
  /// `services[s].rss` above is the start-up configuration; a conn's tag is a slot of this one.
  std::optional<dpdk::rcu_cell<lb_live>> live;
};

/// Per-LIP pool gauges of one worker (telemetry's /fnat/sapool).
struct lip_gauges {
  counter used, free, misses;
};

/// One worker lcore (see the file comment). Built on the main lcore, run on its own lcore.
class worker {
 public:
  /// Builds worker `index` (plan order; it polls rx queue `index` of every port). Allocates its
  /// table, pools and caches on `socket`. Errors: those of the components, with their messages.
  [[nodiscard]] static result<std::unique_ptr<worker>> make(lb_shared& shared, std::size_t index, int socket);
  ~worker();

  /// The loop: poll, process, expire, until shared.stop. Then flushes and returns.
  void run();
  /// One round of the loop; returns the packets received (rx + redirect ring).
  unsigned poll_once();
  /// Processes a burst received on port index `port` (lb_config::ports order). Takes ownership of the
  /// mbufs. `redirected`: the burst came from this worker's redirect ring.
  void process_burst(std::uint16_t port, rte_mbuf** pkts, std::uint16_t n, bool redirected = false);
  /// Sends what the tx buffers hold.
  void flush();
  /// Sets the clock (TSC) the next process_burst works with; poll_once sets it from the TSC itself.
  /// For tests and fuzzers that drive process_burst and expire() on a clock of their own.
  void set_now(std::uint64_t tsc) noexcept { now_ = tsc; }
  /// Runs the timer for `now` (TSC); returns the conns expired.
  std::size_t expire(std::uint64_t now);
  /// Expires every conn and returns every held packet (shutdown). Afterwards the pools are whole.
  void drain_all();
  /// Removes the conn one of whose tuples is `key` as if it had expired (port back to its sa_pool,
  /// object back to the pool). Returns false when there is none. Owner lcore only.
  bool remove_conn(const inet_tuple& key) noexcept;
  /// Publishes the gauges (conns, ports) into stats().
  void publish();

  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] const worker_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] worker_stats& stats() noexcept { return stats_; }
  [[nodiscard]] std::span<const lip_gauges> lip_stats() const noexcept { return {lip_gauges_.get(), lips_}; }
  /// Conns created per (service, real-server slot), for /fnat/services; slot i is the configuration's
  /// rs i until the first reload (live.hpp). Requires rs < lb_max_slots.
  [[nodiscard]] const counter& rs_conns(std::size_t service, std::size_t rs) const noexcept {
    return rs_conns_[rs_base_[service] + rs];
  }
  /// Client-address counters of service `service` (lb_shared::services order).
  [[nodiscard]] const client_address_stats& ca_stats(std::size_t service) const noexcept { return ca_stats_[service]; }
  /// Checks (owner lcore only, or after run() returned) that every sa_pool is whole and no conn
  /// object is in use; returns a description of what is not.
  [[nodiscard]] std::string leak_report() const;
  [[nodiscard]] const lb_table& table() const noexcept { return sessions_->table(); }
  /// The worker's session table (conns, their ports and timers, and its counters).
  [[nodiscard]] const lb_sessions& sessions() const noexcept { return *sessions_; }
  /// Conns now counted against the per-state bounds (exact at any time, unlike the published gauges).
  [[nodiscard]] std::uint64_t half_open_now() const noexcept {
    return sessions_->count_in_state(ipproto::tcp, static_cast<std::uint8_t>(tcp_state::syn_recv)) +
           sessions_->count_in_state(ipproto::tcp, static_cast<std::uint8_t>(tcp_state::syn_sent));
  }
  [[nodiscard]] std::uint64_t udp_oneway_now() const noexcept {
    return sessions_->count_in_state(ipproto::udp, static_cast<std::uint8_t>(udp_state::oneway));
  }

 private:
  struct tx_buffer {
    std::uint16_t count = 0;
    std::array<rte_mbuf*, 64> pkts{};
  };
  struct burst_scratch {
    std::array<packet_info, 64> info;
    std::array<inet_tuple, 64> keys;
    std::array<rte_mbuf*, 64> fwd;
    std::array<std::uint16_t, 64> fwd_info;
    std::array<lb_table::hit, 64> hits;
  };

  worker(lb_shared& shared, std::size_t index);

  void handle_arp(std::uint16_t port, rte_mbuf* m, const packet_info& info);
  void handle_icmp(std::uint16_t port, rte_mbuf* m, packet_info& info);
  // ICMP errors about a conn (core/icmp_error.hpp): owner lcore, conn lookup by the quote, translation.
  void handle_icmp_error(std::uint16_t port, rte_mbuf* m, packet_info& info, bool redirected);
  // IP fragments: to their home worker, reassembled there (rte_ip_frag), then processed as whole
  // packets; datagrams too big for their egress link fragmented again (or refused).
  void handle_fragment(std::uint16_t port, rte_mbuf* m, bool redirected);
  void process_reassembled();
  void free_death_row();
  void sweep_fragments(std::uint64_t tms);
  void send_oversize(rte_mbuf* m, const packet_info& info, const egress& e);
  void refuse_too_big(rte_mbuf* m, const packet_info& info, const egress& e);
  // MSS clamping: a SYN or SYN-ACK of a service with mss_clamp, before its rewrite.
  void clamp_syn_mss(rte_mbuf* m, const packet_info& info, std::uint16_t bound);
  // To worker `to` over its redirect ring (counted as redirected out, or dropped as ring_full).
  void hand_off(rte_mbuf* m, std::uint16_t port_id, std::size_t to);
  void handle_hit(rte_mbuf* m, packet_info& info, lb_conn& c, direction dir);
  void handle_miss(std::uint16_t port, rte_mbuf* m, packet_info& info, bool redirected);
  /// Rewrites and sends (or holds) `m`; false when it was dropped instead (counted), so that the
  /// caller counts a packet forwarded only when it was.
  bool forward(rte_mbuf* m, packet_info& info, const inet_tuple& to, const egress& e);
  bool send(rte_mbuf* m, const egress& e);
  void send_l2(rte_mbuf* m, std::uint16_t port, const mac_addr& dst);
  void solicit(std::uint16_t port, const inet_addr& target, std::optional<mac_addr> unicast);
  void learn(const inet_addr& addr, const mac_addr& mac, bool broadcast);
  void drain_neighbour_ring();
  void tx(std::uint16_t port, rte_mbuf* m);
  void drop(rte_mbuf* m, lb_drop why);
  void drop(rte_mbuf* m, drop_reason why);
  [[nodiscard]] std::size_t owner_of_reply(const lb_port& port, const packet_info& info) const noexcept;
  [[nodiscard]] std::uint64_t ticks_of(tcp_state s) const noexcept { return tcp_ticks_[static_cast<std::size_t>(s)]; }
  [[nodiscard]] std::uint64_t ticks_of(udp_state s) const noexcept { return udp_ticks_[static_cast<std::size_t>(s)]; }

  lb_shared& sh_;
  std::size_t index_;
  std::uint16_t queue_;
  std::uint64_t now_ = 0;
  std::uint64_t next_publish_ = 0;
  std::uint64_t next_neigh_expire_ = 0;
  unsigned idle_rounds_ = 0;

  std::optional<lb_sessions> sessions_;
  std::optional<lb_neighbours> neigh_;
  std::vector<std::unique_ptr<lb_sa_pool>> sa_pools_;  // per LIP (lb_shared::lips order)
  std::vector<lb_rotation> rotations_;                 // per service; the sessions' port groups (never moved)
  const lb_live* live_ = nullptr;                       // this burst's snapshot (sh_.live)
  std::vector<tx_buffer> tx_;                          // per port
  burst_scratch scratch_;
  std::array<std::uint64_t, tcp_state_count> tcp_ticks_{};
  std::array<std::uint64_t, 2> udp_ticks_{};
  std::size_t lips_ = 0;
  std::unique_ptr<lip_gauges[]> lip_gauges_;
  std::vector<std::size_t> rs_base_;
  std::unique_ptr<counter[]> rs_conns_;
  worker_stats stats_;

  // ---- trust checks and refusals of first packets (dataplane.cpp, "first packets") ----
  /// A refused SYN remembered to tell its retransmissions from new refusals.
  struct refusal_slot {
    inet_tuple tuple{};
    std::uint32_t isn = 0;
    bool used = false;
  };
  static constexpr std::size_t refusal_slots = 512;  // power of two
  enum : std::uint8_t { martian_own = 1, martian_broadcast = 2 };

  [[nodiscard]] bool trusted_first(std::uint16_t port, rte_mbuf* m, const packet_info& info);
  void refuse(std::uint16_t port, rte_mbuf* m, const packet_info& info, lb_drop why);

  flat_map<inet_addr, std::uint8_t> martians_;  ///< our own addresses and the connected broadcasts
  std::uint64_t half_open_max_ = 0;
  std::uint64_t udp_oneway_max_ = 0;
  std::optional<token_bucket> rst_bucket_;
  std::unique_ptr<refusal_slot[]> refusals_;
  // IP reassembly (see handle_fragment).
  rte_ip_frag_tbl* frag_tbl_ = nullptr;
  std::unique_ptr<rte_ip_frag_death_row> death_row_;
  std::array<rte_mbuf*, 64> reassembled_{};
  std::uint16_t reassembled_count_ = 0;
  std::uint32_t frag6_id_ = 0;          ///< identification of the IPv6 datagrams we fragment
  std::uint64_t reassembled_flag_ = 0;  ///< mbuf dynflag: a datagram we reassembled (may be refragmented)
  std::uint64_t frag_cycles_ = 0;       ///< frag_timeout_ms in TSC cycles
  std::uint64_t young_cycles_ = 0;      ///< under pressure, entries older than this are given up
  std::uint32_t sweep_every_ = 0;       ///< pressure: this many fragments taken since the last sweep
  std::uint32_t frags_since_sweep_ = 0;
  // Rate limit of the "too big" errors we send: at most too_big_per_window per 100 ms.
  static constexpr std::uint32_t too_big_per_window = 100;
  std::uint64_t too_big_window_ = 0;
  std::uint32_t too_big_sent_ = 0;

  // ---- the client's address for the real servers (dataplane.cpp, "client address") ----
  // Only for conns of services with client_address != none. Each returns false when it dropped m
  // (counted); otherwise m goes on to forward() with its segment translated.
  void ca_open(lb_conn& c, const lb_service& svc);
  [[nodiscard]] bool ca_inbound(rte_mbuf* m, packet_info& info, lb_conn& c, const lb_service& svc);
  [[nodiscard]] bool ca_outbound(rte_mbuf* m, packet_info& info, lb_conn& c, const lb_service& svc);
  [[nodiscard]] std::size_t ca_header(const lb_conn& c, const lb_service& svc, std::span<std::uint8_t> out) const noexcept;
  void ca_toa(rte_mbuf* m, packet_info& info, const lb_conn& c, client_address_stats& st);
  std::unique_ptr<client_address_stats[]> ca_stats_;  // per service
};

}  // namespace fnat::lb
