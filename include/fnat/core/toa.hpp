// SPDX-License-Identifier: BSD-3-Clause
// TOA ("TCP option address"): the client's address and port carried to the real server in a TCP
// option, as the `toa` kernel module that DPVS ships (kmod/toa) reads it.
//
// ## Why
// FullNAT replaces the client's address with a LIP, so a real server's logs, ACLs and rate limits
// see only the balancer. TOA is DPVS's (and Alibaba LVS's) answer: the balancer adds an option with
// the client's address to the segment that completes the handshake; a kernel module on the server
// hooks the creation of the child socket (tcp_v4_syn_recv_sock / tcp_v6_syn_recv_sock), finds the
// option in that segment and stores it, and answers getpeername() with it. Unlike Proxy Protocol,
// the application needs no change and the byte stream is untouched (no sequence translation);
// unlike it, the server needs the module.
//
// ## The option (facts from DPVS's kmod/toa/toa.h, read for facts only)
//     IPv4 client: kind 254, length 8:  | 254 | 8 | port (2) | IPv4 address (4) |
//     IPv6 client: kind 254, length 20: | 254 | 20 | port (2) | IPv6 address (16) |
// port and address in network order, as on the wire. The module tells the two forms apart by the
// length. Both lengths are multiples of 4 ("MUST be 4n", toa.h), so no padding is needed. The
// form follows the client's family, not the packet's (DPVS uses the IPv6 form for NAT64); in
// FullNAT both are the same.
//
// ## Where it goes
// The module reads the segment that moves the server's request socket to a full socket: the
// client's ACK of the SYN-ACK (or the first data segment, when the ACK was lost). A balancer
// inserts it into the client's segments until the server has acknowledged the handshake (a lost
// ACK is covered by the next segment); that policy is the caller's: insert_toa handles one segment. A handshake ACK from Linux carries
// timestamps (12 option bytes): 28 are left, room for either form. A segment whose header has no
// room is refused (no_header_room) and forwarded as is: the server then sees the LIP, never a
// corrupted segment. A data segment grows by 8 or 20 bytes: the caller passes its path MTU
// (tcp_insert_limits::max_ip_len), and clamps the client's MSS at the SYN so that data plus TOA fit. Growth and checksums are tcp_options.hpp's insert_tcp_option: O(1) checksum
// updates, O(length) for moving the data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "fnat/core/addr.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"
#include "fnat/core/tcp_options.hpp"

namespace fnat {

/// TOA option kind and its two lengths (DPVS kmod/toa/toa.h: TCPOPT_TOA, TCPOLEN_IP4_TOA,
/// TCPOLEN_IP6_TOA).
namespace toa {
inline constexpr std::uint8_t kind = tcp_opt::toa;
inline constexpr std::uint8_t len_v4 = 8;
inline constexpr std::uint8_t len_v6 = 20;
}  // namespace toa

/// The TOA option bytes for `client` (port in host order), 8 bytes for IPv4, 20 for IPv6; returns
/// the length written into `out`. O(1), noexcept.
inline std::size_t make_toa_option(const endpoint& client, std::array<std::uint8_t, toa::len_v6>& out) noexcept {
  const bool v4 = client.addr.is_v4();
  out[0] = toa::kind;
  out[1] = v4 ? toa::len_v4 : toa::len_v6;
  store_be16(out.data() + 2, client.port);
  if (v4) {
    const std::uint32_t be = client.addr.v4().be;
    std::memcpy(out.data() + 4, &be, 4);
  } else {
    std::memcpy(out.data() + 4, client.addr.raw().data(), 16);
  }
  return out[1];
}

/// Inserts the TOA option for `client` into a parsed TCP segment (see tcp_options.hpp,
/// insert_tcp_option, for where it goes, what is updated and the refusals; a refusal changes
/// nothing). Requires: info from a successful parse of `frame`'s first info.frame_len bytes; the TCP
/// checksum is a full one (insert before handing checksums to the NIC).
/// O(frame length) for the move, O(1) for the checksums; noexcept.
inline tcp_option_error insert_toa(std::span<std::uint8_t> frame, packet_info& info, const endpoint& client,
                                   const tcp_insert_limits& limits) noexcept {
  std::array<std::uint8_t, toa::len_v6> opt;
  const std::size_t n = make_toa_option(client, opt);
  return insert_tcp_option(frame, info, std::span<const std::uint8_t>(opt.data(), n), limits);
}

/// The client a segment's first TOA option names (as the server's module reads it), nullopt when
/// there is none, or the option list is malformed, or the TOA has another length. `tcp` starts at
/// the TCP header. O(40), noexcept.
[[nodiscard]] inline std::optional<endpoint> read_toa(std::span<const std::uint8_t> tcp) noexcept {
  const auto f = find_tcp_option(tcp, toa::kind);
  if (!f || (f.opt.len != toa::len_v4 && f.opt.len != toa::len_v6)) return std::nullopt;
  const std::uint8_t* d = tcp.data() + f.opt.off + 2;
  endpoint e;
  e.port = load_be16(d);
  if (f.opt.len == toa::len_v4) {
    e.addr = inet_addr(ipv4_addr{load_raw32(d + 2)});
  } else {
    ipv6_addr a;
    std::memcpy(a.bytes.data(), d + 2, 16);
    e.addr = inet_addr(a);
  }
  return e;
}

}  // namespace fnat
