// SPDX-License-Identifier: BSD-3-Clause
// The mbuf side of the packet layer: parse and rewrite real mbufs (single and chained), our checksums
// cross-checked against DPDK's own (rte_ipv4_cksum, rte_ipv4_udptcp_cksum, rte_ipv6_udptcp_cksum,
// rte_*_phdr_cksum, rte_net_intel_cksum_prepare) on random packets, tx offload metadata, and the
// replies built into the request's mbuf. Every test checks the mempool gets all its mbufs back.
#include <fnat/dpdk/packet.hpp>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_net.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "support/eal.hpp"
#include "support/packet_frames.hpp"

namespace fd = fnat::dpdk;
using fnat::drop_reason;
using fnat::inet_tuple;
using fnat::packet_info;
using fnat::test::build_frame;
using fnat::test::frame_spec;
using bytes = std::vector<std::uint8_t>;

namespace {

struct mbuf_free {
  void operator()(rte_mbuf* m) const noexcept { rte_pktmbuf_free(m); }
};
using mbuf_ptr = std::unique_ptr<rte_mbuf, mbuf_free>;

rte_mempool* pool() { return fnat::test::mbuf_pool(); }

/// An mbuf holding `f`, in segments of the given sizes (the last one takes the rest); one segment
/// when `segs` is empty.
mbuf_ptr make_mbuf(const bytes& f, std::vector<std::size_t> segs = {}) {
  std::size_t off = 0;
  rte_mbuf* head = nullptr;
  segs.push_back(SIZE_MAX);
  for (std::size_t i = 0; i < segs.size() && (off < f.size() || head == nullptr); ++i) {
    const std::size_t n = std::min(segs[i], f.size() - off);
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    REQUIRE(m != nullptr);
    char* p = rte_pktmbuf_append(m, static_cast<std::uint16_t>(n));
    REQUIRE(p != nullptr);
    std::memcpy(p, f.data() + off, n);
    off += n;
    if (head == nullptr)
      head = m;
    else
      REQUIRE(rte_pktmbuf_chain(head, m) == 0);
  }
  return mbuf_ptr(head);
}

bytes contents(const rte_mbuf* m) {
  bytes out(rte_pktmbuf_pkt_len(m));
  const void* p = rte_pktmbuf_read(m, 0, static_cast<std::uint32_t>(out.size()), out.data());
  REQUIRE(p != nullptr);
  if (p != out.data()) std::memcpy(out.data(), p, out.size());
  return out;
}

/// Checks that a test case returns every mbuf it took.
struct no_leak {
  unsigned before = rte_mempool_in_use_count(pool());
  ~no_leak() { CHECK(rte_mempool_in_use_count(pool()) == before); }
};

inet_tuple random_to(std::mt19937_64& rng, const packet_info& info) {
  return inet_tuple{fnat::test::random_addr(rng, info.family), fnat::test::random_addr(rng, info.family),
                    static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng()), info.proto, {0, 0, 0}};
}

std::uint16_t be16(const bytes& f, std::size_t off) { return fnat::test::get16(f, off); }

/// DPDK's checksums of a packet (first segment), computed on a copy with the fields zeroed; host order.
struct dpdk_sums {
  std::uint16_t ip = 0;
  std::uint16_t l4 = 0;
};
dpdk_sums dpdk_checksums(const bytes& frame, const packet_info& info) {
  bytes f = frame;
  dpdk_sums r;
  auto* ip = f.data() + info.l3_off;
  auto* l4 = f.data() + info.l4_off;
  const std::size_t ck = info.proto == fnat::ipproto::tcp ? 16 : info.proto == fnat::ipproto::udp ? 6 : 2;
  l4[ck] = l4[ck + 1] = 0;
  if (info.family == fnat::ip_family::v4) {
    ip[10] = ip[11] = 0;
    r.ip = fnat::ntoh16(rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(ip)));
    if (info.proto == fnat::ipproto::icmp)
      r.l4 = fnat::ntoh16(static_cast<std::uint16_t>(~rte_raw_cksum(l4, info.l4_len())));
    else
      r.l4 = fnat::ntoh16(rte_ipv4_udptcp_cksum(reinterpret_cast<const rte_ipv4_hdr*>(ip), l4));
  } else {
    // rte_ipv6_udptcp_cksum takes the protocol from the header, so it serves ICMPv6 as well.
    r.l4 = fnat::ntoh16(rte_ipv6_udptcp_cksum(reinterpret_cast<const rte_ipv6_hdr*>(ip), l4));
  }
  return r;
}

std::size_t l4_cksum_off(const packet_info& info) {
  return info.l4_off + (info.proto == fnat::ipproto::tcp ? 16 : info.proto == fnat::ipproto::udp ? 6 : 2);
}

}  // namespace

TEST_CASE("checksum primitives agree with DPDK's on random buffers and headers", "[packet][mbuf][dpdk]") {
  fnat::test::require_eal();
  std::mt19937_64 rng(11);
  std::vector<std::uint8_t> buf(2000);
  for (int i = 0; i < 3000; ++i) {
    const std::size_t off = rng() % 2 * 2;  // DPDK's sum wants 2-byte aligned data
    const std::size_t len = rng() % 1500;
    for (std::size_t j = 0; j < off + len; ++j) buf[j] = static_cast<std::uint8_t>(rng());
    REQUIRE(fnat::raw_sum(buf.data() + off, len) == rte_raw_cksum(buf.data() + off, len));
  }
  for (int i = 0; i < 2000; ++i) {
    frame_spec s = fnat::test::random_spec(rng);
    s.proto = rng() & 1 ? fnat::ipproto::tcp : fnat::ipproto::udp;
    const bytes f = build_frame(s);
    packet_info info;
    REQUIRE(fnat::parse(f, info) == drop_reason::none);
    const auto* ip = f.data() + info.l3_off;
    const std::uint16_t ours = fnat::l4_pseudo_header_sum(f, info);
    const std::uint16_t theirs = info.family == fnat::ip_family::v4
                                     ? rte_ipv4_phdr_cksum(reinterpret_cast<const rte_ipv4_hdr*>(ip), 0)
                                     : rte_ipv6_phdr_cksum(reinterpret_cast<const rte_ipv6_hdr*>(ip), 0);
    REQUIRE(ours == theirs);
  }
}

TEST_CASE("mbuf rewrite: checksums equal DPDK's full computation on random packets", "[packet][mbuf][dpdk]") {
  fnat::test::require_eal();
  no_leak guard;
  std::mt19937_64 rng(12);
  for (int iter = 0; iter < 3000; ++iter) {
    const frame_spec s = fnat::test::random_spec(rng);
    const bytes f = build_frame(s);
    mbuf_ptr m = make_mbuf(f);
    packet_info info;
    INFO("iter " << iter);
    REQUIRE(fd::parse(m.get(), info, {.parse = {.verify_ip_checksum = true, .verify_l4_checksum = true}}) ==
            drop_reason::none);
    REQUIRE(rte_pktmbuf_pkt_len(m.get()) == info.frame_len);  // padding trimmed
    const inet_tuple to = random_to(rng, info);
    const auto r = fd::rewrite(m.get(), info, to);
    REQUIRE(r.ok());
    CHECK((m->ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK)) == 0);
    const bytes out = contents(m.get());
    const dpdk_sums want = dpdk_checksums(out, info);
    if (info.family == fnat::ip_family::v4) REQUIRE(be16(out, info.l3_off + 10) == want.ip);
    const bool udp_none = info.family == fnat::ip_family::v4 && info.proto == fnat::ipproto::udp && s.udp_no_checksum;
    if (udp_none)
      REQUIRE(be16(out, l4_cksum_off(info)) == 0);
    else
      REQUIRE(be16(out, l4_cksum_off(info)) == want.l4);
  }
}

TEST_CASE("mbuf rewrite with tx checksum offload: flags, lengths, and what the NIC will compute",
          "[packet][mbuf][dpdk][offload]") {
  fnat::test::require_eal();
  no_leak guard;
  std::mt19937_64 rng(13);
  const fnat::checksum_offload all = fd::checksum_offload_from(
      RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
  REQUIRE((all.ipv4 && all.tcp && all.udp));
  const auto tcp_only = fd::checksum_offload_from(RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_VLAN_INSERT);
  CHECK((!tcp_only.ipv4 && tcp_only.tcp && !tcp_only.udp));

  for (int iter = 0; iter < 2000; ++iter) {
    frame_spec s = fnat::test::random_spec(rng);
    const bytes f = build_frame(s);
    mbuf_ptr hw = make_mbuf(f);
    mbuf_ptr sw = make_mbuf(f);
    packet_info ih, is;
    REQUIRE(fd::parse(hw.get(), ih) == drop_reason::none);
    REQUIRE(fd::parse(sw.get(), is) == drop_reason::none);
    const inet_tuple to = random_to(rng, ih);
    const fnat::checksum_offload ol{.ipv4 = (rng() & 1) != 0, .tcp = (rng() & 1) != 0, .udp = (rng() & 1) != 0};
    hw->ol_flags |= RTE_MBUF_F_TX_SCTP_CKSUM;  // stale flags from an earlier life are replaced
    const auto r = fd::rewrite(hw.get(), ih, to, ol);
    REQUIRE(r.ok());
    REQUIRE(fd::rewrite(sw.get(), is, to).ok());
    INFO("iter " << iter << " proto " << int(ih.proto) << " v4 " << (ih.family == fnat::ip_family::v4));

    const bool v4 = ih.family == fnat::ip_family::v4;
    const bool udp_none = v4 && ih.proto == fnat::ipproto::udp && s.udp_no_checksum;
    const bool l4_ol = !udp_none && ((ih.proto == fnat::ipproto::tcp && ol.tcp) || (ih.proto == fnat::ipproto::udp && ol.udp));
    const bool ip_ol = v4 && ol.ipv4;
    REQUIRE(r.ip_cksum_offloaded == ip_ol);
    REQUIRE(r.l4_cksum_offloaded == l4_ol);
    std::uint64_t want_flags = 0;
    if (ip_ol) want_flags |= RTE_MBUF_F_TX_IP_CKSUM;
    if (l4_ol) want_flags |= ih.proto == fnat::ipproto::tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM;
    if (want_flags) want_flags |= v4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6;
    REQUIRE((hw->ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6)) ==
            want_flags);
    REQUIRE(hw->l2_len == (s.vlan_tci ? 18 : 14));
    REQUIRE(hw->l3_len == (v4 ? 20 : 40));
    REQUIRE(hw->l4_len == ih.payload_off - ih.l4_off);
    REQUIRE(rte_validate_tx_offload(hw.get()) == 0);

    // DPDK's own preparation for Intel-style NICs recomputes exactly what we left: no byte changes.
    const bytes ours = contents(hw.get());
    REQUIRE(rte_net_intel_cksum_prepare(hw.get()) == 0);
    REQUIRE(contents(hw.get()) == ours);

    // Emulate the NIC: fill in what was offloaded; the frame must equal the software rewrite.
    bytes nic = ours;
    if (ip_ol) {
      const std::uint16_t c = fnat::internet_checksum(std::span<const std::uint8_t>(nic).subspan(ih.l3_off, 20));
      std::memcpy(&nic[ih.l3_off + 10], &c, 2);
    }
    if (l4_ol) {
      // The field holds the pseudo-header sum; the NIC sums the segment over it and complements.
      std::uint16_t c = fnat::internet_checksum(std::span<const std::uint8_t>(nic).subspan(ih.l4_off, ih.l4_len()));
      if (ih.proto == fnat::ipproto::udp) c = fnat::udp_checksum_fixup(c);
      std::memcpy(&nic[l4_cksum_off(ih)], &c, 2);
    }
    REQUIRE(nic == contents(sw.get()));
  }
}

TEST_CASE("mbuf parse: chained segments, header_split, padding trim, rx checksum flags", "[packet][mbuf]") {
  fnat::test::require_eal();
  no_leak guard;
  frame_spec s;
  s.payload.resize(777);
  for (std::size_t i = 0; i < s.payload.size(); ++i) s.payload[i] = static_cast<std::uint8_t>(i * 7 + 3);
  const bytes f = build_frame(s);
  packet_info info;

  SECTION("payload across odd-sized segments: software verification walks them, rewrite touches headers only") {
    for (std::vector<std::size_t> segs : {std::vector<std::size_t>{54}, {55, 101, 3}, {60, 1, 1, 1, 333}}) {
      mbuf_ptr m = make_mbuf(f, segs);
      REQUIRE(m->nb_segs > 1);
      const fd::mbuf_parse_options verify{.parse = {.verify_ip_checksum = true, .verify_l4_checksum = true}};
      REQUIRE(fd::parse(m.get(), info, verify) == drop_reason::none);
      // A flipped payload byte in the last segment is caught.
      rte_mbuf* last = rte_pktmbuf_lastseg(m.get());
      rte_pktmbuf_mtod(last, std::uint8_t*)[0] ^= 0x40;
      CHECK(fd::parse(m.get(), info, verify) == drop_reason::bad_l4_checksum);
      CHECK(fd::parse(m.get(), info) == drop_reason::none);  // not verified by default
      rte_pktmbuf_mtod(last, std::uint8_t*)[0] ^= 0x40;

      mbuf_ptr flat = make_mbuf(f);
      packet_info fi;
      REQUIRE(fd::parse(flat.get(), fi) == drop_reason::none);
      const inet_tuple to = fnat::make_tuple(6, *fnat::inet_addr::parse("198.18.2.100"), 1111,
                                             *fnat::inet_addr::parse("198.18.3.10"), 8080);
      REQUIRE(fd::rewrite(m.get(), info, to).ok());
      REQUIRE(fd::rewrite(flat.get(), fi, to).ok());
      CHECK(contents(m.get()) == contents(flat.get()));
      CHECK(fd::parse(m.get(), info, verify) == drop_reason::none);
    }
  }
  SECTION("the segment walk sums like the contiguous bytes at every split point") {
    for (std::size_t cut = 1; cut < 200; ++cut) {
      mbuf_ptr m = make_mbuf(f, {cut, cut % 7 + 1, 64});
      for (std::uint32_t off : {0u, 1u, 34u, 35u}) {
        std::uint16_t sum = 0;
        REQUIRE(fd::rte_mbuf_ops::raw_sum(m.get(), off, static_cast<std::uint32_t>(f.size()) - off, sum));
        INFO("cut " << cut << " off " << off);
        REQUIRE(sum == fnat::raw_sum(f.data() + off, f.size() - off));
      }
      std::uint16_t sum = 0;
      CHECK_FALSE(fd::rte_mbuf_ops::raw_sum(m.get(), 1, static_cast<std::uint32_t>(f.size()), sum));
    }
  }
  SECTION("a header beyond the first segment is header_split, the mbuf is untouched") {
    for (std::size_t first : {10u, 14u, 33u, 40u, 53u}) {
      mbuf_ptr m = make_mbuf(f, {first});
      CHECK(fd::parse(m.get(), info) == drop_reason::header_split);
      CHECK(contents(m.get()) == f);
    }
  }
  SECTION("padding is trimmed, segments holding only padding are freed") {
    frame_spec p;
    p.pad_to = 60;
    const bytes padded = build_frame(p);
    mbuf_ptr one = make_mbuf(padded);
    REQUIRE(fd::parse(one.get(), info) == drop_reason::none);
    CHECK(rte_pktmbuf_pkt_len(one.get()) == 54);
    CHECK(rte_pktmbuf_data_len(one.get()) == 54);

    bytes junk = f;
    junk.resize(f.size() + 3000, 0xcc);  // an IP length far shorter than the frame
    mbuf_ptr chain = make_mbuf(junk, {500, 500, 500, 500});
    REQUIRE(chain->nb_segs == 5);
    REQUIRE(fd::parse(chain.get(), info) == drop_reason::none);
    CHECK(rte_pktmbuf_pkt_len(chain.get()) == f.size());
    CHECK(chain->nb_segs == 2);  // 831 bytes end in the second segment
    CHECK(rte_pktmbuf_lastseg(chain.get())->data_len == f.size() - 500);
    CHECK(rte_pktmbuf_lastseg(chain.get())->next == nullptr);
    CHECK(contents(chain.get()) == f);
    CHECK(rte_mbuf_check(chain.get(), 1, nullptr) == 0);

    mbuf_ptr exact = make_mbuf(junk, {f.size(), 1500});
    REQUIRE(fd::parse(exact.get(), info) == drop_reason::none);
    CHECK(exact->nb_segs == 1);
    CHECK(rte_pktmbuf_pkt_len(exact.get()) == f.size());

    mbuf_ptr kept = make_mbuf(padded);
    REQUIRE(fd::parse(kept.get(), info, {.trim_padding = false}) == drop_reason::none);
    CHECK(rte_pktmbuf_pkt_len(kept.get()) == 60);
  }
  SECTION("the NIC's rx checksum verdicts") {
    mbuf_ptr m = make_mbuf(f);
    m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_BAD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    CHECK(fd::parse(m.get(), info) == drop_reason::bad_ip_checksum);
    m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_BAD;
    CHECK(fd::parse(m.get(), info) == drop_reason::bad_l4_checksum);
    CHECK(fd::parse(m.get(), info, {.drop_rx_cksum_bad = false}) == drop_reason::none);
    m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_NONE | RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN;
    CHECK(fd::parse(m.get(), info) == drop_reason::none);
    m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    CHECK(fd::parse(m.get(), info) == drop_reason::none);
    // Malformed first: the flags do not hide the real reason.
    bytes bad = f;
    bad[14] = 0x44;
    mbuf_ptr b = make_mbuf(bad);
    b->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_BAD;
    CHECK(fd::parse(b.get(), info) == drop_reason::bad_ihl);
  }
}

TEST_CASE("replies built in the request's mbuf: ARP, NA, echo", "[packet][mbuf][neighbour]") {
  fnat::test::require_eal();
  no_leak guard;
  const fnat::mac_addr ours = *fnat::mac_addr::parse("02:00:00:00:00:01");
  const fnat::mac_addr client = *fnat::mac_addr::parse("02:00:00:00:00:02");
  const auto cip = fnat::ipv4_addr::from_host(0xc6120001);
  const auto vip = fnat::ipv4_addr::from_host(0xc6120101);

  SECTION("ARP request -> reply, also from a chained jumbo request") {
    bytes req(fd::neighbour_frame_room);
    req.resize(fnat::build_arp_request(req, client, cip, vip, true, 7));
    for (bool chained : {false, true}) {
      bytes in = req;
      if (chained) in.resize(3000, 0);
      mbuf_ptr m = chained ? make_mbuf(in, {1000, 1000}) : make_mbuf(in);
      packet_info info;
      // Untrimmed, the chain is still there for the rebuild to free.
      REQUIRE(fd::parse(m.get(), info, {.trim_padding = !chained}) == drop_reason::none);
      CHECK(m->nb_segs == (chained ? 3 : 1));
      const fnat::arp_message msg = fnat::parse_arp(req, info);
      REQUIRE(fd::arp_reply_in_place(m.get(), info, ours) == fnat::errc::ok);
      bytes want(fd::neighbour_frame_room);
      want.resize(fnat::build_arp_reply(want, fnat::reply_l2(req, info, ours), msg, ours));
      CHECK(m->nb_segs == 1);
      CHECK(contents(m.get()) == want);
      CHECK(rte_mbuf_check(m.get(), 1, nullptr) == 0);
      // A reply is not answered.
      REQUIRE(fd::parse(m.get(), info) == drop_reason::none);
      CHECK(fd::arp_reply_in_place(m.get(), info, ours) == fnat::errc::invalid_argument);
      CHECK(contents(m.get()) == want);
    }
  }
  SECTION("NS -> NA") {
    const auto cip6 = *fnat::ipv6_addr::parse("2001:2::1");
    const auto vip6 = *fnat::ipv6_addr::parse("2001:2:0:1::1");
    bytes ns(fd::neighbour_frame_room);
    ns.resize(fnat::build_ns(ns, client, cip6, vip6));
    mbuf_ptr m = make_mbuf(ns);
    packet_info info;
    REQUIRE(fd::parse(m.get(), info) == drop_reason::none);
    fnat::nd_message msg;
    REQUIRE(fnat::parse_nd(ns, info, msg) == drop_reason::none);
    REQUIRE(fd::na_reply_in_place(m.get(), info, msg, ours) == fnat::errc::ok);
    bytes want(fd::neighbour_frame_room);
    want.resize(fnat::build_na_reply(want, fnat::reply_l2(ns, info, ours), cip6, msg, ours));
    CHECK(contents(m.get()) == want);
    const bytes got = contents(m.get());
    packet_info ni;
    REQUIRE(fnat::parse(got, ni) == drop_reason::none);
    fnat::nd_message na;
    REQUIRE(fnat::parse_nd(got, ni, na) == drop_reason::none);
    CHECK(na.type == fnat::icmp6_type::neighbour_advertisement);
    CHECK(na.lladdr == ours);
    CHECK(ni.tuple.daddr == fnat::inet_addr(cip6));
  }
  SECTION("echo request -> reply with the payload in other segments") {
    for (bool v6 : {false, true}) {
      frame_spec s;
      if (v6) {
        s.saddr = *fnat::inet_addr::parse("2001:2::1");
        s.daddr = *fnat::inet_addr::parse("2001:2:0:1::1");
      }
      s.proto = v6 ? fnat::ipproto::icmpv6 : fnat::ipproto::icmp;
      s.icmp_type = v6 ? fnat::icmp6_type::echo_request : fnat::icmp_type::echo_request;
      s.payload.assign(1400, 0xab);
      const bytes f = build_frame(s);
      mbuf_ptr m = make_mbuf(f, {v6 ? 62u : 42u, 700});
      packet_info info;
      REQUIRE(fd::parse(m.get(), info) == drop_reason::none);
      REQUIRE(fd::echo_reply_in_place(m.get(), info, ours) == fnat::errc::ok);
      CHECK(m->nb_segs == 3);
      const fd::mbuf_parse_options verify{.parse = {.verify_ip_checksum = true, .verify_l4_checksum = true}};
      packet_info again;
      REQUIRE(fd::parse(m.get(), again, verify) == drop_reason::none);
      CHECK(again.tuple == info.tuple);
      CHECK(again.icmp_type == (v6 ? 129 : 0));
      CHECK(again.tuple.saddr == s.daddr);
    }
  }
}

namespace {
/// A fake at the adapter seam: an mbuf with no room for a new frame.
struct no_room_ops : fd::rte_mbuf_ops {
  static std::span<std::uint8_t> rebuild(rte_mbuf*, std::uint16_t) noexcept { return {}; }
};
/// A fake device whose info call fails.
struct broken_dev_ops : fd::rte_mbuf_ops {
  static int tx_offload_capa(std::uint16_t, std::uint64_t&) noexcept { return -19; }
};
}  // namespace

TEST_CASE("requests built into an mbuf, and the adapter seam", "[packet][mbuf][neighbour]") {
  fnat::test::require_eal();
  no_leak guard;
  const fnat::mac_addr ours = *fnat::mac_addr::parse("02:00:00:00:00:01");
  mbuf_ptr m(rte_pktmbuf_alloc(pool()));
  REQUIRE(m);
  REQUIRE(fd::build_arp_request(m.get(), ours, fnat::ipv4_addr::from_host(0xc6120264),
                                fnat::ipv4_addr::from_host(0xc612030a)) == fnat::errc::ok);
  bytes want(100);
  want.resize(fnat::build_arp_request(want, ours, fnat::ipv4_addr::from_host(0xc6120264),
                                      fnat::ipv4_addr::from_host(0xc612030a)));
  CHECK(contents(m.get()) == want);

  REQUIRE(fd::build_ns(m.get(), ours, *fnat::ipv6_addr::parse("2001:2:0:2::100"),
                       *fnat::ipv6_addr::parse("2001:2:0:3::10")) == fnat::errc::ok);
  const bytes ns = contents(m.get());
  packet_info info;
  REQUIRE(fnat::parse(ns, info, {.verify_l4_checksum = true}) == drop_reason::none);
  CHECK(info.tuple.daddr == *fnat::inet_addr::parse("ff02::1:ff00:10"));

  CHECK(fd::build_ns<no_room_ops>(m.get(), ours, *fnat::ipv6_addr::parse("2001:2:0:2::100"),
                                  *fnat::ipv6_addr::parse("2001:2:0:3::10")) == fnat::errc::no_memory);

  fnat::test::ring_port port("packet_mbuf", 1);
  auto caps = fd::supported_checksum_offloads(port.port_id());
  REQUIRE(caps.has_value());
  CHECK((*caps & ~(RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM)) == 0);
  auto broken = fd::supported_checksum_offloads<broken_dev_ops>(port.port_id());
  REQUIRE_FALSE(broken.has_value());
  CHECK(broken.err().code() == fnat::errc::device_error);
  CHECK(broken.err().message().find("port " + std::to_string(port.port_id())) != std::string::npos);
}
