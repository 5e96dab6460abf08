// SPDX-License-Identifier: BSD-3-Clause
// The reset that refuses a connection (core/tcp_reset.hpp), the token bucket that bounds how many a
// lcore sends (core/token_bucket.hpp), and the full checksum verification a first packet passes
// (core/packet.hpp ip_checksum_ok / l4_checksum_ok) on known answers.
#include <fnat/core/packet.hpp>
#include <fnat/core/tcp_reset.hpp>
#include <fnat/core/token_bucket.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "support/packet_frames.hpp"

namespace {

using namespace fnat;
using fnat::test::build_frame;
using fnat::test::frame_spec;

const mac_addr lb_mac{{0x02, 0, 0, 0, 0, 0x01}};
const mac_addr gw_mac{{0x02, 0xaa, 0, 0, 0, 0xfe}};

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }

std::vector<std::uint8_t> rst_of(const std::vector<std::uint8_t>& seg, packet_info& info) {
  REQUIRE(parse(seg, info) == drop_reason::none);
  const auto r = reset_for(seg, info);
  REQUIRE(r);
  std::vector<std::uint8_t> out(128, 0xee);
  const std::size_t n = build_tcp_reset(out, reply_l2(seg, info, lb_mac), *r);
  REQUIRE(n != 0);
  out.resize(n);
  return out;
}

}  // namespace

TEST_CASE("reset to an IPv4 SYN: exact bytes (scapy's), seq 0, ack ISN + 1, RST|ACK, padded to 60", "[tcp_reset]") {
  frame_spec s;
  s.dst = lb_mac;
  s.src = gw_mac;
  s.saddr = A("198.18.0.10");
  s.daddr = A("198.18.1.100");
  s.sport = 40000;
  s.dport = 80;
  s.tcp_flags = tcp_flags::syn;
  s.seq = 0x01020304;
  s.tcp_options = {0x02, 0x04, 0x05, 0xb4};  // MSS: options do not count in SEG.LEN
  packet_info info;
  const auto rst = rst_of(build_frame(s), info);
  // Built with scapy: Ether/IP(src=VIP, dst=client, ttl=64, id=0, flags=DF)/TCP(80 -> 40000, seq=0,
  // ack=0x01020305, flags=RA, window=0), zero-padded to 60 bytes.
  const std::vector<std::uint8_t> want = {
      0x02, 0xaa, 0x00, 0x00, 0x00, 0xfe, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x28, 0x00, 0x00,
      0x40, 0x00, 0x40, 0x06, 0xad, 0x3d, 0xc6, 0x12, 0x01, 0x64, 0xc6, 0x12, 0x00, 0x0a, 0x00, 0x50, 0x9c, 0x40, 0x00, 0x00,
      0x00, 0x00, 0x01, 0x02, 0x03, 0x05, 0x50, 0x14, 0x00, 0x00, 0x81, 0xa6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  CHECK(rst == want);
  // And it parses, with both checksums verified, as a segment from the VIP to the client.
  packet_info back;
  REQUIRE(parse(rst, back, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none);
  CHECK(back.tuple.saddr == s.daddr);
  CHECK(back.tuple.daddr == s.saddr);
  CHECK(back.tcp_flags == (tcp_flags::rst | tcp_flags::ack));
  CHECK(back.frame_len == 54);
}

TEST_CASE("reset to an IPv6 SYN with data: ack = ISN + data + 1, modulo 2^32 (exact bytes, scapy's)", "[tcp_reset]") {
  frame_spec s;
  s.dst = lb_mac;
  s.src = mac_addr{{0x02, 0xaa, 0, 0, 0, 0xfd}};
  s.saddr = A("2001:2:0:9::7");
  s.daddr = A("2001:2:0:3::100");
  s.sport = 40001;
  s.dport = 80;
  s.tcp_flags = tcp_flags::syn;
  s.seq = 0xfffffffe;
  s.payload = {'a', 'b', 'c'};  // TCP fast open data occupies sequence space too
  packet_info info;
  const auto rst = rst_of(build_frame(s), info);
  const std::vector<std::uint8_t> want = {
      0x02, 0xaa, 0x00, 0x00, 0x00, 0xfd, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x06, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
      0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x50, 0x9c,
      0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x50, 0x14, 0x00, 0x00, 0xd2, 0x24, 0x00, 0x00};
  CHECK(rst == want);
  packet_info back;
  CHECK(parse(rst, back, {.verify_l4_checksum = true}) == drop_reason::none);
}

TEST_CASE("reset_for: a segment with ACK gets <SEQ = SEG.ACK><RST>, FIN counts one, a reset gets nothing", "[tcp_reset]") {
  frame_spec s;
  s.saddr = A("198.18.0.10");
  s.daddr = A("198.18.1.100");
  s.tcp_flags = tcp_flags::ack | tcp_flags::psh;
  s.seq = 1000;
  s.ack = 0xdeadbeef;
  s.payload = {1, 2, 3, 4};
  auto f = build_frame(s);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  auto r = reset_for(f, info);
  REQUIRE(r);
  CHECK(r->flags == tcp_flags::rst);
  CHECK(r->seq == 0xdeadbeef);
  CHECK(r->sport == hton16(80));
  CHECK(r->dport == hton16(40000));

  s.tcp_flags = tcp_flags::fin;
  f = build_frame(s);
  REQUIRE(parse(f, info) == drop_reason::none);
  r = reset_for(f, info);
  REQUIRE(r);
  CHECK(r->flags == (tcp_flags::rst | tcp_flags::ack));
  CHECK(r->seq == 0);
  CHECK(r->ack == 1000 + 4 + 1);

  for (std::uint8_t flags : {tcp_flags::rst, std::uint8_t(tcp_flags::rst | tcp_flags::ack)}) {
    s.tcp_flags = flags;
    f = build_frame(s);
    REQUIRE(parse(f, info) == drop_reason::none);
    CHECK_FALSE(reset_for(f, info));
  }
  s.proto = ipproto::udp;
  f = build_frame(s);
  REQUIRE(parse(f, info) == drop_reason::none);
  CHECK_FALSE(reset_for(f, info));
}

TEST_CASE("build_tcp_reset: a buffer too small gets nothing written", "[tcp_reset]") {
  tcp_reset_spec r{.saddr = A("198.18.1.100"), .daddr = A("198.18.0.10"), .sport = hton16(80), .dport = hton16(1),
                   .seq = 0, .ack = 1, .flags = tcp_flags::rst | tcp_flags::ack};
  std::vector<std::uint8_t> out(59, 0xee);
  CHECK(build_tcp_reset(out, l2_spec{}, r) == 0);
  CHECK(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0xee; }));
  l2_spec tagged;
  tagged.vlan = true;
  tagged.vlan_tci = 7;
  out.assign(60, 0);
  CHECK(build_tcp_reset(out, tagged, r) == 60);  // 18 + 40 = 58, padded
  CHECK(tcp_reset_frame_len(tagged, ip_family::v6) == 78);
}

TEST_CASE("checksum verification, known answers: the classic IPv4 header and a captured TCP SYN", "[tcp_reset]") {
  // IPv4 header of RFC 1071's usual example frame (checksum 0xb1e6), and a SYN 198.18.0.10:40000 ->
  // 198.18.1.100:80 seq 0x01020304, window 0xfaf0, checksum 0x86c8 as scapy computes it.
  std::vector<std::uint8_t> f = {
      0x02, 0, 0, 0, 0, 0x01, 0x02, 0xaa, 0, 0, 0, 0xfe, 0x08, 0x00,  // Ethernet
      0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  f.resize(14 + 0x73);
  f[14 + 20 + 4] = 0;   // UDP length = 0x73 - 20 = 95
  f[14 + 20 + 5] = 95;
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  CHECK(ip_checksum_ok(f, info));
  CHECK(l4_checksum_ok(f, info));  // UDP checksum 0 over IPv4: none, valid
  f[14 + 10] ^= 0x01;
  CHECK_FALSE(ip_checksum_ok(f, info));
  CHECK(parse(f, info, {.verify_ip_checksum = true}) == drop_reason::bad_ip_checksum);

  frame_spec s;
  s.saddr = A("198.18.0.10");
  s.daddr = A("198.18.1.100");
  s.ip_id = 1;
  auto syn = build_frame(s);
  REQUIRE(parse(syn, info) == drop_reason::none);
  CHECK(load_be16(syn.data() + info.l4_off + 16) == 0x86c8);
  CHECK(l4_checksum_ok(syn, info));
  for (std::size_t i = info.l4_off; i < syn.size(); ++i) {  // any single flipped bit is caught
    syn[i] ^= 0x10;
    CHECK_FALSE(l4_checksum_ok(syn, info));
    syn[i] ^= 0x10;
  }
}

TEST_CASE("token_bucket: burst at once, then rate per second, exact over long runs, bad configs refused",
          "[token_bucket]") {
  auto b = token_bucket::make({.rate = 10, .burst = 3, .hz = 1000}, 0);
  REQUIRE(b);
  int got = 0;
  for (int i = 0; i < 10; ++i) got += b->take(0);
  CHECK(got == 3);  // the burst
  CHECK_FALSE(b->take(99));  // 0.099 s: 0.99 tokens
  CHECK(b->take(100));       // 0.1 s: one
  CHECK_FALSE(b->take(100));
  // Over 1000 s, one attempt per ms: exactly rate * time tokens (no rounding drift).
  got = 0;
  for (std::uint64_t t = 101; t <= 1'000'100; ++t) got += b->take(t);
  CHECK(got == 10'000);
  // A long idle refills to the burst, not beyond; a clock going backwards adds nothing.
  CHECK(b->available(1'000'100 + 3'600'000) == 3);
  CHECK(b->available(5) == 3);
  // The largest configuration: no overflow after an hour at 100 GHz.
  auto big = token_bucket::make({.rate = token_bucket::max_rate, .burst = token_bucket::max_rate, .hz = token_bucket::max_hz}, 0);
  REQUIRE(big);
  for (int i = 0; i < 1000; ++i) REQUIRE(big->take(0));
  CHECK(big->available(token_bucket::max_hz * 3600) == token_bucket::max_rate);

  CHECK_FALSE(token_bucket::make({.rate = 0}));
  CHECK_FALSE(token_bucket::make({.burst = 0}));
  CHECK_FALSE(token_bucket::make({.rate = token_bucket::max_rate + 1}));
  CHECK_FALSE(token_bucket::make({.hz = 0}));
  const auto e = token_bucket::make({.rate = 0});
  CHECK(e.err().message().find("rate 0") != std::string::npos);
}
