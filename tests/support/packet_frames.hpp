// SPDX-License-Identifier: BSD-3-Clause
// Test frames for the packet tests (unit, mbuf, fuzz seeds): a spec with a default per field and a
// builder that writes the frame with every checksum computed in full by a deliberately naive
// reference (a byte-pair loop, big-endian), independent of fnat's checksum.hpp, so that tests compare
// fnat's incremental results against a second implementation.
#pragma once

#include <fnat/core/addr.hpp>
#include <fnat/core/headers.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace fnat::test {

/// Ones' complement sum, RFC 1071 by the book: big-endian 16-bit words, carries folded at the end.
/// Returns the host-order sum (not complemented).
inline std::uint16_t ref_sum(const std::uint8_t* p, std::size_t n, std::uint32_t init = 0) {
  std::uint64_t s = init;
  for (std::size_t i = 0; i + 1 < n; i += 2) s += (std::uint32_t{p[i]} << 8) | p[i + 1];
  if (n & 1) s += std::uint32_t{p[n - 1]} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(s);
}

inline void put16(std::vector<std::uint8_t>& f, std::size_t off, std::uint16_t host) {
  f[off] = static_cast<std::uint8_t>(host >> 8);
  f[off + 1] = static_cast<std::uint8_t>(host);
}
inline std::uint16_t get16(const std::vector<std::uint8_t>& f, std::size_t off) {
  return static_cast<std::uint16_t>(f[off] << 8 | f[off + 1]);
}

/// Everything a test frame can vary. Ports, ids and lengths host order.
struct frame_spec {
  mac_addr dst{{0x02, 0, 0, 0, 0, 0x01}};
  mac_addr src{{0x02, 0, 0, 0, 0, 0x02}};
  std::optional<std::uint16_t> vlan_tci;
  inet_addr saddr = *inet_addr::parse("198.18.0.1");
  inet_addr daddr = *inet_addr::parse("198.18.1.1");
  std::uint8_t proto = ipproto::tcp;
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;
  std::uint16_t ip_id = 0x1c46;
  std::uint16_t frag = ipv4_frag::dont_fragment;  ///< IPv4 flags and offset
  std::uint32_t flow_label = 0;
  std::uint16_t sport = 40000;
  std::uint16_t dport = 80;
  std::uint8_t tcp_flags = tcp_flags::syn;
  std::uint32_t seq = 0x01020304;
  std::uint32_t ack = 0;
  std::uint16_t window = 0xfaf0;
  std::vector<std::uint8_t> tcp_options;  ///< length a multiple of 4
  std::uint8_t icmp_type = icmp_type::echo_request;
  std::uint8_t icmp_code = 0;
  std::uint16_t icmp_id = 0x4242;
  std::uint16_t icmp_seq = 1;
  bool udp_no_checksum = false;  ///< IPv4 UDP checksum 0
  std::vector<std::uint8_t> payload;
  std::size_t pad_to = 0;        ///< zero-pad the frame to this length (Ethernet padding)
};

/// Builds the frame of `s` with full checksums.
inline std::vector<std::uint8_t> build_frame(const frame_spec& s) {
  const bool v4 = s.saddr.is_v4();
  std::vector<std::uint8_t> f;
  f.insert(f.end(), s.dst.bytes.begin(), s.dst.bytes.end());
  f.insert(f.end(), s.src.bytes.begin(), s.src.bytes.end());
  if (s.vlan_tci) {
    f.insert(f.end(), {0x81, 0x00, static_cast<std::uint8_t>(*s.vlan_tci >> 8), static_cast<std::uint8_t>(*s.vlan_tci)});
  }
  const std::uint16_t et = v4 ? ethertype::ipv4 : ethertype::ipv6;
  f.push_back(static_cast<std::uint8_t>(et >> 8));
  f.push_back(static_cast<std::uint8_t>(et));
  const std::size_t l3 = f.size();

  std::vector<std::uint8_t> l4;
  if (s.proto == ipproto::tcp) {
    l4.assign(20 + s.tcp_options.size(), 0);
    put16(l4, 0, s.sport);
    put16(l4, 2, s.dport);
    for (int i = 0; i < 4; ++i) l4[4 + i] = static_cast<std::uint8_t>(s.seq >> (24 - 8 * i));
    for (int i = 0; i < 4; ++i) l4[8 + i] = static_cast<std::uint8_t>(s.ack >> (24 - 8 * i));
    l4[12] = static_cast<std::uint8_t>((l4.size() / 4) << 4);
    l4[13] = s.tcp_flags;
    put16(l4, 14, s.window);
    std::copy(s.tcp_options.begin(), s.tcp_options.end(), l4.begin() + 20);
  } else if (s.proto == ipproto::udp) {
    l4.assign(8, 0);
    put16(l4, 0, s.sport);
    put16(l4, 2, s.dport);
    put16(l4, 4, static_cast<std::uint16_t>(8 + s.payload.size()));
  } else {
    l4.assign(8, 0);
    l4[0] = s.icmp_type;
    l4[1] = s.icmp_code;
    put16(l4, 4, s.icmp_id);
    put16(l4, 6, s.icmp_seq);
  }
  l4.insert(l4.end(), s.payload.begin(), s.payload.end());

  const auto& sa = s.saddr.raw();
  const auto& da = s.daddr.raw();
  if (v4) {
    std::vector<std::uint8_t> ip(20, 0);
    ip[0] = 0x45;
    ip[1] = s.tos;
    put16(ip, 2, static_cast<std::uint16_t>(20 + l4.size()));
    put16(ip, 4, s.ip_id);
    put16(ip, 6, s.frag);
    ip[8] = s.ttl;
    ip[9] = s.proto;
    std::copy(sa.begin() + 12, sa.end(), ip.begin() + 12);
    std::copy(da.begin() + 12, da.end(), ip.begin() + 16);
    put16(ip, 10, static_cast<std::uint16_t>(~ref_sum(ip.data(), 20)));
    f.insert(f.end(), ip.begin(), ip.end());
  } else {
    std::vector<std::uint8_t> ip(40, 0);
    const std::uint32_t vtc = 0x60000000u | (std::uint32_t{s.tos} << 20) | (s.flow_label & 0xfffff);
    for (int i = 0; i < 4; ++i) ip[i] = static_cast<std::uint8_t>(vtc >> (24 - 8 * i));
    put16(ip, 4, static_cast<std::uint16_t>(l4.size()));
    ip[6] = s.proto;
    ip[7] = s.ttl;
    std::copy(sa.begin(), sa.end(), ip.begin() + 8);
    std::copy(da.begin(), da.end(), ip.begin() + 24);
    f.insert(f.end(), ip.begin(), ip.end());
  }
  const std::size_t l4_off = f.size();
  f.insert(f.end(), l4.begin(), l4.end());

  // L4 checksum over the pseudo-header (none for ICMPv4).
  std::uint32_t ph = 0;
  if (s.proto != ipproto::icmp) {
    std::vector<std::uint8_t> p;
    if (v4) {
      p.insert(p.end(), sa.begin() + 12, sa.end());
      p.insert(p.end(), da.begin() + 12, da.end());
      p.insert(p.end(), {0, s.proto, static_cast<std::uint8_t>(l4.size() >> 8), static_cast<std::uint8_t>(l4.size())});
    } else {
      p.insert(p.end(), sa.begin(), sa.end());
      p.insert(p.end(), da.begin(), da.end());
      p.insert(p.end(), {0, 0, static_cast<std::uint8_t>(l4.size() >> 8), static_cast<std::uint8_t>(l4.size()), 0, 0, 0,
                         s.proto});
    }
    ph = ref_sum(p.data(), p.size());
  }
  const std::size_t ck = l4_off + (s.proto == ipproto::tcp ? 16 : s.proto == ipproto::udp ? 6 : 2);
  std::uint16_t c = static_cast<std::uint16_t>(~ref_sum(f.data() + l4_off, l4.size(), ph));
  if (s.proto == ipproto::udp) {
    if (c == 0) c = 0xffff;
    if (s.udp_no_checksum && v4) c = 0;
  }
  put16(f, ck, c);
  (void)l3;
  if (f.size() < s.pad_to) f.resize(s.pad_to, 0);
  return f;
}

/// Random addresses of a family: IPv4 in 198.18.0.0/15, IPv6 in 2001:2::/48 (RFC 2544 / 5180).
inline inet_addr random_addr(std::mt19937_64& rng, ip_family fam) {
  if (fam == ip_family::v4)
    return inet_addr(ipv4_addr::from_host(0xc6120000u | static_cast<std::uint32_t>(rng() & 0x1ffff)));
  ipv6_addr a;
  a.bytes = {0x20, 0x01, 0x00, 0x02, 0x00, 0x00};
  for (int i = 6; i < 16; ++i) a.bytes[i] = static_cast<std::uint8_t>(rng());
  return inet_addr(a);
}

/// A random valid spec: family, protocol (TCP, UDP, ICMP echo), addresses, ports, flags, TTL,
/// options, payload and padding all drawn from `rng`.
inline frame_spec random_spec(std::mt19937_64& rng) {
  frame_spec s;
  const ip_family fam = rng() & 1 ? ip_family::v4 : ip_family::v6;
  s.saddr = random_addr(rng, fam);
  s.daddr = random_addr(rng, fam);
  switch (rng() % 3) {
    case 0: s.proto = ipproto::tcp; break;
    case 1: s.proto = ipproto::udp; break;
    default: s.proto = fam == ip_family::v4 ? ipproto::icmp : ipproto::icmpv6; break;
  }
  if (s.proto == ipproto::icmpv6) s.icmp_type = rng() & 1 ? icmp6_type::echo_request : icmp6_type::echo_reply;
  if (s.proto == ipproto::icmp) s.icmp_type = rng() & 1 ? icmp_type::echo_request : icmp_type::echo_reply;
  s.icmp_id = static_cast<std::uint16_t>(rng());
  s.sport = static_cast<std::uint16_t>(rng());
  s.dport = static_cast<std::uint16_t>(rng());
  s.ttl = static_cast<std::uint8_t>(2 + rng() % 254);
  s.tos = static_cast<std::uint8_t>(rng());
  s.ip_id = static_cast<std::uint16_t>(rng());
  s.tcp_flags = static_cast<std::uint8_t>(rng());
  s.seq = static_cast<std::uint32_t>(rng());
  s.ack = static_cast<std::uint32_t>(rng());
  s.tcp_options.assign(4 * (rng() % 11), 0);
  for (auto& b : s.tcp_options) b = static_cast<std::uint8_t>(rng());
  s.payload.resize(rng() % 300);
  for (auto& b : s.payload) b = static_cast<std::uint8_t>(rng());
  s.udp_no_checksum = fam == ip_family::v4 && s.proto == ipproto::udp && rng() % 4 == 0;
  if (rng() % 4 == 0) s.vlan_tci = static_cast<std::uint16_t>(rng());
  if (rng() % 4 == 0) s.pad_to = 60 + rng() % 40;
  return s;
}

}  // namespace fnat::test
