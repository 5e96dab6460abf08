// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/packet.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/packet_frames.hpp"

using fnat::drop_reason;
using fnat::inet_tuple;
using fnat::ip_family;
using fnat::mac_addr;
using fnat::packet_info;
using fnat::test::build_frame;
using fnat::test::frame_spec;
using bytes = std::vector<std::uint8_t>;

namespace {

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }
mac_addr M(const char* s) { return *mac_addr::parse(s); }

inet_tuple T(std::uint8_t proto, const char* s, std::uint16_t sp, const char* d, std::uint16_t dp) {
  return fnat::make_tuple(proto, A(s), sp, A(d), dp);
}

drop_reason parse(const bytes& f, packet_info& info, const fnat::parse_options& o = {}) {
  return fnat::parse(std::span<const std::uint8_t>(f), info, o);
}

drop_reason parse_only(const bytes& f, const fnat::parse_options& o = {}) {
  packet_info info;
  return parse(f, info, o);
}

// Frames checked by hand: computed by an independent script (Python, RFC 1071 by the book) and
// verified with `tcpdump -vv`, which reports "cksum 0x8734 (correct)" / "udp sum ok".
const bytes tcp4_in = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x45, 0x00, 0x00, 0x28,
    0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x91, 0x63, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x01, 0x01, 0x9c, 0x40,
    0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0x87, 0x34, 0x00, 0x00};
const bytes tcp4_out = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x45, 0x00, 0x00, 0x28,
    0x1c, 0x46, 0x40, 0x00, 0x3f, 0x06, 0x8d, 0xf7, 0xc6, 0x12, 0x02, 0x64, 0xc6, 0x12, 0x03, 0x0a, 0x04, 0x01,
    0x1f, 0x90, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0xfb, 0xc7, 0x00, 0x00};
const bytes udp6_in = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd, 0x60, 0x00, 0x00,
    0x00, 0x00, 0x0d, 0x11, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0x66, 0xdb, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
const bytes udp6_out = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd, 0x60, 0x00, 0x00,
    0x00, 0x00, 0x0d, 0x11, 0x3f, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x10, 0x04, 0x01, 0x00, 0x35, 0x00, 0x0d, 0x76, 0xb1, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
const bytes ns_in = {
    0x33, 0x33, 0xff, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00,
    0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x01,
    0x87, 0x00, 0x37, 0x93, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
const bytes na_out = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00,
    0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x88, 0x00, 0xb3, 0x94, 0x60, 0x00, 0x00, 0x00, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
const bytes ns_built = {
    0x33, 0x33, 0xff, 0x00, 0x00, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00,
    0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x10,
    0x87, 0x00, 0x36, 0x73, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

/// The frame `s` becomes after the FullNAT rewrite to `to`, per the tuple convention, with every
/// checksum recomputed in full by the reference builder.
frame_spec rewritten_spec(frame_spec s, const inet_tuple& to) {
  s.saddr = to.saddr;
  s.daddr = to.daddr;
  s.ttl = static_cast<std::uint8_t>(s.ttl - 1);
  if (s.proto == fnat::ipproto::tcp || s.proto == fnat::ipproto::udp) {
    s.sport = fnat::ntoh16(to.sport);
    s.dport = fnat::ntoh16(to.dport);
  } else if (s.icmp_type == fnat::icmp_type::echo_request || s.icmp_type == fnat::icmp6_type::echo_request) {
    s.icmp_id = fnat::ntoh16(to.sport);
  } else if (s.icmp_type == fnat::icmp_type::echo_reply || s.icmp_type == fnat::icmp6_type::echo_reply) {
    s.icmp_id = fnat::ntoh16(to.dport);
  }
  return s;
}

}  // namespace

// ---- parse ------------------------------------------------------------------------------------

TEST_CASE("parse: a hand-checked IPv4 TCP SYN", "[packet][parse]") {
  packet_info info;
  REQUIRE(parse(tcp4_in, info) == drop_reason::none);
  CHECK(info.kind == fnat::packet_kind::ipv4);
  CHECK(info.family == fnat::ip_family::v4);
  CHECK(info.proto == fnat::ipproto::tcp);
  CHECK(info.tuple == T(6, "198.18.0.1", 40000, "198.18.1.1", 80));
  CHECK(info.l3_off == 14);
  CHECK(info.l4_off == 34);
  CHECK(info.payload_off == 54);
  CHECK(info.frame_len == 54);
  CHECK(info.l2_len() == 14);
  CHECK(info.l3_len() == 20);
  CHECK(info.l4_len() == 20);
  CHECK(info.ttl == 64);
  CHECK(info.tcp_flags == fnat::tcp_flags::syn);
  CHECK(info.is_tcp_syn());
  CHECK_FALSE(info.has_vlan);
  CHECK(parse(tcp4_in, info, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
  // Only a SYN alone opens a connection: SYN+ACK, SYN+FIN and SYN+RST do not.
  for (const std::uint8_t extra : {fnat::tcp_flags::ack, fnat::tcp_flags::fin, fnat::tcp_flags::rst}) {
    packet_info other = info;
    other.tcp_flags = static_cast<std::uint8_t>(fnat::tcp_flags::syn | extra);
    CHECK_FALSE(other.is_tcp_syn());
  }
  packet_info psh = info;
  psh.tcp_flags = fnat::tcp_flags::syn | fnat::tcp_flags::psh;
  CHECK(psh.is_tcp_syn());
}

TEST_CASE("parse: IPv6 UDP, ICMP echo tuples, VLAN tag, TCP options, padding", "[packet][parse]") {
  packet_info info;
  REQUIRE(parse(udp6_in, info, {.verify_l4_checksum = true}) == drop_reason::none);
  CHECK(info.kind == fnat::packet_kind::ipv6);
  CHECK(info.tuple == T(17, "2001:2::1", 5353, "2001:2:0:1::1", 53));
  CHECK(info.l4_off == 54);
  CHECK(info.payload_off == 62);
  CHECK(info.frame_len == 67);

  SECTION("VLAN: one 802.1Q tag, l2_len 18") {
    frame_spec s;
    s.vlan_tci = 0xa00b;
    const bytes f = build_frame(s);
    REQUIRE(parse(f, info) == drop_reason::none);
    CHECK(info.has_vlan);
    CHECK(info.vlan_tci == 0xa00b);
    CHECK(info.l3_off == 18);
    CHECK(info.l4_off == 38);
    CHECK(info.tuple == T(6, "198.18.0.1", 40000, "198.18.1.1", 80));
  }
  SECTION("TCP options move the payload offset") {
    frame_spec s;
    s.tcp_options.assign(20, 1);
    s.payload = {1, 2, 3};
    const bytes f = build_frame(s);
    REQUIRE(parse(f, info, {.verify_l4_checksum = true}) == drop_reason::none);
    CHECK(info.payload_off == 14 + 20 + 40);
    CHECK(info.frame_len == f.size());
  }
  SECTION("Ethernet padding: frame_len is where the packet ends") {
    frame_spec s;
    s.pad_to = 60;
    const bytes f = build_frame(s);
    REQUIRE(f.size() == 60);
    REQUIRE(parse(f, info, {.verify_l4_checksum = true}) == drop_reason::none);
    CHECK(info.frame_len == 54);
  }
  SECTION("ICMP echo: the identifier is the requester's port") {
    frame_spec s;
    s.proto = fnat::ipproto::icmp;
    s.icmp_type = fnat::icmp_type::echo_request;
    s.icmp_id = 0x1234;
    bytes f = build_frame(s);
    REQUIRE(parse(f, info, {.verify_l4_checksum = true}) == drop_reason::none);
    const inet_tuple req = info.tuple;
    CHECK(req == T(1, "198.18.0.1", 0x1234, "198.18.1.1", 0));
    CHECK(info.is_echo_request());
    CHECK(info.icmp_type == 8);
    CHECK(info.payload_off == 14 + 20 + 8);
    s.icmp_type = fnat::icmp_type::echo_reply;
    std::swap(s.saddr, s.daddr);
    f = build_frame(s);
    REQUIRE(parse(f, info) == drop_reason::none);
    CHECK(info.tuple == req.reversed());
    s.icmp_type = fnat::icmp_type::dest_unreachable;
    s.icmp_code = 4;
    f = build_frame(s);
    REQUIRE(parse(f, info) == drop_reason::none);
    CHECK(info.tuple.sport == 0);
    CHECK(info.tuple.dport == 0);
    CHECK(info.icmp_code == 4);
  }
  SECTION("ICMPv6 echo") {
    frame_spec s;
    s.saddr = A("2001:2::1");
    s.daddr = A("2001:2:0:1::1");
    s.proto = fnat::ipproto::icmpv6;
    s.icmp_type = fnat::icmp6_type::echo_request;
    s.icmp_id = 7;
    const bytes f = build_frame(s);
    REQUIRE(parse(f, info, {.verify_l4_checksum = true}) == drop_reason::none);
    CHECK(info.tuple == T(58, "2001:2::1", 7, "2001:2:0:1::1", 0));
  }
}

TEST_CASE("parse: every malformed input is a counted drop with its reason", "[packet][parse][drop]") {
  frame_spec v4;
  frame_spec v6;
  v6.saddr = A("2001:2::1");
  v6.daddr = A("2001:2:0:1::1");
  v6.proto = fnat::ipproto::udp;
  v6.payload = {1, 2, 3, 4};
  const bytes good4 = build_frame(v4);
  const bytes good6 = build_frame(v6);
  REQUIRE(parse_only(good4) == drop_reason::none);
  REQUIRE(parse_only(good6) == drop_reason::none);

  struct row {
    const char* what;
    bytes frame;
    drop_reason want;
  };
  std::vector<row> rows;
  auto mut4 = [&](const char* what, drop_reason want, auto&& fn) {
    bytes f = good4;
    fn(f);
    rows.push_back({what, f, want});
  };
  auto mut6 = [&](const char* what, drop_reason want, auto&& fn) {
    bytes f = good6;
    fn(f);
    rows.push_back({what, f, want});
  };
  auto spec4 = [&](const char* what, drop_reason want, auto&& fn) {
    frame_spec s = v4;
    fn(s);
    rows.push_back({what, build_frame(s), want});
  };
  auto spec6 = [&](const char* what, drop_reason want, auto&& fn) {
    frame_spec s = v6;
    fn(s);
    rows.push_back({what, build_frame(s), want});
  };

  rows.push_back({"empty frame", {}, drop_reason::eth_truncated});
  rows.push_back({"13 bytes", bytes(good4.begin(), good4.begin() + 13), drop_reason::eth_truncated});
  mut4("VLAN tag cut short", drop_reason::eth_truncated, [](bytes& f) {
    f.resize(16);
    f[12] = 0x81;
    f[13] = 0x00;
  });
  mut4("unknown EtherType", drop_reason::unsupported_ethertype, [](bytes& f) { f[12] = 0x88; f[13] = 0xcc; });
  mut4("QinQ outer tag", drop_reason::unsupported_ethertype, [](bytes& f) { f[12] = 0x88; f[13] = 0xa8; });
  spec4("two 802.1Q tags", drop_reason::unsupported_ethertype, [](frame_spec& s) { s.vlan_tci = 5; });
  rows.back().frame[16] = 0x81;  // inner EtherType 0x8100
  rows.back().frame[17] = 0x00;
  mut4("multicast source MAC", drop_reason::bad_source, [](bytes& f) { f[6] = 0x01; });
  mut4("broadcast source MAC", drop_reason::bad_source, [](bytes& f) { std::fill(f.begin() + 6, f.begin() + 12, 0xff); });
  mut4("IPv4 header cut at 19 bytes", drop_reason::ip_truncated, [](bytes& f) { f.resize(14 + 19); });
  mut6("IPv6 header cut at 39 bytes", drop_reason::ip_truncated, [](bytes& f) { f.resize(14 + 39); });
  mut4("IPv4 EtherType, version 6", drop_reason::bad_ip_version, [](bytes& f) { f[14] = 0x65; });
  mut6("IPv6 EtherType, version 4", drop_reason::bad_ip_version, [](bytes& f) { f[14] = 0x45; });
  mut4("IHL 4", drop_reason::bad_ihl, [](bytes& f) { f[14] = 0x44; });
  mut4("IHL 0", drop_reason::bad_ihl, [](bytes& f) { f[14] = 0x40; });
  mut4("IHL 6 (options)", drop_reason::ip_options, [](bytes& f) { f[14] = 0x46; });
  mut4("IHL 15 beyond total length", drop_reason::bad_ip_length, [](bytes& f) {
    f[14] = 0x4f;
    f[16] = 0;
    f[17] = 40;
  });
  mut4("total length below the header", drop_reason::bad_ip_length, [](bytes& f) { f[16] = 0; f[17] = 19; });
  mut4("total length beyond the frame", drop_reason::bad_ip_length, [](bytes& f) { f[16] = 0; f[17] = 41; });
  mut6("payload length beyond the frame", drop_reason::bad_ip_length, [](bytes& f) { f[19] = 13; });
  mut4("MF set", drop_reason::fragment, [](bytes& f) { f[20] |= 0x20; });
  mut4("fragment offset", drop_reason::fragment, [](bytes& f) { f[21] = 1; });
  mut6("IPv6 fragment header", drop_reason::fragment, [](bytes& f) { f[20] = 44; });
  mut6("IPv6 hop-by-hop", drop_reason::ipv6_ext_header, [](bytes& f) { f[20] = 0; });
  mut6("IPv6 routing header", drop_reason::ipv6_ext_header, [](bytes& f) { f[20] = 43; });
  mut6("IPv6 destination options", drop_reason::ipv6_ext_header, [](bytes& f) { f[20] = 60; });
  mut6("IPv6 AH", drop_reason::ipv6_ext_header, [](bytes& f) { f[20] = 51; });
  mut6("IPv6 no next header", drop_reason::unsupported_l4, [](bytes& f) { f[20] = 59; });
  // inet_addr cannot hold a mapped IPv6 address apart from IPv4, so write the bytes.
  mut6("IPv4-mapped source", drop_reason::ipv4_mapped, [](bytes& f) {
    std::fill(f.begin() + 22, f.begin() + 32, 0);
    f[32] = f[33] = 0xff;
  });
  mut6("IPv4-mapped destination", drop_reason::ipv4_mapped, [](bytes& f) {
    std::fill(f.begin() + 38, f.begin() + 48, 0);
    f[48] = f[49] = 0xff;
  });
  spec4("IPv4 multicast source", drop_reason::bad_source, [](frame_spec& s) { s.saddr = A("224.0.0.1"); });
  spec4("IPv4 broadcast source", drop_reason::bad_source, [](frame_spec& s) { s.saddr = A("255.255.255.255"); });
  spec4("IPv4 0.0.0.0 source", drop_reason::bad_source, [](frame_spec& s) { s.saddr = A("0.0.0.0"); });
  spec4("IPv4 loopback source", drop_reason::bad_source, [](frame_spec& s) { s.saddr = A("127.0.0.1"); });
  spec6("IPv6 multicast source", drop_reason::bad_source, [](frame_spec& s) { s.saddr = A("ff02::1"); });
  spec6("IPv6 loopback source", drop_reason::bad_source, [](frame_spec& s) { s.saddr = A("::1"); });
  spec6("IPv6 unspecified source on UDP", drop_reason::bad_source, [](frame_spec& s) { s.saddr = A("::"); });
  spec4("IPv4 SCTP", drop_reason::unsupported_l4, [](frame_spec& s) { s.proto = 132; });
  spec4("ICMPv6 over IPv4", drop_reason::unsupported_l4, [](frame_spec& s) { s.proto = fnat::ipproto::icmpv6; });
  spec6("ICMPv4 over IPv6", drop_reason::unsupported_l4, [](frame_spec& s) { s.proto = fnat::ipproto::icmp; });
  mut4("TCP header cut (IP says 19 bytes of TCP)", drop_reason::l4_truncated, [](bytes& f) {
    f[17] = 39;
    f.resize(14 + 39);
  });
  spec4("UDP: 7 bytes", drop_reason::l4_truncated, [](frame_spec& s) { s.proto = fnat::ipproto::udp; });
  rows.back().frame[17] = 27;  // total length 27: 7 bytes of UDP
  spec4("ICMP: 7 bytes", drop_reason::l4_truncated, [](frame_spec& s) { s.proto = fnat::ipproto::icmp; });
  rows.back().frame[17] = 27;
  mut4("TCP data offset 4", drop_reason::bad_tcp_offset, [](bytes& f) { f[46] = 0x40; });
  mut4("TCP data offset 0", drop_reason::bad_tcp_offset, [](bytes& f) { f[46] = 0x00; });
  mut4("TCP data offset 6 beyond the segment", drop_reason::bad_tcp_offset, [](bytes& f) { f[46] = 0x60; });
  spec4("TCP data offset 15 beyond the segment", drop_reason::bad_tcp_offset, [](frame_spec& s) { s.payload.assign(30, 0); });
  rows.back().frame[46] = 0xf0;
  mut6("UDP length 7", drop_reason::bad_udp_length, [](bytes& f) { f[59] = 7; });
  mut6("UDP length 0", drop_reason::bad_udp_length, [](bytes& f) { f[59] = 0; });
  mut6("UDP length shorter than the payload", drop_reason::bad_udp_length, [](bytes& f) { f[59] = 11; });
  mut6("UDP length longer than the payload", drop_reason::bad_udp_length, [](bytes& f) { f[59] = 13; });
  mut6("IPv6 UDP checksum 0", drop_reason::udp_zero_checksum_v6, [](bytes& f) { f[60] = f[61] = 0; });
  // ARP
  const bytes arp = [] {
    bytes f(60);
    const std::size_t n = fnat::build_arp_request(f, M("02:00:00:00:00:02"), fnat::ipv4_addr::from_host(0xc6120001),
                                                  fnat::ipv4_addr::from_host(0xc6120101));
    f.resize(n);
    return f;
  }();
  REQUIRE(parse_only(arp) == drop_reason::none);
  rows.push_back({"ARP cut at 27 bytes", bytes(arp.begin(), arp.begin() + 14 + 27), drop_reason::arp_malformed});
  for (std::size_t i : {14u, 15u, 16u, 17u, 18u, 19u, 21u}) {
    bytes f = arp;
    f[i] ^= 0x10;
    rows.push_back({"ARP htype/ptype/hlen/plen/op field changed", f, drop_reason::arp_malformed});
  }
  {
    bytes f = arp;
    f[22] = 0x01;  // multicast sender hardware address
    rows.push_back({"ARP multicast sender", f, drop_reason::bad_source});
  }

  for (const auto& r : rows) {
    INFO(r.what);
    packet_info info;
    // Compared as std::string: names in the failure message (Catch2's string_view printer may be absent).
    CHECK(std::string(fnat::to_string(parse(r.frame, info))) == std::string(fnat::to_string(r.want)));
    // The same bytes as the first segment of a longer frame: the parse must not read beyond them
    // (ASan checks the reads of this exactly-sized copy), and if it accepts (a length that was too
    // long for the frame now fits), every header it reports lies within them.
    bytes copy(r.frame);
    if (fnat::parse(std::span<const std::uint8_t>(copy), copy.size() + 100, info) == drop_reason::none)
      CHECK(info.payload_off <= copy.size());
  }
}

TEST_CASE("parse: checksum verification is an option", "[packet][parse]") {
  bytes f = tcp4_in;
  f[24] ^= 0xff;  // IPv4 header checksum
  CHECK(parse_only(f) == drop_reason::none);
  CHECK(parse_only(f, {.verify_ip_checksum = true}) == drop_reason::bad_ip_checksum);
  f = tcp4_in;
  f[50] ^= 1;  // TCP checksum
  CHECK(parse_only(f) == drop_reason::none);
  CHECK(parse_only(f, {.verify_l4_checksum = true}) == drop_reason::bad_l4_checksum);
  f = udp6_in;
  f.back() ^= 1;  // UDP payload
  CHECK(parse_only(f, {.verify_l4_checksum = true}) == drop_reason::bad_l4_checksum);
  frame_spec s;
  s.proto = fnat::ipproto::udp;
  s.udp_no_checksum = true;
  s.payload = {9, 9, 9};
  CHECK(parse_only(build_frame(s), {.verify_l4_checksum = true}) == drop_reason::none);  // 0 = none
}

TEST_CASE("parse: headers beyond the contiguous prefix are header_split", "[packet][parse]") {
  packet_info info;
  const std::span<const std::uint8_t> all(tcp4_in);
  CHECK(fnat::parse(all.first(10), all.size(), info) == drop_reason::header_split);
  CHECK(fnat::parse(all.first(30), all.size(), info) == drop_reason::header_split);
  CHECK(fnat::parse(all.first(40), all.size(), info) == drop_reason::header_split);
  CHECK(fnat::parse(all.first(54), all.size() + 1000, info) == drop_reason::none);  // the rest is padding
  CHECK(info.frame_len == 54);
  CHECK(fnat::parse(all.first(54), all.size(), info) == drop_reason::none);
  // Verifying L4 checksums needs the whole message.
  CHECK(fnat::parse(all.first(54), all.size() + 6, info, {.verify_l4_checksum = true}) == drop_reason::none);
  frame_spec s;
  s.payload.assign(100, 7);
  const bytes f = build_frame(s);
  CHECK(fnat::parse(std::span<const std::uint8_t>(f).first(60), f.size(), info) == drop_reason::none);
  CHECK(fnat::parse(std::span<const std::uint8_t>(f).first(60), f.size(), info, {.verify_l4_checksum = true}) ==
        drop_reason::header_split);
}

TEST_CASE("drop reasons have distinct names", "[packet]") {
  std::set<std::string> names;
  for (std::size_t i = 0; i < fnat::drop_reason_count; ++i) {
    const std::string n(fnat::to_string(static_cast<drop_reason>(i)));
    CHECK(n != "unknown");
    names.insert(n);
  }
  CHECK(names.size() == fnat::drop_reason_count);
  CHECK(std::string(fnat::to_string(static_cast<drop_reason>(fnat::drop_reason_count))) == "unknown");
}

// ---- rewrite ----------------------------------------------------------------------------------

TEST_CASE("rewrite: hand-checked frames, both directions", "[packet][rewrite]") {
  SECTION("IPv4 TCP inbound: client:cport -> VIP:vport becomes LIP:lport -> RS:rport") {
    bytes f = tcp4_in;
    packet_info info;
    REQUIRE(parse(f, info) == drop_reason::none);
    const inet_tuple to = T(6, "198.18.2.100", 1025, "198.18.3.10", 8080);
    const auto r = fnat::rewrite(f, info, to);
    REQUIRE(r.ok());
    CHECK_FALSE(r.ip_cksum_offloaded);
    CHECK_FALSE(r.l4_cksum_offloaded);
    CHECK(f == tcp4_out);
    CHECK(info.tuple == to);
    CHECK(info.ttl == 63);
  }
  SECTION("IPv4 TCP outbound: RS:rport -> LIP:lport becomes VIP:vport -> client:cport (bytes)") {
    // The reverse rewrite of tcp4_out's reply: swap the roles and come back to the client's view.
    frame_spec reply;
    reply.saddr = A("198.18.3.10");
    reply.sport = 8080;
    reply.daddr = A("198.18.2.100");
    reply.dport = 1025;
    reply.tcp_flags = fnat::tcp_flags::syn | fnat::tcp_flags::ack;
    bytes f = build_frame(reply);
    packet_info info;
    REQUIRE(parse(f, info) == drop_reason::none);
    const inet_tuple to = T(6, "198.18.1.1", 80, "198.18.0.1", 40000);
    REQUIRE(fnat::rewrite(f, info, to).ok());
    CHECK(f == build_frame(rewritten_spec(reply, to)));
  }
  SECTION("IPv6 UDP") {
    bytes f = udp6_in;
    packet_info info;
    REQUIRE(parse(f, info) == drop_reason::none);
    const inet_tuple to = T(17, "2001:2:0:2::100", 1025, "2001:2:0:3::10", 53);
    REQUIRE(fnat::rewrite(f, info, to).ok());
    CHECK(f == udp6_out);
    CHECK(info.tuple == to);
  }
}

TEST_CASE("rewrite equals full recomputation, bit for bit, on random packets", "[packet][rewrite]") {
  std::mt19937_64 rng(42);
  int counts[3] = {0, 0, 0};
  for (int iter = 0; iter < 6000; ++iter) {
    const frame_spec s = fnat::test::random_spec(rng);
    bytes f = build_frame(s);
    packet_info info;
    INFO("iter " << iter << " proto " << int(s.proto) << " v4 " << s.saddr.is_v4());
    REQUIRE(parse(f, info, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
    const ip_family fam = info.family;
    inet_tuple to{fnat::test::random_addr(rng, fam), fnat::test::random_addr(rng, fam),
                  static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng()), info.proto, {0, 0, 0}};
    if (rng() % 8 == 0) to.saddr = info.tuple.saddr;  // unchanged fields are fine too
    const auto r = fnat::rewrite(f, info, to);
    REQUIRE(r.ok());
    const bytes want = build_frame(rewritten_spec(s, to));
    REQUIRE(f == want);
    // A re-parse gives the tuple rewrite reported.
    packet_info again;
    REQUIRE(parse(f, again, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
    REQUIRE(again.tuple == info.tuple);
    REQUIRE(again.ttl == info.ttl);
    if (info.proto == fnat::ipproto::tcp || info.proto == fnat::ipproto::udp) REQUIRE(info.tuple == to);
    ++counts[info.proto == fnat::ipproto::tcp ? 0 : info.proto == fnat::ipproto::udp ? 1 : 2];
  }
  CHECK(counts[0] > 1500);
  CHECK(counts[1] > 1500);
  CHECK(counts[2] > 1500);
}

TEST_CASE("rewrite with checksum offload: IPv4 checksum 0, L4 checksum = pseudo-header sum", "[packet][rewrite]") {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 3000; ++iter) {
    const frame_spec s = fnat::test::random_spec(rng);
    bytes f = build_frame(s);
    packet_info info;
    REQUIRE(parse(f, info) == drop_reason::none);
    const inet_tuple to{fnat::test::random_addr(rng, info.family), fnat::test::random_addr(rng, info.family),
                        static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng()), info.proto, {0, 0, 0}};
    const fnat::checksum_offload ol{.ipv4 = (rng() & 1) != 0, .tcp = (rng() & 1) != 0, .udp = (rng() & 1) != 0};
    const packet_info before = info;
    const auto r = fnat::rewrite(f, info, to, ol);
    REQUIRE(r.ok());
    bytes want = build_frame(rewritten_spec(s, to));
    const bool v4 = before.family == ip_family::v4;
    CHECK(r.ip_cksum_offloaded == (v4 && ol.ipv4));
    if (r.ip_cksum_offloaded) want[before.l3_off + 10] = want[before.l3_off + 11] = 0;
    const bool udp_none = v4 && s.proto == fnat::ipproto::udp && s.udp_no_checksum;
    const bool l4_ol = (s.proto == fnat::ipproto::tcp && ol.tcp) || (s.proto == fnat::ipproto::udp && ol.udp && !udp_none);
    CHECK(r.l4_cksum_offloaded == l4_ol);
    if (l4_ol) {
      // What the NIC expects: the pseudo-header sum, not complemented (laid out and summed by hand).
      std::vector<std::uint8_t> ph;
      const auto& sa = to.saddr.raw();
      const auto& da = to.daddr.raw();
      const std::size_t l4len = info.l4_len();
      if (v4) {
        ph.insert(ph.end(), sa.begin() + 12, sa.end());
        ph.insert(ph.end(), da.begin() + 12, da.end());
        ph.insert(ph.end(), {0, s.proto, static_cast<std::uint8_t>(l4len >> 8), static_cast<std::uint8_t>(l4len)});
      } else {
        ph.insert(ph.end(), sa.begin(), sa.end());
        ph.insert(ph.end(), da.begin(), da.end());
        ph.insert(ph.end(), {0, 0, static_cast<std::uint8_t>(l4len >> 8), static_cast<std::uint8_t>(l4len), 0, 0, 0, s.proto});
      }
      const std::size_t ck = before.l4_off + (s.proto == fnat::ipproto::tcp ? 16 : 6);
      fnat::test::put16(want, ck, fnat::test::ref_sum(ph.data(), ph.size()));
      // The NIC's job: complement of the sum over the segment with that seed equals the software checksum.
      bytes nic = f;
      const auto seg = std::span<const std::uint8_t>(nic).subspan(before.l4_off, l4len);
      std::uint16_t c = static_cast<std::uint16_t>(~fnat::test::ref_sum(seg.data(), seg.size()));
      if (s.proto == fnat::ipproto::udp && c == 0) c = 0xffff;
      fnat::test::put16(nic, ck, c);
      bytes soft = build_frame(rewritten_spec(s, to));
      CHECK(fnat::test::get16(nic, ck) == fnat::test::get16(soft, ck));
    }
    REQUIRE(f == want);
  }
}

TEST_CASE("rewrite: UDP checksum rules of RFC 768", "[packet][rewrite]") {
  SECTION("an IPv4 UDP checksum of 0 (none) stays 0") {
    frame_spec s;
    s.proto = fnat::ipproto::udp;
    s.udp_no_checksum = true;
    s.payload = {1, 2, 3};
    bytes f = build_frame(s);
    packet_info info;
    REQUIRE(parse(f, info) == drop_reason::none);
    const auto r = fnat::rewrite(f, info, T(17, "198.18.2.100", 1025, "198.18.3.10", 53), {.ipv4 = false, .tcp = true, .udp = true});
    REQUIRE(r.ok());
    CHECK_FALSE(r.l4_cksum_offloaded);
    CHECK(fnat::test::get16(f, info.l4_off + 6) == 0);
    CHECK(fnat::test::get16(f, info.l4_off) == 1025);
  }
  SECTION("a rewrite whose checksum computes to 0 writes 0xffff") {
    for (const char* fam : {"v4", "v6"}) {
      frame_spec s;
      s.proto = fnat::ipproto::udp;
      s.payload = {0xde, 0xad, 0xbe, 0xef, 0x01};
      if (std::string(fam) == "v6") {
        s.saddr = A("2001:2::1");
        s.daddr = A("2001:2:0:1::1");
      }
      bytes f = build_frame(s);
      packet_info info;
      REQUIRE(parse(f, info) == drop_reason::none);
      inet_tuple to = info.tuple;
      to.sport = 0;
      // With sport 0 the rewritten datagram's complemented sum is c0; a source port worth c0 makes the
      // full sum 0xffff, i.e. a computed checksum of 0.
      const bytes probe = build_frame(rewritten_spec(s, to));
      const std::uint16_t c0 = fnat::test::get16(probe, info.l4_off + 6);
      to.sport = fnat::hton16(c0);
      REQUIRE(fnat::rewrite(f, info, to).ok());
      INFO(fam);
      CHECK(fnat::test::get16(f, info.l4_off + 6) == 0xffff);
      CHECK(f == build_frame(rewritten_spec(s, to)));
      packet_info again;
      CHECK(parse(f, again, {.verify_l4_checksum = true}) == drop_reason::none);
    }
  }
}

TEST_CASE("ICMPv4 data that ends up all zero gets checksum 0xffff, the one that verifies", "[packet][rewrite]") {
  // An echo reply whose identifier becomes 0, with sequence 0 and no payload: every covered word is 0.
  frame_spec s;
  s.saddr = A("198.18.3.10");
  s.daddr = A("198.18.2.100");
  s.proto = fnat::ipproto::icmp;
  s.icmp_type = fnat::icmp_type::echo_reply;
  s.icmp_id = 1025;
  s.icmp_seq = 0;
  bytes f = build_frame(s);
  packet_info info;
  REQUIRE(parse(f, info, {.verify_l4_checksum = true}) == drop_reason::none);
  REQUIRE(fnat::rewrite(f, info, T(1, "198.18.1.1", 0, "198.18.0.1", 0)).ok());
  CHECK(fnat::test::get16(f, info.l4_off + 2) == 0xffff);
  CHECK(fnat::l4_checksum_ok(f, info));
  // The same for the reply to an echo request with identifier and sequence 0 and no payload.
  s.icmp_type = fnat::icmp_type::echo_request;
  s.icmp_id = 0;
  f = build_frame(s);
  REQUIRE(parse(f, info, {.verify_l4_checksum = true}) == drop_reason::none);
  REQUIRE(fnat::make_echo_reply(f, info, M("02:00:00:00:00:01")) == fnat::errc::ok);
  CHECK(fnat::test::get16(f, info.l4_off + 2) == 0xffff);
  CHECK(fnat::l4_checksum_ok(f, info));
}

TEST_CASE("rewrite: TTL / hop limit <= 1 is ttl_expired and nothing is written", "[packet][rewrite]") {
  for (std::uint8_t ttl : {0, 1}) {
    for (bool v6 : {false, true}) {
      frame_spec s;
      s.ttl = ttl;
      if (v6) {
        s.saddr = A("2001:2::1");
        s.daddr = A("2001:2:0:1::1");
      }
      bytes f = build_frame(s);
      const bytes orig = f;
      packet_info info;
      REQUIRE(parse(f, info) == drop_reason::none);
      CHECK(info.ttl_expired());
      const inet_tuple to = v6 ? T(6, "2001:2::5", 1, "2001:2::6", 2) : T(6, "198.18.0.5", 1, "198.18.0.6", 2);
      CHECK(fnat::rewrite(f, info, to).reason == drop_reason::ttl_expired);
      CHECK(f == orig);
    }
  }
  frame_spec s;
  s.ttl = 2;
  bytes f = build_frame(s);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  CHECK_FALSE(info.ttl_expired());
  CHECK(fnat::rewrite(f, info, info.tuple).ok());
  CHECK(f[14 + 8] == 1);
}

TEST_CASE("rewrite: inbound then outbound restores the client's view", "[packet][rewrite]") {
  std::mt19937_64 rng(9);
  for (int iter = 0; iter < 2000; ++iter) {
    frame_spec s = fnat::test::random_spec(rng);
    s.ttl = std::max<std::uint8_t>(s.ttl, 3);
    bytes f = build_frame(s);
    packet_info info;
    REQUIRE(parse(f, info) == drop_reason::none);
    const inet_tuple client = info.tuple;
    const inet_tuple in{fnat::test::random_addr(rng, info.family), fnat::test::random_addr(rng, info.family),
                        static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng()), info.proto, {0, 0, 0}};
    REQUIRE(fnat::rewrite(f, info, in).ok());
    inet_tuple back = client;
    if (info.proto == fnat::ipproto::icmp || info.proto == fnat::ipproto::icmpv6) {
      back.sport = back.dport = client.sport | client.dport;  // the id, wherever the convention put it
    }
    REQUIRE(fnat::rewrite(f, info, back).ok());
    s.ttl = static_cast<std::uint8_t>(s.ttl - 2);
    REQUIRE(f == build_frame(s));
  }
}

// ---- ARP ----------------------------------------------------------------------------------------

TEST_CASE("ARP: parse a request, answer it, exact bytes", "[packet][arp]") {
  const mac_addr client = M("02:00:00:00:00:02");
  const mac_addr ours = M("02:00:00:00:00:01");
  const auto cip = fnat::ipv4_addr::from_host(0xc6120001);  // 198.18.0.1
  const auto vip = fnat::ipv4_addr::from_host(0xc6120101);  // 198.18.1.1
  bytes req(64, 0xee);
  const std::size_t n = fnat::build_arp_request(req, client, cip, vip);
  REQUIRE(n == 60);
  req.resize(n);
  const bytes want_req = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x06,  // Ethernet
                          0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,                          // ARP request
                          0x02, 0, 0, 0, 0, 0x02, 198, 18, 0, 1,                                   // sender
                          0, 0, 0, 0, 0, 0, 198, 18, 1, 1,                                         // target
                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};                   // padding
  CHECK(req == want_req);

  packet_info info;
  REQUIRE(parse(req, info) == drop_reason::none);
  CHECK(info.kind == fnat::packet_kind::arp);
  CHECK(info.frame_len == 42);
  CHECK(info.tuple.saddr == fnat::inet_addr(cip));
  CHECK(info.tuple.daddr == fnat::inet_addr(vip));
  const fnat::arp_message m = fnat::parse_arp(req, info);
  CHECK(m.op == fnat::arp_op::request);
  CHECK(m.sha == client);
  CHECK(m.spa == cip);
  CHECK(m.tha.is_zero());
  CHECK(m.tpa == vip);
  CHECK_FALSE(m.is_gratuitous());

  bytes rep(60);
  REQUIRE(fnat::build_arp_reply(rep, fnat::reply_l2(req, info, ours), m, ours) == 60);
  const bytes want_rep = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
                          0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
                          0x02, 0, 0, 0, 0, 0x01, 198, 18, 1, 1,
                          0x02, 0, 0, 0, 0, 0x02, 198, 18, 0, 1,
                          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(rep == want_rep);
  REQUIRE(parse(rep, info) == drop_reason::none);
  CHECK(fnat::parse_arp(rep, info).op == fnat::arp_op::reply);

  // Too small a buffer: nothing written.
  bytes small(59, 0xaa);
  CHECK(fnat::build_arp_reply(small, fnat::l2_spec{}, m, ours) == 0);
  CHECK(small == bytes(59, 0xaa));
}

TEST_CASE("ARP: VLAN tag carried into the reply, and a unicast refresh request", "[packet][arp]") {
  const mac_addr ours = M("02:00:00:00:00:01");
  bytes req(64);
  req.resize(fnat::build_arp_request(req, M("02:00:00:00:00:02"), fnat::ipv4_addr::from_host(0xc6120001),
                                     fnat::ipv4_addr::from_host(0xc6120101), true, 0x0123));
  REQUIRE(req.size() == 60);
  CHECK(req[12] == 0x81);
  CHECK(req[14] == 0x01);
  CHECK(req[15] == 0x23);
  packet_info info;
  REQUIRE(parse(req, info) == drop_reason::none);
  CHECK(info.has_vlan);
  CHECK(info.l3_off == 18);
  const auto m = fnat::parse_arp(req, info);
  bytes rep(64);
  rep.resize(fnat::build_arp_reply(rep, fnat::reply_l2(req, info, ours), m, ours));
  packet_info ri;
  REQUIRE(parse(rep, ri) == drop_reason::none);
  CHECK(ri.vlan_tci == 0x0123);
  CHECK(fnat::parse_arp(rep, ri).tpa == m.spa);

  bytes uni(60);
  REQUIRE(fnat::build_arp_request(uni, ours, m.tpa, m.spa, false, 0, M("02:00:00:00:00:02")) == 60);
  CHECK(std::equal(uni.begin(), uni.begin() + 6, M("02:00:00:00:00:02").bytes.begin()));
}

// ---- ND -----------------------------------------------------------------------------------------

TEST_CASE("ND: parse a solicitation, answer it, exact bytes", "[packet][nd]") {
  const mac_addr ours = M("02:00:00:00:00:01");
  packet_info info;
  REQUIRE(parse(ns_in, info) == drop_reason::none);
  CHECK(info.proto == fnat::ipproto::icmpv6);
  CHECK(info.icmp_type == fnat::icmp6_type::neighbour_solicitation);
  fnat::nd_message ns;
  REQUIRE(fnat::parse_nd(ns_in, info, ns) == drop_reason::none);
  CHECK(ns.type == fnat::icmp6_type::neighbour_solicitation);
  CHECK(ns.target == *fnat::ipv6_addr::parse("2001:2:0:1::1"));
  CHECK(ns.has_lladdr);
  CHECK(ns.lladdr == M("02:00:00:00:00:02"));

  bytes na(100);
  const std::size_t n = fnat::build_na_reply(na, fnat::reply_l2(ns_in, info, ours), info.tuple.saddr.v6(), ns, ours);
  na.resize(n);
  CHECK(na == na_out);
  packet_info ni;
  REQUIRE(parse(na, ni, {.verify_l4_checksum = true}) == drop_reason::none);
  fnat::nd_message adv;
  REQUIRE(fnat::parse_nd(na, ni, adv) == drop_reason::none);
  CHECK(adv.flags == (fnat::nd_flags::solicited | fnat::nd_flags::override_));
  CHECK(adv.lladdr == ours);
  CHECK(adv.target == ns.target);
}

TEST_CASE("ND: build a solicitation to the solicited-node address, exact bytes", "[packet][nd]") {
  bytes f(100);
  f.resize(fnat::build_ns(f, M("02:00:00:00:00:01"), *fnat::ipv6_addr::parse("2001:2:0:2::100"),
                          *fnat::ipv6_addr::parse("2001:2:0:3::10")));
  CHECK(f == ns_built);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  fnat::nd_message m;
  REQUIRE(fnat::parse_nd(f, info, m) == drop_reason::none);
  CHECK(m.target == *fnat::ipv6_addr::parse("2001:2:0:3::10"));
  // Unicast probe: to the target itself at its cached MAC.
  bytes u(100);
  u.resize(fnat::build_ns(u, M("02:00:00:00:00:01"), *fnat::ipv6_addr::parse("2001:2:0:2::100"),
                          *fnat::ipv6_addr::parse("2001:2:0:3::10"), false, 0, M("02:00:00:00:00:33")));
  REQUIRE(parse(u, info) == drop_reason::none);
  CHECK(info.tuple.daddr == A("2001:2:0:3::10"));
  CHECK(u[5] == 0x33);
  CHECK(fnat::parse_nd(u, info, m) == drop_reason::none);
}

TEST_CASE("ND: duplicate address detection is answered to all-nodes, unsolicited", "[packet][nd]") {
  bytes dad = ns_in;
  // Source :: and no source link-layer option (RFC 4861 7.1.1); recompute the checksum.
  std::fill(dad.begin() + 22, dad.begin() + 38, 0);
  dad.resize(dad.size() - 8);
  dad[19] = 24;
  dad[56] = dad[57] = 0;
  {
    packet_info tmp;
    REQUIRE(parse(dad, tmp) == drop_reason::none);
    const std::uint16_t c = fnat::internet_checksum(std::span<const std::uint8_t>(dad).subspan(54),
                                                    fnat::l4_pseudo_header_sum(dad, tmp));
    std::memcpy(&dad[56], &c, 2);
  }
  packet_info info;
  REQUIRE(parse(dad, info) == drop_reason::none);
  fnat::nd_message ns;
  REQUIRE(fnat::parse_nd(dad, info, ns) == drop_reason::none);
  CHECK_FALSE(ns.has_lladdr);
  bytes na(100);
  na.resize(fnat::build_na_reply(na, fnat::reply_l2(dad, info, M("02:00:00:00:00:01")), info.tuple.saddr.v6(), ns,
                                 M("02:00:00:00:00:01")));
  packet_info ni;
  REQUIRE(parse(na, ni) == drop_reason::none);
  CHECK(ni.tuple.daddr == A("ff02::1"));
  CHECK(std::equal(na.begin(), na.begin() + 6, fnat::multicast_mac(fnat::all_nodes()).bytes.begin()));
  fnat::nd_message adv;
  REQUIRE(fnat::parse_nd(na, ni, adv) == drop_reason::none);
  CHECK(adv.flags == fnat::nd_flags::override_);
}

TEST_CASE("ND: RFC 4861 7.1 validation failures are nd_malformed", "[packet][nd]") {
  auto fix_checksum = [](bytes& f) {
    packet_info tmp;
    REQUIRE(parse(f, tmp) == drop_reason::none);
    f[56] = f[57] = 0;
    const std::uint16_t c =
        fnat::internet_checksum(std::span<const std::uint8_t>(f).subspan(54, tmp.l4_len()), fnat::l4_pseudo_header_sum(f, tmp));
    std::memcpy(&f[56], &c, 2);
  };
  auto verdict = [](const bytes& f) {
    packet_info info;
    const drop_reason r = parse(f, info);
    if (r != drop_reason::none) return r;
    fnat::nd_message m;
    return fnat::parse_nd(f, info, m);
  };
  REQUIRE(verdict(ns_in) == drop_reason::none);
  struct row {
    const char* what;
    std::function<void(bytes&)> fn;
  };
  const std::vector<row> rows = {
      {"hop limit 254", [](bytes& f) { f[21] = 254; }},
      {"hop limit 64", [](bytes& f) { f[21] = 64; }},
      {"code 1", [&](bytes& f) { f[55] = 1; fix_checksum(f); }},
      {"bad checksum", [](bytes& f) { f[57] ^= 1; }},
      {"multicast target", [&](bytes& f) { f[62] = 0xff; fix_checksum(f); }},
      {"option length 0", [&](bytes& f) { f[79] = 0; fix_checksum(f); }},
      {"option runs past the message", [&](bytes& f) { f[79] = 2; fix_checksum(f); }},
      {"link-layer option of 16 bytes", [&](bytes& f) {
         f[79] = 2;
         f.insert(f.end(), 8, 0);
         f[19] = 40;
         fix_checksum(f);
       }},
      {"one stray option byte", [&](bytes& f) {
         f.push_back(1);
         f[19] = 33;
         fix_checksum(f);
       }},
      {"message shorter than 24 bytes", [&](bytes& f) {
         f.resize(14 + 40 + 20);
         f[19] = 20;
         fix_checksum(f);
       }},
      {"DAD (source ::) with a source link-layer option", [&](bytes& f) {
         std::fill(f.begin() + 22, f.begin() + 38, 0);
         fix_checksum(f);
       }},
      {"DAD (source ::) to a unicast destination", [&](bytes& f) {
         std::fill(f.begin() + 22, f.begin() + 38, 0);
         f.resize(f.size() - 8);
         f[19] = 24;
         std::copy(ns_in.begin() + 62, ns_in.begin() + 78, f.begin() + 38);  // dst = target
         fix_checksum(f);
       }},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    bytes f = ns_in;
    r.fn(f);
    CHECK(verdict(f) == drop_reason::nd_malformed);
  }
  // NA to a multicast destination with the solicited flag.
  bytes na = na_out;
  std::copy(ns_in.begin() + 38, ns_in.begin() + 54, na.begin() + 38);  // dst ff02::1:ff00:1
  fix_checksum(na);
  CHECK(verdict(na) == drop_reason::nd_malformed);
  na[58] = fnat::nd_flags::override_;  // unsolicited: fine
  fix_checksum(na);
  CHECK(verdict(na) == drop_reason::none);
  // Unknown options are skipped; a non-ND ICMPv6 message is not ND.
  bytes ext = ns_in;
  ext.insert(ext.end(), {14, 1, 0, 0, 0, 0, 0, 0});  // nonce option
  ext[19] = 40;
  fix_checksum(ext);
  CHECK(verdict(ext) == drop_reason::none);
  packet_info info;
  frame_spec echo;
  echo.saddr = A("2001:2::1");
  echo.daddr = A("2001:2:0:1::1");
  echo.proto = fnat::ipproto::icmpv6;
  const bytes e = build_frame(echo);
  REQUIRE(parse(e, info) == drop_reason::none);
  fnat::nd_message m;
  CHECK(fnat::parse_nd(e, info, m) == drop_reason::nd_malformed);
}

// ---- echo ---------------------------------------------------------------------------------------

TEST_CASE("echo reply in place: addresses swapped, type, TTL, checksums, exact bytes", "[packet][echo]") {
  const mac_addr ours = M("02:00:00:00:00:01");
  for (bool v6 : {false, true}) {
    for (bool vlan : {false, true}) {
      INFO("v6 " << v6 << " vlan " << vlan);
      frame_spec s;
      if (v6) {
        s.saddr = A("2001:2::1");
        s.daddr = A("2001:2:0:1::1");
      }
      s.proto = v6 ? fnat::ipproto::icmpv6 : fnat::ipproto::icmp;
      s.icmp_type = v6 ? fnat::icmp6_type::echo_request : fnat::icmp_type::echo_request;
      s.icmp_code = 3;  // echo code is 0 by RFC; the reply says 0 whatever came
      s.icmp_id = 0x7777;
      s.ttl = 1;        // a ping to the VIP with TTL 1 is answered
      s.dst = M("ff:ff:ff:ff:ff:ff");
      if (vlan) s.vlan_tci = 42;
      s.payload.assign(57, 0x5a);
      bytes f = build_frame(s);
      packet_info info;
      REQUIRE(parse(f, info) == drop_reason::none);
      const inet_tuple req = info.tuple;
      REQUIRE(fnat::make_echo_reply(f, info, ours) == fnat::errc::ok);
      frame_spec r = s;
      r.dst = s.src;
      r.src = ours;
      std::swap(r.saddr, r.daddr);
      r.icmp_type = v6 ? fnat::icmp6_type::echo_reply : fnat::icmp_type::echo_reply;
      r.icmp_code = 0;
      r.ttl = 64;
      CHECK(f == build_frame(r));
      CHECK(info.tuple == req.reversed());
      packet_info again;
      REQUIRE(parse(f, again, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
      CHECK(again.tuple == info.tuple);
      CHECK(again.icmp_type == info.icmp_type);
      CHECK(again.ttl == 64);
    }
  }
  // Not an echo request: nothing written.
  bytes f = tcp4_in;
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  CHECK(fnat::make_echo_reply(f, info, ours) == fnat::errc::invalid_argument);
  CHECK(f == tcp4_in);
}

TEST_CASE("mac_addr: parse, print, classify", "[packet]") {
  CHECK(M("02:00:00:00:00:0a").to_string() == "02:00:00:00:00:0a");
  CHECK(M("02-00-00-00-00-0A") == M("02:00:00:00:00:0a"));
  CHECK_FALSE(mac_addr::parse("02:00-00:00:00:0a"));
  CHECK_FALSE(mac_addr::parse("02:00:00:00:00:0g"));
  CHECK_FALSE(mac_addr::parse("02:00:00:00:00"));
  CHECK(mac_addr::broadcast().is_broadcast());
  CHECK(mac_addr::broadcast().is_multicast());
  CHECK(M("33:33:00:00:00:01").is_multicast());
  CHECK_FALSE(M("02:00:00:00:00:01").is_multicast());
  CHECK(M("02:00:00:00:00:01").is_unicast());
  CHECK_FALSE(mac_addr{}.is_unicast());
  CHECK(fnat::solicited_node(*fnat::ipv6_addr::parse("2001:2::12:3456")) == *fnat::ipv6_addr::parse("ff02::1:ff12:3456"));
  CHECK(fnat::multicast_mac(*fnat::ipv6_addr::parse("ff02::1:ff12:3456")) == M("33:33:ff:12:34:56"));
}
