// SPDX-License-Identifier: BSD-3-Clause
// TCP MSS clamping: lowering the Maximum Segment Size option of a SYN or SYN-ACK on its way through,
// so that both ends send segments that fit a path whose MTU they cannot learn.
//
// ## Why
// Each end of a TCP connection announces in its SYN the largest segment it will take (RFC 9293
// 3.7.1), derived from its own link's MTU: 1460 on a 1500-byte IPv4 link, 1440 for IPv6. A smaller
// link further on is normally found by path MTU discovery (ICMP "fragmentation needed" / "packet too
// big", core/icmp_error.hpp), but networks that filter ICMP break it, and an end that never learns
// the path MTU retransmits its full-size segments until the connection dies. A balancer that knows
// a service's real servers sit behind a smaller link (a tunnel, an overlay) lowers the MSS in both
// directions instead: in the client's SYN towards the real server, and in the real server's SYN-ACK
// towards the client. Neither end then sends a segment larger than the bound, whatever ICMP does.
//
// ## Where the option is (RFC 9293 3.1, 3.2)
// The options follow the 20-byte fixed header, up to the data offset (4 * DO bytes, DO in 5..15).
// Each option is one of: kind 0 (end of option list: nothing after it counts), kind 1 (no-operation,
// one byte), or kind, length, length - 2 bytes of data, where length >= 2 covers kind and length
// themselves. MSS is kind 2, length 4, a 16-bit big-endian value; it is only meaningful in a segment
// with SYN set. An option list is walked once, O(DO) <= 40 bytes; it is *malformed* when an option's
// length is below 2 or runs past the data offset, when an MSS option's length is not 4, or when the
// data offset itself is below 5 or beyond the bytes given. A malformed segment is left untouched and
// reported (`mss_status::malformed`): which option its receiver would believe is the receiver's
// guess, and a balancer that rewrote one guess could make the two ends disagree. A segment with
// several MSS options (legal syntax, nonsense) gets every one of them clamped, so that no reading
// of it exceeds the bound.
//
// A SYN without an MSS option is left alone (`no_mss`): its receiver assumes the default, 536 bytes
// for IPv4 and 1220 for IPv6 (RFC 9293 3.7.1, RFC 8200 8.3), below any sensible bound, and adding an
// option would change the segment's length.
//
// ## The checksum (RFC 1624)
// The TCP checksum covers the options, so a changed MSS changes it. It is updated incrementally,
// HC' = ~(~HC + ~m + m') over each 16-bit word m that changed (core/checksum.hpp), never recomputed:
// the payload need not be in the buffer and a bad checksum stays bad (the receiver drops it, as it
// would have). The checksum's words are aligned to the start of the TCP header, but the MSS value
// may sit at an odd offset (after a single NOP, say). So the update is made over the aligned words
// that hold the value's two bytes: one word at an even offset, two at an odd one. The pseudo-header
// does not change (the segment's length stays the same), so IPv4 and IPv6 are handled alike.
//
// Everything here is noexcept, allocation-free, O(data offset); no DPDK header.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "fnat/core/checksum.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/tcp_options.hpp"

namespace fnat {

/// What `clamp_mss` / `find_mss` found.
enum class mss_status : std::uint8_t {
  clamped,       ///< an MSS above the bound was lowered to it (checksum updated)
  within_bound,  ///< the MSS is at or below the bound; nothing changed
  no_mss,        ///< a SYN without an MSS option; nothing changed
  not_syn,       ///< not a SYN or SYN-ACK; nothing changed
  malformed,     ///< the data offset or the option list does not parse (see the file comment); nothing changed
};

[[nodiscard]] constexpr std::string_view to_string(mss_status s) noexcept {
  switch (s) {
    case mss_status::clamped: return "clamped";
    case mss_status::within_bound: return "within_bound";
    case mss_status::no_mss: return "no_mss";
    case mss_status::not_syn: return "not_syn";
    case mss_status::malformed: return "malformed";
  }
  return "unknown";
}

/// The MSS options of a TCP header: where their values lie (offsets from the start of the TCP
/// header) and the values (host order). At most one per 4 bytes of the 40 option bytes.
struct mss_options {
  mss_status status = mss_status::malformed;  ///< malformed, no_mss, not_syn, or within_bound when found
  std::uint8_t count = 0;                      ///< MSS options found
  std::array<std::uint8_t, 10> offset{};       ///< offset of each value (the byte after kind and length)
  std::array<std::uint16_t, 10> value{};       ///< each value, host order

  /// The smallest MSS found (what a receiver that believed the most careful option would use); 0 if none.
  [[nodiscard]] constexpr std::uint16_t min() const noexcept {
    std::uint16_t m = 0;
    for (std::uint8_t i = 0; i < count; ++i)
      if (m == 0 || value[i] < m) m = value[i];
    return m;
  }
};

/// Walks the options of the TCP header at the start of `tcp` (header, options, and possibly payload
/// after them; only the header and options are read) with tcp_options.hpp's walker. Returns status
/// not_syn when SYN is clear (the options are not walked), malformed when the header or any option
/// does not parse (tcp_option_walker's rules: a known kind with a length its layout forbids counts),
/// no_mss when a SYN has no MSS option, and within_bound (meaning "found", values filled in) otherwise.
/// Complexity: O(data offset). noexcept; reads only [tcp, tcp + 4 * DO).
[[nodiscard]] inline mss_options find_mss(std::span<const std::uint8_t> tcp) noexcept {
  mss_options out;
  tcp_option_walker w(tcp);
  if (w.error() != tcp_option_error::none) return out;
  if ((tcp[13] & tcp_flags::syn) == 0) {
    out.status = mss_status::not_syn;
    return out;
  }
  tcp_option o;
  while (w.next(o)) {
    if (o.kind != tcp_opt::mss) continue;
    out.offset[out.count] = static_cast<std::uint8_t>(o.off + 2);
    out.value[out.count] = load_be16(&tcp[o.off + 2u]);
    ++out.count;  // at most (60 - 20) / 4 = 10 four-byte options: the arrays cannot overflow
  }
  if (w.error() != tcp_option_error::none) return mss_options{};
  out.status = out.count == 0 ? mss_status::no_mss : mss_status::within_bound;
  return out;
}

/// What `clamp_mss` did: its status and the MSS before (the smallest of the options, 0 if none).
struct mss_clamp_result {
  mss_status status = mss_status::malformed;
  std::uint16_t before = 0;
};

/// Lowers every MSS option of the SYN or SYN-ACK at the start of `tcp` to `bound` where it is above
/// it, and updates the TCP checksum (at offset 16) incrementally; see the file comment.
/// Requires: `tcp` starts at the TCP header (its start is the checksum's word alignment), and the
/// whole header with its options is in `tcp`; bound > 0.
/// Effects: on `clamped`, the MSS values and the checksum are rewritten; on any other status nothing
/// is written. Complexity: O(data offset). noexcept, no allocation.
[[nodiscard]] inline mss_clamp_result clamp_mss(std::span<std::uint8_t> tcp, std::uint16_t bound) noexcept {
  const mss_options opts = find_mss(tcp);
  mss_clamp_result r{opts.status, opts.min()};
  if (opts.status != mss_status::within_bound) return r;
  csum_delta delta;
  bool changed = false;
  for (std::uint8_t k = 0; k < opts.count; ++k) {
    if (opts.value[k] <= bound) continue;
    std::array<std::uint8_t, 2> value;
    store_be16(value.data(), bound);
    detail::write_bytes_tracked(tcp.data(), opts.offset[k], value.data(), value.size(), delta);
    changed = true;
  }
  if (!changed) return r;
  store(&tcp[16], delta.apply(load_raw16(&tcp[16])));
  r.status = mss_status::clamped;
  return r;
}

}  // namespace fnat
