// SPDX-License-Identifier: BSD-3-Clause
// Proxy Protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): encoders for the header a FullNAT
// balancer puts in front of a client's first byte, and a strict parser for headers that clients
// (cascaded balancers) already carry.
//
// ## Why
// FullNAT hides the client's address from the real servers. Proxy Protocol hands it over in-band,
// with no kernel module: one header in front of the byte stream (TCP) or of each datagram (UDP, v2
// only), understood by nginx (`listen ... proxy_protocol`), HAProxy, Envoy and dnsdist. The cost is
// the header's length in sequence space for the whole connection (seq_adjust.hpp).
//
// ## Version 1 (text, TCP only)
//     "PROXY TCP4 198.18.0.10 198.18.1.100 40000 80\r\n"
// "PROXY", one space, TCP4 or TCP6 (or UNKNOWN: the receiver uses the connection's own addresses
// and ignores the rest of the line), source and destination address, source and destination port,
// single spaces, CRLF. IPv4 in dotted quads without leading zeros; IPv6 as hex groups with at most
// one "::"; ports decimal 0..65535 without leading zeros. At most 107 bytes with the CRLF (the
// spec's worst case), so a line without CRLF in 107 bytes is invalid. The encoder writes IPv6 in
// RFC 5952's canonical form (lower case, the longest run of two or more zero groups as "::", never
// a dotted quad), which the spec's grammar allows and which inet_ntop does not guarantee.
//
// ## Version 2 (binary)
//     12-byte signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
//     ver_cmd            0x21 (version 2, PROXY) or 0x20 (LOCAL: health checks, no addresses)
//     fam                0x11 TCP/IPv4, 0x12 UDP/IPv4, 0x21 TCP/IPv6, 0x22 UDP/IPv6,
//                        0x31 / 0x32 UNIX stream / datagram, 0x00 UNSPEC
//     len (16 bits, BE)  bytes that follow: addresses (12, 36 or 216) then TLVs
//     addresses          source address, destination address, source port, destination port (BE)
//     TLVs               type (1), length (2, BE), value; types ALPN 0x01, AUTHORITY 0x02,
//                        CRC32C 0x03, NOOP 0x04, UNIQUE_ID 0x05, SSL 0x20, NETNS 0x30
// The CRC32C TLV (value 4 bytes, BE) holds CRC32C (RFC 4960 appendix B: Castagnoli, reflected,
// initial and final value 0xffffffff) of the whole header computed with the value bytes zero; the
// encoder appends it last when asked, the parser verifies it when present.
//
// ## The parser's contract
// parse_proxy_header(bytes) reads only [0, bytes.size()) and returns, for a complete valid header,
// its version, command, transport, the source and destination endpoints and its length (the client's
// own data start there); otherwise the first reason it is not one:
//  - truncated: a prefix of a header that could still become valid; only this error depends on how
//    much was read (every proper prefix of a valid header gives it, a property the fuzzer checks);
//  - not_proxy: neither signature; the stream carries no Proxy Protocol header;
//  - bad_v1 / v1_too_long: any deviation from the v1 grammar; no CRLF in 107 bytes;
//  - bad_version, bad_command, bad_family, bad_address_length, bad_tlv, bad_crc, too_long: v2
//    fields outside the spec, an address block shorter than its family needs, a TLV running past
//    the header or a CRC32C TLV whose length is not 4, a CRC mismatch, a header above the caller's
//    bound (parse_limits::max_v2_len; a balancer wants the header inside the first segment).
// A LOCAL command (and v1 UNKNOWN) parses as local = true without addresses: the receiver uses the
// connection's own. UNSPEC and UNIX families parse without endpoints (`fam` tells). An IPv4-mapped
// address (::ffff:a.b.c.d) in a TCP6 / v2 IPv6 header is an IPv4 client in inet_addr's terms and
// comes back as one: src and dst may then differ in family (encoders refuse such a pair). TLVs are
// validated structurally and returned as a span for the caller to read with for_each_tlv.
// Everything is noexcept, allocation-free, O(header length).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "fnat/core/addr.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/headers.hpp"

namespace fnat {

namespace pp2 {
inline constexpr std::array<std::uint8_t, 12> signature = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                          0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
inline constexpr std::uint8_t cmd_local = 0x20;
inline constexpr std::uint8_t cmd_proxy = 0x21;
inline constexpr std::uint8_t fam_unspec = 0x00;
inline constexpr std::uint8_t fam_tcp4 = 0x11;
inline constexpr std::uint8_t fam_udp4 = 0x12;
inline constexpr std::uint8_t fam_tcp6 = 0x21;
inline constexpr std::uint8_t fam_udp6 = 0x22;
inline constexpr std::uint8_t fam_unix_stream = 0x31;
inline constexpr std::uint8_t fam_unix_dgram = 0x32;
inline constexpr std::uint8_t type_alpn = 0x01;
inline constexpr std::uint8_t type_authority = 0x02;
inline constexpr std::uint8_t type_crc32c = 0x03;
inline constexpr std::uint8_t type_noop = 0x04;
inline constexpr std::uint8_t type_unique_id = 0x05;
inline constexpr std::uint8_t type_ssl = 0x20;
inline constexpr std::uint8_t type_netns = 0x30;
/// Fixed part: signature, ver_cmd, fam, len.
inline constexpr std::size_t fixed_len = 16;
inline constexpr std::size_t addr_len_v4 = 12;
inline constexpr std::size_t addr_len_v6 = 36;
inline constexpr std::size_t addr_len_unix = 216;
}  // namespace pp2

/// Longest v1 line the spec allows, CRLF included.
inline constexpr std::size_t proxy_v1_max_len = 107;

/// Why bytes are not a (complete, valid) Proxy Protocol header. `none` (0): they are.
enum class proxy_error : std::uint8_t {
  none = 0,
  truncated,           ///< a valid header's prefix: more bytes could complete it
  not_proxy,           ///< neither the v1 nor the v2 signature
  bad_v1,              ///< v1 grammar violated (spaces, family, address, port, lone CR or LF)
  v1_too_long,         ///< no CRLF within 107 bytes
  bad_version,         ///< v2 version nibble not 2
  bad_command,         ///< v2 command neither LOCAL nor PROXY
  bad_family,          ///< v2 family/transport byte not one of the spec's seven
  bad_address_length,  ///< v2 len shorter than the family's address block
  bad_tlv,             ///< a TLV running past the header, or a CRC32C TLV of length != 4
  bad_crc,             ///< the CRC32C TLV does not match
  too_long,            ///< v2 header longer than parse_limits::max_v2_len
};
inline constexpr std::size_t proxy_error_count = static_cast<std::size_t>(proxy_error::too_long) + 1;

[[nodiscard]] constexpr std::string_view to_string(proxy_error e) noexcept {
  switch (e) {
    case proxy_error::none: return "none";
    case proxy_error::truncated: return "truncated";
    case proxy_error::not_proxy: return "not_proxy";
    case proxy_error::bad_v1: return "bad_v1";
    case proxy_error::v1_too_long: return "v1_too_long";
    case proxy_error::bad_version: return "bad_version";
    case proxy_error::bad_command: return "bad_command";
    case proxy_error::bad_family: return "bad_family";
    case proxy_error::bad_address_length: return "bad_address_length";
    case proxy_error::bad_tlv: return "bad_tlv";
    case proxy_error::bad_crc: return "bad_crc";
    case proxy_error::too_long: return "too_long";
  }
  return "unknown";
}

/// CRC32C (Castagnoli) as RFC 4960 appendix B and the PP2 CRC32C TLV define it: reflected, initial
/// value and final xor 0xffffffff; crc32c_rfc("123456789") == 0xe3069283. O(len), noexcept.
[[nodiscard]] inline std::uint32_t crc32c_rfc(std::span<const std::uint8_t> data) noexcept {
  return detail::crc32c_sw(0xffffffffu, data.data(), data.size()) ^ 0xffffffffu;
}

/// A TLV to encode: type and value (at most 65535 - 3 bytes; the encoder checks the total).
struct pp2_tlv {
  std::uint8_t type = 0;
  std::span<const std::uint8_t> value;
};

/// What parse_proxy_header found.
struct proxy_header {
  proxy_error error = proxy_error::truncated;
  std::uint8_t version = 0;     ///< 1 or 2
  bool local = false;           ///< v2 LOCAL or v1 UNKNOWN: use the connection's own addresses
  std::uint8_t fam = 0;         ///< v2 family/transport byte (v1: fam_tcp4 / fam_tcp6 / unspec)
  std::uint8_t proto = 0;       ///< ipproto::tcp / udp for the INET families, else 0
  endpoint src;                 ///< meaningful when has_addresses()
  endpoint dst;
  std::size_t length = 0;       ///< bytes of the header: the stream's own data start here
  std::size_t tlv_off = 0;      ///< v2: TLVs at [tlv_off, length)
  bool has_crc = false;         ///< v2: a CRC32C TLV was present and verified

  explicit operator bool() const noexcept { return error == proxy_error::none; }
  /// True for PROXY over IPv4 / IPv6 (TCP or UDP): src and dst hold the original endpoints.
  [[nodiscard]] bool has_addresses() const noexcept { return !local && proto != 0; }
};

/// Bounds for parse_proxy_header.
struct proxy_parse_limits {
  /// Longest v2 header accepted (16 + len). Default 1024: addresses and a few TLVs, well inside a
  /// first segment; at most 65551.
  std::size_t max_v2_len = 1024;
};

namespace detail {

inline bool pp_digit(std::uint8_t c) noexcept { return c >= '0' && c <= '9'; }
inline int pp_hex(std::uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Decimal without leading zeros, at most `max`: parses [p, end) entirely.
inline bool pp_decimal(const std::uint8_t* p, const std::uint8_t* end, std::uint32_t max, std::uint32_t& v) noexcept {
  const std::size_t n = static_cast<std::size_t>(end - p);
  if (n == 0 || n > 5 || (n > 1 && p[0] == '0')) return false;
  v = 0;
  for (; p < end; ++p) {
    if (!pp_digit(*p)) return false;
    v = v * 10 + (*p - '0');
  }
  return v <= max;
}

inline bool pp_ipv4(const std::uint8_t* p, const std::uint8_t* end, ipv4_addr& out) noexcept {
  std::uint8_t b[4];
  for (int i = 0; i < 4; ++i) {
    const std::uint8_t* q = p;
    while (q < end && *q != '.') ++q;
    if ((i < 3) != (q < end)) return false;  // three dots exactly
    std::uint32_t v;
    if (q - p > 3 || !pp_decimal(p, q, 255, v)) return false;
    b[i] = static_cast<std::uint8_t>(v);
    p = q + (q < end ? 1 : 0);
  }
  std::memcpy(&out.be, b, 4);
  return true;
}

/// IPv6 as hex groups of 1..4 digits separated by ':', at most one "::", 128 bits exactly.
inline bool pp_ipv6(const std::uint8_t* p, const std::uint8_t* end, ipv6_addr& out) noexcept {
  std::uint16_t head[8], tail[8];
  int nh = 0, nt = 0;
  bool gap = false;
  if (end - p < 2 || end - p > 39) return false;
  if (p[0] == ':') {
    if (p[1] != ':') return false;
    gap = true;
    p += 2;
  }
  while (p < end) {
    std::uint32_t v = 0;
    int digits = 0;
    while (p < end && pp_hex(*p) >= 0) {
      v = v << 4 | static_cast<std::uint32_t>(pp_hex(*p));
      ++p;
      if (++digits > 4) return false;
    }
    if (digits == 0) return false;
    if (nh + nt >= 8) return false;
    (gap ? tail[nt++] : head[nh++]) = static_cast<std::uint16_t>(v);
    if (p == end) break;
    if (*p != ':') return false;
    ++p;
    if (p < end && *p == ':') {
      if (gap) return false;
      gap = true;
      ++p;
    } else if (p == end) {
      return false;  // a trailing single ':'
    }
  }
  if (gap ? nh + nt > 7 : nh + nt != 8) return false;
  std::uint16_t g[8] = {};
  for (int i = 0; i < nh; ++i) g[i] = head[i];
  for (int i = 0; i < nt; ++i) g[8 - nt + i] = tail[i];
  for (int i = 0; i < 8; ++i) {
    out.bytes[static_cast<std::size_t>(2 * i)] = static_cast<std::uint8_t>(g[i] >> 8);
    out.bytes[static_cast<std::size_t>(2 * i + 1)] = static_cast<std::uint8_t>(g[i]);
  }
  return true;
}

inline proxy_header pp_fail(proxy_error e) noexcept {
  proxy_header h;
  h.error = e;
  return h;
}

inline proxy_header parse_v1(std::span<const std::uint8_t> b) noexcept {
  // Find the line's end: CRLF; a lone CR or LF is an error; none in 107 bytes too.
  // A CR at index 106 or later would make the line longer than 107 bytes.
  std::size_t eol = 0;
  for (;; ++eol) {
    if (eol == proxy_v1_max_len - 1) return pp_fail(proxy_error::v1_too_long);
    if (eol == b.size()) return pp_fail(proxy_error::truncated);
    if (b[eol] == '\n') return pp_fail(proxy_error::bad_v1);
    if (b[eol] == '\r') {
      if (eol + 1 == b.size()) return pp_fail(proxy_error::truncated);
      if (b[eol + 1] != '\n') return pp_fail(proxy_error::bad_v1);
      break;
    }
  }
  proxy_header h;
  h.version = 1;
  h.length = eol + 2;
  const std::uint8_t* p = b.data() + 6;  // after "PROXY "
  const std::uint8_t* const end = b.data() + eol;
  auto word = [&](const std::uint8_t*& q) -> const std::uint8_t* {  // to the next space or the end
    const std::uint8_t* s = q;
    while (q < end && *q != ' ') ++q;
    return s;
  };
  if (eol < 6 || b[5] != ' ') return pp_fail(proxy_error::bad_v1);
  const std::uint8_t* s = word(p);
  const std::string_view fam(reinterpret_cast<const char*>(s), static_cast<std::size_t>(p - s));
  if (fam == "UNKNOWN") {  // the rest of the line is ignored
    h.local = true;
    h.fam = pp2::fam_unspec;
    h.error = proxy_error::none;
    return h;
  }
  const bool v4 = fam == "TCP4";
  if (!v4 && fam != "TCP6") return pp_fail(proxy_error::bad_v1);
  const std::uint8_t* fields[4][2];
  for (auto& f : fields) {
    if (p == end || *p != ' ') return pp_fail(proxy_error::bad_v1);
    ++p;
    f[0] = word(p);
    f[1] = p;
  }
  if (p != end) return pp_fail(proxy_error::bad_v1);
  std::uint32_t sport, dport;
  if (!pp_decimal(fields[2][0], fields[2][1], 65535, sport) || !pp_decimal(fields[3][0], fields[3][1], 65535, dport))
    return pp_fail(proxy_error::bad_v1);
  if (v4) {
    ipv4_addr a, d;
    if (!pp_ipv4(fields[0][0], fields[0][1], a) || !pp_ipv4(fields[1][0], fields[1][1], d))
      return pp_fail(proxy_error::bad_v1);
    h.src.addr = a;
    h.dst.addr = d;
  } else {
    ipv6_addr a, d;
    if (!pp_ipv6(fields[0][0], fields[0][1], a) || !pp_ipv6(fields[1][0], fields[1][1], d))
      return pp_fail(proxy_error::bad_v1);
    h.src.addr = a;
    h.dst.addr = d;
  }
  h.src.port = static_cast<std::uint16_t>(sport);
  h.dst.port = static_cast<std::uint16_t>(dport);
  h.fam = v4 ? pp2::fam_tcp4 : pp2::fam_tcp6;
  h.proto = ipproto::tcp;
  h.error = proxy_error::none;
  return h;
}

inline proxy_header parse_v2(std::span<const std::uint8_t> b, const proxy_parse_limits& lim) noexcept {
  if (b.size() < pp2::fixed_len) return pp_fail(proxy_error::truncated);
  const std::uint8_t ver_cmd = b[12], fam = b[13];
  if ((ver_cmd >> 4) != 2) return pp_fail(proxy_error::bad_version);
  const std::uint8_t cmd = ver_cmd & 0x0f;
  if (cmd > 1) return pp_fail(proxy_error::bad_command);
  std::size_t need;
  switch (fam) {
    case pp2::fam_unspec: need = 0; break;
    case pp2::fam_tcp4: case pp2::fam_udp4: need = pp2::addr_len_v4; break;
    case pp2::fam_tcp6: case pp2::fam_udp6: need = pp2::addr_len_v6; break;
    case pp2::fam_unix_stream: case pp2::fam_unix_dgram: need = pp2::addr_len_unix; break;
    default: return pp_fail(proxy_error::bad_family);
  }
  const std::size_t len = load_be16(b.data() + 14);
  const std::size_t total = pp2::fixed_len + len;
  if (total > lim.max_v2_len) return pp_fail(proxy_error::too_long);
  if (b.size() < total) return pp_fail(proxy_error::truncated);
  proxy_header h;
  h.version = 2;
  h.length = total;
  h.fam = fam;
  if (cmd == 0) {  // LOCAL: the block is skipped whatever it holds (the spec's "must not assume zero")
    h.local = true;
    h.tlv_off = total;
    h.error = proxy_error::none;
    return h;
  }
  if (len < need) return pp_fail(proxy_error::bad_address_length);
  const std::uint8_t* a = b.data() + pp2::fixed_len;
  if (fam == pp2::fam_tcp4 || fam == pp2::fam_udp4) {
    h.src.addr = ipv4_addr{load_raw32(a)};
    h.dst.addr = ipv4_addr{load_raw32(a + 4)};
    h.src.port = load_be16(a + 8);
    h.dst.port = load_be16(a + 10);
  } else if (fam == pp2::fam_tcp6 || fam == pp2::fam_udp6) {
    ipv6_addr s, d;
    std::memcpy(s.bytes.data(), a, 16);
    std::memcpy(d.bytes.data(), a + 16, 16);
    h.src.addr = s;
    h.dst.addr = d;
    h.src.port = load_be16(a + 32);
    h.dst.port = load_be16(a + 34);
  }
  if (fam == pp2::fam_tcp4 || fam == pp2::fam_tcp6) h.proto = ipproto::tcp;
  if (fam == pp2::fam_udp4 || fam == pp2::fam_udp6) h.proto = ipproto::udp;
  h.tlv_off = pp2::fixed_len + need;
  if (fam == pp2::fam_unspec) {  // nothing known about the block: not walked
    h.tlv_off = total;
    h.error = proxy_error::none;
    return h;
  }
  std::size_t crc_at = 0;
  for (std::size_t t = h.tlv_off; t < total;) {
    if (total - t < 3) return pp_fail(proxy_error::bad_tlv);
    const std::size_t vlen = load_be16(b.data() + t + 1);
    if (vlen > total - t - 3) return pp_fail(proxy_error::bad_tlv);
    if (b[t] == pp2::type_crc32c) {
      if (vlen != 4 || crc_at != 0) return pp_fail(proxy_error::bad_tlv);
      crc_at = t + 3;
    }
    t += 3 + vlen;
  }
  if (crc_at != 0) {
    const std::uint32_t want = load_be32(b.data() + crc_at);
    const std::uint8_t zero[4] = {};
    std::uint32_t c = detail::crc32c_sw(0xffffffffu, b.data(), crc_at);
    c = detail::crc32c_sw(c, zero, 4);
    c = detail::crc32c_sw(c, b.data() + crc_at + 4, total - crc_at - 4) ^ 0xffffffffu;
    if (c != want) return pp_fail(proxy_error::bad_crc);
    h.has_crc = true;
  }
  h.error = proxy_error::none;
  return h;
}

/// RFC 5952 text of an IPv6 address into `out` (at least 39 bytes); returns the length.
inline std::size_t pp_format_ipv6(const ipv6_addr& a, char* out) noexcept {
  std::uint16_t g[8];
  for (int i = 0; i < 8; ++i)
    g[i] = static_cast<std::uint16_t>(a.bytes[static_cast<std::size_t>(2 * i)] << 8 | a.bytes[static_cast<std::size_t>(2 * i + 1)]);
  int best = -1, best_len = 1;  // the longest run of >= 2 zero groups, the first on a tie
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::size_t n = 0;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out[n++] = ':';
      if (i == 0) out[n++] = ':';
      i += best_len - 1;
      continue;
    }
    bool lead = true;
    for (int s = 12; s >= 0; s -= 4) {
      const int d = (g[i] >> s) & 0xf;
      if (lead && d == 0 && s != 0) continue;
      lead = false;
      out[n++] = hex[d];
    }
    if (i != 7) out[n++] = ':';
  }
  return n;
}

inline std::size_t pp_format_decimal(std::uint32_t v, char* out) noexcept {
  char tmp[10];
  std::size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

}  // namespace detail

/// Parses the Proxy Protocol header at the start of `bytes` (v1 or v2, told apart by the signature;
/// see the file comment for the contract). Reads only [0, bytes.size()). O(header length), noexcept.
[[nodiscard]] inline proxy_header parse_proxy_header(std::span<const std::uint8_t> bytes,
                                                     const proxy_parse_limits& limits = {}) noexcept {
  static constexpr std::uint8_t v1_sig[5] = {'P', 'R', 'O', 'X', 'Y'};  // the spec's v1 test
  if (bytes.empty()) return detail::pp_fail(proxy_error::truncated);  // (memcmp of a null span is UB)
  const std::size_t n2 = bytes.size() < pp2::signature.size() ? bytes.size() : pp2::signature.size();
  if (std::memcmp(bytes.data(), pp2::signature.data(), n2) == 0)
    return n2 < pp2::signature.size() ? detail::pp_fail(proxy_error::truncated) : detail::parse_v2(bytes, limits);
  const std::size_t n1 = bytes.size() < sizeof v1_sig ? bytes.size() : sizeof v1_sig;
  if (std::memcmp(bytes.data(), v1_sig, n1) != 0) return detail::pp_fail(proxy_error::not_proxy);
  if (n1 < sizeof v1_sig) return detail::pp_fail(proxy_error::truncated);
  return detail::parse_v1(bytes);
}

/// Calls f(type, value span) for each TLV of a header parse_proxy_header accepted from `bytes`.
/// O(header length), noexcept if f is.
template <class F>
void for_each_tlv(std::span<const std::uint8_t> bytes, const proxy_header& h, F&& f) {
  if (!h || h.version != 2) return;
  for (std::size_t t = h.tlv_off; t + 3 <= h.length;) {
    const std::size_t vlen = load_be16(bytes.data() + t + 1);
    f(bytes[t], bytes.subspan(t + 3, vlen));
    t += 3 + vlen;
  }
}

/// Writes the v1 line for a TCP connection src -> dst into `out`; returns its length (at most 104),
/// or 0 when `out` is too small or the families differ (nothing written then). O(1), noexcept.
[[nodiscard]] inline std::size_t encode_proxy_v1(std::span<std::uint8_t> out, const endpoint& src,
                                                 const endpoint& dst) noexcept {
  if (src.addr.is_v4() != dst.addr.is_v4()) return 0;
  char buf[proxy_v1_max_len + 1];
  std::size_t n = 0;
  auto put = [&](std::string_view s) {
    std::memcpy(buf + n, s.data(), s.size());
    n += s.size();
  };
  put(src.addr.is_v4() ? "PROXY TCP4 " : "PROXY TCP6 ");
  for (const endpoint* e : {&src, &dst}) {
    if (e->addr.is_v4()) {
      const auto b = e->addr.v4().bytes();
      for (int i = 0; i < 4; ++i) {
        n += detail::pp_format_decimal(b[static_cast<std::size_t>(i)], buf + n);
        if (i != 3) buf[n++] = '.';
      }
    } else {
      n += detail::pp_format_ipv6(e->addr.v6(), buf + n);
    }
    buf[n++] = ' ';
  }
  n += detail::pp_format_decimal(src.port, buf + n);
  buf[n++] = ' ';
  n += detail::pp_format_decimal(dst.port, buf + n);
  put("\r\n");
  if (out.size() < n) return 0;
  std::memcpy(out.data(), buf, n);
  return n;
}

/// Bytes encode_proxy_v2 writes for this family, TLVs and CRC choice. O(tlvs), noexcept.
[[nodiscard]] inline std::size_t proxy_v2_len(bool v4, std::span<const pp2_tlv> tlvs = {}, bool crc32c = false) noexcept {
  std::size_t n = pp2::fixed_len + (v4 ? pp2::addr_len_v4 : pp2::addr_len_v6);
  for (const auto& t : tlvs) n += 3 + t.value.size();
  return n + (crc32c ? 7 : 0);
}

/// Writes a v2 PROXY header for src -> dst over `proto` (ipproto::tcp or udp), then `tlvs` in order,
/// then (when `crc32c`) a CRC32C TLV over the whole header. Returns its length, or 0 when `out` is
/// too small, the families differ, proto is neither TCP nor UDP, or the header would pass 65551
/// bytes (nothing written then). O(length), noexcept.
[[nodiscard]] inline std::size_t encode_proxy_v2(std::span<std::uint8_t> out, const endpoint& src, const endpoint& dst,
                                                 std::uint8_t proto, std::span<const pp2_tlv> tlvs = {},
                                                 bool crc32c = false) noexcept {
  const bool v4 = src.addr.is_v4();
  if (v4 != dst.addr.is_v4() || (proto != ipproto::tcp && proto != ipproto::udp)) return 0;
  const std::size_t n = proxy_v2_len(v4, tlvs, crc32c);
  if (n > pp2::fixed_len + 0xffff || out.size() < n) return 0;
  for (const auto& t : tlvs)
    if (t.value.size() > 0xffff) return 0;
  std::uint8_t* p = out.data();
  std::memcpy(p, pp2::signature.data(), 12);
  p[12] = pp2::cmd_proxy;
  p[13] = v4 ? (proto == ipproto::tcp ? pp2::fam_tcp4 : pp2::fam_udp4) : (proto == ipproto::tcp ? pp2::fam_tcp6 : pp2::fam_udp6);
  store_be16(p + 14, static_cast<std::uint16_t>(n - pp2::fixed_len));
  std::uint8_t* a = p + pp2::fixed_len;
  if (v4) {
    store(a, src.addr.v4().be);
    store(a + 4, dst.addr.v4().be);
    a += 8;
  } else {
    std::memcpy(a, src.addr.raw().data(), 16);
    std::memcpy(a + 16, dst.addr.raw().data(), 16);
    a += 32;
  }
  store_be16(a, src.port);
  store_be16(a + 2, dst.port);
  a += 4;
  for (const auto& t : tlvs) {
    a[0] = t.type;
    store_be16(a + 1, static_cast<std::uint16_t>(t.value.size()));
    if (!t.value.empty()) std::memcpy(a + 3, t.value.data(), t.value.size());
    a += 3 + t.value.size();
  }
  if (crc32c) {
    a[0] = pp2::type_crc32c;
    store_be16(a + 1, 4);
    std::memset(a + 3, 0, 4);
    store(a + 3, hton32(crc32c_rfc({p, n})));
  }
  return n;
}

/// Writes the 16-byte v2 LOCAL header (health checks: no addresses). Returns 16, or 0 when `out` is
/// shorter. O(1), noexcept.
[[nodiscard]] inline std::size_t encode_proxy_v2_local(std::span<std::uint8_t> out) noexcept {
  if (out.size() < pp2::fixed_len) return 0;
  std::memcpy(out.data(), pp2::signature.data(), 12);
  out[12] = pp2::cmd_local;
  out[13] = pp2::fam_unspec;
  out[14] = out[15] = 0;
  return pp2::fixed_len;
}

}  // namespace fnat
