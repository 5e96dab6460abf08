// SPDX-License-Identifier: BSD-3-Clause
// Wire formats: Ethernet, 802.1Q, ARP, IPv4, IPv6, TCP, UDP, ICMP, ICMPv6 and neighbour discovery.
//
// Core cannot include DPDK's rte_ether.h / rte_ip.h, so the layouts are restated here from the RFCs
// (826 ARP, 791 IPv4, 8200 IPv6, 9293 TCP, 768 UDP, 792 ICMP, 4443 ICMPv6, 4861 ND) and IEEE 802.1Q.
//
// Every struct is standard-layout and trivially copyable, has no padding (static_asserts below pin
// sizes and field offsets), and keeps every multi-byte field in network byte order, exactly as on the
// wire. Frames in an mbuf are not aligned for these structs (an Ethernet header puts the IP header at
// offset 14 of a buffer that DPDK aligns at 128 + 2), so code never dereferences a cast pointer into
// packet memory: it copies a header out with `load<T>` or a field with `load_be16`/`load_raw32`, and
// writes with `store`. Compilers turn those memcpy calls into plain (unaligned-safe) moves; they keep
// the code free of alignment and strict-aliasing undefined behaviour, which UBSan would flag.
//
// Field offsets are exported as constants (`ipv4_hdr_off::src`, ...) because the parser and the
// rewrite touch single fields in place.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "fnat/core/addr.hpp"

namespace fnat {

// ---- loads and stores into packet memory -------------------------------------------------------

/// Copies a T out of packet memory at `p` (any alignment). Requires: [p, p + sizeof(T)) readable.
template <class T>
  requires std::is_trivially_copyable_v<T>
[[nodiscard]] inline T load(const void* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
/// Copies `v` into packet memory at `p` (any alignment). Requires: [p, p + sizeof(T)) writable.
template <class T>
  requires std::is_trivially_copyable_v<T>
inline void store(void* p, const T& v) noexcept {
  std::memcpy(p, &v, sizeof(T));
}
/// A 16-bit field as on the wire (network order, not converted).
[[nodiscard]] inline std::uint16_t load_raw16(const void* p) noexcept { return load<std::uint16_t>(p); }
/// A 32-bit field as on the wire (network order, not converted).
[[nodiscard]] inline std::uint32_t load_raw32(const void* p) noexcept { return load<std::uint32_t>(p); }
/// A 16-bit big-endian field converted to host order.
[[nodiscard]] inline std::uint16_t load_be16(const void* p) noexcept { return ntoh16(load_raw16(p)); }
/// A 32-bit big-endian field converted to host order.
[[nodiscard]] inline std::uint32_t load_be32(const void* p) noexcept { return ntoh32(load_raw32(p)); }
/// Stores a host-order 16-bit value big-endian.
inline void store_be16(void* p, std::uint16_t host) noexcept { store(p, hton16(host)); }

// ---- Ethernet ----------------------------------------------------------------------------------

/// A 48-bit IEEE 802 MAC address, as on the wire.
struct mac_addr {
  std::array<std::uint8_t, 6> bytes{};

  [[nodiscard]] static constexpr mac_addr broadcast() noexcept { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }

  /// "02:00:00:00:00:01" (colons or dashes, one kind throughout, hex digits of either case, two per
  /// byte); nullopt on anything else.
  [[nodiscard]] static constexpr std::optional<mac_addr> parse(std::string_view text) noexcept {
    if (text.size() != 17) return std::nullopt;
    const char sep = text[2];
    if (sep != ':' && sep != '-') return std::nullopt;
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    mac_addr m;
    for (std::size_t i = 0; i < 6; ++i) {
      if (i > 0 && text[3 * i - 1] != sep) return std::nullopt;
      const int hi = nibble(text[3 * i]), lo = nibble(text[3 * i + 1]);
      if (hi < 0 || lo < 0) return std::nullopt;
      m.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return m;
  }
  /// "02:00:00:00:00:01", lower case.
  [[nodiscard]] std::string to_string() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < 6; ++i) {
      if (i) s += ':';
      s += digits[bytes[i] >> 4];
      s += digits[bytes[i] & 0xf];
    }
    return s;
  }
  /// Group (multicast or broadcast) address: the I/G bit, bit 0 of the first byte.
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (bytes[0] & 1u) != 0; }
  [[nodiscard]] constexpr bool is_broadcast() const noexcept { return *this == broadcast(); }
  [[nodiscard]] constexpr bool is_zero() const noexcept { return *this == mac_addr{}; }
  /// An address a station may have: not zero, not a group address.
  [[nodiscard]] constexpr bool is_unicast() const noexcept { return !is_zero() && !is_multicast(); }

  friend constexpr bool operator==(const mac_addr&, const mac_addr&) noexcept = default;
  friend constexpr auto operator<=>(const mac_addr&, const mac_addr&) noexcept = default;
};

/// EtherType values (host order).
namespace ethertype {
inline constexpr std::uint16_t ipv4 = 0x0800;
inline constexpr std::uint16_t arp = 0x0806;
inline constexpr std::uint16_t vlan = 0x8100;  ///< IEEE 802.1Q customer tag
inline constexpr std::uint16_t qinq = 0x88a8;  ///< IEEE 802.1ad service tag
inline constexpr std::uint16_t ipv6 = 0x86dd;
}  // namespace ethertype

/// Ethernet II header, 14 bytes.
struct ether_hdr {
  mac_addr dst;
  mac_addr src;
  std::uint16_t ether_type = 0;  ///< network order
};

/// 802.1Q tag as it follows the source MAC: TCI then the inner EtherType, 4 bytes. (The tag's own
/// TPID, 0x8100, is the outer header's ether_type.)
struct vlan_hdr {
  std::uint16_t tci = 0;         ///< network order: PCP(3) DEI(1) VID(12)
  std::uint16_t ether_type = 0;  ///< network order
};

// ---- ARP (RFC 826), Ethernet + IPv4 only ------------------------------------------------------

namespace arp_op {
inline constexpr std::uint16_t request = 1;
inline constexpr std::uint16_t reply = 2;
}  // namespace arp_op

/// ARP for IPv4 over Ethernet, 28 bytes. Protocol addresses are byte arrays so that the struct has
/// no padding (spa sits at offset 14).
struct arp_hdr {
  std::uint16_t htype = 0;  ///< network order; 1 = Ethernet
  std::uint16_t ptype = 0;  ///< network order; 0x0800 = IPv4
  std::uint8_t hlen = 0;    ///< 6
  std::uint8_t plen = 0;    ///< 4
  std::uint16_t op = 0;     ///< network order; arp_op
  mac_addr sha;
  std::array<std::uint8_t, 4> spa{};
  mac_addr tha;
  std::array<std::uint8_t, 4> tpa{};
};

// ---- IPv4 (RFC 791) ---------------------------------------------------------------------------

/// IPv4 header without options, 20 bytes.
struct ipv4_hdr {
  std::uint8_t version_ihl = 0;     ///< version (4) << 4 | header length in 32-bit words
  std::uint8_t tos = 0;             ///< DSCP and ECN
  std::uint16_t total_length = 0;   ///< network order: header + payload
  std::uint16_t id = 0;             ///< network order
  std::uint16_t frag_off = 0;       ///< network order: flags (reserved, DF, MF) and fragment offset
  std::uint8_t ttl = 0;
  std::uint8_t proto = 0;
  std::uint16_t checksum = 0;       ///< raw
  ipv4_addr src;
  ipv4_addr dst;
};

/// Bits of ipv4_hdr::frag_off (host order).
namespace ipv4_frag {
inline constexpr std::uint16_t reserved = 0x8000;
inline constexpr std::uint16_t dont_fragment = 0x4000;
inline constexpr std::uint16_t more_fragments = 0x2000;
inline constexpr std::uint16_t offset_mask = 0x1fff;
}  // namespace ipv4_frag

// ---- IPv6 (RFC 8200) --------------------------------------------------------------------------

/// IPv6 fixed header, 40 bytes.
struct ipv6_hdr {
  std::uint32_t vtc_flow = 0;       ///< network order: version (6) << 28 | traffic class << 20 | flow label
  std::uint16_t payload_len = 0;    ///< network order: bytes after this header
  std::uint8_t next_header = 0;
  std::uint8_t hop_limit = 0;
  ipv6_addr src;
  ipv6_addr dst;
};

/// Next-header values of IPv6 extension headers (RFC 8200 section 4, IANA "IPv6 Extension Header
/// Types") and of the fragment header.
namespace ipv6_ext {
inline constexpr std::uint8_t hop_by_hop = 0;
inline constexpr std::uint8_t routing = 43;
inline constexpr std::uint8_t fragment = 44;
inline constexpr std::uint8_t esp = 50;
inline constexpr std::uint8_t ah = 51;
inline constexpr std::uint8_t no_next = 59;
inline constexpr std::uint8_t dest_opts = 60;
inline constexpr std::uint8_t mobility = 135;
inline constexpr std::uint8_t hip = 139;
inline constexpr std::uint8_t shim6 = 140;
inline constexpr std::uint8_t experimental1 = 253;
inline constexpr std::uint8_t experimental2 = 254;

/// True for the extension headers listed above except the fragment header and "no next header".
[[nodiscard]] constexpr bool is_extension(std::uint8_t nh) noexcept {
  switch (nh) {
    case hop_by_hop: case routing: case esp: case ah: case dest_opts: case mobility: case hip: case shim6:
    case experimental1: case experimental2:
      return true;
    default:
      return false;
  }
}
}  // namespace ipv6_ext

// ---- TCP, UDP ---------------------------------------------------------------------------------

/// TCP header without options, 20 bytes.
struct tcp_hdr {
  std::uint16_t sport = 0;     ///< network order
  std::uint16_t dport = 0;     ///< network order
  std::uint32_t seq = 0;       ///< network order
  std::uint32_t ack = 0;       ///< network order
  std::uint8_t data_off = 0;   ///< header length in 32-bit words << 4 (low 4 bits reserved / AE)
  std::uint8_t flags = 0;      ///< tcp_flags
  std::uint16_t window = 0;    ///< network order
  std::uint16_t checksum = 0;  ///< raw
  std::uint16_t urg_ptr = 0;   ///< network order
};

namespace tcp_flags {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
inline constexpr std::uint8_t ece = 0x40;
inline constexpr std::uint8_t cwr = 0x80;
}  // namespace tcp_flags

/// UDP header, 8 bytes.
struct udp_hdr {
  std::uint16_t sport = 0;     ///< network order
  std::uint16_t dport = 0;     ///< network order
  std::uint16_t length = 0;    ///< network order: header + data
  std::uint16_t checksum = 0;  ///< raw; 0 = none (IPv4 only)
};

// ---- ICMP (RFC 792), ICMPv6 (RFC 4443) --------------------------------------------------------

/// The first 8 bytes of an ICMP or ICMPv6 message, laid out as an echo request/reply; for other
/// types `id` and `seq` are the type-specific "rest of header".
struct icmp_hdr {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t checksum = 0;  ///< raw
  std::uint16_t id = 0;        ///< network order (echo)
  std::uint16_t seq = 0;       ///< network order (echo)
};

namespace icmp_type {
inline constexpr std::uint8_t echo_reply = 0;
inline constexpr std::uint8_t dest_unreachable = 3;
inline constexpr std::uint8_t echo_request = 8;
inline constexpr std::uint8_t time_exceeded = 11;
}  // namespace icmp_type

namespace icmp6_type {
inline constexpr std::uint8_t dest_unreachable = 1;
inline constexpr std::uint8_t packet_too_big = 2;
inline constexpr std::uint8_t time_exceeded = 3;
inline constexpr std::uint8_t param_problem = 4;
inline constexpr std::uint8_t echo_request = 128;
inline constexpr std::uint8_t echo_reply = 129;
inline constexpr std::uint8_t router_solicitation = 133;
inline constexpr std::uint8_t router_advertisement = 134;
inline constexpr std::uint8_t neighbour_solicitation = 135;
inline constexpr std::uint8_t neighbour_advertisement = 136;
inline constexpr std::uint8_t redirect = 137;
}  // namespace icmp6_type

// ---- neighbour discovery (RFC 4861) -----------------------------------------------------------

/// Neighbour solicitation (type 135) and advertisement (type 136) without options, 24 bytes. For an
/// NS `flags` and `reserved` are zero; for an NA `flags` holds router / solicited / override.
struct nd_hdr {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint16_t checksum = 0;  ///< raw
  std::uint8_t flags = 0;      ///< nd_flags (NA only)
  std::array<std::uint8_t, 3> reserved{};
  ipv6_addr target;
};

/// NA flags, the first byte after the checksum.
namespace nd_flags {
inline constexpr std::uint8_t router = 0x80;
inline constexpr std::uint8_t solicited = 0x40;
inline constexpr std::uint8_t override_ = 0x20;  // trailing _: `override` is a contextual keyword
}  // namespace nd_flags

/// ND option types (RFC 4861 section 4.6).
namespace nd_opt {
inline constexpr std::uint8_t source_lladdr = 1;
inline constexpr std::uint8_t target_lladdr = 2;
}  // namespace nd_opt

/// Source / target link-layer address option for Ethernet: type, length 1 (in units of 8 bytes), MAC.
struct nd_opt_lladdr {
  std::uint8_t type = 0;
  std::uint8_t len = 1;
  mac_addr addr;
};

// ---- layout checks ----------------------------------------------------------------------------

template <class T>
inline constexpr bool is_wire_struct_v = std::is_standard_layout_v<T> && std::is_trivially_copyable_v<T>;

static_assert(sizeof(mac_addr) == 6 && alignof(mac_addr) == 1);
static_assert(sizeof(ether_hdr) == 14 && is_wire_struct_v<ether_hdr>);
static_assert(sizeof(vlan_hdr) == 4 && is_wire_struct_v<vlan_hdr>);
static_assert(sizeof(arp_hdr) == 28 && is_wire_struct_v<arp_hdr>);
static_assert(offsetof(arp_hdr, sha) == 8 && offsetof(arp_hdr, spa) == 14 && offsetof(arp_hdr, tha) == 18 &&
              offsetof(arp_hdr, tpa) == 24);
static_assert(sizeof(ipv4_hdr) == 20 && is_wire_struct_v<ipv4_hdr>);
static_assert(offsetof(ipv4_hdr, total_length) == 2 && offsetof(ipv4_hdr, frag_off) == 6 &&
              offsetof(ipv4_hdr, ttl) == 8 && offsetof(ipv4_hdr, checksum) == 10 && offsetof(ipv4_hdr, src) == 12 &&
              offsetof(ipv4_hdr, dst) == 16);
static_assert(sizeof(ipv6_hdr) == 40 && is_wire_struct_v<ipv6_hdr>);
static_assert(offsetof(ipv6_hdr, payload_len) == 4 && offsetof(ipv6_hdr, next_header) == 6 &&
              offsetof(ipv6_hdr, hop_limit) == 7 && offsetof(ipv6_hdr, src) == 8 && offsetof(ipv6_hdr, dst) == 24);
static_assert(sizeof(tcp_hdr) == 20 && is_wire_struct_v<tcp_hdr>);
static_assert(offsetof(tcp_hdr, data_off) == 12 && offsetof(tcp_hdr, flags) == 13 && offsetof(tcp_hdr, checksum) == 16);
static_assert(sizeof(udp_hdr) == 8 && is_wire_struct_v<udp_hdr>);
static_assert(offsetof(udp_hdr, length) == 4 && offsetof(udp_hdr, checksum) == 6);
static_assert(sizeof(icmp_hdr) == 8 && is_wire_struct_v<icmp_hdr>);
static_assert(offsetof(icmp_hdr, checksum) == 2 && offsetof(icmp_hdr, id) == 4);
static_assert(sizeof(nd_hdr) == 24 && is_wire_struct_v<nd_hdr>);
static_assert(offsetof(nd_hdr, target) == 8);
static_assert(sizeof(nd_opt_lladdr) == 8 && is_wire_struct_v<nd_opt_lladdr>);

/// Header sizes, for offset arithmetic.
inline constexpr std::size_t ether_hdr_len = sizeof(ether_hdr);
inline constexpr std::size_t vlan_hdr_len = sizeof(vlan_hdr);
inline constexpr std::size_t arp_hdr_len = sizeof(arp_hdr);
inline constexpr std::size_t ipv4_hdr_len = sizeof(ipv4_hdr);
inline constexpr std::size_t ipv6_hdr_len = sizeof(ipv6_hdr);
inline constexpr std::size_t tcp_hdr_len = sizeof(tcp_hdr);
inline constexpr std::size_t udp_hdr_len = sizeof(udp_hdr);
inline constexpr std::size_t icmp_hdr_len = sizeof(icmp_hdr);
inline constexpr std::size_t nd_hdr_len = sizeof(nd_hdr);
/// Shortest Ethernet frame without FCS; shorter frames are padded up to it.
inline constexpr std::size_t ether_min_frame_len = 60;

// ---- well-known addresses ---------------------------------------------------------------------

/// Solicited-node multicast address of `a` (RFC 4291 2.7.1): ff02::1:ff00:0/104 | low 24 bits of a.
[[nodiscard]] constexpr ipv6_addr solicited_node(const ipv6_addr& a) noexcept {
  ipv6_addr m;
  m.bytes = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, a.bytes[13], a.bytes[14], a.bytes[15]};
  return m;
}
/// All-nodes link-local multicast, ff02::1.
[[nodiscard]] constexpr ipv6_addr all_nodes() noexcept {
  ipv6_addr m;
  m.bytes = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  return m;
}
/// Ethernet address of an IPv6 multicast address (RFC 2464 section 7): 33:33 | low 32 bits.
[[nodiscard]] constexpr mac_addr multicast_mac(const ipv6_addr& a) noexcept {
  return mac_addr{{0x33, 0x33, a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]}};
}
[[nodiscard]] constexpr bool is_multicast(const ipv6_addr& a) noexcept { return a.bytes[0] == 0xff; }
[[nodiscard]] constexpr bool is_multicast(ipv4_addr a) noexcept { return (a.host() >> 28) == 0xe; }

}  // namespace fnat
