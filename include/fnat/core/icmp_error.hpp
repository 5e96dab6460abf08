// SPDX-License-Identifier: BSD-3-Clause
// ICMP and ICMPv6 errors through a FullNAT translation: find the conn an error is about, and rewrite
// the error so that it makes sense to its receiver.
//
// ## Why errors need their own rewrite
// An ICMP error (RFC 792, RFC 4443 2.4) carries no ports of its own: it quotes the start of the packet
// that caused it, the "embedded" IP header and at least the first 8 bytes of its L4 header. A UDP
// socket learns "connection refused", and TCP and path MTU discovery learn "packet too big", by
// matching that quote against what they sent. Behind a FullNAT balancer the quote is in the wrong
// address space twice over: a real server's "port unreachable" quotes LIP:lport -> RS:rport, which the
// client never sent, and it is addressed to the LIP, which the client does not know. So the balancer
// must translate both the outer header and the quote, the way it translated the packet that caused
// the error, only backwards.
//
// ## Finding the conn
// The quote is a packet the balancer forwarded, so its tuple Q reversed is a tuple the conn table
// holds as a *reply* key:
//   - RS -> LIP error (the RS, or a router between us and it, refused LIP:lport -> RS:rport):
//     Q.reversed() = RS:rport -> LIP:lport, the conn's outbound tuple. Its owner lcore is found
//     from lport = Q.sport exactly as for any reply (port plan class or RETA), so the error is
//     steered like the conn's own replies;
//   - client -> VIP error (the client refused VIP:vport -> client:cport):
//     Q.reversed() = client:cport -> VIP:vport, the conn's inbound tuple.
// `icmp_error_info::conn_key()` is that key. The translated quote is the conn's *other* tuple (the
// packet as its sender sent it before translation), and the new outer addresses are that tuple's
// destination -> source: the error comes from the address the sender talked to (VIP or RS) and goes
// to the sender. `translated_quote(dir, in, out)` picks the tuple.
//
// ## Checksums, and what is left alone
//  - outer IPv4 header: addresses and TTL, incremental (RFC 1624);
//  - quoted IPv4 header: addresses, incremental (its checksum is in the quote: the receiver's stack
//    may verify it; Linux does not, but a middlebox may);
//  - quoted TCP/UDP checksum: incremental for the address (pseudo-header) and port changes, *when the
//    checksum field lies inside the quote* (UDP: always, the 8 bytes hold it; TCP: when 18 bytes are
//    quoted). The update is exact although the quoted payload is cut short: an incremental update
//    needs only the changed words, so the result is the checksum the sender's original segment
//    carried. A field outside the quote is not there to update, and an IPv4 UDP checksum of 0
//    ("none") stays 0;
//  - the ICMP checksum covers the whole message (ICMPv6: and the pseudo-header of the new outer
//    addresses); so many of its words change (two addresses, two ports, the quoted checksums) that it
//    is recomputed in full. That is safe because `parse_icmp_error` verified the received checksum
//    first: a corrupted error is dropped, never laundered into a valid one. Cost O(message), and a
//    message is at most 576 (IPv4, RFC 1812 4.3.2.3) or 1280 bytes (IPv6): errors are rare and small;
//  - the quoted TTL / hop limit, IP identification, TCP sequence numbers and the MTU of "fragmentation
//    needed" / "packet too big" are kept: FullNAT changes neither header lengths nor sequence numbers
//    (no SYN proxy here), so the MTU of the LIP -> RS path is the MTU the client's packets meet.
//
// ## What is accepted
// ICMPv4 types 3 (destination unreachable, "fragmentation needed" is code 4), 11 (time exceeded),
// 12 (parameter problem); ICMPv6 types 1..4 (unreachable, packet too big, time exceeded, parameter
// problem). The quote must be of the outer family, an IPv4 header without options (the balancer never
// forwards options) or a plain IPv6 header, not a non-first fragment, TCP or UDP, with at least 8
// bytes of L4 header, and the error must be addressed to the quoted packet's source. Everything else is a reason (`icmp_error_status`), for a counted drop.
//
// ## Sending "too big" ourselves (path MTU discovery, RFC 1191 / RFC 8201)
// A packet larger than its egress link that may not be fragmented (IPv4 with DF, any IPv6 packet
// but one the balancer reassembled itself) is dropped and answered with "fragmentation needed"
// (ICMPv4 3/4, next-hop MTU in bytes 6..7) or "packet too big" (ICMPv6 2, MTU in bytes 4..7).
// `build_too_big` writes it, quoting the packet *as its sender sent it* (so call it before any
// rewrite): its IP header and as much of the rest as fits in 576 (IPv4, RFC 1812 4.3.2.3) or 1280
// bytes (IPv6, RFC 4443 2.4(c)) of error. The error comes from the address the sender talked to
// (VIP or LIP), with TTL / hop limit 64. The MTU reported is the egress link's: FullNAT changes no
// header length, so the sender's packets meet the same limit. Rate limiting is the caller's.
//
// Everything here is noexcept, allocation-free, O(message length).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "fnat/core/addr.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/conn_state.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"

namespace fnat {

/// ICMPv4 parameter problem (RFC 792); the other error types are in headers.hpp.
namespace icmp_type {
inline constexpr std::uint8_t parameter_problem = 12;
}  // namespace icmp_type
/// ICMPv4 destination unreachable code "fragmentation needed and DF set" (RFC 792, RFC 1191).
inline constexpr std::uint8_t icmp_code_frag_needed = 4;

/// True when (proto, type) is an ICMP or ICMPv6 error this header translates (see the file comment).
[[nodiscard]] constexpr bool is_icmp_error(std::uint8_t proto, std::uint8_t type) noexcept {
  if (proto == ipproto::icmp)
    return type == icmp_type::dest_unreachable || type == icmp_type::time_exceeded ||
           type == icmp_type::parameter_problem;
  if (proto == ipproto::icmpv6) return type >= icmp6_type::dest_unreachable && type <= icmp6_type::param_problem;
  return false;
}

/// Why an ICMP error could not be used. `ok` (0) means it can.
enum class icmp_error_status : std::uint8_t {
  ok = 0,
  not_an_error,       ///< not one of the error types above
  header_split,       ///< the ICMP message is not entirely in the contiguous head
  bad_checksum,       ///< the ICMP / ICMPv6 checksum does not verify
  truncated,          ///< quote shorter than its IP header + 8 bytes, or its lengths are inconsistent
  bad_inner,          ///< quote of another IP version, IPv4 options, non-first fragment, mapped address
  unsupported_inner,  ///< the quoted packet is not TCP or UDP
  not_to_sender,      ///< the error's destination is not the quoted packet's source
};

[[nodiscard]] constexpr std::string_view to_string(icmp_error_status s) noexcept {
  switch (s) {
    case icmp_error_status::ok: return "ok";
    case icmp_error_status::not_an_error: return "not_an_error";
    case icmp_error_status::header_split: return "header_split";
    case icmp_error_status::bad_checksum: return "bad_checksum";
    case icmp_error_status::truncated: return "truncated";
    case icmp_error_status::bad_inner: return "bad_inner";
    case icmp_error_status::unsupported_inner: return "unsupported_inner";
    case icmp_error_status::not_to_sender: return "not_to_sender";
  }
  return "unknown";
}

/// What `parse_icmp_error` found: the quoted packet's tuple and where the quote lies in the frame.
struct icmp_error_info {
  inet_tuple quoted{};             ///< the quoted packet as it was sent: its source -> destination
  std::uint16_t inner_l3_off = 0;  ///< frame offset of the quoted IP header
  std::uint16_t inner_l4_off = 0;  ///< frame offset of the quoted TCP / UDP header
  std::uint16_t quote_end = 0;     ///< frame offset where the ICMP message ends (= info.frame_len)
  std::uint8_t type = 0;
  std::uint8_t code = 0;

  /// The conn table key of the conn the error is about: the quoted tuple reversed (file comment).
  [[nodiscard]] constexpr inet_tuple conn_key() const noexcept { return quoted.reversed(); }
  /// Bytes of the quoted L4 header present (>= 8).
  [[nodiscard]] constexpr std::size_t inner_l4_bytes() const noexcept { return quote_end - inner_l4_off; }
  /// True for "fragmentation needed" (ICMPv4 3/4) and "packet too big" (ICMPv6 2).
  [[nodiscard]] constexpr bool is_too_big(std::uint8_t proto) const noexcept {
    return proto == ipproto::icmp ? type == icmp_type::dest_unreachable && code == icmp_code_frag_needed
                                  : type == icmp6_type::packet_too_big;
  }
};

/// Validates the ICMP error of a parsed frame (`info` from a successful `parse` of `head`) and reads
/// its quote into `out`. Verifies the ICMP checksum (always: the translation recomputes it, see the
/// file comment). Returns icmp_error_status::ok, or the first reason the error cannot be translated
/// (`out` is unspecified then). Requires the whole ICMP message in head, else header_split.
/// Complexity: O(message length). noexcept, reads head only.
[[nodiscard]] inline icmp_error_status parse_icmp_error(std::span<const std::uint8_t> head, const packet_info& info,
                                                        icmp_error_info& out) noexcept {
  out = icmp_error_info{};
  if (!info.is_ip() || !is_icmp_error(info.proto, info.icmp_type)) return icmp_error_status::not_an_error;
  if (info.frame_len > head.size()) return icmp_error_status::header_split;
  const std::uint8_t* p = head.data();
  if (raw_sum(p + info.l4_off, info.l4_len(), l4_pseudo_header_sum(head, info)) != 0xffff)
    return icmp_error_status::bad_checksum;
  out.type = info.icmp_type;
  out.code = info.icmp_code;
  out.quote_end = static_cast<std::uint16_t>(info.frame_len);
  const std::size_t inner = info.l4_off + icmp_hdr_len;
  out.inner_l3_off = static_cast<std::uint16_t>(inner);
  const std::size_t avail = info.frame_len - inner;
  const std::uint8_t* ip = p + inner;
  std::size_t l4 = 0;
  std::uint8_t proto = 0;
  if (info.family == ip_family::v4) {
    if (avail < ipv4_hdr_len + 8) return icmp_error_status::truncated;
    if ((ip[0] >> 4) != 4) return icmp_error_status::bad_inner;
    const std::size_t ihl = std::size_t{ip[0] & 0x0fu} * 4;
    if (ihl != ipv4_hdr_len) return icmp_error_status::bad_inner;
    if (load_be16(ip + 6) & ipv4_frag::offset_mask) return icmp_error_status::bad_inner;  // no ports in it
    if (load_be16(ip + 2) < ipv4_hdr_len + 8) return icmp_error_status::truncated;
    proto = ip[9];
    out.quoted.saddr = detail::inet_from_v4_raw(load_raw32(ip + 12));
    out.quoted.daddr = detail::inet_from_v4_raw(load_raw32(ip + 16));
    l4 = inner + ipv4_hdr_len;
  } else {
    if (avail < ipv6_hdr_len + 8) return icmp_error_status::truncated;
    if ((ip[0] >> 4) != 6) return icmp_error_status::bad_inner;
    if (load_be16(ip + 4) < 8) return icmp_error_status::truncated;
    proto = ip[6];
    if (detail::is_v4_mapped(ip + 8) || detail::is_v4_mapped(ip + 24)) return icmp_error_status::bad_inner;
    out.quoted.saddr = detail::inet_from_v6_raw(ip + 8);
    out.quoted.daddr = detail::inet_from_v6_raw(ip + 24);
    l4 = inner + ipv6_hdr_len;
  }
  if (proto != ipproto::tcp && proto != ipproto::udp) return icmp_error_status::unsupported_inner;
  // An error goes to the source of the packet it quotes (RFC 792, RFC 4443 2.2); one that does not is
  // forged or misrouted, and translating it would deliver it to the quoted conn's peer all the same.
  if (out.quoted.saddr != info.tuple.daddr) return icmp_error_status::not_to_sender;
  out.inner_l4_off = static_cast<std::uint16_t>(l4);
  out.quoted.proto = proto;
  out.quoted.sport = load_raw16(p + l4);
  out.quoted.dport = load_raw16(p + l4 + 2);
  return icmp_error_status::ok;
}

/// The quote an error must carry after translation, given how its conn key matched (`dir`, the
/// direction of the conn tuple equal to conn_key()) and the conn's two tuples: an error about an
/// outbound key (from the RS side) quotes the client's inbound packet, and the other way round.
/// O(1), noexcept.
[[nodiscard]] constexpr const inet_tuple& translated_quote(direction dir, const inet_tuple& in,
                                                           const inet_tuple& out) noexcept {
  return dir == direction::outbound ? in : out;
}

/// Rewrites a parsed ICMP error (`err` from parse_icmp_error of these bytes) so that it quotes
/// `quote` (usually translated_quote(...)) and travels quote.daddr -> quote.saddr; decrements the
/// outer TTL / hop limit (a forwarding hop). Checksums as in the file comment. Requires: `quote` has
/// the packet's family and the quoted protocol; head holds the whole message. Effects: on success
/// the bytes and info.tuple / info.ttl describe the translated error; on ttl_expired nothing is
/// written. No offload: every checksum is left complete. Complexity: O(message length). noexcept.
[[nodiscard]] inline rewrite_result translate_icmp_error(std::span<std::uint8_t> head, packet_info& info,
                                                         const icmp_error_info& err, const inet_tuple& quote) noexcept {
  FNAT_PACKET_EXPECT(head.size() >= info.frame_len && err.quote_end == info.frame_len,
                     "translate_icmp_error: err does not come from parse_icmp_error of these bytes");
  FNAT_PACKET_EXPECT(quote.saddr.family() == info.family && quote.daddr.family() == info.family,
                     "translate_icmp_error: the quote's family differs from the packet's (no NAT64)");
  rewrite_result res;
  if (info.ttl <= 1) {
    res.reason = drop_reason::ttl_expired;
    return res;
  }
  std::uint8_t* p = head.data();
  std::uint8_t* ip = p + info.l3_off;
  std::uint8_t* iip = p + err.inner_l3_off;
  std::uint8_t* il4 = p + err.inner_l4_off;
  const bool v4 = info.family == ip_family::v4;
  const auto& qs = quote.saddr.raw();
  const auto& qd = quote.daddr.raw();

  // The quoted packet: addresses (its IP checksum and its L4 pseudo-header) and ports.
  csum_delta inner_addr;
  if (v4) {
    std::uint32_t s, d;
    std::memcpy(&s, qs.data() + 12, 4);
    std::memcpy(&d, qd.data() + 12, 4);
    inner_addr.add32(load_raw32(iip + 12), s).add32(load_raw32(iip + 16), d);
    store(iip + 12, s);
    store(iip + 16, d);
    store(iip + 10, inner_addr.apply(load_raw16(iip + 10)));
  } else {
    inner_addr.add_bytes(iip + 8, qs.data(), 16).add_bytes(iip + 24, qd.data(), 16);
    std::memcpy(iip + 8, qs.data(), 16);
    std::memcpy(iip + 24, qd.data(), 16);
  }
  csum_delta l4d = inner_addr;
  l4d.add16(load_raw16(il4), quote.sport).add16(load_raw16(il4 + 2), quote.dport);
  store(il4, quote.sport);
  store(il4 + 2, quote.dport);
  const bool tcp = quote.proto == ipproto::tcp;
  const std::size_t ck_off = tcp ? 16 : 6;
  if (err.inner_l4_bytes() >= ck_off + 2) {
    const std::uint16_t old = load_raw16(il4 + ck_off);
    if (tcp)
      store(il4 + ck_off, l4d.apply(old));
    else if (old != 0 || !v4)
      store(il4 + ck_off, udp_checksum_fixup(l4d.apply(old)));
  }

  // The outer header: from the address the sender talked to, to the sender.
  if (v4) {
    std::uint32_t s, d;
    std::memcpy(&s, qd.data() + 12, 4);
    std::memcpy(&d, qs.data() + 12, 4);
    csum_delta h;
    h.add32(load_raw32(ip + 12), s).add32(load_raw32(ip + 16), d);
    store(ip + 12, s);
    store(ip + 16, d);
    const std::uint16_t old_tw = load_raw16(ip + 8);
    const std::uint16_t new_tw = hton16(static_cast<std::uint16_t>(ntoh16(old_tw) - 0x100));
    store(ip + 8, new_tw);
    h.add16(old_tw, new_tw);
    store(ip + 10, h.apply(load_raw16(ip + 10)));
  } else {
    std::memcpy(ip + 8, qd.data(), 16);
    std::memcpy(ip + 24, qs.data(), 16);
    ip[7] = static_cast<std::uint8_t>(ip[7] - 1);
  }
  info.tuple.saddr = quote.daddr;
  info.tuple.daddr = quote.saddr;
  info.ttl = static_cast<std::uint8_t>(info.ttl - 1);

  // The ICMP checksum, in full (verified on parse; see the file comment).
  std::uint8_t* icmp = p + info.l4_off;
  store(icmp + 2, std::uint16_t{0});
  const std::uint16_t c = internet_checksum({icmp, info.l4_len()}, l4_pseudo_header_sum(head, info));
  store(icmp + 2, c);
  return res;
}

/// Writes the "fragmentation needed" (IPv4) / "packet too big" (IPv6) answer to `packet` (its IP
/// header onward, as received; at least the IP header and 8 bytes) into `out`: Ethernet per `l2`,
/// from `from` (an address of ours, the packet's destination) to the packet's source, reporting
/// `mtu`. Returns the frame length, or 0 when `out` is too small or `packet` is not an IP packet of
/// from's family with 8 bytes beyond its header (nothing meaningful written then). O(quote), noexcept.
[[nodiscard]] inline std::size_t build_too_big(std::span<std::uint8_t> out, const l2_spec& l2, const inet_addr& from,
                                               std::span<const std::uint8_t> packet, std::uint16_t mtu) noexcept {
  const bool v4 = from.is_v4();
  const std::size_t ihl = v4 ? ipv4_hdr_len : ipv6_hdr_len;
  if (packet.size() < ihl + 8 || (packet[0] >> 4) != (v4 ? 4 : 6)) return 0;
  const std::size_t limit = (v4 ? 576 : 1280) - ihl - icmp_hdr_len;
  const std::size_t quote = std::min(packet.size(), limit);
  const std::size_t icmp_len = icmp_hdr_len + quote;
  const std::size_t len = l2.len() + ihl + icmp_len;
  if (out.size() < len) return 0;
  std::uint8_t* p = out.data();
  std::uint8_t* ip = p + detail::write_l2(p, l2, v4 ? ethertype::ipv4 : ethertype::ipv6);
  std::uint8_t* icmp = ip + ihl;
  if (v4) {
    ip[0] = 0x45;
    ip[1] = 0;
    store_be16(ip + 2, static_cast<std::uint16_t>(ihl + icmp_len));
    store_be16(ip + 4, 0);
    store_be16(ip + 6, 0);
    ip[8] = 64;
    ip[9] = ipproto::icmp;
    store_be16(ip + 10, 0);
    std::memcpy(ip + 12, from.raw().data() + 12, 4);
    std::memcpy(ip + 16, packet.data() + 12, 4);  // the packet's source
    store(ip + 10, internet_checksum({ip, ipv4_hdr_len}));
    icmp[0] = icmp_type::dest_unreachable;
    icmp[1] = icmp_code_frag_needed;
    store_be16(icmp + 4, 0);
    store_be16(icmp + 6, mtu);
  } else {
    store(ip, hton32(0x60000000u));
    store_be16(ip + 4, static_cast<std::uint16_t>(icmp_len));
    ip[6] = ipproto::icmpv6;
    ip[7] = 64;
    std::memcpy(ip + 8, from.raw().data(), 16);
    std::memcpy(ip + 24, packet.data() + 8, 16);
    icmp[0] = icmp6_type::packet_too_big;
    icmp[1] = 0;
    store(icmp + 4, hton32(mtu));
  }
  store_be16(icmp + 2, 0);
  std::memcpy(icmp + icmp_hdr_len, packet.data(), quote);
  std::uint16_t ph = 0;
  if (!v4) {
    ipv6_addr s, d;
    std::memcpy(s.bytes.data(), ip + 8, 16);
    std::memcpy(d.bytes.data(), ip + 24, 16);
    ph = pseudo_header_sum(s, d, ipproto::icmpv6, static_cast<std::uint32_t>(icmp_len));
  }
  store(icmp + 2, internet_checksum({icmp, icmp_len}, ph));
  return len;
}

}  // namespace fnat
