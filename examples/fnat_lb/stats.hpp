// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's counters: every packet a worker handles ends in a counter, forwarded or dropped with a
// reason.
//
// A counter is written by its worker lcore only and read by the telemetry thread and the main lcore.
// Plain integers would make those reads data races; std::atomic with fetch_add would put a locked
// read-modify-write on the fast path. So a counter is an atomic written with a relaxed load and a
// relaxed store (one plain add on x86) by its single writer, and read with a relaxed load anywhere.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <fnat/core/packet.hpp>

namespace fnat::lb {

/// A single-writer counter (see the file comment).
class counter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void set(std::uint64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// Why the balancer dropped a packet it parsed successfully (parse failures are fnat::drop_reason).
enum class lb_drop : std::uint8_t {
  not_for_us,         ///< no service, not a LIP, not one of our addresses
  non_syn_first,      ///< the first TCP packet of a flow was not a SYN
  no_real_server,     ///< the service's scheduler found no usable real server
  port_exhausted,     ///< sa_pool: no local port left on any LIP of the service
  conn_pool_empty,    ///< no conn object left (conns_per_lcore reached)
  table_full,         ///< the conn table refused the conn
  tuple_in_use,       ///< the conn table already holds one of the conn's tuples
  no_conn,            ///< a packet to a LIP:lport that this lcore owns but has no conn for
  ring_full,          ///< redirect: the owner lcore's ring was full
  misdirected,        ///< a redirected packet whose owner is not this lcore either (never redirected twice)
  unknown_neighbour,  ///< no MAC for the next hop and no room to hold the packet
  no_route,           ///< no connected network or gateway for the destination
  unsupported,        ///< ICMP other than echo, ARP/ND we do not answer, ...
  tx_full,            ///< the tx queue did not take the packet
  no_mbuf,            ///< no mbuf for a reply or request we wanted to send
  chain_full,         ///< the conn table's bucket for a tuple is at max_chain (hash flooding?)
  own_source,         ///< a first packet whose source is one of our addresses (VIP, LIP, interface): "land"
  broadcast_source,   ///< a first packet whose source is the broadcast address of a connected network
  reverse_path,       ///< a first packet whose source is routed out of another port than it came in on
  half_open_limit,    ///< the lcore's bound on TCP conns in SYN_RECV / SYN_SENT was reached
  udp_oneway_limit,   ///< the lcore's bound on UDP conns that have seen no reply was reached
  icmp_error_malformed,    ///< an ICMP error whose checksum or quote is unusable (core/icmp_error.hpp)
  icmp_error_unsupported,  ///< an ICMP error quoting something other than TCP or UDP
  icmp_error_no_conn,      ///< an ICMP error about no conn of ours (forged, or its conn expired)
  frag_dropped,       ///< a fragment given up by reassembly: timed out, table full, overlapping, too many
  frag_failed,        ///< a datagram too big for its egress link could not be fragmented (no mbuf)
  too_big,            ///< too big for the egress link and not ours to fragment (IPv4 DF, IPv6)
  client_address_no_room,  ///< a segment or datagram that must carry a Proxy Protocol header had no room for it
  client_address_refused,  ///< ... whose checksum did not verify or whose TCP options do not parse (not translated)
};
inline constexpr std::size_t lb_drop_count = static_cast<std::size_t>(lb_drop::client_address_refused) + 1;

[[nodiscard]] constexpr std::string_view to_string(lb_drop d) noexcept {
  switch (d) {
    case lb_drop::not_for_us: return "not_for_us";
    case lb_drop::non_syn_first: return "non_syn_first";
    case lb_drop::no_real_server: return "no_real_server";
    case lb_drop::port_exhausted: return "port_exhausted";
    case lb_drop::conn_pool_empty: return "conn_pool_empty";
    case lb_drop::table_full: return "table_full";
    case lb_drop::tuple_in_use: return "tuple_in_use";
    case lb_drop::no_conn: return "no_conn";
    case lb_drop::ring_full: return "ring_full";
    case lb_drop::misdirected: return "misdirected";
    case lb_drop::unknown_neighbour: return "unknown_neighbour";
    case lb_drop::no_route: return "no_route";
    case lb_drop::unsupported: return "unsupported";
    case lb_drop::tx_full: return "tx_full";
    case lb_drop::no_mbuf: return "no_mbuf";
    case lb_drop::chain_full: return "chain_full";
    case lb_drop::own_source: return "own_source";
    case lb_drop::broadcast_source: return "broadcast_source";
    case lb_drop::reverse_path: return "reverse_path";
    case lb_drop::half_open_limit: return "half_open_limit";
    case lb_drop::udp_oneway_limit: return "udp_oneway_limit";
    case lb_drop::icmp_error_malformed: return "icmp_error_malformed";
    case lb_drop::icmp_error_unsupported: return "icmp_error_unsupported";
    case lb_drop::icmp_error_no_conn: return "icmp_error_no_conn";
    case lb_drop::frag_dropped: return "frag_dropped";
    case lb_drop::frag_failed: return "frag_failed";
    case lb_drop::too_big: return "too_big";
    case lb_drop::client_address_no_room: return "client_address_no_room";
    case lb_drop::client_address_refused: return "client_address_refused";
  }
  return "unknown";
}

/// One worker's counters. Gauges (conns, ports) are published by the worker at each timer tick.
struct worker_stats {
  counter rx_packets;       ///< packets received from the ports
  counter tx_packets;       ///< packets the tx queues took
  counter inbound;          ///< client -> VIP packets forwarded to a real server
  counter outbound;         ///< real server -> LIP packets forwarded to a client
  counter conns_created;
  counter conns_expired;
  counter redirected_out;   ///< replies handed to their owner lcore
  counter redirected_in;    ///< replies received from another lcore
  counter arp_replies;      ///< ARP replies and neighbour advertisements sent
  counter neigh_requests;   ///< ARP requests and neighbour solicitations sent
  counter neigh_learned;    ///< neighbours learned here (and passed to the other workers)
  counter echo_replies;
  counter held;             ///< packets held while their next hop resolves
  std::array<counter, drop_reason_count> parse_drops;
  std::array<counter, lb_drop_count> drops;
  // Gauges, refreshed every tick by the worker.
  counter conns_live;
  counter conn_objects_in_use;
  counter ports_in_use;     ///< local ports in use over all LIPs and buckets
  counter ports_free;
  counter port_misses;      ///< sa_pool fetches that found a bucket exhausted
  // Refusals of new connections (no port, no conn, a per-state bound): the drops above count each
  // packet; these count connections and what was answered.
  counter refused_conns;    ///< distinct refused TCP connections (a retransmitted SYN is not counted again)
  counter rsts_sent;        ///< resets sent to refused clients (syn_refusal = rst)
  counter rsts_limited;     ///< resets the per-lcore rate limit suppressed (the SYN was dropped)
  // Gauges, refreshed every tick by the worker.
  counter half_open;        ///< TCP conns in SYN_RECV / SYN_SENT
  counter udp_oneway;       ///< UDP conns that have seen no reply
  // ICMP errors about a conn, translated (core/icmp_error.hpp).
  counter icmp_errors_out;  ///< from the real-server side to a client (as the VIP's)
  counter icmp_errors_in;   ///< from a client to a real server (as the LIP's)
  // IP fragments (core/fragment.hpp, rte_ip_frag).
  counter frags_in;         ///< fragments taken into this worker's reassembly table
  counter reassembled;      ///< datagrams completed from them
  counter fragmented;       ///< datagrams fragmented to the egress MTU
  counter frags_out;        ///< fragments those made
  counter icmp_too_big_sent;  ///< fragmentation needed / packet too big sent for a packet we could not forward
  // MSS clamping (service key mss_clamp, core/tcp_mss.hpp).
  counter mss_clamped;      ///< SYNs and SYN-ACKs whose MSS was lowered to the service's bound
  counter mss_malformed;    ///< SYNs and SYN-ACKs of such services forwarded unclamped: their options do not parse

  [[nodiscard]] std::uint64_t total_drops() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < parse_drops.size(); ++i) n += parse_drops[i].get();
    for (const auto& c : drops) n += c.get();
    return n;
  }
};

/// Per service and worker: how the client's address reached the real servers (service key
/// client_address; core/proxy_protocol.hpp, core/toa.hpp, core/seq_adjust.hpp).
struct client_address_stats {
  counter pp_headers;       ///< Proxy Protocol headers inserted (TCP first data segments, UDP datagrams)
  counter pp_again;         ///< ... of them into a retransmission of a first data segment
  counter translated;       ///< segments whose seq (inbound) or ack/SACK (outbound) were translated
  counter toa_inserted;     ///< TOA options inserted (SYN, segments acknowledging the SYN-ACK)
  counter toa_no_room;      ///< such segments forwarded without TOA: no room in the header or the mbuf
  counter no_room;          ///< dropped: no room in the mbuf for the header (lb_drop::client_address_no_room)
  counter refused;          ///< dropped: bad checksum or options (lb_drop::client_address_refused)
};

}  // namespace fnat::lb
