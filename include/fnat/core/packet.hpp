// SPDX-License-Identifier: BSD-3-Clause
// Packet parsing, the FullNAT rewrite, and the neighbour packets (ARP, ND, echo) a balancer answers.
//
// ## Parse
// `parse` walks a frame once, front to back: Ethernet (one optional 802.1Q tag), then IPv4, IPv6 or
// ARP, then TCP, UDP, ICMP or ICMPv6. Each header is bounds-checked before it is read, nothing is
// allocated, nothing throws. The result is a `packet_info` holding what the conn lookup needs as is
// (an `inet_tuple`, network order, the key of the conn table) and the offsets the rewrite needs, or a
// `drop_reason` naming the first thing wrong. The balancer counts drops per reason per lcore
// (`drop_reason_count` sizes its array).
//
// What is accepted, and why the rest is dropped:
//  - one 802.1Q tag (l3_off = 18) is parsed: it costs one compare on untagged traffic. A second tag
//    (QinQ, 0x88a8 or 0x8100 inside 0x8100) is `unsupported_ethertype`. A NIC that strips tags on
//    receive (RTE_ETH_RX_OFFLOAD_VLAN_STRIP) hands us untagged frames, which parse as such;
//  - IPv4 without options and unfragmented. Options (IHL > 5) are a counted drop: we do not forward
//    them (a balancer rewriting source routes or timestamps is a security hole, and they are rare);
//    fragments (MF set or offset != 0) are dropped because only the first carries ports, so the others
//    could not be matched to a conn (reassembly is out of scope);
//  - IPv6 with the upper-layer header right after the fixed header. Extension headers are not walked
//    (`ipv6_ext_header`), the fragment header is `fragment`, IPv4-mapped addresses on the wire
//    (RFC 4291 2.5.5.2) are `ipv4_mapped`: inet_addr stores IPv4 in mapped form, so accepting them
//    would let an IPv6 packet alias an IPv4 conn;
//  - lengths: the IP total (payload) length must cover the headers and fit in the frame. A frame
//    longer than that is padded (Ethernet pads to 60 bytes): `frame_len` tells the caller where the
//    packet ends, so it can trim the padding (the mbuf layer does);
//  - sources: a multicast Ethernet source, an IPv4 source in 0/8, 127/8 or 224/3 (multicast,
//    reserved, broadcast), an IPv6 multicast or loopback source, and the unspecified IPv6 source on
//    anything but ICMPv6 (ND's duplicate address detection uses it) are `bad_source`: no reply to them
//    could be delivered, and they are a classic amplification vector;
//  - TCP data offset 5..15 and within the segment; UDP length equal to the IP payload length (a
//    shorter one would leave trailing bytes the checksum does not cover: inconsistent, dropped);
//    an IPv6 UDP checksum of 0 is dropped (RFC 8200 8.1; RFC 6935's tunnel exception does not apply
//    to a balancer); ICMP needs its 8-byte header;
//  - TTL / hop limit is recorded, not checked: packets for the balancer itself (ND with hop limit
//    255, a ping to a VIP with TTL 1) are fine. The forwarding step, `rewrite`, drops TTL <= 1
//    (`ttl_expired`) before writing anything; `packet_info::ttl_expired()` lets the balancer check it
//    before it creates a conn.
// Checksums are not verified by default (`parse_options`): NICs verify them on receive (DPDK's
// RTE_MBUF_F_RX_*_CKSUM_BAD flags), and the incremental rewrite keeps a bad checksum bad, so a
// corrupted packet is still discarded by its receiver. Turn verification on for software ports.
//
// Contiguity: `parse(head, frame_len, ...)` takes the contiguous prefix `head` of a frame of
// `frame_len` bytes (an mbuf's first segment). Every header must lie inside `head`; one that does not
// is `header_split` when the frame is long enough (a counted drop: NICs put at least the first 128
// bytes in the first segment, so only hostile or exotic layouts hit it).
//
// ## Tuple
// `tuple` is the packet's five-tuple as the conn table keys it: addresses in inet_addr form, ports in
// network order. ICMP echo has no ports; its identifier plays the port of the side that chose it,
// the requester: a request has sport = id, dport = 0, a reply sport = 0, dport = id, so a reply's
// tuple is the reversed request tuple, as for TCP and UDP, and the conn table needs no special case.
// Other ICMP types have both ports 0. ARP fills saddr/daddr with the sender/target IPv4 addresses.
//
// ## FullNAT rewrite
// Inbound client:cport -> VIP:vport becomes LIP:lport -> RS:rport; outbound RS:rport -> LIP:lport
// becomes VIP:vport -> client:cport. Both are "replace saddr, daddr, sport, dport with a new tuple of
// the same family", so there is one `rewrite`. It also decrements TTL / hop limit (a forwarding hop).
// Checksums are updated incrementally (RFC 1624, see checksum.hpp): the IPv4 header checksum with the
// address and TTL changes; the TCP/UDP checksum with the address changes (they are in the
// pseudo-header) and the port changes; ICMPv4 with the identifier change only (no pseudo-header);
// ICMPv6 with addresses and identifier. The cost is independent of the payload length. An IPv4 UDP
// checksum of 0 ("none") stays 0, and a computed UDP checksum of 0 is written 0xffff (RFC 768); so is
// a computed ICMPv4 checksum of 0 (its data can be all zero; see checksum.hpp).
// With `checksum_offload`, the IPv4 header checksum is zeroed and/or the TCP/UDP checksum is set to
// the pseudo-header sum (not complemented), DPDK's convention for tx checksum offload; the result
// says which was done so the mbuf layer can set ol_flags. Note the difference: an offloaded L4
// checksum is computed afresh by the NIC, so a segment that arrived corrupted leaves with a valid
// checksum; a balancer that offloads should drop RTE_MBUF_F_RX_L4_CKSUM_BAD on receive (the mbuf
// layer's parse does by default). ICMP errors are rewritten in their outer header only; the embedded
// original header (PMTU discovery) is not translated here.
//
// ## Neighbour packets
// ARP (Ethernet/IPv4) requests and replies are validated by `parse` and read with `parse_arp`;
// ND solicitations/advertisements are ICMPv6 to `parse` and validated further by `parse_nd`
// (RFC 4861 7.1: hop limit 255, code 0, length, options walked with bounds checks, checksum). The
// builders write complete frames with correct checksums into a caller's buffer and return the
// length (0: the buffer is too small). They take values, not pointers into the request, so a reply
// may be built into the buffer that held the request (the mbuf layer does exactly that).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "fnat/core/addr.hpp"
#include "fnat/core/checked.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/headers.hpp"

#define FNAT_PACKET_EXPECT(cond, msg) FNAT_EXPECT("packet", cond, msg)

namespace fnat {

// ---- drop reasons -----------------------------------------------------------------------------

/// Why a frame was not accepted. `none` (0) means accepted.
enum class drop_reason : std::uint8_t {
  none = 0,
  eth_truncated,          ///< shorter than an Ethernet header (with its VLAN tag)
  unsupported_ethertype,  ///< not IPv4, IPv6 or ARP (after at most one 802.1Q tag)
  header_split,           ///< a header lies beyond the contiguous first segment
  arp_malformed,          ///< truncated, or not Ethernet/IPv4 (htype, ptype, hlen, plen), or op not 1/2
  ip_truncated,           ///< shorter than the fixed IP header
  bad_ip_version,         ///< version field does not match the EtherType
  bad_ihl,                ///< IPv4 header length below 5 words
  bad_ip_length,          ///< total / payload length shorter than the headers or longer than the frame
  ip_options,             ///< IPv4 options present (not forwarded)
  fragment,               ///< IPv4 MF or fragment offset set, or an IPv6 fragment header
  ipv6_ext_header,        ///< an IPv6 extension header (not walked)
  ipv4_mapped,            ///< an IPv4-mapped address in an IPv6 header
  bad_source,             ///< multicast/broadcast/loopback/unspecified source (Ethernet or IP)
  bad_ip_checksum,        ///< IPv4 header checksum wrong (when verified)
  unsupported_l4,         ///< not TCP, UDP, ICMP (IPv4) or ICMPv6 (IPv6)
  l4_truncated,           ///< shorter than the TCP (20), UDP (8) or ICMP (8) header
  bad_tcp_offset,         ///< TCP data offset below 5 or beyond the segment
  bad_udp_length,         ///< UDP length below 8 or not the IP payload length
  udp_zero_checksum_v6,   ///< IPv6 UDP without checksum
  bad_l4_checksum,        ///< TCP/UDP/ICMP checksum wrong (when verified)
  ttl_expired,            ///< TTL / hop limit <= 1 on a packet to forward
  nd_malformed,           ///< neighbour discovery message failing RFC 4861 7.1 validation
};

/// Number of drop_reason values, `none` included: the size of a per-reason counter array.
inline constexpr std::size_t drop_reason_count = static_cast<std::size_t>(drop_reason::nd_malformed) + 1;

/// Stable short name, e.g. "bad_ihl" (for counters and logs).
[[nodiscard]] constexpr std::string_view to_string(drop_reason r) noexcept {
  switch (r) {
    case drop_reason::none: return "none";
    case drop_reason::eth_truncated: return "eth_truncated";
    case drop_reason::unsupported_ethertype: return "unsupported_ethertype";
    case drop_reason::header_split: return "header_split";
    case drop_reason::arp_malformed: return "arp_malformed";
    case drop_reason::ip_truncated: return "ip_truncated";
    case drop_reason::bad_ip_version: return "bad_ip_version";
    case drop_reason::bad_ihl: return "bad_ihl";
    case drop_reason::bad_ip_length: return "bad_ip_length";
    case drop_reason::ip_options: return "ip_options";
    case drop_reason::fragment: return "fragment";
    case drop_reason::ipv6_ext_header: return "ipv6_ext_header";
    case drop_reason::ipv4_mapped: return "ipv4_mapped";
    case drop_reason::bad_source: return "bad_source";
    case drop_reason::bad_ip_checksum: return "bad_ip_checksum";
    case drop_reason::unsupported_l4: return "unsupported_l4";
    case drop_reason::l4_truncated: return "l4_truncated";
    case drop_reason::bad_tcp_offset: return "bad_tcp_offset";
    case drop_reason::bad_udp_length: return "bad_udp_length";
    case drop_reason::udp_zero_checksum_v6: return "udp_zero_checksum_v6";
    case drop_reason::bad_l4_checksum: return "bad_l4_checksum";
    case drop_reason::ttl_expired: return "ttl_expired";
    case drop_reason::nd_malformed: return "nd_malformed";
  }
  return "unknown";
}

// ---- parse ------------------------------------------------------------------------------------

/// What the frame carries at layer 3.
enum class packet_kind : std::uint8_t { ipv4, ipv6, arp };

/// Parse options. Build with designated initializers: `parse(frame, info, {.verify_l4_checksum = true})`.
struct parse_options {
  /// Verify the IPv4 header checksum (bad_ip_checksum). Default off: NICs verify it on receive.
  bool verify_ip_checksum = false;
  /// Verify the TCP, UDP (unless 0 on IPv4), ICMP and ICMPv6 checksums (bad_l4_checksum); needs the
  /// whole L4 message in `head`. Default off: NICs verify them, and the incremental rewrite keeps a
  /// bad checksum bad.
  bool verify_l4_checksum = false;
};

/// A parsed frame: the conn lookup key and the offsets the rewrite needs. 60 bytes (one cache line),
/// trivially copyable; filled by `parse`, meaningful only when it returned drop_reason::none.
struct packet_info {
  inet_tuple tuple{};               ///< conn table key (see the file comment for ICMP and ARP)
  std::uint32_t frame_len = 0;      ///< bytes of the packet: l3_off + IP total length (ARP: + 28); rest is padding
  std::uint16_t l3_off = 0;         ///< = l2_len: 14, or 18 with a VLAN tag
  std::uint16_t l4_off = 0;         ///< l3_off + IP header length (ARP: end of the ARP message)
  std::uint16_t payload_off = 0;    ///< after the L4 header, TCP options included (ICMP: after 8 bytes)
  std::uint16_t vlan_tci = 0;       ///< host order; meaningful when has_vlan
  packet_kind kind = packet_kind::ipv4;
  ip_family family = ip_family::v4;  ///< ARP: v4
  std::uint8_t proto = 0;           ///< ipproto::tcp, udp, icmp, icmpv6 (0 for ARP)
  std::uint8_t ttl = 0;             ///< TTL / hop limit as received (0 for ARP)
  std::uint8_t tcp_flags = 0;       ///< tcp_flags bits (TCP only)
  std::uint8_t icmp_type = 0;       ///< ICMP / ICMPv6 only
  std::uint8_t icmp_code = 0;       ///< ICMP / ICMPv6 only
  bool has_vlan = false;

  [[nodiscard]] constexpr std::uint16_t l2_len() const noexcept { return l3_off; }
  [[nodiscard]] constexpr std::uint16_t l3_len() const noexcept { return static_cast<std::uint16_t>(l4_off - l3_off); }
  /// L4 header + data (the IP payload).
  [[nodiscard]] constexpr std::uint32_t l4_len() const noexcept { return frame_len - l4_off; }
  [[nodiscard]] constexpr bool is_ip() const noexcept { return kind != packet_kind::arp; }
  /// A SYN alone (no ACK, FIN or RST): the only segment that may open a connection. SYN+FIN and
  /// SYN+RST are the scanner's and the attacker's, never a client's (DPVS refuses them likewise).
  [[nodiscard]] constexpr bool is_tcp_syn() const noexcept {
    constexpr std::uint8_t opening = tcp_flags::syn | tcp_flags::ack | tcp_flags::fin | tcp_flags::rst;
    return proto == ipproto::tcp && (tcp_flags & opening) == tcp_flags::syn;
  }
  [[nodiscard]] constexpr bool is_echo_request() const noexcept {
    return (proto == ipproto::icmp && icmp_type == icmp_type::echo_request) ||
           (proto == ipproto::icmpv6 && icmp_type == icmp6_type::echo_request);
  }
  /// True when forwarding this packet would expire it (rewrite returns ttl_expired).
  [[nodiscard]] constexpr bool ttl_expired() const noexcept { return ttl <= 1; }
};

static_assert(sizeof(packet_info) <= 64 && std::is_trivially_copyable_v<packet_info>);

namespace detail {

[[nodiscard]] constexpr drop_reason short_by(std::size_t need, std::size_t frame_len, drop_reason truncated) noexcept {
  return need > frame_len ? truncated : drop_reason::header_split;
}

[[nodiscard]] inline bool bad_source_v4(std::uint32_t src_be) noexcept {
  const std::uint8_t first = static_cast<std::uint8_t>(ntoh32(src_be) >> 24);
  return first == 0 || first == 127 || first >= 224;
}

[[nodiscard]] inline bool is_loopback(const std::uint8_t* a) noexcept {
  static constexpr std::uint8_t lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(a, lo, 16) == 0;
}
[[nodiscard]] inline bool is_unspecified(const std::uint8_t* a) noexcept {
  static constexpr std::uint8_t zero[16] = {};
  return std::memcmp(a, zero, 16) == 0;
}
[[nodiscard]] inline bool is_v4_mapped(const std::uint8_t* a) noexcept {
  static constexpr std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, prefix, 12) == 0;
}

[[nodiscard]] inline inet_addr inet_from_v4_raw(std::uint32_t be) noexcept {
  ipv6_addr m;
  m.bytes[10] = 0xff;
  m.bytes[11] = 0xff;
  std::memcpy(&m.bytes[12], &be, 4);
  return inet_addr(m);
}
[[nodiscard]] inline inet_addr inet_from_v6_raw(const std::uint8_t* p) noexcept {
  ipv6_addr a;
  std::memcpy(a.bytes.data(), p, 16);
  return inet_addr(a);
}

/// Raw (network order) ICMP echo "ports" per the tuple convention.
inline void icmp_echo_ports(std::uint8_t type, std::uint8_t proto, std::uint16_t id_raw, std::uint16_t& sport,
                            std::uint16_t& dport) noexcept {
  const bool v4 = proto == ipproto::icmp;
  const std::uint8_t req = v4 ? icmp_type::echo_request : icmp6_type::echo_request;
  const std::uint8_t rep = v4 ? icmp_type::echo_reply : icmp6_type::echo_reply;
  sport = type == req ? id_raw : 0;
  dport = type == rep ? id_raw : 0;
}

/// L4 part of the parse: `l4` is the offset of the L4 header, `l4_len` the IP payload length.
[[nodiscard]] inline drop_reason parse_l4(const std::uint8_t* p, std::size_t head_len, std::size_t l4,
                                          std::size_t l4_len, packet_info& out) noexcept {
  switch (out.proto) {
    case ipproto::tcp: {
      if (l4_len < tcp_hdr_len) return drop_reason::l4_truncated;
      if (l4 + tcp_hdr_len > head_len) return drop_reason::header_split;
      const std::size_t doff = std::size_t{p[l4 + 12]} >> 4;
      if (doff < 5 || doff * 4 > l4_len) return drop_reason::bad_tcp_offset;
      if (l4 + doff * 4 > head_len) return drop_reason::header_split;
      out.tuple.sport = load_raw16(p + l4);
      out.tuple.dport = load_raw16(p + l4 + 2);
      out.tcp_flags = p[l4 + 13];
      out.payload_off = static_cast<std::uint16_t>(l4 + doff * 4);
      return drop_reason::none;
    }
    case ipproto::udp: {
      if (l4_len < udp_hdr_len) return drop_reason::l4_truncated;
      if (l4 + udp_hdr_len > head_len) return drop_reason::header_split;
      if (load_be16(p + l4 + 4) != l4_len) return drop_reason::bad_udp_length;
      if (out.family == ip_family::v6 && load_raw16(p + l4 + 6) == 0) return drop_reason::udp_zero_checksum_v6;
      out.tuple.sport = load_raw16(p + l4);
      out.tuple.dport = load_raw16(p + l4 + 2);
      out.payload_off = static_cast<std::uint16_t>(l4 + udp_hdr_len);
      return drop_reason::none;
    }
    case ipproto::icmp:
    case ipproto::icmpv6: {
      if ((out.proto == ipproto::icmp) != (out.family == ip_family::v4)) return drop_reason::unsupported_l4;
      if (l4_len < icmp_hdr_len) return drop_reason::l4_truncated;
      if (l4 + icmp_hdr_len > head_len) return drop_reason::header_split;
      out.icmp_type = p[l4];
      out.icmp_code = p[l4 + 1];
      icmp_echo_ports(out.icmp_type, out.proto, load_raw16(p + l4 + 4), out.tuple.sport, out.tuple.dport);
      out.payload_off = static_cast<std::uint16_t>(l4 + icmp_hdr_len);
      return drop_reason::none;
    }
    default:
      return drop_reason::unsupported_l4;
  }
}

}  // namespace detail

/// Raw sum of the pseudo-header that the L4 checksum of a parsed IP packet covers: RFC 768/793 for
/// IPv4 TCP/UDP, RFC 8200 8.1 for IPv6 (ICMPv6 included); 0 for ICMPv4, which has none.
/// Requires: info from a successful parse of `head`, info.is_ip(). O(1), noexcept.
[[nodiscard]] inline std::uint16_t l4_pseudo_header_sum(std::span<const std::uint8_t> head,
                                                        const packet_info& info) noexcept {
  if (info.proto == ipproto::icmp) return 0;
  const std::uint8_t* ip = head.data() + info.l3_off;
  if (info.family == ip_family::v4)
    return pseudo_header_sum(ipv4_addr{load_raw32(ip + 12)}, ipv4_addr{load_raw32(ip + 16)}, info.proto,
                             static_cast<std::uint16_t>(info.l4_len()));
  std::uint64_t s = raw_sum(ip + 8, 32);
  s += hton32(info.l4_len());
  s += hton32(info.proto);
  return csum_fold(s);
}

/// True when the L4 checksum of a parsed IP packet verifies (an IPv4 UDP checksum of 0, "none",
/// counts as verified). Requires: info from a successful parse of `head`, and the whole packet in
/// head (info.frame_len <= head.size()). O(length), noexcept.
[[nodiscard]] inline bool l4_checksum_ok(std::span<const std::uint8_t> head, const packet_info& info) noexcept {
  const std::uint8_t* l4 = head.data() + info.l4_off;
  if (info.family == ip_family::v4 && info.proto == ipproto::udp && load_raw16(l4 + 6) == 0) return true;
  return raw_sum(l4, info.l4_len(), l4_pseudo_header_sum(head, info)) == 0xffff;
}

/// True when the IPv4 header checksum of a parsed packet verifies (always true for IPv6, which has
/// none). Requires: info from a successful parse of `head`. O(1), noexcept.
[[nodiscard]] inline bool ip_checksum_ok(std::span<const std::uint8_t> head, const packet_info& info) noexcept {
  return info.family != ip_family::v4 || info.kind != packet_kind::ipv4 ||
         raw_sum(head.data() + info.l3_off, ipv4_hdr_len) == 0xffff;
}

/// Parses the contiguous prefix `head` of a frame of `frame_len` bytes into `out`.
/// Requires: head.size() <= frame_len. Returns drop_reason::none and fills `out`, or the first reason
/// the frame is dropped (then `out` is unspecified). Reads only `head`. Complexity: O(1) unless a
/// checksum is verified (O(length) then). noexcept, no allocation; `out` is overwritten.
[[nodiscard]] inline drop_reason parse(std::span<const std::uint8_t> head, std::size_t frame_len, packet_info& out,
                                       const parse_options& opt = {}) noexcept {
  FNAT_PACKET_EXPECT(head.size() <= frame_len, "parse: head (the contiguous prefix) is longer than frame_len");
  const std::uint8_t* p = head.data();
  const std::size_t hl = head.size();
  out = packet_info{};

  if (hl < ether_hdr_len) return detail::short_by(ether_hdr_len, frame_len, drop_reason::eth_truncated);
  if (p[6] & 1u) return drop_reason::bad_source;  // group bit of the source MAC
  std::size_t l3 = ether_hdr_len;
  std::uint16_t et = load_be16(p + 12);
  if (et == ethertype::vlan) {
    if (hl < ether_hdr_len + vlan_hdr_len)
      return detail::short_by(ether_hdr_len + vlan_hdr_len, frame_len, drop_reason::eth_truncated);
    out.has_vlan = true;
    out.vlan_tci = load_be16(p + 14);
    et = load_be16(p + 16);
    l3 += vlan_hdr_len;
  }
  out.l3_off = static_cast<std::uint16_t>(l3);
  const std::size_t avail = frame_len - l3;  // bytes from the L3 header to the end of the frame

  if (et == ethertype::ipv4) {
    if (avail < ipv4_hdr_len) return drop_reason::ip_truncated;
    if (l3 + ipv4_hdr_len > hl) return drop_reason::header_split;
    const std::uint8_t* ip = p + l3;
    if ((ip[0] >> 4) != 4) return drop_reason::bad_ip_version;
    const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    if (ihl < ipv4_hdr_len) return drop_reason::bad_ihl;
    const std::size_t total = load_be16(ip + 2);
    if (total < ihl || total > avail) return drop_reason::bad_ip_length;
    if (ihl != ipv4_hdr_len) return drop_reason::ip_options;
    if (load_be16(ip + 6) & (ipv4_frag::more_fragments | ipv4_frag::offset_mask)) return drop_reason::fragment;
    const std::uint32_t src = load_raw32(ip + 12);
    if (detail::bad_source_v4(src)) return drop_reason::bad_source;
    if (opt.verify_ip_checksum && raw_sum(ip, ipv4_hdr_len) != 0xffff) return drop_reason::bad_ip_checksum;
    out.kind = packet_kind::ipv4;
    out.family = ip_family::v4;
    out.ttl = ip[8];
    out.proto = ip[9];
    out.tuple.saddr = detail::inet_from_v4_raw(src);
    out.tuple.daddr = detail::inet_from_v4_raw(load_raw32(ip + 16));
    out.tuple.proto = out.proto;
    out.l4_off = static_cast<std::uint16_t>(l3 + ipv4_hdr_len);
    out.frame_len = static_cast<std::uint32_t>(l3 + total);
    if (const drop_reason r = detail::parse_l4(p, hl, out.l4_off, total - ipv4_hdr_len, out);
        r != drop_reason::none)
      return r;
  } else if (et == ethertype::ipv6) {
    if (avail < ipv6_hdr_len) return drop_reason::ip_truncated;
    if (l3 + ipv6_hdr_len > hl) return drop_reason::header_split;
    const std::uint8_t* ip = p + l3;
    if ((ip[0] >> 4) != 6) return drop_reason::bad_ip_version;
    const std::size_t plen = load_be16(ip + 4);
    if (plen > avail - ipv6_hdr_len) return drop_reason::bad_ip_length;
    const std::uint8_t nh = ip[6];
    if (nh == ipv6_ext::fragment) return drop_reason::fragment;
    if (ipv6_ext::is_extension(nh)) return drop_reason::ipv6_ext_header;
    const std::uint8_t* src = ip + 8;
    const std::uint8_t* dst = ip + 24;
    if (detail::is_v4_mapped(src) || detail::is_v4_mapped(dst)) return drop_reason::ipv4_mapped;
    if (src[0] == 0xff || detail::is_loopback(src) || (nh != ipproto::icmpv6 && detail::is_unspecified(src)))
      return drop_reason::bad_source;
    out.kind = packet_kind::ipv6;
    out.family = ip_family::v6;
    out.ttl = ip[7];
    out.proto = nh;
    out.tuple.saddr = detail::inet_from_v6_raw(src);
    out.tuple.daddr = detail::inet_from_v6_raw(dst);
    out.tuple.proto = nh;
    out.l4_off = static_cast<std::uint16_t>(l3 + ipv6_hdr_len);
    out.frame_len = static_cast<std::uint32_t>(l3 + ipv6_hdr_len + plen);
    if (const drop_reason r = detail::parse_l4(p, hl, out.l4_off, plen, out); r != drop_reason::none)
      return r;
  } else if (et == ethertype::arp) {
    if (avail < arp_hdr_len) return drop_reason::arp_malformed;
    if (l3 + arp_hdr_len > hl) return drop_reason::header_split;
    const std::uint8_t* a = p + l3;
    const std::uint16_t op = load_be16(a + 6);
    if (load_be16(a) != 1 || load_be16(a + 2) != ethertype::ipv4 || a[4] != 6 || a[5] != 4 ||
        (op != arp_op::request && op != arp_op::reply))
      return drop_reason::arp_malformed;
    if (a[8] & 1u) return drop_reason::bad_source;  // multicast sender hardware address
    out.kind = packet_kind::arp;
    out.family = ip_family::v4;
    out.tuple.saddr = detail::inet_from_v4_raw(load_raw32(a + 14));
    out.tuple.daddr = detail::inet_from_v4_raw(load_raw32(a + 24));
    out.l4_off = out.payload_off = static_cast<std::uint16_t>(l3 + arp_hdr_len);
    out.frame_len = static_cast<std::uint32_t>(l3 + arp_hdr_len);
    return drop_reason::none;
  } else {
    return drop_reason::unsupported_ethertype;
  }

  if (opt.verify_l4_checksum) {
    if (out.frame_len > hl) return drop_reason::header_split;
    if (!l4_checksum_ok(head, out)) return drop_reason::bad_l4_checksum;
  }
  return drop_reason::none;
}

/// Parses a whole contiguous frame. See the other overload.
[[nodiscard]] inline drop_reason parse(std::span<const std::uint8_t> frame, packet_info& out,
                                       const parse_options& opt = {}) noexcept {
  return parse(frame, frame.size(), out, opt);
}

// ---- FullNAT rewrite --------------------------------------------------------------------------

/// Which checksums the transmitting NIC will compute (DPDK: the port's configured tx offloads
/// RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, _TCP_CKSUM, _UDP_CKSUM). Default: none, all in software.
struct checksum_offload {
  /// NIC computes the IPv4 header checksum: the rewrite zeroes it.
  bool ipv4 = false;
  /// NIC computes TCP checksums: the rewrite stores the pseudo-header sum.
  bool tcp = false;
  /// NIC computes UDP checksums: the rewrite stores the pseudo-header sum (except IPv4 "no checksum").
  bool udp = false;
};

/// What `rewrite` did.
struct rewrite_result {
  drop_reason reason = drop_reason::none;  ///< none, or ttl_expired (then nothing was written)
  bool ip_cksum_offloaded = false;         ///< IPv4 header checksum zeroed for the NIC
  bool l4_cksum_offloaded = false;         ///< TCP/UDP checksum holds the pseudo-header sum for the NIC
  [[nodiscard]] constexpr bool ok() const noexcept { return reason == drop_reason::none; }
};

/// Rewrites the addresses and ports of a parsed IP packet to `to` (FullNAT, either direction),
/// decrements TTL / hop limit and updates every checksum incrementally (or prepares it for offload).
/// Requires: `info` is the result of a successful parse of these bytes with info.is_ip();
/// head.size() >= info.payload_off; `to` has info's family. For ICMP echo the identifier becomes
/// to.sport (request) or to.dport (reply), per the tuple convention; other ICMP types ignore the ports.
/// Effects: on success the packet carries `to` and `info.tuple`/`info.ttl` describe the rewritten
/// packet (info.tuple equals `to` for TCP/UDP); on ttl_expired nothing is written.
/// Complexity: O(1), independent of the payload. noexcept, no allocation; writes only header bytes
/// inside [0, info.payload_off).
[[nodiscard]] inline rewrite_result rewrite(std::span<std::uint8_t> head, packet_info& info, const inet_tuple& to,
                                            const checksum_offload& offload = {}) noexcept {
  FNAT_PACKET_EXPECT(info.is_ip(), "rewrite: the packet is ARP; only IPv4/IPv6 packets are rewritten");
  FNAT_PACKET_EXPECT(head.size() >= info.payload_off,
                     "rewrite: head is shorter than the parsed headers; pass the bytes that were parsed");
  FNAT_PACKET_EXPECT(to.saddr.family() == info.family && to.daddr.family() == info.family,
                     "rewrite: the new tuple's family differs from the packet's (no NAT64); "
                     "use addresses of the packet's family");
  rewrite_result res;
  if (info.ttl <= 1) {
    res.reason = drop_reason::ttl_expired;
    return res;
  }
  std::uint8_t* p = head.data();
  std::uint8_t* ip = p + info.l3_off;
  std::uint8_t* l4 = p + info.l4_off;
  const auto& ns = to.saddr.raw();
  const auto& nd = to.daddr.raw();

  // Address change: feeds the IPv4 header checksum and every pseudo-header checksum.
  csum_delta addr;
  std::uint16_t pseudo = 0;  // pseudo-header sum over the new addresses (offload only)
  const std::uint32_t l4_len = info.l4_len();
  const bool wants_l4_offload =
      (info.proto == ipproto::tcp && offload.tcp) || (info.proto == ipproto::udp && offload.udp);
  if (info.family == ip_family::v4) {
    const std::uint32_t os = load_raw32(ip + 12), od = load_raw32(ip + 16);
    std::uint32_t nsa, nda;
    std::memcpy(&nsa, ns.data() + 12, 4);
    std::memcpy(&nda, nd.data() + 12, 4);
    addr.add32(os, nsa).add32(od, nda);
    store(ip + 12, nsa);
    store(ip + 16, nda);
    // TTL and protocol share a 16-bit word; decrement TTL (its high byte in network order) in the
    // word and store the word, so the checksum update needs no reload of a byte just stored.
    const std::uint16_t old_tw = load_raw16(ip + 8);
    const std::uint16_t new_tw = hton16(static_cast<std::uint16_t>(ntoh16(old_tw) - 0x100));
    store(ip + 8, new_tw);
    if (offload.ipv4) {
      store(ip + 10, std::uint16_t{0});
      res.ip_cksum_offloaded = true;
    } else {
      csum_delta h = addr;
      h.add16(old_tw, new_tw);
      store(ip + 10, h.apply(load_raw16(ip + 10)));
    }
    if (wants_l4_offload)
      pseudo = pseudo_header_sum(ipv4_addr{nsa}, ipv4_addr{nda}, info.proto, static_cast<std::uint16_t>(l4_len));
  } else {
    addr.add_bytes(ip + 8, ns.data(), 16).add_bytes(ip + 24, nd.data(), 16);
    std::memcpy(ip + 8, ns.data(), 16);
    std::memcpy(ip + 24, nd.data(), 16);
    ip[7] = static_cast<std::uint8_t>(ip[7] - 1);
    if (wants_l4_offload) pseudo = pseudo_header_sum(to.saddr.v6(), to.daddr.v6(), info.proto, l4_len);
  }

  inet_tuple& t = info.tuple;
  t.saddr = to.saddr;
  t.daddr = to.daddr;
  info.ttl = static_cast<std::uint8_t>(info.ttl - 1);

  switch (info.proto) {
    case ipproto::tcp:
    case ipproto::udp: {
      const bool tcp = info.proto == ipproto::tcp;
      std::uint8_t* ck = l4 + (tcp ? 16 : 6);
      csum_delta d = addr;
      d.add16(load_raw16(l4), to.sport).add16(load_raw16(l4 + 2), to.dport);
      store(l4, to.sport);
      store(l4 + 2, to.dport);
      t.sport = to.sport;
      t.dport = to.dport;
      const std::uint16_t old = load_raw16(ck);
      if (!tcp && old == 0 && info.family == ip_family::v4) break;  // "no checksum" stays so
      if (wants_l4_offload) {
        store(ck, pseudo);
        res.l4_cksum_offloaded = true;
      } else {
        const std::uint16_t c = d.apply(old);
        store(ck, tcp ? c : udp_checksum_fixup(c));
      }
      break;
    }
    case ipproto::icmp:
    case ipproto::icmpv6: {
      const bool v6 = info.proto == ipproto::icmpv6;
      csum_delta d;
      if (v6) d = addr;  // ICMPv6 covers the pseudo-header, ICMPv4 does not
      const std::uint8_t req = v6 ? icmp6_type::echo_request : icmp_type::echo_request;
      const std::uint8_t rep = v6 ? icmp6_type::echo_reply : icmp_type::echo_reply;
      if (info.icmp_type == req || info.icmp_type == rep) {
        const std::uint16_t id = info.icmp_type == req ? to.sport : to.dport;
        d.add16(load_raw16(l4 + 4), id);
        store(l4 + 4, id);
      }
      detail::icmp_echo_ports(info.icmp_type, info.proto, load_raw16(l4 + 4), t.sport, t.dport);
      const std::uint16_t c = d.apply(load_raw16(l4 + 2));
      store(l4 + 2, v6 ? c : csum_nonzero(c));  // ICMPv4 data can be all zero: see checksum.hpp
      break;
    }
    default:
      FNAT_PACKET_EXPECT(false, "rewrite: info does not come from a successful parse (unknown protocol)");
      break;
  }
  return res;
}

// ---- link layer for built frames --------------------------------------------------------------

/// Ethernet addressing of a frame to build.
struct l2_spec {
  mac_addr dst{};
  mac_addr src{};
  /// Add an 802.1Q tag with vlan_tci.
  bool vlan = false;
  /// Host order: PCP(3) DEI(1) VID(12).
  std::uint16_t vlan_tci = 0;

  [[nodiscard]] constexpr std::size_t len() const noexcept { return vlan ? ether_hdr_len + vlan_hdr_len : ether_hdr_len; }
};

/// Addressing for a reply to a parsed frame: to its source MAC, from `our_mac`, in its VLAN.
/// Requires: head holds the frame's Ethernet header (any successful parse guarantees it). O(1).
[[nodiscard]] inline l2_spec reply_l2(std::span<const std::uint8_t> head, const packet_info& info,
                                      const mac_addr& our_mac) noexcept {
  l2_spec l2;
  std::memcpy(l2.dst.bytes.data(), head.data() + 6, 6);
  l2.src = our_mac;
  l2.vlan = info.has_vlan;
  l2.vlan_tci = info.vlan_tci;
  return l2;
}

namespace detail {
/// Writes the Ethernet (+ tag) header; returns the L3 offset. Requires: p has l2.len() bytes.
inline std::size_t write_l2(std::uint8_t* p, const l2_spec& l2, std::uint16_t et) noexcept {
  std::memcpy(p, l2.dst.bytes.data(), 6);
  std::memcpy(p + 6, l2.src.bytes.data(), 6);
  if (l2.vlan) {
    store_be16(p + 12, ethertype::vlan);
    store_be16(p + 14, l2.vlan_tci);
    store_be16(p + 16, et);
    return ether_hdr_len + vlan_hdr_len;
  }
  store_be16(p + 12, et);
  return ether_hdr_len;
}
}  // namespace detail

// ---- ARP --------------------------------------------------------------------------------------

/// An ARP message (Ethernet/IPv4), fields in their natural types.
struct arp_message {
  std::uint16_t op = 0;  ///< host order: arp_op::request or reply
  mac_addr sha;          ///< sender hardware address
  ipv4_addr spa;         ///< sender protocol address
  mac_addr tha;          ///< target hardware address (zero in a request)
  ipv4_addr tpa;         ///< target protocol address
  /// Sender announces its own address (spa == tpa): learn it, do not answer it.
  [[nodiscard]] constexpr bool is_gratuitous() const noexcept { return spa == tpa; }
  friend constexpr bool operator==(const arp_message&, const arp_message&) noexcept = default;
};

/// Reads the ARP message of a frame `parse` accepted as packet_kind::arp. O(1), noexcept.
[[nodiscard]] inline arp_message parse_arp(std::span<const std::uint8_t> head, const packet_info& info) noexcept {
  FNAT_PACKET_EXPECT(info.kind == packet_kind::arp && head.size() >= info.payload_off,
                     "parse_arp: info does not describe an ARP frame parsed from these bytes");
  const std::uint8_t* a = head.data() + info.l3_off;
  arp_message m;
  m.op = load_be16(a + 6);
  std::memcpy(m.sha.bytes.data(), a + 8, 6);
  m.spa.be = load_raw32(a + 14);
  std::memcpy(m.tha.bytes.data(), a + 18, 6);
  m.tpa.be = load_raw32(a + 24);
  return m;
}

/// Writes an ARP frame, zero-padded to the 60-byte Ethernet minimum. Returns its length, or 0 when
/// `out` is shorter (nothing written then). O(1), noexcept.
[[nodiscard]] inline std::size_t write_arp(std::span<std::uint8_t> out, const l2_spec& l2, const arp_message& m) noexcept {
  const std::size_t len = std::max(l2.len() + arp_hdr_len, ether_min_frame_len);
  if (out.size() < len) return 0;
  std::uint8_t* p = out.data();
  std::memset(p, 0, len);
  std::uint8_t* a = p + detail::write_l2(p, l2, ethertype::arp);
  store_be16(a, 1);
  store_be16(a + 2, ethertype::ipv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, m.op);
  std::memcpy(a + 8, m.sha.bytes.data(), 6);
  store(a + 14, m.spa.be);
  std::memcpy(a + 18, m.tha.bytes.data(), 6);
  store(a + 24, m.tpa.be);
  return len;
}

/// Builds the reply to an ARP request for an address we own (request.tpa): sender = our_mac and
/// request.tpa, target = the requester. `l2` is usually reply_l2(request frame, info, our_mac).
/// Returns the frame length or 0 (out too small). O(1), noexcept.
[[nodiscard]] inline std::size_t build_arp_reply(std::span<std::uint8_t> out, const l2_spec& l2,
                                                 const arp_message& request, const mac_addr& our_mac) noexcept {
  return write_arp(out, l2, arp_message{.op = arp_op::reply, .sha = our_mac, .spa = request.tpa,
                                        .tha = request.sha, .tpa = request.spa});
}

/// Builds a request "who has target? tell our_ip" from our_mac, broadcast, or unicast to
/// `unicast_to` (RFC 1122 2.3.2.1 refresh of a cached entry). Returns the frame length or 0.
[[nodiscard]] inline std::size_t build_arp_request(std::span<std::uint8_t> out, const mac_addr& our_mac,
                                                   ipv4_addr our_ip, ipv4_addr target, bool vlan = false,
                                                   std::uint16_t vlan_tci = 0,
                                                   std::optional<mac_addr> unicast_to = std::nullopt) noexcept {
  const l2_spec l2{.dst = unicast_to.value_or(mac_addr::broadcast()), .src = our_mac, .vlan = vlan, .vlan_tci = vlan_tci};
  return write_arp(out, l2, arp_message{.op = arp_op::request, .sha = our_mac, .spa = our_ip, .tha = {}, .tpa = target});
}

// ---- neighbour discovery (RFC 4861) -----------------------------------------------------------

/// A neighbour solicitation or advertisement, fields in their natural types.
struct nd_message {
  std::uint8_t type = 0;     ///< icmp6_type::neighbour_solicitation or neighbour_advertisement
  std::uint8_t flags = 0;    ///< nd_flags (NA only)
  ipv6_addr target;
  bool has_lladdr = false;   ///< a source (NS) / target (NA) link-layer address option was present
  mac_addr lladdr;           ///< its address
  friend constexpr bool operator==(const nd_message&, const nd_message&) noexcept = default;
};

/// Validates and reads an NS or NA that `parse` accepted (ICMPv6 type 135/136), per RFC 4861 7.1.1
/// and 7.1.2: hop limit 255, code 0, ICMPv6 length >= 24, checksum valid, target not multicast,
/// every option of non-zero length and inside the message; an NS from the unspecified address is
/// sent to a solicited-node address and carries no source link-layer option; an NA to a multicast
/// address is not solicited. A link-layer address option must be 8 bytes (Ethernet) to be used;
/// unknown options are skipped. Returns none and fills `out`, or nd_malformed (or header_split when the
/// message is not within head). Complexity: O(message length). noexcept.
[[nodiscard]] inline drop_reason parse_nd(std::span<const std::uint8_t> head, const packet_info& info,
                                          nd_message& out) noexcept {
  out = nd_message{};
  if (info.kind != packet_kind::ipv6 || info.proto != ipproto::icmpv6 ||
      (info.icmp_type != icmp6_type::neighbour_solicitation && info.icmp_type != icmp6_type::neighbour_advertisement))
    return drop_reason::nd_malformed;
  if (info.frame_len > head.size()) return drop_reason::header_split;
  const std::uint8_t* p = head.data();
  const std::uint8_t* ip = p + info.l3_off;
  const std::uint8_t* m = p + info.l4_off;
  const std::size_t len = info.l4_len();
  if (ip[7] != 255 || m[1] != 0 || len < nd_hdr_len) return drop_reason::nd_malformed;
  if (!l4_checksum_ok(head, info)) return drop_reason::nd_malformed;
  out.type = m[0];
  std::memcpy(out.target.bytes.data(), m + 8, 16);
  if (is_multicast(out.target)) return drop_reason::nd_malformed;
  const bool ns = out.type == icmp6_type::neighbour_solicitation;
  const std::uint8_t want = ns ? nd_opt::source_lladdr : nd_opt::target_lladdr;
  for (std::size_t off = nd_hdr_len; off < len;) {
    if (len - off < 2) return drop_reason::nd_malformed;
    const std::size_t olen = std::size_t{m[off + 1]} * 8;
    if (olen == 0 || olen > len - off) return drop_reason::nd_malformed;
    if (m[off] == want) {
      if (olen != sizeof(nd_opt_lladdr)) return drop_reason::nd_malformed;
      out.has_lladdr = true;
      std::memcpy(out.lladdr.bytes.data(), m + off + 2, 6);
    }
    off += olen;
  }
  ipv6_addr src, dst;
  std::memcpy(src.bytes.data(), ip + 8, 16);
  std::memcpy(dst.bytes.data(), ip + 24, 16);
  if (ns) {
    if (detail::is_unspecified(src.bytes.data()) && (dst != solicited_node(dst) || out.has_lladdr))
      return drop_reason::nd_malformed;
  } else {
    out.flags = static_cast<std::uint8_t>(m[4] & (nd_flags::router | nd_flags::solicited | nd_flags::override_));
    if (is_multicast(dst) && (out.flags & nd_flags::solicited)) return drop_reason::nd_malformed;
  }
  return drop_reason::none;
}

/// Writes an ND frame: IPv6 (hop limit 255, next header ICMPv6) from `src` to `dst`, the NS/NA
/// header from `m`, and, when m.has_lladdr, the link-layer option (source for NS, target for NA)
/// with m.lladdr. Checksum computed over the pseudo-header. Returns the length, or 0 when `out` is
/// too small. O(1), noexcept.
[[nodiscard]] inline std::size_t write_nd(std::span<std::uint8_t> out, const l2_spec& l2, const ipv6_addr& src,
                                          const ipv6_addr& dst, const nd_message& m) noexcept {
  const std::size_t icmp_len = nd_hdr_len + (m.has_lladdr ? sizeof(nd_opt_lladdr) : 0);
  const std::size_t len = l2.len() + ipv6_hdr_len + icmp_len;
  if (out.size() < len) return 0;
  std::uint8_t* p = out.data();
  std::uint8_t* ip = p + detail::write_l2(p, l2, ethertype::ipv6);
  store(ip, hton32(0x60000000u));
  store_be16(ip + 4, static_cast<std::uint16_t>(icmp_len));
  ip[6] = ipproto::icmpv6;
  ip[7] = 255;
  std::memcpy(ip + 8, src.bytes.data(), 16);
  std::memcpy(ip + 24, dst.bytes.data(), 16);
  std::uint8_t* icmp = ip + ipv6_hdr_len;
  std::memset(icmp, 0, icmp_len);
  icmp[0] = m.type;
  icmp[4] = m.type == icmp6_type::neighbour_advertisement ? m.flags : 0;
  std::memcpy(icmp + 8, m.target.bytes.data(), 16);
  if (m.has_lladdr) {
    icmp[24] = m.type == icmp6_type::neighbour_solicitation ? nd_opt::source_lladdr : nd_opt::target_lladdr;
    icmp[25] = 1;
    std::memcpy(icmp + 26, m.lladdr.bytes.data(), 6);
  }
  const std::uint16_t ph = pseudo_header_sum(src, dst, ipproto::icmpv6, static_cast<std::uint32_t>(icmp_len));
  store(icmp + 2, internet_checksum({icmp, icmp_len}, ph));
  return len;
}

/// Builds the advertisement answering `ns` (a solicitation for an address we own, ns.target) that
/// came from `ns_src`, per RFC 4861 7.2.4: source = the target, target link-layer option = our_mac,
/// override set (we own the address), plus `extra_flags` (e.g. nd_flags::router). To a unicast
/// solicitor: destination ns_src, solicited set, Ethernet destination its source link-layer option
/// when it sent one (else l2.dst). To the unspecified address (duplicate address detection):
/// all-nodes ff02::1 and its multicast MAC, solicited clear. `l2` is usually reply_l2(ns frame, info,
/// our_mac). Returns the length or 0 (out too small). O(1), noexcept.
[[nodiscard]] inline std::size_t build_na_reply(std::span<std::uint8_t> out, l2_spec l2, const ipv6_addr& ns_src,
                                                const nd_message& ns, const mac_addr& our_mac,
                                                std::uint8_t extra_flags = 0) noexcept {
  nd_message na{.type = icmp6_type::neighbour_advertisement,
                .flags = static_cast<std::uint8_t>(nd_flags::override_ | extra_flags),
                .target = ns.target,
                .has_lladdr = true,
                .lladdr = our_mac};
  ipv6_addr dst = ns_src;
  l2.src = our_mac;
  if (detail::is_unspecified(ns_src.bytes.data())) {
    dst = all_nodes();
    l2.dst = multicast_mac(dst);
    na.flags = static_cast<std::uint8_t>(na.flags & ~nd_flags::solicited);
  } else {
    na.flags |= nd_flags::solicited;
    if (ns.has_lladdr) l2.dst = ns.lladdr;
  }
  return write_nd(out, l2, ns.target, dst, na);
}

/// Builds a solicitation for `target` from our_ip with the source link-layer option our_mac: to the
/// target's solicited-node multicast address (address resolution), or, with `unicast_to`, to the
/// target itself at that MAC (RFC 4861 7.3.3 reachability probe). Returns the length or 0.
[[nodiscard]] inline std::size_t build_ns(std::span<std::uint8_t> out, const mac_addr& our_mac, const ipv6_addr& our_ip,
                                          const ipv6_addr& target, bool vlan = false, std::uint16_t vlan_tci = 0,
                                          std::optional<mac_addr> unicast_to = std::nullopt) noexcept {
  const ipv6_addr dst = unicast_to ? target : solicited_node(target);
  const l2_spec l2{.dst = unicast_to ? *unicast_to : multicast_mac(dst), .src = our_mac, .vlan = vlan, .vlan_tci = vlan_tci};
  return write_nd(out, l2, our_ip, dst,
                  nd_message{.type = icmp6_type::neighbour_solicitation, .flags = 0, .target = target,
                             .has_lladdr = true, .lladdr = our_mac});
}

// ---- echo -------------------------------------------------------------------------------------

/// Turns a parsed ICMP / ICMPv6 echo request into its reply, in place: Ethernet addresses to the
/// requester from `our_mac`, IP addresses swapped, TTL / hop limit set to `ttl`, type echo reply,
/// code 0; checksums updated incrementally (the swap leaves both the IPv4 header sum and the ICMPv6
/// pseudo-header sum unchanged, so only the TTL and type words move them). The payload is untouched,
/// so a multi-segment request works as long as its headers are in `head`. `info` is updated to the
/// reply. Requires: the request's destination is one of our unicast addresses (VIP / LIP) — the caller
/// decides to answer. Returns errc::ok, or errc::invalid_argument (nothing written) when `info` is not
/// an echo request. O(1), noexcept.
[[nodiscard]] inline errc make_echo_reply(std::span<std::uint8_t> head, packet_info& info, const mac_addr& our_mac,
                                          std::uint8_t ttl = 64) noexcept {
  if (!info.is_ip() || !info.is_echo_request() || head.size() < info.payload_off) return errc::invalid_argument;
  std::uint8_t* p = head.data();
  std::memcpy(p, p + 6, 6);
  std::memcpy(p + 6, our_mac.bytes.data(), 6);
  std::uint8_t* ip = p + info.l3_off;
  std::uint8_t* icmp = p + info.l4_off;
  if (info.family == ip_family::v4) {
    const std::uint32_t s = load_raw32(ip + 12);
    store(ip + 12, load_raw32(ip + 16));
    store(ip + 16, s);
    const std::uint16_t old_tw = load_raw16(ip + 8);
    const std::uint16_t new_tw = hton16(static_cast<std::uint16_t>(ttl << 8 | ip[9]));
    store(ip + 8, new_tw);
    store(ip + 10, csum_update16(load_raw16(ip + 10), old_tw, new_tw));
  } else {
    std::uint8_t tmp[16];
    std::memcpy(tmp, ip + 8, 16);
    std::memcpy(ip + 8, ip + 24, 16);
    std::memcpy(ip + 24, tmp, 16);
    ip[7] = ttl;
  }
  const std::uint16_t old_tc = load_raw16(icmp);
  const std::uint8_t type = info.family == ip_family::v4 ? icmp_type::echo_reply : icmp6_type::echo_reply;
  const std::uint16_t new_tc = hton16(static_cast<std::uint16_t>(type << 8));  // code 0
  store(icmp, new_tc);
  const std::uint16_t c = csum_update16(load_raw16(icmp + 2), old_tc, new_tc);
  store(icmp + 2, info.family == ip_family::v4 ? csum_nonzero(c) : c);  // see checksum.hpp
  const inet_addr s = info.tuple.saddr;
  info.tuple.saddr = info.tuple.daddr;
  info.tuple.daddr = s;
  info.icmp_type = type;
  info.icmp_code = 0;
  info.ttl = ttl;
  detail::icmp_echo_ports(info.icmp_type, info.proto, load_raw16(icmp + 4), info.tuple.sport, info.tuple.dport);
  return errc::ok;
}

}  // namespace fnat
