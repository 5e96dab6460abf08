// SPDX-License-Identifier: BSD-3-Clause
// The TCP reset a balancer sends to refuse a connection at once, instead of dropping its SYN and
// letting the client wait in connect() for its timeout (typically 1 + 2 + 4 + ... seconds of SYN
// retransmissions).
//
// ## Which reset (RFC 793, "Reset Generation", p. 36; RFC 9293 3.10.7.1)
// A segment arriving for a connection that does not exist is answered, unless it is itself a reset:
//  - when it carries ACK, with <SEQ = SEG.ACK><CTL = RST>;
//  - otherwise with <SEQ = 0><ACK = SEG.SEQ + SEG.LEN><CTL = RST, ACK>, where SEG.LEN counts the data
//    octets plus one for SYN and one for FIN (both occupy sequence space).
// A client in SYN-SENT accepts a reset only when its ACK acknowledges the SYN (RFC 793 p. 66:
// "If the ACK bit is set ... If SND.UNA =< SEG.ACK =< SND.NXT then the RST is acceptable"), which
// SEG.SEQ + 1 does exactly; connect() then fails with ECONNREFUSED. The reset comes from the address
// and port the segment went to (the VIP and vport), so the client matches it to its socket.
//
// ## What is built
// `reset_for` reads the fields of a parsed segment into a `tcp_reset_spec` (values only, so the
// frame can be built into the buffer that held the segment), `build_tcp_reset` writes the frame:
// Ethernet (+ the segment's 802.1Q tag) to the segment's source MAC, IPv4 (IHL 5, DF, identification
// 0, TTL `ttl`) or IPv6 (hop limit `ttl`, flow label 0), TCP with data offset 5, window 0, no options,
// no payload; both checksums computed in full. An IPv4 frame is zero-padded to the 60-byte Ethernet
// minimum, as the ARP builders do; the IP total length says 40, so the padding is not part of it.
//
// ## Reflection
// A reset goes to whatever source the segment claimed. It is never larger than the SYN it answers
// (54..58 bytes of headers against at least as many), so it amplifies nothing, but under a spoofed
// flood it is sent to innocent addresses: callers rate-limit it (token_bucket.hpp) and count both
// what they send and what the limit suppressed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "fnat/core/addr.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"

namespace fnat {

/// The header fields of a reset, all values (see the file comment).
struct tcp_reset_spec {
  inet_addr saddr;          ///< the reset's source: the segment's destination
  inet_addr daddr;          ///< the reset's destination: the segment's source
  std::uint16_t sport = 0;  ///< raw (network order): the segment's destination port
  std::uint16_t dport = 0;  ///< raw: the segment's source port
  std::uint32_t seq = 0;    ///< host order
  std::uint32_t ack = 0;    ///< host order; meaningful when flags has ACK
  std::uint8_t flags = 0;   ///< tcp_flags::rst, or rst | ack
};

/// The reset RFC 793 answers a parsed TCP segment with, or nullopt when the segment is a reset itself
/// (never answered) or not TCP. Requires: info from a successful parse of `head` (the TCP header is
/// then in head). O(1), noexcept.
[[nodiscard]] inline std::optional<tcp_reset_spec> reset_for(std::span<const std::uint8_t> head,
                                                             const packet_info& info) noexcept {
  if (!info.is_ip() || info.proto != ipproto::tcp || (info.tcp_flags & tcp_flags::rst) != 0) return std::nullopt;
  const std::uint8_t* tcp = head.data() + info.l4_off;
  tcp_reset_spec r;
  r.saddr = info.tuple.daddr;
  r.daddr = info.tuple.saddr;
  r.sport = info.tuple.dport;
  r.dport = info.tuple.sport;
  if (info.tcp_flags & tcp_flags::ack) {
    r.seq = load_be32(tcp + 8);
    r.flags = tcp_flags::rst;
    return r;
  }
  const std::uint32_t data = info.frame_len - info.payload_off;
  const std::uint32_t len = data + ((info.tcp_flags & tcp_flags::syn) ? 1u : 0u) + ((info.tcp_flags & tcp_flags::fin) ? 1u : 0u);
  r.seq = 0;
  r.ack = load_be32(tcp + 4) + len;  // modulo 2^32, as sequence numbers are
  r.flags = tcp_flags::rst | tcp_flags::ack;
  return r;
}

/// Bytes a reset frame takes: 60 for IPv4 (14 or 18 + 40, padded to the Ethernet minimum), 74 or 78
/// for IPv6 (14 or 18 + 60). O(1).
[[nodiscard]] constexpr std::size_t tcp_reset_frame_len(const l2_spec& l2, ip_family f) noexcept {
  const std::size_t n = l2.len() + (f == ip_family::v4 ? ipv4_hdr_len : ipv6_hdr_len) + tcp_hdr_len;
  return n < 60 ? 60 : n;
}

/// Writes the reset frame of `r` (see the file comment) with TTL / hop limit `ttl`. Returns its
/// length (tcp_reset_frame_len), or 0 when `out` is shorter (nothing written then).
/// Requires: r.saddr and r.daddr of one family. O(1), noexcept; writes only [0, length).
[[nodiscard]] inline std::size_t build_tcp_reset(std::span<std::uint8_t> out, const l2_spec& l2,
                                                 const tcp_reset_spec& r, std::uint8_t ttl = 64) noexcept {
  const bool v4 = r.daddr.is_v4();
  const std::size_t len = tcp_reset_frame_len(l2, v4 ? ip_family::v4 : ip_family::v6);
  if (out.size() < len) return 0;
  std::uint8_t* p = out.data();
  std::memset(p, 0, len);
  std::uint8_t* ip = p + detail::write_l2(p, l2, v4 ? ethertype::ipv4 : ethertype::ipv6);
  std::uint8_t* tcp = nullptr;
  std::uint16_t pseudo = 0;
  if (v4) {
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<std::uint16_t>(ipv4_hdr_len + tcp_hdr_len));
    store_be16(ip + 6, ipv4_frag::dont_fragment);
    ip[8] = ttl;
    ip[9] = ipproto::tcp;
    const ipv4_addr s = r.saddr.v4(), d = r.daddr.v4();
    store(ip + 12, s.be);
    store(ip + 16, d.be);
    store(ip + 10, internet_checksum({ip, ipv4_hdr_len}));
    tcp = ip + ipv4_hdr_len;
    pseudo = pseudo_header_sum(s, d, ipproto::tcp, static_cast<std::uint16_t>(tcp_hdr_len));
  } else {
    store(ip, hton32(0x60000000u));
    store_be16(ip + 4, static_cast<std::uint16_t>(tcp_hdr_len));
    ip[6] = ipproto::tcp;
    ip[7] = ttl;
    const ipv6_addr s = r.saddr.v6(), d = r.daddr.v6();
    std::memcpy(ip + 8, s.bytes.data(), 16);
    std::memcpy(ip + 24, d.bytes.data(), 16);
    tcp = ip + ipv6_hdr_len;
    pseudo = pseudo_header_sum(s, d, ipproto::tcp, static_cast<std::uint32_t>(tcp_hdr_len));
  }
  store(tcp, r.sport);
  store(tcp + 2, r.dport);
  store(tcp + 4, hton32(r.seq));
  store(tcp + 8, hton32((r.flags & tcp_flags::ack) ? r.ack : 0u));
  tcp[12] = 5 << 4;
  tcp[13] = r.flags;
  store(tcp + 16, internet_checksum({tcp, tcp_hdr_len}, pseudo));
  return len;
}

}  // namespace fnat
