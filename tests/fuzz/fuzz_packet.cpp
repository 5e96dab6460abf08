// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: the packet layer on arbitrary bytes.
//
// Input: byte 0 = control bits, bytes 1-4 = the new source and destination ports (network order),
// the rest = an Ethernet frame. Control bits:
//   0 verify the IPv4 header checksum      1 verify L4 checksums
//   2 offload the IPv4 header checksum     3 offload TCP      4 offload UDP
//   5-6 the new addresses: 0 LIP -> RS, 1 VIP -> client, 2 the packet's own swapped, 3 unchanged
//   7 also parse a prefix of the frame (length from byte 1) as a first segment
// The frame is copied into a buffer of exactly its size, so AddressSanitizer reports any read or
// write past it. Invariants checked (abort on violation, which libFuzzer reports):
//   parse:   offsets ordered and inside the frame; the same answer from a prefix holding the headers;
//            a prefix never yields headers outside it;
//   rewrite: TTL <= 1 -> ttl_expired, nothing written; otherwise only the rewritten fields change,
//            a re-parse gives the tuple rewrite reported (== the new tuple for TCP/UDP), each
//            software-updated checksum verifies after iff it verified before, offloaded ones verify
//            once the NIC's part is done; rewriting back restores every byte but TTL and checksums;
//   replies: ARP reply, NA for an NS, echo reply re-parse and carry what the request asked for.
#include <fnat/core/packet.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

#define FUZZ_CHECK(cond)                                                         \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "fuzz_packet: invariant failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

using bytes = std::vector<std::uint8_t>;

const fnat::mac_addr our_mac{{0x02, 0, 0, 0, 0, 0x01}};

fnat::inet_addr v4(std::uint32_t host) { return fnat::inet_addr(fnat::ipv4_addr::from_host(host)); }
fnat::inet_addr v6(std::uint8_t last, std::uint8_t net) {
  fnat::ipv6_addr a;
  a.bytes = {0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, net, 0, 0, 0, 0, 0, 0, 0x01, last};
  return fnat::inet_addr(a);
}

/// Byte offsets the rewrite may change.
std::vector<bool> rewritable(const fnat::packet_info& info, std::size_t size) {
  std::vector<bool> m(size, false);
  auto mark = [&](std::size_t from, std::size_t n) {
    for (std::size_t i = from; i < from + n && i < size; ++i) m[i] = true;
  };
  const std::size_t l3 = info.l3_off, l4 = info.l4_off;
  if (info.family == fnat::ip_family::v4) {
    mark(l3 + 8, 1);
    mark(l3 + 10, 10);
  } else {
    mark(l3 + 7, 33);
  }
  switch (info.proto) {
    case fnat::ipproto::tcp: mark(l4, 4); mark(l4 + 16, 2); break;
    case fnat::ipproto::udp: mark(l4, 4); mark(l4 + 6, 2); break;
    default: mark(l4 + 2, 4); break;
  }
  return m;
}

/// True when the bytes an L4 checksum covers (pseudo-header included) are all zero, checksum too:
/// ones' complement "+0", which a verifier rejects (the sum must be 0xffff, "-0"). Any word the rewrite
/// then changes turns the sum into a -0 that verifies: the one input where "verifies after iff
/// verified before" cannot hold (RFC 1624 section 3's +0/-0 ambiguity). Only ICMPv4, which has no
/// pseudo-header, can get there, with an all-zero echo reply.
bool l4_sum_is_plus_zero(const bytes& f, const fnat::packet_info& info) {
  return fnat::raw_sum(f.data() + info.l4_off, info.l4_len(), fnat::l4_pseudo_header_sum(f, info)) == 0;
}

std::size_t l4_cksum_off(const fnat::packet_info& info) {
  return info.l4_off + (info.proto == fnat::ipproto::tcp ? 16 : info.proto == fnat::ipproto::udp ? 6 : 2);
}

void check_offsets(const fnat::packet_info& info, std::size_t head, std::size_t frame) {
  FUZZ_CHECK(info.l3_off == 14 || info.l3_off == 18);
  FUZZ_CHECK(info.has_vlan == (info.l3_off == 18));
  FUZZ_CHECK(info.l3_off <= info.l4_off);
  FUZZ_CHECK(info.l4_off <= info.payload_off);
  FUZZ_CHECK(info.payload_off <= info.frame_len);
  FUZZ_CHECK(info.frame_len <= frame);
  FUZZ_CHECK(info.payload_off <= head);
  if (info.is_ip()) {
    FUZZ_CHECK(info.l3_len() == (info.family == fnat::ip_family::v4 ? 20 : 40));
    FUZZ_CHECK(info.tuple.saddr.family() == info.family);
    FUZZ_CHECK(info.tuple.daddr.family() == info.family);
    FUZZ_CHECK(info.tuple.proto == info.proto);
  }
}

void check_arp(const bytes& f, const fnat::packet_info& info) {
  const fnat::arp_message req = fnat::parse_arp(f, info);
  FUZZ_CHECK(req.op == fnat::arp_op::request || req.op == fnat::arp_op::reply);
  FUZZ_CHECK(fnat::inet_addr(req.spa) == info.tuple.saddr);
  if (req.op != fnat::arp_op::request) return;
  bytes out(64);
  const std::size_t n = fnat::build_arp_reply(out, fnat::reply_l2(f, info, our_mac), req, our_mac);
  FUZZ_CHECK(n == 60);  // 46 bytes even with a tag: padded to the minimum
  out.resize(n);
  fnat::packet_info ri;
  FUZZ_CHECK(fnat::parse(out, ri) == fnat::drop_reason::none);
  FUZZ_CHECK(ri.kind == fnat::packet_kind::arp);
  const fnat::arp_message rep = fnat::parse_arp(out, ri);
  FUZZ_CHECK(rep.op == fnat::arp_op::reply);
  FUZZ_CHECK(rep.sha == our_mac && rep.spa == req.tpa && rep.tha == req.sha && rep.tpa == req.spa);
  FUZZ_CHECK(ri.has_vlan == info.has_vlan && ri.vlan_tci == info.vlan_tci);
}

void check_nd(const bytes& f, const fnat::packet_info& info) {
  fnat::nd_message ns;
  if (fnat::parse_nd(f, info, ns) != fnat::drop_reason::none) return;
  FUZZ_CHECK(!fnat::is_multicast(ns.target));
  if (ns.type != fnat::icmp6_type::neighbour_solicitation) return;
  bytes out(128);
  const std::size_t n =
      fnat::build_na_reply(out, fnat::reply_l2(f, info, our_mac), info.tuple.saddr.v6(), ns, our_mac);
  FUZZ_CHECK(n > 0);
  out.resize(n);
  fnat::packet_info ni;
  const fnat::drop_reason r = fnat::parse(out, ni, {.verify_l4_checksum = true});
  // The NA's source is the target; a target that is no valid source (loopback, IPv4-mapped) cannot be
  // sent back, and the re-parse says so.
  FUZZ_CHECK(r == fnat::drop_reason::none || r == fnat::drop_reason::bad_source || r == fnat::drop_reason::ipv4_mapped);
  if (r != fnat::drop_reason::none) return;
  fnat::nd_message na;
  FUZZ_CHECK(fnat::parse_nd(out, ni, na) == fnat::drop_reason::none);
  FUZZ_CHECK(na.type == fnat::icmp6_type::neighbour_advertisement);
  FUZZ_CHECK(na.target == ns.target && na.has_lladdr && na.lladdr == our_mac);
}

void check_echo(const bytes& f, const fnat::packet_info& info) {
  bytes g = f;
  fnat::packet_info ri = info;
  FUZZ_CHECK(fnat::make_echo_reply(g, ri, our_mac) == fnat::errc::ok);
  FUZZ_CHECK(ri.tuple == info.tuple.reversed());
  fnat::packet_info again;
  const fnat::drop_reason r = fnat::parse(g, again);
  // Swapping makes the request's destination the source: a multicast or loopback destination (the
  // caller only answers for its VIPs and LIPs) is rejected on re-parse.
  FUZZ_CHECK(r == fnat::drop_reason::none || r == fnat::drop_reason::bad_source);
  if (r != fnat::drop_reason::none) return;
  FUZZ_CHECK(again.tuple == ri.tuple && again.ttl == 64);
  FUZZ_CHECK(fnat::l4_checksum_ok(g, again) == fnat::l4_checksum_ok(f, info));
  FUZZ_CHECK(fnat::ip_checksum_ok(g, again) == fnat::ip_checksum_ok(f, info));
}

void check_rewrite(const bytes& f, const fnat::packet_info& info, std::uint8_t ctl, const std::uint8_t* ports) {
  fnat::inet_tuple to = info.tuple;
  const bool is4 = info.family == fnat::ip_family::v4;
  switch ((ctl >> 5) & 3) {
    case 0:
      to.saddr = is4 ? v4(0xc6120264) : v6(0x00, 2);
      to.daddr = is4 ? v4(0xc612030a) : v6(0x10, 3);
      break;
    case 1:
      to.saddr = is4 ? v4(0xc6120101) : v6(0x01, 1);
      to.daddr = is4 ? v4(0xc6120001) : v6(0x01, 0);
      break;
    case 2:
      std::swap(to.saddr, to.daddr);
      break;
    default:
      break;
  }
  std::memcpy(&to.sport, ports, 2);
  std::memcpy(&to.dport, ports + 2, 2);
  const fnat::checksum_offload ol{.ipv4 = (ctl & 4) != 0, .tcp = (ctl & 8) != 0, .udp = (ctl & 16) != 0};

  const bool ip_ok = fnat::ip_checksum_ok(f, info);
  const bool l4_ok = fnat::l4_checksum_ok(f, info);

  bytes g = f;
  fnat::packet_info gi = info;
  const fnat::rewrite_result r = fnat::rewrite(g, gi, to, ol);
  if (info.ttl <= 1) {
    FUZZ_CHECK(r.reason == fnat::drop_reason::ttl_expired);
    FUZZ_CHECK(g == f);
    return;
  }
  FUZZ_CHECK(r.ok());
  FUZZ_CHECK(g.size() == f.size());
  FUZZ_CHECK(gi.ttl == info.ttl - 1);
  const std::vector<bool> may = rewritable(info, f.size());
  for (std::size_t i = 0; i < f.size(); ++i) FUZZ_CHECK(may[i] || g[i] == f[i]);
  if (info.proto == fnat::ipproto::tcp || info.proto == fnat::ipproto::udp) FUZZ_CHECK(gi.tuple == to);
  FUZZ_CHECK(gi.tuple.saddr == to.saddr && gi.tuple.daddr == to.daddr);

  fnat::packet_info again;
  const fnat::drop_reason rr = fnat::parse(g, again);
  // The new addresses are the fuzzer's choice; only the swap of a packet whose destination cannot be a
  // source may be refused.
  if (((ctl >> 5) & 3) == 2)
    FUZZ_CHECK(rr == fnat::drop_reason::none || rr == fnat::drop_reason::bad_source);
  else
    FUZZ_CHECK(rr == fnat::drop_reason::none);
  if (rr != fnat::drop_reason::none) return;
  FUZZ_CHECK(again.tuple == gi.tuple);
  FUZZ_CHECK(again.ttl == gi.ttl);
  FUZZ_CHECK(again.frame_len == info.frame_len && again.payload_off == info.payload_off);

  // Checksums: software-updated ones keep their verdict; offloaded ones verify after the NIC's part.
  bytes nic = g;
  if (r.ip_cksum_offloaded) {
    FUZZ_CHECK(is4 && g[info.l3_off + 10] == 0 && g[info.l3_off + 11] == 0);
    const std::uint16_t c = fnat::internet_checksum(std::span<const std::uint8_t>(nic).subspan(info.l3_off, 20));
    std::memcpy(&nic[info.l3_off + 10], &c, 2);
    FUZZ_CHECK(fnat::ip_checksum_ok(nic, again));
  } else {
    FUZZ_CHECK(fnat::ip_checksum_ok(g, again) == ip_ok);
  }
  if (r.l4_cksum_offloaded) {
    FUZZ_CHECK(info.proto == fnat::ipproto::tcp || info.proto == fnat::ipproto::udp);
    std::uint16_t c = fnat::internet_checksum(std::span<const std::uint8_t>(nic).subspan(info.l4_off, info.l4_len()));
    if (info.proto == fnat::ipproto::udp) c = fnat::udp_checksum_fixup(c);
    std::memcpy(&nic[l4_cksum_off(info)], &c, 2);
    FUZZ_CHECK(fnat::l4_checksum_ok(nic, again));
  } else {
    FUZZ_CHECK(fnat::l4_checksum_ok(g, again) == l4_ok || l4_sum_is_plus_zero(f, info));
    if (info.proto == fnat::ipproto::udp) {
      const bool was_none = is4 && f[l4_cksum_off(info)] == 0 && f[l4_cksum_off(info) + 1] == 0;
      const bool is_none = g[l4_cksum_off(info)] == 0 && g[l4_cksum_off(info) + 1] == 0;
      FUZZ_CHECK(was_none == is_none);  // 0 stays 0, and 0 is never written for a computed sum
    }
  }

  // Back to the original tuple (software checksums): every byte but TTL and checksums is restored.
  if (r.ip_cksum_offloaded || r.l4_cksum_offloaded || gi.ttl <= 1) return;
  const fnat::rewrite_result back = fnat::rewrite(g, gi, info.tuple);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(gi.tuple == info.tuple);
  for (std::size_t i = 0; i < f.size(); ++i) {
    const bool ttl = i == info.l3_off + (is4 ? 8u : 7u);
    const bool ipck = is4 && (i == info.l3_off + 10u || i == info.l3_off + 11u);
    const bool l4ck = i == l4_cksum_off(info) || i == l4_cksum_off(info) + 1;
    if (ttl)
      FUZZ_CHECK(g[i] == static_cast<std::uint8_t>(f[i] - 2));
    else if (!ipck && !l4ck)
      FUZZ_CHECK(g[i] == f[i]);
  }
  FUZZ_CHECK(fnat::ip_checksum_ok(g, gi) == ip_ok);
  FUZZ_CHECK(fnat::l4_checksum_ok(g, gi) == l4_ok || l4_sum_is_plus_zero(f, info));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::uint8_t ctl = data[0];
  const std::uint8_t* ports = data + 1;
  const bytes f(data + 5, data + size);  // exactly sized: ASan sees any overrun
  const fnat::parse_options opt{.verify_ip_checksum = (ctl & 1) != 0, .verify_l4_checksum = (ctl & 2) != 0};

  fnat::packet_info info;
  const fnat::drop_reason r = fnat::parse(f, info, opt);
  FUZZ_CHECK(static_cast<std::size_t>(r) < fnat::drop_reason_count);
  FUZZ_CHECK(r != fnat::drop_reason::header_split && r != fnat::drop_reason::ttl_expired &&
             r != fnat::drop_reason::nd_malformed);

  if (ctl & 0x80) {
    // The same frame seen through a first segment of k bytes.
    const std::size_t k = std::min<std::size_t>(ports[0], f.size());
    const bytes head(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(k));
    fnat::packet_info hi;
    const fnat::drop_reason hr = fnat::parse(head, f.size(), hi, opt);
    if (hr == fnat::drop_reason::none) {
      check_offsets(hi, head.size(), f.size());
      FUZZ_CHECK(r == fnat::drop_reason::none);
      FUZZ_CHECK(hi.tuple == info.tuple && hi.payload_off == info.payload_off && hi.frame_len == info.frame_len);
    } else if (hr != fnat::drop_reason::header_split) {
      FUZZ_CHECK(hr == r);  // a verdict other than "not in this segment" is the whole frame's verdict
    }
    if (r == fnat::drop_reason::none && k >= info.payload_off && !(opt.verify_l4_checksum && k < info.frame_len))
      FUZZ_CHECK(hr == fnat::drop_reason::none);
  }
  if (r != fnat::drop_reason::none) return 0;
  check_offsets(info, f.size(), f.size());

  if (info.kind == fnat::packet_kind::arp) {
    check_arp(f, info);
    return 0;
  }
  if (info.proto == fnat::ipproto::icmpv6 && (info.icmp_type == fnat::icmp6_type::neighbour_solicitation ||
                                              info.icmp_type == fnat::icmp6_type::neighbour_advertisement))
    check_nd(f, info);
  if (info.is_echo_request()) check_echo(f, info);
  check_rewrite(f, info, ctl, ports);
  return 0;
}
