// SPDX-License-Identifier: BSD-3-Clause
// TCP options: a bounds-checked walker, lookup by kind, in-place rewrite and insertion, each keeping
// the TCP checksum right incrementally.
//
// ## Why one walker
// Every feature that touches a TCP header past its 20 fixed bytes (MSS clamping, SYN cookies that
// read MSS / window scale / SACK-permitted / timestamps, SACK translation, TOA insertion) walks the
// same list, and the list is written by strangers. RFC 9293 3.1 gives two shapes: kinds 0 (end of
// list) and 1 (no-operation) are one byte; every other kind is <kind, length, length - 2 bytes of
// data>, length counting itself and the kind. A hostile segment can put a length of 0 or 1 (a walker
// that adds it loops forever or steps backwards), a length that runs past the header (a read past
// it), or a known kind with the wrong length (MSS of length 3: a reader that trusts the kind reads a
// byte of the next option). The walker here checks each of these before it yields an option, and a
// segment that fails is refused as a whole with the reason (tcp_option_error); callers drop it or
// forward it untouched, never half-rewritten. Known kinds with a fixed layout are checked for it
// (MSS 4, window scale 3, SACK-permitted 2, timestamps 10, SACK 2 + 8n with 1 <= n <= 4, RFC 2018
// section 3's limit in 40 bytes); unknown kinds need only a sane length. Everything after an
// end-of-list (kind 0) is padding and is not read.
//
// ## Offsets and checksums
// Options live in the TCP header at [20, 4 * data offset); offsets here count from the start of the
// TCP header (an even offset of the data the checksum covers). An option can start at an odd offset
// (after a single NOP), so rewriting its bytes changes halves of 16-bit words: the rewrite takes the
// covering even-aligned words before and after and feeds both to csum_delta (RFC 1624 eqn. 3), which
// is exact for any byte change as long as the words are summed at their true alignment.
//
// ## Growing a segment (insert_option)
// A new option goes right after the fixed header, in front of the existing options, so an
// end-of-list already present stays last and nothing has to be re-padded; option order carries no
// meaning in TCP. The option is padded with NOPs (kind 1) in front to a multiple of 4 bytes, the
// header's unit. Header and data move back by n bytes (n even, a multiple of 4), so every moved word
// keeps its parity and its contribution to the ones' complement sum: the TCP checksum changes only
// by the new bytes, the data offset byte, and the length in the pseudo-header (16 bits for IPv4,
// 32 for IPv6), all O(1) whatever the payload; the memmove of the data is the O(length) part. The
// IPv4 total length (and header checksum) or the IPv6 payload length grow by n. Refusals: the header
// would pass 60 bytes, the buffer has no room, or the packet would pass the caller's size limit (its
// path MTU). Requires: the TCP checksum field holds a full checksum (not an offload pseudo-header
// sum): insert before handing the checksum to the NIC.
//
// Everything here is noexcept, allocation-free; walking is O(header length) (at most 40 bytes).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "fnat/core/addr.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"

namespace fnat {

/// TCP option kinds (IANA "TCP Option Kind Numbers").
namespace tcp_opt {
inline constexpr std::uint8_t eol = 0;             ///< end of option list, 1 byte
inline constexpr std::uint8_t nop = 1;             ///< no-operation, 1 byte
inline constexpr std::uint8_t mss = 2;             ///< maximum segment size, length 4 (SYN only)
inline constexpr std::uint8_t wscale = 3;          ///< window scale (RFC 7323), length 3 (SYN only)
inline constexpr std::uint8_t sack_permitted = 4;  ///< SACK permitted (RFC 2018), length 2 (SYN only)
inline constexpr std::uint8_t sack = 5;            ///< SACK blocks (RFC 2018), length 2 + 8n
inline constexpr std::uint8_t timestamp = 8;       ///< timestamps (RFC 7323), length 10
inline constexpr std::uint8_t toa = 254;           ///< experimental; DPVS's TOA (see toa.hpp)

inline constexpr std::uint8_t mss_len = 4;
inline constexpr std::uint8_t wscale_len = 3;
inline constexpr std::uint8_t sack_permitted_len = 2;
inline constexpr std::uint8_t timestamp_len = 10;
/// Largest window-scale shift a receiver honours (RFC 7323 2.3: larger values are used as 14).
inline constexpr std::uint8_t max_wscale = 14;
}  // namespace tcp_opt

/// Longest TCP header (data offset 15) and longest option list.
inline constexpr std::size_t tcp_max_hdr_len = 60;
inline constexpr std::size_t tcp_max_options_len = tcp_max_hdr_len - tcp_hdr_len;

/// Why an option list (or a change to it) was refused. `none` (0): accepted.
enum class tcp_option_error : std::uint8_t {
  none = 0,
  bad_data_offset,      ///< data offset below 5 or beyond the bytes given
  truncated,            ///< a kind other than 0/1 in the last byte: no length byte
  bad_length,           ///< an option length below 2 or running past the header
  bad_length_for_kind,  ///< a known kind with a length its layout does not allow (MSS of length 3)
  not_found,            ///< (find) no option of that kind
  no_header_room,       ///< (insert) the header would pass 60 bytes
  no_buffer_room,       ///< (insert) the buffer cannot hold the grown packet
  too_big,              ///< (insert) the grown packet would pass the caller's size limit (path MTU)
  not_tcp,              ///< (insert) the packet is not a parsed TCP segment
  bad_checksum,         ///< (insert_tcp_payload) the segment's checksum did not verify before
};
inline constexpr std::size_t tcp_option_error_count = static_cast<std::size_t>(tcp_option_error::bad_checksum) + 1;

/// Stable short name, e.g. "bad_length".
[[nodiscard]] constexpr std::string_view to_string(tcp_option_error e) noexcept {
  switch (e) {
    case tcp_option_error::none: return "none";
    case tcp_option_error::bad_data_offset: return "bad_data_offset";
    case tcp_option_error::truncated: return "truncated";
    case tcp_option_error::bad_length: return "bad_length";
    case tcp_option_error::bad_length_for_kind: return "bad_length_for_kind";
    case tcp_option_error::not_found: return "not_found";
    case tcp_option_error::no_header_room: return "no_header_room";
    case tcp_option_error::no_buffer_room: return "no_buffer_room";
    case tcp_option_error::too_big: return "too_big";
    case tcp_option_error::not_tcp: return "not_tcp";
    case tcp_option_error::bad_checksum: return "bad_checksum";
  }
  return "unknown";
}

/// One option as found: kind, its offset from the start of the TCP header, and its length (1 for
/// EOL and NOP). The data are at [off + 2, off + len).
struct tcp_option {
  std::uint8_t kind = 0;
  std::uint8_t len = 0;
  std::uint16_t off = 0;
};

/// True when a known kind's length fits its layout (any length >= 2 for unknown kinds). O(1).
[[nodiscard]] constexpr bool tcp_option_length_ok(std::uint8_t kind, std::size_t len) noexcept {
  switch (kind) {
    case tcp_opt::mss: return len == tcp_opt::mss_len;
    case tcp_opt::wscale: return len == tcp_opt::wscale_len;
    case tcp_opt::sack_permitted: return len == tcp_opt::sack_permitted_len;
    case tcp_opt::timestamp: return len == tcp_opt::timestamp_len;
    case tcp_opt::sack: return len >= 10 && len <= 34 && (len - 2) % 8 == 0;
    default: return len >= 2;
  }
}

/// Walks the options of one TCP header, one option per next(). Holds a view: the header must stay
/// alive and unmoved while the walker is used. Each next() is O(1); a whole walk O(40).
///
///   tcp_option_walker w(tcp_header_bytes);
///   tcp_option o;
///   while (w.next(o)) { ... }
///   if (w.error() != tcp_option_error::none) { refuse the segment }
class tcp_option_walker {
 public:
  /// `tcp` starts at the TCP header; only [0, 4 * data offset) is read, and only if it lies inside
  /// `tcp` (otherwise error() is bad_data_offset and next() yields nothing).
  explicit tcp_option_walker(std::span<const std::uint8_t> tcp) noexcept : p_(tcp.data()) {
    if (tcp.size() < tcp_hdr_len) {
      err_ = tcp_option_error::bad_data_offset;
      return;
    }
    const std::size_t hl = std::size_t{tcp[12]} >> 4 << 2;
    if (hl < tcp_hdr_len || hl > tcp.size()) {
      err_ = tcp_option_error::bad_data_offset;
      return;
    }
    off_ = tcp_hdr_len;
    end_ = hl;
  }

  /// The next option (NOPs included; EOL is yielded once, then the walk ends), or false at the end
  /// of the list or on the first malformed option (then error() says why).
  bool next(tcp_option& o) noexcept {
    if (err_ != tcp_option_error::none || off_ >= end_) return false;
    const std::uint8_t kind = p_[off_];
    if (kind == tcp_opt::eol || kind == tcp_opt::nop) {
      o = {kind, 1, static_cast<std::uint16_t>(off_)};
      off_ = kind == tcp_opt::eol ? end_ : off_ + 1;
      return true;
    }
    if (off_ + 1 >= end_) return fail(tcp_option_error::truncated);
    const std::size_t len = p_[off_ + 1];
    if (len < 2 || off_ + len > end_) return fail(tcp_option_error::bad_length);
    if (!tcp_option_length_ok(kind, len)) return fail(tcp_option_error::bad_length_for_kind);
    o = {kind, static_cast<std::uint8_t>(len), static_cast<std::uint16_t>(off_)};
    off_ += len;
    return true;
  }

  [[nodiscard]] tcp_option_error error() const noexcept { return err_; }
  /// The TCP header length (4 * data offset); 0 when the data offset was refused.
  [[nodiscard]] std::size_t header_len() const noexcept { return end_; }

 private:
  bool fail(tcp_option_error e) noexcept {
    err_ = e;
    return false;
  }
  const std::uint8_t* p_;
  std::size_t off_ = 0, end_ = 0;
  tcp_option_error err_ = tcp_option_error::none;
};

/// Checks a whole option list. O(40), noexcept.
[[nodiscard]] inline tcp_option_error validate_tcp_options(std::span<const std::uint8_t> tcp) noexcept {
  tcp_option_walker w(tcp);
  tcp_option o;
  while (w.next(o)) {
  }
  return w.error();
}

/// Result of find_tcp_option: the option, or why not.
struct tcp_option_find {
  tcp_option opt{};
  tcp_option_error error = tcp_option_error::not_found;
  explicit operator bool() const noexcept { return error == tcp_option_error::none; }
};

/// The first option of `kind` (not EOL / NOP), after checking the whole list: a malformed list is
/// refused even when the kind sits before the fault, so a caller never acts on half a header.
/// O(40), noexcept.
[[nodiscard]] inline tcp_option_find find_tcp_option(std::span<const std::uint8_t> tcp, std::uint8_t kind) noexcept {
  tcp_option_walker w(tcp);
  tcp_option o;
  tcp_option_find r;
  bool found = false;
  while (w.next(o)) {
    if (!found && o.kind == kind && o.len >= 2) {
      r.opt = o;
      found = true;
    }
  }
  if (w.error() != tcp_option_error::none) {
    r.error = w.error();
    return r;
  }
  r.error = found ? tcp_option_error::none : tcp_option_error::not_found;
  return r;
}

/// The options a SYN (or SYN-ACK) negotiates, decoded. Absent options are nullopt / false.
struct tcp_syn_options {
  std::optional<std::uint16_t> mss;     ///< host order
  std::optional<std::uint8_t> wscale;   ///< shift count as sent (may exceed 14; see tcp_opt::max_wscale)
  bool sack_permitted = false;
  bool timestamps = false;
  std::uint32_t tsval = 0;  ///< host order; meaningful when timestamps
  std::uint32_t tsecr = 0;  ///< host order; meaningful when timestamps
};

/// Decodes the SYN options of a header after validating the list; the first of each kind counts.
/// Returns the error of a malformed list (then `out` is unspecified). O(40), noexcept.
[[nodiscard]] inline tcp_option_error read_syn_options(std::span<const std::uint8_t> tcp, tcp_syn_options& out) noexcept {
  out = {};
  tcp_option_walker w(tcp);
  tcp_option o;
  while (w.next(o)) {
    const std::uint8_t* d = tcp.data() + o.off + 2;
    switch (o.kind) {
      case tcp_opt::mss: if (!out.mss) out.mss = load_be16(d); break;
      case tcp_opt::wscale: if (!out.wscale) out.wscale = d[0]; break;
      case tcp_opt::sack_permitted: out.sack_permitted = true; break;
      case tcp_opt::timestamp:
        if (!out.timestamps) {
          out.timestamps = true;
          out.tsval = load_be32(d);
          out.tsecr = load_be32(d + 4);
        }
        break;
      default: break;
    }
  }
  return w.error();
}

namespace detail {
/// Writes `src` at [off, off + n) of a region whose checksum sums from `base` (an even offset), and
/// records the change of every covering 16-bit word in `d`. n <= 60.
inline void write_bytes_tracked(std::uint8_t* base, std::size_t off, const std::uint8_t* src, std::size_t n,
                                csum_delta& d) noexcept {
  if (n == 0) return;
  const std::size_t lo = off & ~std::size_t{1};
  const std::size_t hi = (off + n + 1) & ~std::size_t{1};
  std::uint8_t before[64];
  std::memcpy(before, base + lo, hi - lo);
  std::memcpy(base + off, src, n);
  d.add_bytes(before, base + lo, hi - lo);
}
}  // namespace detail

/// Overwrites `bytes.size()` bytes of the TCP header at offset `off` (from the header's start) and
/// updates the TCP checksum field incrementally. Typical use: a new MSS value, a translated SACK
/// block, an option replaced by NOPs. Requires: [off, off + size) inside the options of a header
/// that lies in `tcp` (else invalid: returns bad_length, nothing written); the checksum field holds a
/// full checksum. O(size), noexcept.
inline tcp_option_error overwrite_tcp_option_bytes(std::span<std::uint8_t> tcp, std::size_t off,
                                                   std::span<const std::uint8_t> bytes) noexcept {
  if (tcp.size() < tcp_hdr_len) return tcp_option_error::bad_data_offset;
  const std::size_t hl = std::size_t{tcp[12]} >> 4 << 2;
  if (hl < tcp_hdr_len || hl > tcp.size()) return tcp_option_error::bad_data_offset;
  if (off < tcp_hdr_len || off > hl || bytes.size() > hl - off) return tcp_option_error::bad_length;
  csum_delta d;
  detail::write_bytes_tracked(tcp.data(), off, bytes.data(), bytes.size(), d);
  store(tcp.data() + 16, d.apply(load_raw16(tcp.data() + 16)));
  return tcp_option_error::none;
}

/// Replaces the data of the first option of `kind` with `data` (which must have its length - 2 bytes:
/// the option keeps its size), checksum updated. Refusals: malformed list, not_found,
/// bad_length_for_kind when data's size differs. O(40), noexcept.
inline tcp_option_error rewrite_tcp_option(std::span<std::uint8_t> tcp, std::uint8_t kind,
                                           std::span<const std::uint8_t> data) noexcept {
  const auto f = find_tcp_option(tcp, kind);
  if (!f) return f.error;
  if (data.size() + 2 != f.opt.len) return tcp_option_error::bad_length_for_kind;
  return overwrite_tcp_option_bytes(tcp, f.opt.off + 2u, data);
}

/// Replaces every byte of one option by NOPs (kind 1), checksum updated: how an option is removed
/// without moving the header. Requires: `o` from a walk of this header. O(len), noexcept.
inline tcp_option_error nop_out_tcp_option(std::span<std::uint8_t> tcp, const tcp_option& o) noexcept {
  std::array<std::uint8_t, tcp_max_options_len> nops;
  nops.fill(tcp_opt::nop);
  if (o.len > nops.size()) return tcp_option_error::bad_length;
  return overwrite_tcp_option_bytes(tcp, o.off, std::span<const std::uint8_t>(nops.data(), o.len));
}

/// Where insert_tcp_option may grow a segment, and how far.
struct tcp_insert_limits {
  /// Bytes of the buffer that holds the frame (the frame's capacity). Required.
  std::size_t capacity = 0;
  /// Largest IP packet (header + payload) allowed after the insertion, e.g. the path MTU; 0: none
  /// (the IP length field's own limit still applies).
  std::size_t max_ip_len = 0;
};

/// Bytes an option of `len` bytes takes in the header: len rounded up to 4 (NOP padding). O(1).
[[nodiscard]] constexpr std::size_t tcp_option_padded_len(std::size_t len) noexcept { return (len + 3) & ~std::size_t{3}; }

/// Inserts one option (`option` = kind, length, data; its length byte must equal its size) right
/// after the fixed TCP header of a parsed frame, NOP-padded in front to a multiple of 4 bytes; the
/// header and data move back; data offset, IP length (IPv4: header checksum) and TCP checksum are
/// updated incrementally (see the file comment); `info` (frame_len, payload_off) follows. The frame
/// occupies [0, info.frame_len) of `frame`, which may be longer (the buffer's room; bytes past
/// frame_len, e.g. Ethernet padding, are overwritten). Refusals leave every byte unchanged:
/// not_tcp, the list's own errors (the existing options are validated first), no_header_room,
/// no_buffer_room (frame_len + n > limits.capacity or > frame.size()), too_big.
/// Requires: info from a successful parse of these bytes; the TCP checksum is a full one.
/// O(frame length) for the move, O(1) for the checksums; noexcept.
inline tcp_option_error insert_tcp_option(std::span<std::uint8_t> frame, packet_info& info,
                                          std::span<const std::uint8_t> option,
                                          const tcp_insert_limits& limits) noexcept {
  if (!info.is_ip() || info.proto != ipproto::tcp || info.frame_len > frame.size() ||
      info.payload_off > info.frame_len)
    return tcp_option_error::not_tcp;
  if (option.size() < 2 || option[1] != option.size() || !tcp_option_length_ok(option[0], option.size()))
    return tcp_option_error::bad_length_for_kind;
  std::uint8_t* const base = frame.data();
  std::uint8_t* const tcp = base + info.l4_off;
  const std::span<const std::uint8_t> hdr(tcp, info.frame_len - info.l4_off);
  if (const auto e = validate_tcp_options(hdr); e != tcp_option_error::none) return e;
  const std::size_t hl = std::size_t{tcp[12]} >> 4 << 2;
  const std::size_t n = tcp_option_padded_len(option.size());
  if (hl + n > tcp_max_hdr_len) return tcp_option_error::no_header_room;
  const std::size_t new_frame = std::size_t{info.frame_len} + n;
  if (new_frame > frame.size() || new_frame > limits.capacity) return tcp_option_error::no_buffer_room;
  const std::size_t ip_len = info.frame_len - info.l3_off;
  const bool v4 = info.family == ip_family::v4;
  const std::size_t ip_max = limits.max_ip_len != 0 ? limits.max_ip_len : 65535 + (v4 ? 0 : ipv6_hdr_len);
  if (ip_len + n > ip_max || (v4 && ip_len + n > 65535) || (!v4 && ip_len + n - ipv6_hdr_len > 65535))
    return tcp_option_error::too_big;

  // Move header options and data back, write the padded option after the fixed header.
  std::uint8_t* const at = tcp + tcp_hdr_len;
  std::memmove(at + n, at, info.frame_len - (info.l4_off + tcp_hdr_len));
  std::memset(at, tcp_opt::nop, n - option.size());
  std::memcpy(at + (n - option.size()), option.data(), option.size());

  csum_delta d;  // the TCP checksum's changes
  std::uint8_t zeros[tcp_max_options_len] = {};
  d.add_bytes(zeros, at, n);  // new words, from nothing
  const std::uint16_t old_off_flags = load_raw16(tcp + 12);
  tcp[12] = static_cast<std::uint8_t>(((hl + n) / 4) << 4 | (tcp[12] & 0x0f));
  d.add16(old_off_flags, load_raw16(tcp + 12));
  const std::size_t old_l4 = info.frame_len - info.l4_off, new_l4 = old_l4 + n;
  std::uint8_t* const ip = base + info.l3_off;
  if (v4) {
    const std::uint16_t old_tl = load_raw16(ip + 2), new_tl = hton16(static_cast<std::uint16_t>(ip_len + n));
    store(ip + 2, new_tl);
    store(ip + 10, csum_update16(load_raw16(ip + 10), old_tl, new_tl));
    d.add16(hton16(static_cast<std::uint16_t>(old_l4)), hton16(static_cast<std::uint16_t>(new_l4)));
  } else {
    store(ip + 4, hton16(static_cast<std::uint16_t>(new_l4)));
    d.add32(hton32(static_cast<std::uint32_t>(old_l4)), hton32(static_cast<std::uint32_t>(new_l4)));
  }
  store(tcp + 16, d.apply(load_raw16(tcp + 16)));
  info.frame_len = static_cast<std::uint32_t>(new_frame);
  info.payload_off = static_cast<std::uint16_t>(info.payload_off + n);
  return tcp_option_error::none;
}

}  // namespace fnat
