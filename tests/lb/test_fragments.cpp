// SPDX-License-Identifier: BSD-3-Clause
// IP fragments through the whole balancer (in-process, three workers, net_ring ports and the NIC
// model): UDP datagrams of 3000 bytes, IPv4 and IPv6, sent as fragments (cut by the test) by
// clients and by the real servers. The NIC model spreads the fragments over the queues; the
// balancer must reassemble each datagram on its home worker, translate it, hand a reply to the
// owner of its LIP port, and fragment it again to the 1500-byte MTU. The test reassembles what
// leaves and compares the datagram with the expected FullNAT translation, byte for byte (UDP
// checksum recomputed in full by the test's frame builder); every fragment must fit the MTU and
// carry a valid IPv4 header checksum.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;
using frame = std::vector<std::uint8_t>;

// Cuts a whole frame (14-byte Ethernet header) into fragments of at most `mtu` bytes of IP.
std::vector<frame> cut(const frame& whole, std::size_t mtu, std::uint32_t id6) {
  std::vector<frame> out;
  const bool v4 = whole[12] == 0x08;
  const std::size_t hl = v4 ? 20 : 40;
  const std::size_t l4 = 14 + hl;
  const std::size_t chunk = (mtu - hl - (v4 ? 0 : 8)) & ~std::size_t{7};
  for (std::size_t off = 0; l4 + off < whole.size(); off += chunk) {
    const std::size_t len = std::min(chunk, whole.size() - l4 - off);
    const bool more = l4 + off + len < whole.size();
    frame f(whole.begin(), whole.begin() + static_cast<long>(l4));
    if (v4) {
      const std::uint16_t total = static_cast<std::uint16_t>(20 + len);
      f[16] = static_cast<std::uint8_t>(total >> 8);
      f[17] = static_cast<std::uint8_t>(total);
      const std::uint16_t fo = static_cast<std::uint16_t>((more ? 0x2000 : 0) | off / 8);
      f[20] = static_cast<std::uint8_t>(fo >> 8);
      f[21] = static_cast<std::uint8_t>(fo);
      f[24] = f[25] = 0;
      const std::uint16_t c = internet_checksum({f.data() + 14, 20});
      std::memcpy(&f[24], &c, 2);
    } else {
      const std::uint8_t nh = f[20];
      const std::uint16_t plen = static_cast<std::uint16_t>(8 + len);
      f[18] = static_cast<std::uint8_t>(plen >> 8);
      f[19] = static_cast<std::uint8_t>(plen);
      f[20] = 44;
      const std::uint16_t om = static_cast<std::uint16_t>(off | (more ? 1 : 0));
      const std::uint8_t fh[8] = {nh, 0, static_cast<std::uint8_t>(om >> 8), static_cast<std::uint8_t>(om),
                                  static_cast<std::uint8_t>(id6 >> 24), static_cast<std::uint8_t>(id6 >> 16),
                                  static_cast<std::uint8_t>(id6 >> 8), static_cast<std::uint8_t>(id6)};
      f.insert(f.end(), fh, fh + 8);
    }
    f.insert(f.end(), whole.begin() + static_cast<long>(l4 + off), whole.begin() + static_cast<long>(l4 + off + len));
    out.push_back(std::move(f));
  }
  return out;
}

// What left on one port, reassembled by the test: (source address, identification) -> (offset -> L4 bytes).
struct datagram {
  frame first_hdr;  // Ethernet + IP header of the fragment at offset 0
  std::map<std::size_t, frame> pieces;
  bool saw_last = false;
  [[nodiscard]] frame l4() const {
    frame out;
    for (const auto& [off, p] : pieces) {
      REQUIRE(off == out.size());
      out.insert(out.end(), p.begin(), p.end());
    }
    return out;
  }
};

// A datagram's source address (IPv4 in the first 4 bytes) and identification. A fixed-size array,
// not a vector of bytes: g++ 12 at -O3 reports a bogus -Wstringop-overread in the memcmp that
// compares two vectors (the GCC 12 family of bug 107852).
using source_and_id = std::pair<std::array<std::uint8_t, 16>, std::uint32_t>;

source_and_id key_of(const std::uint8_t* addr, std::size_t len, std::uint32_t id) {
  source_and_id k{{}, id};
  std::copy_n(addr, len, k.first.begin());
  return k;
}

std::vector<datagram> regroup(const std::vector<frame>& frames) {
  std::map<source_and_id, datagram> by;
  for (const frame& f : frames) {
    const bool v4 = f[12] == 0x08;
    INFO(hex(f));
    if (v4) {
      REQUIRE(f.size() - 14 <= 1500);
      REQUIRE(internet_checksum({f.data() + 14, 20}) == 0);  // header checksum valid
      const std::uint16_t fo = static_cast<std::uint16_t>(f[20] << 8 | f[21]);
      REQUIRE(((fo & 0x2000) != 0 || (fo & 0x1fff) != 0));  // it was fragmented
      datagram& d = by[key_of(f.data() + 26, 4, static_cast<std::uint32_t>(f[18] << 8 | f[19]))];
      const std::size_t off = std::size_t{fo & 0x1fffu} * 8;
      if (off == 0) d.first_hdr.assign(f.begin(), f.begin() + 34);
      d.saw_last |= (fo & 0x2000) == 0;
      d.pieces[off] = frame(f.begin() + 34, f.end());
    } else {
      REQUIRE(f.size() - 14 <= 1500);
      REQUIRE(f[20] == 44);
      const std::uint8_t* fh = f.data() + 54;
      const std::uint32_t id = std::uint32_t{fh[4]} << 24 | std::uint32_t{fh[5]} << 16 | std::uint32_t{fh[6]} << 8 | fh[7];
      datagram& d = by[key_of(f.data() + 22, 16, id)];
      const std::size_t off = static_cast<std::size_t>((fh[2] << 8 | fh[3]) & 0xfff8);
      if (off == 0) d.first_hdr.assign(f.begin(), f.begin() + 54);
      d.saw_last |= (fh[3] & 1) == 0;
      d.pieces[off] = frame(f.begin() + 62, f.end());
    }
  }
  std::vector<datagram> out;
  for (auto& [k, d] : by) out.push_back(std::move(d));
  return out;
}

std::vector<std::uint8_t> big_payload(std::uint32_t id) {
  std::vector<std::uint8_t> p(3000);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(id * 7 + i * 13);
  p[0] = static_cast<std::uint8_t>(id >> 24);
  p[1] = static_cast<std::uint8_t>(id >> 16);
  p[2] = static_cast<std::uint8_t>(id >> 8);
  p[3] = static_cast<std::uint8_t>(id);
  return p;
}

std::uint32_t id_of(const frame& l4) {
  return std::uint32_t{l4[8]} << 24 | std::uint32_t{l4[9]} << 16 | std::uint32_t{l4[10]} << 8 | l4[11];
}

void run_fragments(const std::string& mode) {
  inprocess_rig rig({.mode = mode, .name = "fr", .udp_s = 60});
  std::vector<flow> flows;
  for (int i = 0; i < 60; ++i) {
    flow f;
    f.v6 = i % 2 == 1;
    f.tcp = false;
    f.client = f.v6 ? addr(("2001:2:0:9::" + std::to_string(1 + i)).c_str()) : addr(("198.19.0." + std::to_string(1 + i)).c_str());
    f.cport = static_cast<std::uint16_t>(31000 + i);
    f.id = 0x30000u + static_cast<std::uint32_t>(i);
    flows.push_back(f);
  }
  std::map<std::uint32_t, std::size_t> by_id;
  for (std::size_t i = 0; i < flows.size(); ++i) by_id[flows[i].id] = i;

  // Clients -> VIP, as fragments.
  std::vector<frame> frames;
  std::size_t n_frags = 0;
  for (const flow& f : flows) {
    frame_spec s = client_packet(f, rig.client_mac(), 0);
    s.payload = big_payload(f.id);
    s.frag = 0;  // no DF: it was fragmented
    for (frame& p : cut(test::build_frame(s), 1500, f.id)) frames.push_back(std::move(p)), ++n_frags;
  }
  rig.inject(false, frames);
  auto out = regroup(rig.collect(true, n_frags));
  REQUIRE(out.size() == flows.size());
  for (const datagram& d : out) {
    REQUIRE(d.saw_last);
    REQUIRE(!d.first_hdr.empty());
    const frame l4 = d.l4();
    flow& f = flows[by_id.at(id_of(l4))];
    const bool v4 = !f.v6;
    f.lip = v4 ? fnat::inet_addr(ipv4_addr{load_raw32(d.first_hdr.data() + 26)}) : fnat::inet_addr(load<ipv6_addr>(d.first_hdr.data() + 22));
    f.rs = v4 ? fnat::inet_addr(ipv4_addr{load_raw32(d.first_hdr.data() + 30)}) : fnat::inet_addr(load<ipv6_addr>(d.first_hdr.data() + 38));
    f.lport = load_be16(l4.data());
    f.rport = load_be16(l4.data() + 2);
    CHECK(f.rport == 5353);
    frame_spec want = client_packet(f, rig.client_mac(), 0);
    want.payload = big_payload(f.id);
    want.saddr = f.lip;
    want.sport = f.lport;
    want.daddr = f.rs;
    want.dport = f.rport;
    const frame w = test::build_frame(want);
    CHECK(l4 == frame(w.begin() + (v4 ? 34 : 54), w.end()));  // the datagram, byte for byte
  }

  // Real servers -> LIP, as fragments: to the owner of the LIP port, then to the client.
  frames.clear();
  n_frags = 0;
  for (const flow& f : flows) {
    frame_spec s = server_packet(f, rig.server_mac(), 0);
    s.payload = big_payload(f.id);
    s.frag = 0;
    for (frame& p : cut(test::build_frame(s), 1500, ~f.id)) frames.push_back(std::move(p)), ++n_frags;
  }
  rig.inject(true, frames);
  out = regroup(rig.collect(false, n_frags));
  REQUIRE(out.size() == flows.size());
  for (const datagram& d : out) {
    const frame l4 = d.l4();
    const flow& f = flows[by_id.at(id_of(l4))];
    frame_spec want = server_packet(f, rig.server_mac(), 0);
    want.payload = big_payload(f.id);
    want.saddr = f.v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100");
    want.sport = 53;
    want.daddr = f.client;
    want.dport = f.cport;
    const frame w = test::build_frame(want);
    CHECK(l4 == frame(w.begin() + (f.v6 ? 54 : 34), w.end()));
  }
  CHECK(rig.total(&lb::worker_stats::reassembled) == 2 * flows.size());
  CHECK(rig.total(&lb::worker_stats::fragmented) == 2 * flows.size());
  CHECK(rig.total(&lb::worker_stats::conns_created) == flows.size());
  CHECK(rig.all_drops() == 0);
  CHECK(rig.total(&lb::worker_stats::redirected_out) > 0);  // fragments met on their home worker
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
}

}  // namespace

TEST_CASE("in-process balancer, flow mode: fragmented UDP both ways, reassembled, translated, refragmented", "[lb][frag]") {
  run_fragments("flow");
}
TEST_CASE("in-process balancer, redirect mode: fragmented UDP both ways, reassembled, translated, refragmented", "[lb][frag]") {
  run_fragments("redirect");
}

// Path MTU: the server link is 1280 bytes. A client's 1400-byte TCP segment with DF (IPv4) and any
// 1400-byte IPv6 packet are answered with fragmentation needed / packet too big from the VIP,
// quoting the client's own packet (exact bytes); a 1400-byte IPv4 UDP datagram without DF is
// fragmented to 1280 instead.
TEST_CASE("in-process balancer: too big for the server link: ICMP from the VIP, or fragments", "[lb][pmtu]") {
  inprocess_rig rig({.mode = "flow", .name = "pm", .udp_s = 60, .server_mtu = 1280});
  std::vector<frame> frames;
  std::vector<frame> want;
  for (const bool v6 : {false, true}) {
    flow f;
    f.v6 = v6;
    f.tcp = true;
    f.client = v6 ? addr("2001:2:0:9::7") : addr("198.19.0.7");
    f.cport = 33000;
    f.id = v6 ? 0x40006u : 0x40004u;
    // Open the conn: the SYN fits.
    rig.inject(false, {test::build_frame(client_packet(f, rig.client_mac(), tcp_flags::syn))});
    REQUIRE(rig.collect(true, 1).size() == 1);
    frame_spec big = client_packet(f, rig.client_mac(), tcp_flags::ack);
    big.payload.assign(1400 - (v6 ? 40 : 20) - 20, 'b');
    const frame b = test::build_frame(big);
    frames.push_back(b);
    frame_spec icmp;
    icmp.dst = v6 ? gw6_mac : gw_mac;
    icmp.src = rig.client_mac();
    icmp.saddr = v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100");
    icmp.daddr = f.client;
    icmp.ttl = 64;
    icmp.ip_id = 0;
    icmp.frag = 0;
    icmp.proto = v6 ? ipproto::icmpv6 : ipproto::icmp;
    icmp.icmp_type = v6 ? icmp6_type::packet_too_big : icmp_type::dest_unreachable;
    icmp.icmp_code = v6 ? 0 : 4;
    icmp.icmp_id = 0;
    icmp.icmp_seq = 1280;
    icmp.payload.assign(b.begin() + 14, b.begin() + 14 + static_cast<long>(std::min<std::size_t>(b.size() - 14, v6 ? 1232 : 548)));
    want.push_back(test::build_frame(icmp));
  }
  rig.inject(false, frames);
  auto out = rig.collect(false, 2);
  REQUIRE(out.size() == 2);
  std::size_t matched = 0;
  for (const auto& o : out) matched += (o == want[0] || o == want[1]) ? 1 : 0;
  CHECK(matched == 2);
  CHECK(rig.total(&lb::worker_stats::icmp_too_big_sent) == 2);
  CHECK(rig.total_drop(lb::lb_drop::too_big) == 2);

  // IPv4 UDP without DF: fragmented to the 1280-byte link.
  flow u;
  u.tcp = false;
  u.client = addr("198.19.0.8");
  u.cport = 33001;
  u.id = 0x40008u;
  frame_spec d = client_packet(u, rig.client_mac(), 0);
  d.frag = 0;
  d.payload.assign(1400 - 28, 'u');
  rig.inject(false, {test::build_frame(d)});
  out = rig.collect(true, 2);
  REQUIRE(out.size() == 2);
  for (const auto& o : out) CHECK(o.size() - 14 <= 1280);
  CHECK(rig.total(&lb::worker_stats::fragmented) == 1);
  CHECK(rig.total(&lb::worker_stats::frags_out) == 2);
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
}
