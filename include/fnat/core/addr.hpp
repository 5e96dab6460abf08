// SPDX-License-Identifier: BSD-3-Clause
// Addresses, endpoints and five-tuples.
//
// Byte order, once for the whole library:
//  - addresses are stored as on the wire (network byte order), so a header field is copied, not
//    converted, on the fast path;
//  - five-tuples (conn table keys) hold ports in network byte order too, for the same reason;
//  - `endpoint` and everything an operator configures (port plans, sa_pool ports) use host-order
//    port numbers, because that is what people read and write.
//
// `inet_addr` holds either family in 16 bytes; an IPv4 address is kept in its IPv4-mapped form
// (::ffff:a.b.c.d, RFC 4291 2.5.5.2) so that the family needs no separate field and a byte-wise
// compare is a full compare. Mapped addresses are never valid on an IPv6 wire (RFC 4291), so the
// packet layer drops them and the two families cannot alias.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace fnat {

// ---- byte order -------------------------------------------------------------------------------

[[nodiscard]] constexpr std::uint16_t bswap16(std::uint16_t v) noexcept {
  return static_cast<std::uint16_t>((v >> 8) | (v << 8));
}
[[nodiscard]] constexpr std::uint32_t bswap32(std::uint32_t v) noexcept {
  return ((v & 0x000000ffu) << 24) | ((v & 0x0000ff00u) << 8) | ((v & 0x00ff0000u) >> 8) |
         ((v & 0xff000000u) >> 24);
}
/// Host to network order (and back: the conversion is its own inverse).
[[nodiscard]] constexpr std::uint16_t hton16(std::uint16_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) return bswap16(v);
  else return v;
}
[[nodiscard]] constexpr std::uint32_t hton32(std::uint32_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) return bswap32(v);
  else return v;
}
[[nodiscard]] constexpr std::uint16_t ntoh16(std::uint16_t v) noexcept { return hton16(v); }
[[nodiscard]] constexpr std::uint32_t ntoh32(std::uint32_t v) noexcept { return hton32(v); }

enum class ip_family : std::uint8_t { v4 = 4, v6 = 6 };

[[nodiscard]] constexpr std::string_view to_string(ip_family f) noexcept {
  return f == ip_family::v4 ? "ipv4" : "ipv6";
}

// ---- IPv4 -------------------------------------------------------------------------------------

/// An IPv4 address in network byte order.
struct ipv4_addr {
  std::uint32_t be = 0;

  [[nodiscard]] static constexpr ipv4_addr from_host(std::uint32_t host) noexcept {
    return ipv4_addr{hton32(host)};
  }
  [[nodiscard]] constexpr std::uint32_t host() const noexcept { return ntoh32(be); }
  [[nodiscard]] std::array<std::uint8_t, 4> bytes() const noexcept {
    std::array<std::uint8_t, 4> b{};
    std::memcpy(b.data(), &be, 4);
    return b;
  }

  /// Dotted quad, e.g. "198.18.0.1"; nullopt on anything else.
  [[nodiscard]] static std::optional<ipv4_addr> parse(std::string_view text) {
    char buf[INET_ADDRSTRLEN];
    if (text.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    ipv4_addr a;
    if (::inet_pton(AF_INET, buf, &a.be) != 1) return std::nullopt;
    return a;
  }
  [[nodiscard]] std::string to_string() const {
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &be, buf, sizeof buf);
    return buf;
  }

  friend constexpr bool operator==(ipv4_addr, ipv4_addr) noexcept = default;
  friend constexpr auto operator<=>(ipv4_addr a, ipv4_addr b) noexcept { return a.host() <=> b.host(); }
};

// ---- IPv6 -------------------------------------------------------------------------------------

/// An IPv6 address, 16 bytes as on the wire.
struct ipv6_addr {
  alignas(4) std::array<std::uint8_t, 16> bytes{};

  [[nodiscard]] static std::optional<ipv6_addr> parse(std::string_view text) {
    char buf[INET6_ADDRSTRLEN];
    if (text.size() >= sizeof buf) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    ipv6_addr a;
    if (::inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
    return a;
  }
  [[nodiscard]] std::string to_string() const {
    char buf[INET6_ADDRSTRLEN];
    ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
  }
  /// True for ::ffff:0:0/96, which never appears on an IPv6 wire. Two word compares (it sits on the
  /// fast path of every family test).
  [[nodiscard]] constexpr bool is_v4_mapped() const noexcept {
    struct words {
      std::uint64_t head;
      std::uint32_t mid;
      std::uint32_t tail;
    };
    const auto w = std::bit_cast<words>(bytes);
    return w.head == 0 && w.mid == hton32(0x0000ffffu);
  }

  friend constexpr bool operator==(const ipv6_addr&, const ipv6_addr&) noexcept = default;
  friend constexpr auto operator<=>(const ipv6_addr&, const ipv6_addr&) noexcept = default;
};

// ---- either family ----------------------------------------------------------------------------

/// An address of either family (see the file comment for the IPv4-mapped representation).
class inet_addr {
 public:
  constexpr inet_addr() noexcept = default;
  constexpr inet_addr(ipv4_addr a) noexcept {  // NOLINT: implicit, an IPv4 address is an inet_addr
    bytes_[10] = 0xff;
    bytes_[11] = 0xff;
    const std::uint32_t h = a.host();
    bytes_[12] = static_cast<std::uint8_t>(h >> 24);
    bytes_[13] = static_cast<std::uint8_t>(h >> 16);
    bytes_[14] = static_cast<std::uint8_t>(h >> 8);
    bytes_[15] = static_cast<std::uint8_t>(h);
  }
  constexpr inet_addr(const ipv6_addr& a) noexcept : bytes_(a.bytes) {}  // NOLINT: implicit

  /// Parses either family ("198.18.0.1", "2001:2::1").
  [[nodiscard]] static std::optional<inet_addr> parse(std::string_view text) {
    if (text.find(':') != std::string_view::npos) {
      auto a = ipv6_addr::parse(text);
      if (!a || a->is_v4_mapped()) return std::nullopt;
      return inet_addr(*a);
    }
    auto a = ipv4_addr::parse(text);
    if (!a) return std::nullopt;
    return inet_addr(*a);
  }

  [[nodiscard]] constexpr ip_family family() const noexcept {
    return ipv6_addr{bytes_}.is_v4_mapped() ? ip_family::v4 : ip_family::v6;
  }
  [[nodiscard]] constexpr bool is_v4() const noexcept { return family() == ip_family::v4; }
  [[nodiscard]] constexpr bool is_v6() const noexcept { return family() == ip_family::v6; }
  /// Requires: is_v4().
  [[nodiscard]] constexpr ipv4_addr v4() const noexcept {
    return ipv4_addr::from_host((std::uint32_t{bytes_[12]} << 24) | (std::uint32_t{bytes_[13]} << 16) |
                                (std::uint32_t{bytes_[14]} << 8) | std::uint32_t{bytes_[15]});
  }
  /// Requires: is_v6().
  [[nodiscard]] constexpr ipv6_addr v6() const noexcept { return ipv6_addr{bytes_}; }
  /// The 16 stored bytes (IPv4-mapped for IPv4).
  [[nodiscard]] constexpr const std::array<std::uint8_t, 16>& raw() const noexcept { return bytes_; }
  /// True for 0.0.0.0 and ::.
  [[nodiscard]] constexpr bool is_unspecified() const noexcept {
    return *this == inet_addr{} || *this == inet_addr(ipv4_addr{});
  }

  [[nodiscard]] std::string to_string() const { return is_v4() ? v4().to_string() : v6().to_string(); }

  friend constexpr bool operator==(const inet_addr&, const inet_addr&) noexcept = default;
  friend constexpr auto operator<=>(const inet_addr&, const inet_addr&) noexcept = default;

 private:
  alignas(4) std::array<std::uint8_t, 16> bytes_{};
};

/// An address and a host-order port: how operators name real servers, VIPs and LIPs.
struct endpoint {
  inet_addr addr;
  std::uint16_t port = 0;  ///< host byte order

  /// "198.18.2.1:80" or "[2001:2::1]:80".
  [[nodiscard]] std::string to_string() const {
    // Appends rather than "[" + s: g++ 12 at -O3 warns falsely (-Wrestrict, GCC bug 105329) on
    // literal + rvalue string, which would fail users' -Werror builds.
    std::string out;
    if (addr.is_v6()) out += '[';
    out += addr.to_string();
    out += addr.is_v6() ? "]:" : ":";
    out += std::to_string(port);
    return out;
  }
  /// The inverse of to_string: "198.18.2.1:80" or "[2001:2::1]:80", port 1..65535 in decimal. An IPv6
  /// address must be in brackets (without them "2001:2::1:80" would be ambiguous); nothing may
  /// follow the port. Returns nullopt for anything else (configuration time: tell the user the form).
  /// O(length), no allocation.
  [[nodiscard]] static std::optional<endpoint> parse(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == text.size() || text.size() - colon > 6) return std::nullopt;
    std::uint32_t port = 0;
    for (const char c : text.substr(colon + 1)) {
      if (c < '0' || c > '9') return std::nullopt;
      port = port * 10 + static_cast<std::uint32_t>(c - '0');
    }
    std::string_view host = text.substr(0, colon);
    const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    const auto addr = inet_addr::parse(host);
    if (!addr || port == 0 || port > 0xffff || bracketed != addr->is_v6()) return std::nullopt;
    return endpoint{*addr, static_cast<std::uint16_t>(port)};
  }

  friend constexpr bool operator==(const endpoint&, const endpoint&) noexcept = default;
  friend constexpr auto operator<=>(const endpoint&, const endpoint&) noexcept = default;
};

// ---- five-tuples ------------------------------------------------------------------------------

/// IP protocol numbers used by the library.
namespace ipproto {
inline constexpr std::uint8_t icmp = 1;
inline constexpr std::uint8_t tcp = 6;
inline constexpr std::uint8_t udp = 17;
inline constexpr std::uint8_t icmpv6 = 58;
}  // namespace ipproto

/// A connection key as seen on the wire: addresses and ports in network byte order. Padding is
/// explicit and zero so that byte-wise hashing and comparison see only the key.
template <class Addr>
struct basic_five_tuple {
  Addr saddr{};
  Addr daddr{};
  std::uint16_t sport = 0;  ///< network byte order
  std::uint16_t dport = 0;  ///< network byte order
  std::uint8_t proto = 0;
  std::uint8_t pad_[3] = {0, 0, 0};

  /// The tuple of a packet going the other way.
  [[nodiscard]] constexpr basic_five_tuple reversed() const noexcept {
    return basic_five_tuple{daddr, saddr, dport, sport, proto, {0, 0, 0}};
  }
  friend constexpr bool operator==(const basic_five_tuple&, const basic_five_tuple&) noexcept = default;
};

using tuple4 = basic_five_tuple<ipv4_addr>;     ///< 16 bytes: the key size rte_hash users pick
using tuple6 = basic_five_tuple<ipv6_addr>;     ///< 40 bytes
using inet_tuple = basic_five_tuple<inet_addr>; ///< 40 bytes, either family in one table

static_assert(sizeof(tuple4) == 16);
static_assert(sizeof(tuple6) == 40);
static_assert(sizeof(inet_tuple) == 40);
static_assert(std::has_unique_object_representations_v<tuple4>);
static_assert(std::has_unique_object_representations_v<tuple6>);
static_assert(std::has_unique_object_representations_v<inet_tuple>);

/// Builds a tuple from host-order ports (tests and configuration code).
template <class Addr>
[[nodiscard]] constexpr basic_five_tuple<Addr> make_tuple(std::uint8_t proto, Addr saddr, std::uint16_t sport,
                                                          Addr daddr, std::uint16_t dport) noexcept {
  return basic_five_tuple<Addr>{saddr, daddr, hton16(sport), hton16(dport), proto, {0, 0, 0}};
}

template <class Addr>
[[nodiscard]] std::string to_string(const basic_five_tuple<Addr>& t) {
  const char* p = t.proto == ipproto::tcp ? "tcp" : t.proto == ipproto::udp ? "udp" : "proto";
  std::string s = p;
  if (t.proto != ipproto::tcp && t.proto != ipproto::udp) s += std::to_string(t.proto);
  return s + " " + endpoint{inet_addr(t.saddr), ntoh16(t.sport)}.to_string() + " -> " +
         endpoint{inet_addr(t.daddr), ntoh16(t.dport)}.to_string();
}

}  // namespace fnat
