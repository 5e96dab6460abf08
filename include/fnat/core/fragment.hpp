// SPDX-License-Identifier: BSD-3-Clause
// IP fragments before reassembly: validate one, and choose the lcore where all fragments of its
// datagram meet.
//
// ## Why fragments need steering of their own
// A balancer keeps its conns per lcore and steers by ports, but only the first fragment of a datagram
// carries the L4 header. A NIC hashes the others by addresses alone (RSS falls back to the L3 hash for
// fragments; flow rules cannot match ports that are not there), so the fragments of one datagram
// arrive on different queues. They must meet on one lcore to be reassembled; the reassembled
// datagram then has ports and goes where any whole packet goes (its conn's owner).
//
// The meeting point is a keyed hash of fields every fragment carries, modulo the lcore count:
//   - to a LIP (a real server's reply): (source, destination, identification). Replies between one
//     RS and one LIP are many datagrams; the identification spreads them over the lcores, and each
//     reassembled datagram is handed to the owner of its lport afterwards;
//   - to anything else (a client's datagram to a VIP): (source, destination) only. Every fragmented
//     datagram of a client flow then meets on one lcore and finds the flow's conn there; a flow whose
//     datagrams are sometimes fragmented and sometimes not can end up with a conn on two lcores (the
//     NIC's RSS lcore and this one), which UDP tolerates (two lports towards the same RS choice).
// The key is secret per process (fragments are written by strangers: a chosen-collision flood on one
// lcore's table must not be cheap), so `fragment_home` takes the key from the caller.
//
// ## What is accepted
// IPv4 with MF set or a non-zero offset, header without options (as `parse`: options are never
// forwarded), total length within the frame, a non-last fragment's payload a multiple of 8 bytes;
// IPv6 whose first next header is the fragment header (RFC 8200 4.5), same length rules. Sources as
// `parse` (multicast, loopback, 0/8, IPv4-mapped: bad_source / ipv4_mapped). Anything else is the
// same drop_reason `parse` would give, or `fragment` for a fragment that is malformed as such.
//
// Everything here is noexcept, allocation-free, O(1).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "fnat/core/addr.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"

namespace fnat {

/// One fragment, as `parse_fragment` read it. Addresses in inet_addr form.
struct fragment_info {
  inet_addr saddr, daddr;
  std::uint32_t id = 0;           ///< identification: 16 bits (IPv4) or 32 bits (IPv6), host order
  std::uint16_t l3_off = 0;       ///< 14, or 18 with a VLAN tag
  std::uint16_t l3_len = 0;       ///< IPv4: 20; IPv6: 40 + 8 (the fragment header)
  std::uint16_t offset = 0;       ///< fragment offset in bytes
  std::uint16_t payload_len = 0;  ///< bytes of the datagram this fragment carries
  std::uint8_t proto = 0;         ///< the datagram's protocol (IPv6: the fragment header's next header)
  ip_family family = ip_family::v4;
  bool more = false;              ///< more fragments follow
  [[nodiscard]] constexpr bool is_first() const noexcept { return offset == 0; }
};

/// Validates the IP fragment in the contiguous prefix `head` of a frame of `frame_len` bytes. Returns
/// drop_reason::none and fills `out`, or why it is dropped (see the file comment; a frame that is not
/// a fragment at all is `unsupported_l4`, as a caller should have parsed it with `parse`). O(1).
[[nodiscard]] inline drop_reason parse_fragment(std::span<const std::uint8_t> head, std::size_t frame_len,
                                                fragment_info& out) noexcept {
  out = fragment_info{};
  const std::uint8_t* p = head.data();
  const std::size_t hl = head.size();
  if (hl < ether_hdr_len) return drop_reason::eth_truncated;
  if (p[6] & 1u) return drop_reason::bad_source;
  std::size_t l3 = ether_hdr_len;
  std::uint16_t et = load_be16(p + 12);
  if (et == ethertype::vlan) {
    if (hl < ether_hdr_len + vlan_hdr_len) return drop_reason::eth_truncated;
    et = load_be16(p + 16);
    l3 += vlan_hdr_len;
  }
  out.l3_off = static_cast<std::uint16_t>(l3);
  const std::size_t avail = frame_len - std::min(frame_len, l3);
  if (et == ethertype::ipv4) {
    if (l3 + ipv4_hdr_len > hl) return avail < ipv4_hdr_len ? drop_reason::ip_truncated : drop_reason::header_split;
    const std::uint8_t* ip = p + l3;
    if ((ip[0] >> 4) != 4) return drop_reason::bad_ip_version;
    if ((ip[0] & 0x0fu) != 5) return (ip[0] & 0x0fu) < 5 ? drop_reason::bad_ihl : drop_reason::ip_options;
    const std::size_t total = load_be16(ip + 2);
    if (total < ipv4_hdr_len || total > avail) return drop_reason::bad_ip_length;
    const std::uint16_t frag = load_be16(ip + 6);
    out.more = (frag & ipv4_frag::more_fragments) != 0;
    out.offset = static_cast<std::uint16_t>((frag & ipv4_frag::offset_mask) * 8u);
    if (!out.more && out.offset == 0) return drop_reason::unsupported_l4;
    const std::uint32_t src = load_raw32(ip + 12);
    if (detail::bad_source_v4(src)) return drop_reason::bad_source;
    out.family = ip_family::v4;
    out.saddr = detail::inet_from_v4_raw(src);
    out.daddr = detail::inet_from_v4_raw(load_raw32(ip + 16));
    out.id = load_be16(ip + 4);
    out.proto = ip[9];
    out.l3_len = ipv4_hdr_len;
    out.payload_len = static_cast<std::uint16_t>(total - ipv4_hdr_len);
  } else if (et == ethertype::ipv6) {
    constexpr std::size_t fh_len = 8;
    if (l3 + ipv6_hdr_len + fh_len > hl)
      return avail < ipv6_hdr_len + fh_len ? drop_reason::ip_truncated : drop_reason::header_split;
    const std::uint8_t* ip = p + l3;
    if ((ip[0] >> 4) != 6) return drop_reason::bad_ip_version;
    if (ip[6] != ipv6_ext::fragment) return drop_reason::unsupported_l4;
    const std::size_t plen = load_be16(ip + 4);
    if (plen < fh_len || plen > avail - ipv6_hdr_len) return drop_reason::bad_ip_length;
    const std::uint8_t* src = ip + 8;
    const std::uint8_t* dst = ip + 24;
    if (detail::is_v4_mapped(src) || detail::is_v4_mapped(dst)) return drop_reason::ipv4_mapped;
    if (src[0] == 0xff || detail::is_loopback(src) || detail::is_unspecified(src)) return drop_reason::bad_source;
    const std::uint8_t* fh = ip + ipv6_hdr_len;
    const std::uint16_t off_m = load_be16(fh + 2);
    out.more = (off_m & 1u) != 0;
    out.offset = static_cast<std::uint16_t>(off_m & 0xfff8u);
    out.family = ip_family::v6;
    out.saddr = detail::inet_from_v6_raw(src);
    out.daddr = detail::inet_from_v6_raw(dst);
    out.id = load_be32(fh + 4);
    out.proto = fh[0];
    out.l3_len = static_cast<std::uint16_t>(ipv6_hdr_len + fh_len);
    out.payload_len = static_cast<std::uint16_t>(plen - fh_len);
    // Further extension headers in the first fragment are not walked (as `parse`).
    if (out.is_first() && ipv6_ext::is_extension(out.proto)) return drop_reason::ipv6_ext_header;
  } else {
    return drop_reason::unsupported_ethertype;
  }
  // RFC 791 / 8200: every fragment but the last carries a multiple of 8 bytes, and none is empty.
  if (out.payload_len == 0 || (out.more && out.payload_len % 8 != 0)) return drop_reason::fragment;
  if (std::size_t{out.offset} + out.payload_len > 65535) return drop_reason::fragment;
  return drop_reason::none;
}

/// The lcore index in [0, lcores) where the fragments of `f`'s datagram meet (see the file comment):
/// a keyed hash of (source, destination, id) when `to_lip`, of (source, destination) otherwise.
/// Requires lcores > 0. O(1), noexcept.
[[nodiscard]] inline std::size_t fragment_home(const fragment_info& f, bool to_lip, std::uint32_t key,
                                               std::size_t lcores) noexcept {
  unsigned char buf[36];
  std::memcpy(buf, f.saddr.raw().data(), 16);
  std::memcpy(buf + 16, f.daddr.raw().data(), 16);
  const std::uint32_t id = to_lip ? f.id : 0;
  std::memcpy(buf + 32, &id, 4);
  return hash_bytes(buf, sizeof buf, key) % lcores;
}

}  // namespace fnat
