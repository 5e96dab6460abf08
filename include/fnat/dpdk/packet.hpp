// SPDX-License-Identifier: BSD-3-Clause
// The mbuf side of fnat/core/packet.hpp: parse an rte_mbuf, rewrite it for FullNAT with tx checksum
// offload when the port has it, and turn ARP / ND / echo requests into replies in the same mbuf.
//
// ## Segments
// The core parser reads the first segment only (rte_pktmbuf_mtod, data_len) and is told the whole
// packet length (pkt_len). A header that does not fit in the first segment is a counted drop,
// `drop_reason::header_split`, not a copy with rte_pktmbuf_read: every NIC PMD fills the first
// segment with at least its buffer size (2 KiB by default), far more than the 18 + 40 + 60 bytes of
// the largest header stack we parse, so only a hand-built or hostile chain can split a header, and
// reading into a bounce buffer would force the rewrite to write the headers back across segments.
// Payload bytes may be in any segment: the rewrite is incremental and touches headers only, and
// software L4 checksum verification of a chained mbuf walks the segments.
//
// ## Padding
// A frame longer than its IP length carries Ethernet padding (or garbage). `parse` trims the mbuf to
// the packet (`packet_info::frame_len`), freeing segments that held only padding: transmitted with
// tx L4 checksum offload, trailing bytes would be summed by the NIC into a wrong checksum.
//
// ## Receive checksum flags
// With `drop_rx_cksum_bad` (default) a packet the NIC flagged RTE_MBUF_F_RX_IP_CKSUM_BAD or
// RTE_MBUF_F_RX_L4_CKSUM_BAD is dropped (bad_ip_checksum / bad_l4_checksum) after it parsed: the
// NIC's verification is free, and it matters with tx offload, which would give a corrupted segment a
// fresh valid checksum (see core/packet.hpp).
//
// ## Transmit checksum offload (DPDK's convention, rte_mbuf_core.h)
// IPv4 header checksum: field 0 and RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_IPV4. TCP/UDP: field =
// pseudo-header sum (not complemented) and RTE_MBUF_F_TX_TCP_CKSUM / _UDP_CKSUM with
// RTE_MBUF_F_TX_IPV4 or _IPV6; l2_len (VLAN tag included) and l3_len always set. `rewrite` does what
// `checksum_offload` allows (build it from the port's configured tx offloads with
// `checksum_offload_from`), and the software incremental path for the rest; it clears stale
// tx checksum flags an mbuf may carry from a previous use.
//
// ## Adapter
// Every rte_* call goes through `rte_mbuf_ops` (static members, no state); the functions take it as a
// template parameter so tests can substitute a fake at the seam (e.g. an append that fails).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "fnat/core/addr.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"
// DPDK's rte_ethdev.h and rte_mbuf.h, included with the suppression of DPDK 22.11's C++20 warnings
// that fnat::dpdk keeps in one place.
#include "fnat/dpdk/ethdev_ops.hpp"

namespace fnat::dpdk {

/// The rte_* calls this header makes. Stateless; every member noexcept.
struct rte_mbuf_ops {
  /// The first segment's bytes.
  [[nodiscard]] static std::span<std::uint8_t> head(rte_mbuf* m) noexcept {
    return {rte_pktmbuf_mtod(m, std::uint8_t*), rte_pktmbuf_data_len(m)};
  }
  [[nodiscard]] static std::uint32_t pkt_len(const rte_mbuf* m) noexcept { return rte_pktmbuf_pkt_len(m); }
  [[nodiscard]] static std::uint64_t ol_flags(const rte_mbuf* m) noexcept { return m->ol_flags; }
  /// Shortens the packet to `len` bytes (<= pkt_len), freeing segments that end up empty.
  static void trim_to(rte_mbuf* m, std::uint32_t len) noexcept {
    if (len >= m->pkt_len) return;
    rte_mbuf* seg = m;
    std::uint32_t left = len;
    std::uint16_t segs = 1;
    while (left > seg->data_len && seg->next != nullptr) {
      left -= seg->data_len;
      seg = seg->next;
      ++segs;
    }
    seg->data_len = static_cast<std::uint16_t>(left);
    if (seg->next != nullptr) {
      rte_pktmbuf_free(seg->next);
      seg->next = nullptr;
    }
    m->nb_segs = segs;
    m->pkt_len = len;
  }
  /// Raw sum of [off, off + len) across segments; false when the range is outside the packet.
  /// Our own walk rather than rte_raw_cksum_mbuf: DPDK 22.11's byte-swaps an unreduced 32-bit partial
  /// sum after an odd-length piece and so loses carries (wrong sums for odd segment boundaries; the
  /// mbuf test pins the correct behaviour). Here each piece is folded to 16 bits before the swap, and
  /// a swap of a folded sum is exact (it is multiplication by 256 modulo 0xffff).
  [[nodiscard]] static bool raw_sum(const rte_mbuf* m, std::uint32_t off, std::uint32_t len, std::uint16_t& out) noexcept {
    if (std::uint64_t{off} + len > m->pkt_len) return false;
    std::uint64_t acc = 0;
    bool odd = false;
    for (const rte_mbuf* seg = m; seg != nullptr && len != 0; seg = seg->next) {
      const std::uint32_t dl = seg->data_len;
      if (off >= dl) {
        off -= dl;
        continue;
      }
      const std::uint32_t n = dl - off < len ? dl - off : len;
      const std::uint16_t s = fnat::raw_sum(rte_pktmbuf_mtod_offset(seg, const std::uint8_t*, off), n);
      acc += odd ? bswap16(s) : s;
      odd ^= (n & 1u) != 0;
      len -= n;
      off = 0;
    }
    out = csum_fold(acc);
    return len == 0;
  }
  /// Sets the tx checksum flags (replacing earlier ones) and the header lengths.
  static void set_tx_offload(rte_mbuf* m, std::uint64_t flags, std::uint16_t l2_len, std::uint16_t l3_len,
                             std::uint16_t l4_len) noexcept {
    constexpr std::uint64_t ours =
        RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6;
    m->ol_flags = (m->ol_flags & ~ours) | flags;
    m->l2_len = l2_len & 0x7f;
    m->l3_len = l3_len & 0x1ff;
    m->l4_len = l4_len & 0xff;
  }
  /// Empties the mbuf for a new frame of up to `len` bytes in one segment (frees any chained
  /// segments) and returns its bytes, or an empty span when the segment has no room for `len`.
  [[nodiscard]] static std::span<std::uint8_t> rebuild(rte_mbuf* m, std::uint16_t len) noexcept {
    if (m->next != nullptr) {
      rte_pktmbuf_free(m->next);
      m->next = nullptr;
    }
    rte_pktmbuf_reset(m);
    char* p = rte_pktmbuf_append(m, len);
    if (p == nullptr) return {};
    return {reinterpret_cast<std::uint8_t*>(p), len};
  }
  /// Sets the length of a single-segment mbuf built by rebuild(). Requires: len <= data_len.
  static void set_len(rte_mbuf* m, std::uint16_t len) noexcept {
    m->data_len = len;
    m->pkt_len = len;
  }
  /// The tx offload capabilities of a port (rte_eth_dev_info_get), or a negative errno.
  [[nodiscard]] static int tx_offload_capa(std::uint16_t port_id, std::uint64_t& capa) noexcept {
    rte_eth_dev_info info{};
    const int rc = rte_eth_dev_info_get(port_id, &info);
    if (rc == 0) capa = info.tx_offload_capa;
    return rc;
  }
};

// ---- offload configuration --------------------------------------------------------------------

/// The checksum offloads a port's tx offload bits give (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, _TCP_CKSUM,
/// _UDP_CKSUM). Pass the offloads the port (or queue) was *configured* with, not merely its
/// capabilities: a PMD ignores the mbuf flags of offloads that were not enabled. O(1).
[[nodiscard]] constexpr checksum_offload checksum_offload_from(std::uint64_t tx_offloads) noexcept {
  return checksum_offload{.ipv4 = (tx_offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0,
                          .tcp = (tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) != 0,
                          .udp = (tx_offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0};
}

/// The tx offload bits among IPV4/TCP/UDP checksum that `port_id` supports: OR them into
/// rte_eth_conf.txmode.offloads before rte_eth_dev_configure, then pass the same bits to
/// checksum_offload_from. Configuration time. Errors: errc::device_error naming the port and the
/// PMD's error when rte_eth_dev_info_get fails.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] result<std::uint64_t> supported_checksum_offloads(std::uint16_t port_id) {
  std::uint64_t capa = 0;
  if (const int rc = Ops::tx_offload_capa(port_id, capa); rc != 0)
    return error(errc::device_error, "port " + std::to_string(port_id) + ": rte_eth_dev_info_get failed (" +
                                         std::to_string(rc) + "); is the port id valid?");
  return capa & (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
}

// ---- parse ------------------------------------------------------------------------------------

/// Options of the mbuf parse. Build with designated initializers.
struct mbuf_parse_options {
  /// The core parse options (software checksum verification, default off).
  parse_options parse{};
  /// Drop packets the NIC flagged RTE_MBUF_F_RX_IP_CKSUM_BAD / RTE_MBUF_F_RX_L4_CKSUM_BAD.
  /// Default on: free, and needed when tx checksums are offloaded.
  bool drop_rx_cksum_bad = true;
  /// Trim the mbuf to the IP packet when the frame is longer (Ethernet padding). Default on. ARP
  /// frames keep their padding (a reply built in place is padded to 60 bytes anyway).
  bool trim_padding = true;
};

/// Parses the packet in `m` into `info` (see core parse). Headers must be in the first segment
/// (header_split otherwise); software L4 checksum verification, when asked for, covers all segments.
/// Effects: on success, trims padding (option) — the only change to the mbuf; on a drop `m` is
/// untouched and still owned by the caller, who frees it and counts the reason.
/// Complexity: O(1), O(length) with software verification. noexcept, no allocation.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] drop_reason parse(rte_mbuf* m, packet_info& info, const mbuf_parse_options& opt = {}) noexcept {
  const std::span<std::uint8_t> head = Ops::head(m);
  const std::uint32_t pkt_len = Ops::pkt_len(m);
  const bool whole = head.size() >= pkt_len;
  parse_options po = opt.parse;
  if (!whole) po.verify_l4_checksum = false;  // verified below across segments
  if (const drop_reason r = fnat::parse(head, pkt_len, info, po); r != drop_reason::none) return r;
  if (opt.drop_rx_cksum_bad && info.is_ip()) {
    const std::uint64_t f = Ops::ol_flags(m);
    if ((f & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD && info.family == ip_family::v4)
      return drop_reason::bad_ip_checksum;
    if ((f & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) return drop_reason::bad_l4_checksum;
  }
  if (!whole && opt.parse.verify_l4_checksum && info.is_ip()) {
    const std::uint8_t* p = head.data();
    const bool udp4_none = info.family == ip_family::v4 && info.proto == ipproto::udp &&
                           load_raw16(p + info.l4_off + 6) == 0;
    if (!udp4_none) {
      std::uint16_t sum = 0;
      if (!Ops::raw_sum(m, info.l4_off, info.l4_len(), sum)) return drop_reason::bad_ip_length;
      if (csum_add(sum, l4_pseudo_header_sum(head, info)) != 0xffff) return drop_reason::bad_l4_checksum;
    }
  }
  if (opt.trim_padding && info.is_ip() && pkt_len > info.frame_len) Ops::trim_to(m, info.frame_len);
  return drop_reason::none;
}

// ---- rewrite ----------------------------------------------------------------------------------

/// The FullNAT rewrite of a parsed mbuf (see core rewrite), then the tx offload metadata: l2_len,
/// l3_len, l4_len, and RTE_MBUF_F_TX_IPV4/IPV6 | IP_CKSUM | TCP_CKSUM/UDP_CKSUM for what was left to
/// the NIC (stale tx checksum flags cleared). Requires: `info` comes from parse(m, ...) of this mbuf.
/// On ttl_expired nothing is written. O(1), noexcept.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] rewrite_result rewrite(rte_mbuf* m, packet_info& info, const inet_tuple& to,
                                     const checksum_offload& offload = {}) noexcept {
  const rewrite_result r = fnat::rewrite(Ops::head(m), info, to, offload);
  if (!r.ok()) return r;
  std::uint64_t flags = 0;
  if (r.ip_cksum_offloaded) flags |= RTE_MBUF_F_TX_IP_CKSUM;
  if (r.l4_cksum_offloaded) flags |= info.proto == ipproto::tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM;
  if (flags != 0) flags |= info.family == ip_family::v4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6;
  Ops::set_tx_offload(m, flags, info.l2_len(), info.l3_len(),
                      static_cast<std::uint16_t>(info.payload_off - info.l4_off));
  return r;
}

// ---- replies built into an mbuf ---------------------------------------------------------------

/// Room a neighbour frame needs: the largest is an NA with a VLAN tag, 18 + 40 + 32 = 90 bytes.
inline constexpr std::uint16_t neighbour_frame_room = 96;

/// Builds a frame into `m` (emptied first, chained segments freed) with `build(span) -> length`.
/// Returns errc::ok, or errc::no_memory when the mbuf has no room (it is left empty) or the builder
/// wrote nothing. The mbuf stays owned by the caller. O(frame length), noexcept if `build` is.
template <class Ops = rte_mbuf_ops, class Build>
[[nodiscard]] errc build_frame(rte_mbuf* m, std::uint16_t room, Build&& build) noexcept {
  const std::span<std::uint8_t> buf = Ops::rebuild(m, room);
  if (buf.empty()) return errc::no_memory;
  const std::size_t len = build(buf);
  if (len == 0 || len > room) {
    Ops::set_len(m, 0);
    return errc::no_memory;
  }
  Ops::set_len(m, static_cast<std::uint16_t>(len));
  return errc::ok;
}

/// Turns the ARP request in `m` (parsed: info.kind == arp) for an address we own into our reply, in
/// the same mbuf. Returns errc::ok; errc::invalid_argument (mbuf untouched) when it is not a request;
/// errc::no_memory when the mbuf has no room. O(1), noexcept.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] errc arp_reply_in_place(rte_mbuf* m, const packet_info& info, const mac_addr& our_mac) noexcept {
  const std::span<std::uint8_t> head = Ops::head(m);
  if (info.kind != packet_kind::arp || head.size() < info.payload_off) return errc::invalid_argument;
  const arp_message req = parse_arp(head, info);
  if (req.op != arp_op::request) return errc::invalid_argument;
  const l2_spec l2 = reply_l2(head, info, our_mac);
  return build_frame<Ops>(m, neighbour_frame_room,
                          [&](std::span<std::uint8_t> out) { return build_arp_reply(out, l2, req, our_mac); });
}

/// Turns the neighbour solicitation in `m` (parsed; `ns` from parse_nd) for an address we own into
/// our advertisement (see build_na_reply), in the same mbuf. Returns errc::ok;
/// errc::invalid_argument (untouched) when `ns` is not a solicitation; errc::no_memory. O(1).
template <class Ops = rte_mbuf_ops>
[[nodiscard]] errc na_reply_in_place(rte_mbuf* m, const packet_info& info, const nd_message& ns,
                                     const mac_addr& our_mac, std::uint8_t extra_flags = 0) noexcept {
  const std::span<std::uint8_t> head = Ops::head(m);
  if (ns.type != icmp6_type::neighbour_solicitation || info.kind != packet_kind::ipv6 ||
      head.size() < info.payload_off)
    return errc::invalid_argument;
  const l2_spec l2 = reply_l2(head, info, our_mac);
  const ipv6_addr src = info.tuple.saddr.v6();
  return build_frame<Ops>(m, neighbour_frame_room, [&](std::span<std::uint8_t> out) {
    return build_na_reply(out, l2, src, ns, our_mac, extra_flags);
  });
}

/// Turns the ICMP / ICMPv6 echo request in `m` into its reply, in place (see core make_echo_reply);
/// payload segments are kept. Returns errc::ok or errc::invalid_argument. O(1), noexcept.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] errc echo_reply_in_place(rte_mbuf* m, packet_info& info, const mac_addr& our_mac,
                                       std::uint8_t ttl = 64) noexcept {
  const errc rc = make_echo_reply(Ops::head(m), info, our_mac, ttl);
  if (rc == errc::ok) Ops::set_tx_offload(m, 0, info.l2_len(), info.l3_len(), 8);
  return rc;
}

/// Builds an ARP request for `target` into `m` (see core build_arp_request). errc::ok or no_memory.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] errc build_arp_request(rte_mbuf* m, const mac_addr& our_mac, ipv4_addr our_ip, ipv4_addr target,
                                     bool vlan = false, std::uint16_t vlan_tci = 0,
                                     std::optional<mac_addr> unicast_to = std::nullopt) noexcept {
  return build_frame<Ops>(m, neighbour_frame_room, [&](std::span<std::uint8_t> out) {
    return fnat::build_arp_request(out, our_mac, our_ip, target, vlan, vlan_tci, unicast_to);
  });
}

/// Builds a neighbour solicitation for `target` into `m` (see core build_ns). errc::ok or no_memory.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] errc build_ns(rte_mbuf* m, const mac_addr& our_mac, const ipv6_addr& our_ip, const ipv6_addr& target,
                            bool vlan = false, std::uint16_t vlan_tci = 0,
                            std::optional<mac_addr> unicast_to = std::nullopt) noexcept {
  return build_frame<Ops>(m, neighbour_frame_room, [&](std::span<std::uint8_t> out) {
    return fnat::build_ns(out, our_mac, our_ip, target, vlan, vlan_tci, unicast_to);
  });
}

}  // namespace fnat::dpdk
