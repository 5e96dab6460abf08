// SPDX-License-Identifier: BSD-3-Clause
// Checksum verification of a received, parsed mbuf: the NIC's verdict where it gave one, software
// where it did not.
//
// ## Why a balancer verifies at all
// The FullNAT rewrite is incremental (RFC 1624): a segment that arrived with a wrong checksum leaves
// with a wrong checksum, and its receiver discards it. That is enough for packets of an existing
// connection, but not for packets that *spend* something: a first packet takes a conn object and a
// local port for minutes, so a corrupted or forged SYN or UDP datagram whose checksum is wrong must
// not get one. And an IPv4 header whose checksum is wrong is one a router would not forward
// (RFC 1812 5.2.2): its addresses cannot be trusted for anything, the conn lookup included.
//
// ## The NIC's flags (rte_mbuf_core.h)
// RTE_MBUF_F_RX_IP_CKSUM_MASK and RTE_MBUF_F_RX_L4_CKSUM_MASK each hold one of UNKNOWN (no
// information: verify in software), BAD, GOOD, NONE (IP: not checked, but the checksum is valid; L4:
// the packet carries no checksum, or a tunnel's inner checksum is valid). `dpdk::parse` already drops
// BAD by default; here GOOD and NONE skip the software sum, and only UNKNOWN costs it. Virtual ports
// (af_packet, pcap, ring) always say UNKNOWN.
//
// Cost in software: the IPv4 header sum is 20 bytes, O(1); the L4 sum is O(length), across segments
// when the packet is chained. Both noexcept, no allocation.
#pragma once

#include <cstdint>

#include "fnat/core/checksum.hpp"
#include "fnat/core/packet.hpp"
#include "fnat/dpdk/packet.hpp"

namespace fnat::dpdk {

/// drop_reason::bad_ip_checksum when the IPv4 header checksum of parsed `m` is wrong: the NIC's
/// BAD, or UNKNOWN and the software sum fails; none otherwise (IPv6 and ARP have no header checksum).
/// Requires: info from a successful parse of m. O(1), noexcept.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] drop_reason verify_ip_checksum(rte_mbuf* m, const packet_info& info) noexcept {
  if (info.kind != packet_kind::ipv4) return drop_reason::none;
  switch (Ops::ol_flags(m) & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
    case RTE_MBUF_F_RX_IP_CKSUM_NONE: return drop_reason::none;
    case RTE_MBUF_F_RX_IP_CKSUM_BAD: return drop_reason::bad_ip_checksum;
    default: break;
  }
  return ip_checksum_ok(Ops::head(m), info) ? drop_reason::none : drop_reason::bad_ip_checksum;
}

/// drop_reason::bad_l4_checksum when the TCP / UDP / ICMP checksum of parsed `m` is wrong: the NIC's
/// BAD, or UNKNOWN and the software sum over every segment fails. An IPv4 UDP checksum of 0 ("none",
/// RFC 768) verifies; an IPv6 one never reaches here (parse drops it, RFC 8200 8.1).
/// Requires: info from a successful parse of m, info.is_ip(). O(length), noexcept.
template <class Ops = rte_mbuf_ops>
[[nodiscard]] drop_reason verify_l4_checksum(rte_mbuf* m, const packet_info& info) noexcept {
  if (!info.is_ip()) return drop_reason::none;
  switch (Ops::ol_flags(m) & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
    case RTE_MBUF_F_RX_L4_CKSUM_GOOD: return drop_reason::none;
    case RTE_MBUF_F_RX_L4_CKSUM_BAD: return drop_reason::bad_l4_checksum;
    default: break;  // UNKNOWN, and NONE (a tunnel's verdict, not ours to trust here)
  }
  const auto head = Ops::head(m);
  if (head.size() >= info.frame_len) return l4_checksum_ok(head, info) ? drop_reason::none : drop_reason::bad_l4_checksum;
  if (info.family == ip_family::v4 && info.proto == ipproto::udp && load_raw16(head.data() + info.l4_off + 6) == 0)
    return drop_reason::none;
  std::uint16_t sum = 0;
  if (!Ops::raw_sum(m, info.l4_off, info.l4_len(), sum)) return drop_reason::bad_ip_length;
  return csum_add(sum, l4_pseudo_header_sum(head, info)) == 0xffff ? drop_reason::none : drop_reason::bad_l4_checksum;
}

}  // namespace fnat::dpdk
