// SPDX-License-Identifier: BSD-3-Clause
// TCP sequence translation: the per-connection offsets a balancer applies to sequence numbers,
// acknowledgements, SACK blocks, timestamps and windows when the two halves of a connection do not
// share one sequence space.
//
// ## Why
// Two features make the client and the real server disagree about sequence numbers for the whole
// life of a connection:
//  - Proxy Protocol: the balancer writes an H-byte header in front of the client's first data byte,
//    so every later client byte sits H further on at the server, and the server's acknowledgements
//    count H bytes the client never sent;
//  - SYN proxy: the balancer answers the client's SYN itself with ISN C (a cookie, syn_cookie.hpp),
//    then opens the connection to the server, which picks its own ISN S; every server sequence
//    number is S - C away from what the client expects, and the client's acks the other way round.
//    The server also chooses its own window scale (and timestamp clock), while the client took the
//    balancer's from the cookie SYN-ACK.
//
// ## The maths
// Two sequence spaces, each owned by the side that sends the bytes: the client's (inbound seq;
// outbound ack and SACK) and the server's (outbound seq; inbound ack and SACK). In each, a shift
// moves the bytes at or after `start` by `delta`, modulo 2^32:
//     map(s)   = s + delta                       if s is after start
//                s                               otherwise (s == start: see below)
//     unmap(a) = a - delta                       if a is at or after start + delta
//                start                           if a lies in [start, start + delta): it acknowledges
//                                                only inserted bytes, none of the sender's own
//                a                               otherwise
// "At or after" is RFC 9293's modular comparison: (int32_t)(a - b) >= 0, meaningful within 2^31.
// A seq field is mapped, an ack field and both SACK block edges are unmapped with the other
// direction's shift (they count the other side's bytes). Proxy Protocol is a bounded shift with
// start = ISN + 1 (the first data byte) and delta = H. A seq field equal to start is not moved: such
// a segment either carries no data (the handshake's last ACK: the server expects exactly start) or
// carries the inserted header in front of its data (the header's first byte sits at start; a
// retransmission of it gets the header again), while every later segment moves by H, retransmissions
// from the middle of the first one included. (`apply`'s shift_seq = false leaves any seq field
// alone, for callers with other rules.) The SYN proxy's server space is an unbounded shift
// (delta = C - S for every number). A bounded shift becomes unbounded once a mapped seq is 2^30
// past start: a TCP window is at most 2^30 bytes (65535 << 14), so no segment can still refer to
// the bytes before start, and the modular comparison, which flips at 2^31, is never asked again.
//
// Windows: the window field of a segment is scaled by its sender's shift (RFC 7323). With a SYN
// proxy the client scales the server's windows by the shift the balancer advertised (A), while the
// server scales by its own (W). An outbound window w becomes
//     w' = min(65535, (w << W) >> A), and 1 rather than 0 when w > 0
// rounding down (never promising more than the server offered) but never closing a window the server
// keeps open (which would stall the connection on the client's persist timer). SYN segments are
// never scaled (RFC 7323 2.2) and are left alone. Inbound windows need nothing: the balancer's SYN
// to the server carries the client's own shift.
// Timestamps: the server's TSval clock differs from the cookie SYN-ACK's; outbound TSval += ts_delta,
// inbound TSecr -= ts_delta, so the client's PAWS check and RTT measurement see one clock.
//
// ## Checksums
// Every change is a 32-bit field at an even offset (seq, ack) or bytes of an option at any offset;
// all are accumulated into one csum_delta (RFC 1624 eqn. 3) and applied once, so the cost is O(1)
// in the payload and O(options) in the header. A segment whose option list is malformed is refused
// (tcp_option_error) before anything is written: never half-translated.
//
// ## Composition
// seq_adjust is 24 bytes, trivially copyable, and default-constructs to "nothing to do": it is meant
// to live in a session's Payload (session_table<Payload>, session_table.hpp), set when the session
// opens (SYN proxy) or when the first data segment passes (Proxy Protocol), and applied to every
// segment found under the session. active() is one load for sessions that need nothing.
// insert_tcp_payload puts the header itself in front of a segment's data (Proxy Protocol): the
// first data segment and each retransmission of it get it, every later segment only the shift.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "fnat/core/addr.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/conn_state.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"
#include "fnat/core/tcp_options.hpp"

namespace fnat {

/// RFC 9293's modular comparisons of sequence numbers (host order): meaningful within 2^31.
[[nodiscard]] constexpr bool seq_before(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) < 0;
}
[[nodiscard]] constexpr bool seq_at_or_after(std::uint32_t a, std::uint32_t b) noexcept { return !seq_before(a, b); }

/// Per-connection sequence translation (see the file comment). 24 bytes, trivially copyable;
/// default: nothing to translate. Every member is O(1) and noexcept except apply (O(options)).
struct seq_adjust {
  std::uint32_t in_delta = 0;   ///< client space: shift of the bytes at or after in_start
  std::uint32_t in_start = 0;   ///< client space: first byte that moves (host order)
  std::uint32_t out_delta = 0;  ///< server space: shift
  std::uint32_t out_start = 0;  ///< server space: first byte that moves (unused when unbounded)
  std::uint32_t ts_delta = 0;   ///< added to outbound TSval, taken from inbound TSecr
  std::uint8_t flags = 0;       ///< seq_adjust::flag bits
  std::uint8_t ws_server = 0;   ///< the server's window shift (outbound windows as sent)
  std::uint8_t ws_client = 0;   ///< the shift the client applies to outbound windows

  /// Bits of `flags`.
  enum flag : std::uint8_t {
    in_on = 1,          ///< client space shifted
    in_unbounded = 2,   ///< ... for every number (start no longer consulted)
    out_on = 4,         ///< server space shifted
    out_unbounded = 8,  ///< ... for every number
    ts_on = 16,         ///< timestamps translated
    win_on = 32,        ///< outbound windows rescaled
  };

  /// True when apply() has anything to do (one load; check it before calling apply on the fast path).
  [[nodiscard]] constexpr bool active() const noexcept { return flags != 0; }

  /// The balancer puts `len` bytes in front of the client's byte `at` (host order): Proxy Protocol,
  /// at = client ISN + 1, len = header length. A bounded shift of the client space.
  constexpr void insert_inbound(std::uint32_t at, std::uint32_t len) noexcept {
    in_start = at;
    in_delta = len;
    flags = static_cast<std::uint8_t>((flags & ~(in_on | in_unbounded)) | in_on);
  }
  /// The client saw ISN `client_isn` for the server (the cookie), the server chose `server_isn`:
  /// every server sequence number moves by client_isn - server_isn (SYN proxy).
  constexpr void set_server_isn(std::uint32_t server_isn, std::uint32_t client_isn) noexcept {
    out_start = server_isn;
    out_delta = client_isn - server_isn;
    flags = static_cast<std::uint8_t>(flags | out_on | out_unbounded);
  }
  /// Outbound TSval += delta, inbound TSecr -= delta (SYN proxy with timestamps).
  constexpr void set_timestamp_delta(std::uint32_t delta) noexcept {
    ts_delta = delta;
    flags = static_cast<std::uint8_t>(flags | ts_on);
  }
  /// The server scales its windows by `server_shift`, the client by `client_shift` (what the balancer
  /// advertised). Both are clamped to 14 (RFC 7323 2.3). Equal shifts switch rescaling off.
  constexpr void set_window_scales(std::uint8_t server_shift, std::uint8_t client_shift) noexcept {
    ws_server = server_shift > tcp_opt::max_wscale ? tcp_opt::max_wscale : server_shift;
    ws_client = client_shift > tcp_opt::max_wscale ? tcp_opt::max_wscale : client_shift;
    flags = static_cast<std::uint8_t>(ws_server != ws_client ? (flags | win_on) : (flags & ~win_on));
  }

  /// map() of the file comment in the space that `sender` sends (inbound: the client's). May turn a
  /// bounded shift unbounded (2^30 past start).
  [[nodiscard]] constexpr std::uint32_t map_seq(direction sender, std::uint32_t s) noexcept {
    const bool in = sender == direction::inbound;
    const std::uint8_t on = in ? in_on : out_on, unb = in ? in_unbounded : out_unbounded;
    if (!(flags & on)) return s;
    const std::uint32_t start = in ? in_start : out_start, delta = in ? in_delta : out_delta;
    if (!(flags & unb)) {
      if (!seq_before(start, s)) return s;  // at or before start
      if (s - start >= (1u << 30)) flags = static_cast<std::uint8_t>(flags | unb);
    }
    return s + delta;
  }
  /// unmap() of the file comment: an acknowledgement (or SACK edge) of the bytes `sender` sends.
  [[nodiscard]] constexpr std::uint32_t unmap_ack(direction sender, std::uint32_t a) const noexcept {
    const bool in = sender == direction::inbound;
    const std::uint8_t on = in ? in_on : out_on, unb = in ? in_unbounded : out_unbounded;
    if (!(flags & on)) return a;
    const std::uint32_t start = in ? in_start : out_start, delta = in ? in_delta : out_delta;
    if (flags & unb) return a - delta;
    if (seq_at_or_after(a, start + delta)) return a - delta;
    if (seq_at_or_after(a, start)) return start;
    return a;
  }
  /// An outbound window field (host order) as the client must read it. O(1).
  [[nodiscard]] constexpr std::uint16_t rescale_window(std::uint16_t w) const noexcept {
    if (!(flags & win_on) || w == 0) return w;
    const std::uint64_t bytes = std::uint64_t{w} << ws_server;
    std::uint64_t v = bytes >> ws_client;
    if (v > 0xffff) v = 0xffff;
    if (v == 0) v = 1;
    return static_cast<std::uint16_t>(v);
  }

  /// Translates one segment travelling `dir` (inbound: client -> server) in place: seq (unless
  /// `shift_seq` is false: the segment that carries an inserted header in front of its data keeps its
  /// seq), ack when the ACK flag is set, SACK blocks, timestamps, the outbound window; the TCP checksum
  /// is updated incrementally. `tcp` starts at the TCP header and holds at least the whole header.
  /// Returns none, or the option list's error with nothing written.
  /// Requires: the checksum field holds a full checksum. O(header length), noexcept.
  tcp_option_error apply(std::span<std::uint8_t> tcp, direction dir, bool shift_seq = true) noexcept {
    tcp_option_walker w(tcp);
    tcp_option opts[tcp_max_options_len / 2];
    std::size_t n = 0;
    tcp_option o;
    while (w.next(o))
      if (o.kind == tcp_opt::sack || o.kind == tcp_opt::timestamp) opts[n++] = o;
    if (w.error() != tcp_option_error::none) return w.error();
    if (!active()) return tcp_option_error::none;

    std::uint8_t* const p = tcp.data();
    const direction other = opposite(dir);
    const std::uint8_t fl = p[13];
    csum_delta d;
    if (shift_seq) {
      const std::uint32_t s = load_raw32(p + 4);
      const std::uint32_t s2 = hton32(map_seq(dir, ntoh32(s)));
      store(p + 4, s2);
      d.add32(s, s2);
    }
    if (fl & tcp_flags::ack) {
      const std::uint32_t a = load_raw32(p + 8);
      const std::uint32_t a2 = hton32(unmap_ack(other, ntoh32(a)));
      store(p + 8, a2);
      d.add32(a, a2);
    }
    if (dir == direction::outbound && !(fl & tcp_flags::syn) && (flags & win_on)) {
      const std::uint16_t win = load_raw16(p + 14);
      const std::uint16_t win2 = hton16(rescale_window(ntoh16(win)));
      store(p + 14, win2);
      d.add16(win, win2);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const tcp_option& opt = opts[i];
      if (opt.kind == tcp_opt::sack) {
        if (!(flags & (other == direction::inbound ? in_on : out_on))) continue;
        for (std::size_t e = opt.off + 2u; e + 4 <= opt.off + std::size_t{opt.len}; e += 4) {
          const std::uint32_t edge = hton32(unmap_ack(other, load_be32(p + e)));
          detail::write_bytes_tracked(p, e, reinterpret_cast<const std::uint8_t*>(&edge), 4, d);
        }
      } else if ((flags & ts_on) && (dir == direction::outbound || (fl & tcp_flags::ack))) {
        // Outbound: TSval (the server's clock) moves forward; inbound: TSecr (an echo of it, valid
        // only with ACK, RFC 7323 3.2) back.
        const std::size_t at = opt.off + (dir == direction::outbound ? 2u : 6u);
        const std::uint32_t v = load_be32(p + at);
        const std::uint32_t v2 = hton32(dir == direction::outbound ? v + ts_delta : v - ts_delta);
        detail::write_bytes_tracked(p, at, reinterpret_cast<const std::uint8_t*>(&v2), 4, d);
      }
    }
    store(p + 16, d.apply(load_raw16(p + 16)));
    return tcp_option_error::none;
  }
};

static_assert(sizeof(seq_adjust) == 24 && std::is_trivially_copyable_v<seq_adjust>);

/// Puts `data` in front of the payload of a parsed TCP segment (a Proxy Protocol header in front of
/// the client's first bytes): the payload moves back, the IP length grows (IPv4: header checksum
/// updated incrementally), `info` (frame_len) follows, and the TCP checksum is recomputed in full:
/// an odd-length insertion moves every payload byte to the other half of its 16-bit word, so no
/// O(1) update exists; this runs once per connection (and per retransmission of that segment).
/// The segment's seq field is left alone; pair it with seq_adjust::insert_inbound(seq, size).
/// A full recomputation would turn a corrupted segment into one that verifies, so the old checksum
/// is verified first and a segment that fails is refused (bad_checksum): what the incremental
/// updates elsewhere guarantee (a bad checksum stays bad) holds here too.
/// Refusals leave every byte unchanged: not_tcp, no_buffer_room (frame_len + size beyond
/// limits.capacity or frame.size()), too_big (beyond limits.max_ip_len or the IP length field),
/// bad_checksum.
/// Requires: info from a successful parse of `frame`'s first info.frame_len bytes.
/// O(frame length), noexcept.
inline tcp_option_error insert_tcp_payload(std::span<std::uint8_t> frame, packet_info& info,
                                           std::span<const std::uint8_t> data, const tcp_insert_limits& limits) noexcept {
  if (!info.is_ip() || info.proto != ipproto::tcp || info.frame_len > frame.size() || info.payload_off > info.frame_len)
    return tcp_option_error::not_tcp;
  const std::size_t n = data.size();
  const std::size_t new_frame = std::size_t{info.frame_len} + n;
  if (new_frame > frame.size() || new_frame > limits.capacity) return tcp_option_error::no_buffer_room;
  const bool v4 = info.family == ip_family::v4;
  const std::size_t ip_len = info.frame_len - info.l3_off;
  const std::size_t ip_max = limits.max_ip_len != 0 ? limits.max_ip_len : 65535 + (v4 ? 0 : ipv6_hdr_len);
  if (ip_len + n > ip_max || (v4 && ip_len + n > 65535) || (!v4 && ip_len + n - ipv6_hdr_len > 65535))
    return tcp_option_error::too_big;
  std::uint8_t* const base = frame.data();
  if (!l4_checksum_ok(std::span<const std::uint8_t>(base, info.frame_len), info)) return tcp_option_error::bad_checksum;
  if (n == 0) return tcp_option_error::none;
  std::memmove(base + info.payload_off + n, base + info.payload_off, info.frame_len - info.payload_off);
  std::memcpy(base + info.payload_off, data.data(), n);
  std::uint8_t* const ip = base + info.l3_off;
  if (v4) {
    const std::uint16_t old_tl = load_raw16(ip + 2), new_tl = hton16(static_cast<std::uint16_t>(ip_len + n));
    store(ip + 2, new_tl);
    store(ip + 10, csum_update16(load_raw16(ip + 10), old_tl, new_tl));
  } else {
    store(ip + 4, hton16(static_cast<std::uint16_t>(ip_len + n - ipv6_hdr_len)));
  }
  info.frame_len = static_cast<std::uint32_t>(new_frame);
  std::uint8_t* const tcp = base + info.l4_off;
  store(tcp + 16, std::uint16_t{0});
  const std::span<const std::uint8_t> whole(base, info.frame_len);
  store(tcp + 16, internet_checksum({tcp, info.l4_len()}, l4_pseudo_header_sum(whole, info)));
  return tcp_option_error::none;
}

}  // namespace fnat
