// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's configuration: an INI file in DPDK's rte_cfgfile format, read by our own scanner,
// checked, and turned into a plain `lb_config`.
//
// ## The file (lb.ini.sample beside this header is the commented reference)
//   [global]              workers (EAL lcore ids; worker i polls rx queue i of every port),
//                         steering, idle, idle_sleep_us, conns_per_lcore, sa_pool_buckets,
//                         local_ports, class_bits, timer_tick_ms, log_level, telemetry,
//                         conn_table_capacity, max_half_open, max_udp_oneway, syn_refusal,
//                         rst_rate, rst_burst, frag_entries, frag_timeout_ms
//   [timeouts]            tcp_<state> for each of conn_state.hpp's TCP states, udp_oneway,
//                         udp_normal (whole seconds; DPVS's defaults)
//   [port NAME]           one per DPDK port, NAME as rte_eth_dev_get_port_by_name knows it:
//                         role, address (repeatable: ADDRESS/PREFIX), gateway (one per family),
//                         neighbour (repeatable: ADDRESS MAC), mtu
//   [service NAME]        vip, vport, proto, scheduler, maglev_table_size, mss_clamp, client_address, lip (repeatable),
//                         rs (repeatable: ADDRESS:PORT or [IPV6]:PORT, then optionally weight=N)
// '#' starts a comment (anywhere on a line); keys that take several values are simply repeated, one
// value per line, kept in order.
//
// ## Errors name the file and the line
// rte_cfgfile keeps no line numbers, and it skips some mistakes silently (a line without '=' is
// ignored, text after "]" is dropped, long names and values are truncated). So load_config() scans
// the file itself with rte_cfgfile's rules (the same comment, whitespace, section and "key = value"
// splitting, the same length limits) and rejects those lines instead; every entry keeps its line,
// and every later message can say where it comes from:
//     lb.ini:14: [service web] rs = 198.18.2.300:80: not an IPv4 or IPv6 address
//     lb.ini:9: [port net_af_packet1]: no address; add 'address = ADDRESS/PREFIX'
//     lb.ini: no [service NAME] section; add at least one
// Loading stops at the first error (a later one may only be a consequence of it).
//
// ## Checks
// Syntax and each value's domain first (in file order), then each port and each service on its own
// (families, duplicates, required keys, the scheduler builds), then what spans sections: connected
// networks of different ports are disjoint; a gateway is on a connected network of its port and each
// family has at most one; a static neighbour is on a connected network of its port; a VIP is on a
// connected network of a port facing clients (role client or both), or such a port has a gateway of
// its family (routers then route the VIP to the balancer); a LIP likewise on a port facing servers;
// every real server has a route (route.hpp) through a port facing servers; no two services share
// VIP, vport and protocol; no LIP is a VIP; the workers, local port range and class bits make a
// port plan. Which DPDK ports exist is known only once EAL is up: resolve_ports() is that separate,
// later step.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <fnat/core/addr.hpp>
#include <fnat/core/conn_state.hpp>
#include <fnat/core/error.hpp>
#include <fnat/core/headers.hpp>
#include <fnat/core/port_plan.hpp>
#include <fnat/core/scheduler.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fnat_lb/route.hpp"

namespace fnat::lb {

/// How replies reach the lcore that owns their connection (DESIGN.md, "Steering mode").
enum class steering_mode : std::uint8_t {
  automatic,  ///< "auto": flow rules if the NIC validates them, else RSS-aware ports, else redirect
  flow,       ///< rte_flow rules per lcore
  rss,        ///< RSS-aware local ports (programmable key and RETA)
  redirect,   ///< software hand-off over rings to the owner lcore
  lip_per_lcore,  ///< one LIP per lcore, flow rules on the destination address alone
};
/// What a worker does when a poll round finds no packet.
enum class idle_policy : std::uint8_t {
  busy,     ///< poll again at once (lowest latency, one core at 100%)
  backoff,  ///< sleep idle_sleep_us, then poll again
};
/// What a worker answers a SYN it cannot give a conn (no local port, no conn object, the table or a
/// per-state bound full).
enum class syn_refusal : std::uint8_t {
  drop,  ///< nothing: the client retransmits until its connect() times out
  rst,   ///< a TCP reset from the VIP (rate-limited per lcore): connect() fails at once (ECONNREFUSED)
};
/// Log level; the values are DPDK's RTE_LOG_ERR .. RTE_LOG_DEBUG, so a cast gives rte_log's level.
enum class log_level : std::uint8_t { error = 4, warning = 5, notice = 6, info = 7, debug = 8 };
/// Which side of the balancer a port faces.
enum class port_role : std::uint8_t {
  client,  ///< clients (VIPs live here)
  server,  ///< real servers (LIPs live here)
  both,    ///< one-armed: clients and real servers on the same port
};

[[nodiscard]] std::string_view to_string(steering_mode m) noexcept;
[[nodiscard]] std::string_view to_string(idle_policy p) noexcept;
[[nodiscard]] std::string_view to_string(log_level l) noexcept;
[[nodiscard]] std::string_view to_string(port_role r) noexcept;
[[nodiscard]] std::string_view to_string(syn_refusal r) noexcept;

/// [global]. Designated initializers: `global_config{.workers = {1, 2}, .steering = steering_mode::rss}`.
struct global_config {
  /// EAL lcore ids of the workers, in order; worker i polls rx queue i of every port. Required
  /// (no default): at least one, each below RTE_MAX_LCORE, none twice.
  std::vector<unsigned> workers;
  /// Reply steering. Default automatic.
  steering_mode steering = steering_mode::automatic;
  /// What an idle worker does. Default busy.
  idle_policy idle = idle_policy::busy;
  /// Sleep of an idle worker with idle = backoff, microseconds, 1..1000000. Default 50.
  std::uint32_t idle_sleep_us = 50;
  /// Capacity of each worker's connection table, 1..2^27. Default 2^20.
  std::uint32_t conns_per_lcore = std::uint32_t{1} << 20;
  /// sa_pool buckets per (LIP, lcore), 1..4096 (sa_pool's hashed_buckets limit). Default 16 (DPVS).
  std::uint32_t sa_pool_buckets = 16;
  /// Lowest local port (host order). Default 1025.
  std::uint16_t port_low = 1025;
  /// Highest local port (host order). Default 65535.
  std::uint16_t port_high = 65535;
  /// Port plan class bits, 0 = chosen by fnat::choose_class_bits within the flow-rule budget
  /// (balancer.hpp). Default 0.
  unsigned class_bits = 0;
  /// Period of the connection timer, milliseconds, 1..1000. Default 10.
  std::uint32_t timer_tick_ms = 10;
  /// Log level. Default info.
  log_level log = log_level::info;
  /// Register the balancer's telemetry commands. Default on.
  bool telemetry = true;
  /// Capacity of each worker's conn table, 0..2^27; 0 = conns_per_lcore. Below conns_per_lcore the
  /// table fills before the conn objects run out (drop reason table_full instead of
  /// conn_pool_empty). Default 0.
  std::uint32_t conn_table_capacity = 0;
  /// Bound per worker on TCP conns in SYN_RECV or SYN_SENT (half-open: a SYN flood's conns),
  /// 0..2^27; 0 = half of conns_per_lcore. At it a SYN that needs a new conn is refused
  /// (half_open_limit), so a flood of spoofed SYNs leaves the other half of the conns to UDP and
  /// established traffic. (An existing conn may still go back to SYN_RECV, a new SYN on a closing
  /// conn's tuple: that takes no new conn, so the count may pass the bound by such conns.) Default 0.
  std::uint32_t max_half_open = 0;
  /// Bound per worker on UDP conns that have seen no reply (one-way: a spoofed UDP flood's conns),
  /// 0..2^27; 0 = half of conns_per_lcore (udp_oneway_limit beyond it). Default 0.
  std::uint32_t max_udp_oneway = 0;
  /// The answer to a SYN that finds no port or no conn. Default drop (see syn_refusal, and
  /// lb.ini.sample for the trade-off).
  syn_refusal refusal = syn_refusal::drop;
  /// Resets per second per worker with refusal = rst, 1..10^7. Default 1000.
  std::uint32_t rst_rate = 1000;
  /// Resets a worker may send at once, 1..10^7. Default 100.
  std::uint32_t rst_burst = 100;

  /// conn_table_capacity, or conns_per_lcore when 0.
  [[nodiscard]] std::uint32_t table_capacity() const noexcept {
    return conn_table_capacity != 0 ? conn_table_capacity : conns_per_lcore;
  }
  /// max_half_open, or half of conns_per_lcore (at least 1) when 0.
  [[nodiscard]] std::uint32_t half_open_bound() const noexcept {
    return max_half_open != 0 ? max_half_open : std::max<std::uint32_t>(1, conns_per_lcore / 2);
  }
  /// max_udp_oneway, or half of conns_per_lcore (at least 1) when 0.
  [[nodiscard]] std::uint32_t udp_oneway_bound() const noexcept {
    return max_udp_oneway != 0 ? max_udp_oneway : std::max<std::uint32_t>(1, conns_per_lcore / 2);
  }
  /// IP reassembly: datagrams being reassembled at once per worker (rte_ip_frag table entries),
  /// 16..1048576. Default 1024. A full table drops new datagrams' fragments (counted). The mbuf pool
  /// grows by this much per worker (an incomplete datagram holds at least one mbuf).
  std::uint32_t frag_entries = 1024;
  /// IP reassembly: a datagram not complete this long after its first fragment is dropped,
  /// milliseconds, 10..60000. Default 2000 (short: incomplete datagrams are what a flood leaves).
  std::uint32_t frag_timeout_ms = 2000;
};

/// A static neighbour of a port.
struct static_neighbour {
  inet_addr addr;
  mac_addr mac;
  unsigned line = 0;  ///< where it was configured
};

/// [port NAME].
struct port_config {
  /// DPDK port name (e.g. "net_af_packet0", "0000:01:00.0"), as rte_eth_dev_get_port_by_name knows it.
  std::string name;
  /// Which side it faces. Default both.
  port_role role = port_role::both;
  /// Interface addresses with prefix length, in file order; their networks are connected on this port.
  /// At least one.
  std::vector<inet_prefix> addresses;
  /// Default gateways, at most one per family, each on a connected network of this port.
  std::vector<inet_addr> gateways;
  /// Static neighbours, each on a connected network of this port.
  std::vector<static_neighbour> neighbours;
  /// IP MTU of the link, 576..9000 (bytes of IP packet a frame may carry). Default 1500. Larger
  /// packets leaving here are fragmented (IPv4 without DF, or datagrams we reassembled) or answered
  /// with "fragmentation needed" / "packet too big" (core/icmp_error.hpp).
  std::uint16_t mtu = 1500;
  /// DPDK port id, set by resolve_ports(); nullopt until then.
  std::optional<std::uint16_t> port_id;
  /// Line of the [port NAME] header.
  unsigned line = 0;

  [[nodiscard]] bool faces_clients() const noexcept { return role != port_role::server; }
  [[nodiscard]] bool faces_servers() const noexcept { return role != port_role::client; }
};

/// One `rs = ...` of a service.
struct real_server {
  endpoint addr;             ///< address and port (host order)
  std::uint32_t weight = 1;  ///< 0..65535; 0 = drained. Default 1.
  unsigned line = 0;
};

/// service_config::client_address.
enum class client_address_mode : std::uint8_t { none, toa, proxy_protocol_v1, proxy_protocol_v2 };
[[nodiscard]] std::string_view to_string(client_address_mode m) noexcept;

/// [service NAME].
struct service_config {
  std::string name;
  /// VIP and vport (host order).
  endpoint vip;
  /// ipproto::tcp or ipproto::udp. Default tcp.
  std::uint8_t proto = ipproto::tcp;
  /// Default wrr (equal weights make it round robin).
  scheduler_kind scheduler = scheduler_kind::wrr;
  /// Maglev lookup table size, a prime above the number of real servers. Default 65537.
  std::uint32_t maglev_table_size = maglev::default_table_size;
  /// Local addresses the balancer connects to real servers from; at least one, VIP's family.
  std::vector<inet_addr> lips;
  /// Real servers; at least one, VIP's family.
  std::vector<real_server> rss;
  /// Line of the [service NAME] header.
  unsigned line = 0;
  /// TCP only: the MSS of SYNs towards the real servers and of SYN-ACKs towards the clients is
  /// lowered to this bound (core/tcp_mss.hpp); 0 = off (the default). 536..65535 for IPv4,
  /// 1220..65535 for IPv6.
  std::uint16_t mss_clamp = 0;
  /// How the real servers learn the client's address and port (issue 18): none (the default),
  /// toa (a TCP option in the SYN and the segments acknowledging the SYN-ACK, core/toa.hpp),
  /// proxy_protocol_v1 (TCP only) or proxy_protocol_v2 (TCP: in front of the client's first byte;
  /// UDP: in front of every datagram towards the server), core/proxy_protocol.hpp.
  client_address_mode client_address = client_address_mode::none;

  [[nodiscard]] ip_family family() const noexcept { return vip.addr.family(); }
  /// What any_scheduler::make takes for this service: one backend per rs, identity backend_id(rs).
  [[nodiscard]] std::vector<sched_backend> backends() const;
  /// The scheduler configuration for this service; `start` as in scheduler_config (give each lcore
  /// its index).
  [[nodiscard]] scheduler_config scheduler_cfg(std::uint32_t start = 0) const;
};

/// The whole configuration, checked (see the file comment).
struct lb_config {
  /// The file it came from, as given to load_config.
  std::string source;
  global_config global;
  /// Idle timeouts per connection state.
  conn_timeouts timeouts;
  /// In file order; "port index" everywhere (route.hpp's next_hop::port) means the index here.
  std::vector<port_config> ports;
  /// In file order.
  std::vector<service_config> services;
  /// Connected networks and gateways of the ports.
  route_table routes;

  /// Index of the port named `name`.
  [[nodiscard]] std::optional<std::size_t> port_index(std::string_view name) const noexcept;
  /// The port plan of the workers over the local port range: lcore workers[i] polls rx queue i.
  [[nodiscard]] port_plan_config plan_config() const;
  /// The addresses the balancer answers ARP and Neighbor Solicitations for on port `port`: its
  /// interface addresses, and each VIP and LIP inside one of its connected networks. No duplicates.
  [[nodiscard]] std::vector<inet_addr> local_addresses(std::size_t port) const;
  /// A few lines for the start-up log: workers, ports with addresses, services with LIPs and RSs.
  [[nodiscard]] std::string describe() const;
};

/// One "key = value" line of the file.
struct ini_entry {
  std::string key;
  std::string value;
  unsigned line = 0;
};
/// One [section] and its entries, in file order.
struct ini_section {
  std::string name;
  unsigned line = 0;
  std::vector<ini_entry> entries;
};
/// A file as read_ini reads it, with the line of every section and entry.
struct ini_file {
  std::string path;
  std::vector<ini_section> sections;
};

/// The longest line read_ini reads: rte_cfgfile's (its buffer of CFG_NAME_LEN + CFG_VALUE_LEN + 4
/// bytes holds the line, '\n' and the terminating NUL), so files stay valid for both.
inline constexpr std::size_t ini_max_line = 64 + 256 + 4 - 2;

/// Reads `path` in rte_cfgfile's format ('#' comments, no entries outside sections, no empty values),
/// rejecting what rte_cfgfile would skip or truncate (see the file comment).
/// Errors (errc::invalid_argument, "FILE:LINE: what"): a line longer than ini_max_line, a line that
/// is neither "[section]" nor "key = value", text after "]", an entry before any section, an empty
/// key or value, a section name or key over 63 characters, a value over 255, a backslash; and
/// "FILE: ..." when the file cannot be opened. Does not need EAL.
[[nodiscard]] result<ini_file> read_ini(const std::string& path);

/// Turns a file read by read_ini into a checked lb_config (see the file comment). Errors:
/// errc::invalid_argument, "FILE:LINE: [SECTION] KEY = VALUE: what" or a shorter form.
[[nodiscard]] result<lb_config> parse_config(const ini_file& file);

/// read_ini + parse_config.
[[nodiscard]] result<lb_config> load_config(const std::string& path);

/// What resolve_ports() asks about DPDK ports: an adapter so tests can stand in for ethdev.
template <class D>
concept port_directory = requires(const D& d, const std::string& name) {
  { d.find(name) } -> std::same_as<std::optional<std::uint16_t>>;
  { d.names() } -> std::same_as<std::vector<std::string>>;
};

/// The DPDK directory: rte_eth_dev_get_port_by_name and RTE_ETH_FOREACH_DEV. Requires EAL.
struct ethdev_directory {
  [[nodiscard]] std::optional<std::uint16_t> find(const std::string& name) const;
  [[nodiscard]] std::vector<std::string> names() const;
};

/// Sets port_config::port_id of every port from `dir`. Errors (errc::not_found): a port no device
/// has, "FILE:LINE: [port NAME]: no DPDK port has this name (ports: a, b); ...". All or nothing:
/// on error no port_id is changed.
template <port_directory D>
[[nodiscard]] result<void> resolve_ports(lb_config& cfg, const D& dir) {
  std::vector<std::uint16_t> ids;
  for (const auto& p : cfg.ports) {
    auto id = dir.find(p.name);
    if (!id) {
      std::string known;
      for (const auto& n : dir.names()) known += (known.empty() ? "" : ", ") + n;
      return error(errc::not_found, cfg.source + ":" + std::to_string(p.line) + ": [port " + p.name +
                                        "]: no DPDK port has this name (ports: " + (known.empty() ? "none" : known) +
                                        "); add the device to the EAL arguments (--vdev net_af_packetN,iface=IFNAME "
                                        "for an af_packet port, -a PCI_ADDRESS for a NIC) or fix the name");
    }
    ids.push_back(*id);
  }
  for (std::size_t i = 0; i < cfg.ports.size(); ++i) cfg.ports[i].port_id = ids[i];
  return {};
}

/// resolve_ports with ethdev_directory. Requires EAL.
[[nodiscard]] result<void> resolve_ports(lb_config& cfg);

}  // namespace fnat::lb
