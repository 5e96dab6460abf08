// SPDX-License-Identifier: BSD-3-Clause
// MSS clamping (core/tcp_mss.hpp) on known answers: TCP segments built by scapy with one MSS, the
// same segments built by scapy with the clamped MSS (checksum computed in full by scapy) are what
// clamp_mss must produce, byte for byte; every checksum is also verified by a naive RFC 1071 sum
// written here, independent of core/checksum.hpp. Malformed option lists leave the bytes untouched.
#include <fnat/core/tcp_mss.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

namespace {

using bytes = std::vector<std::uint8_t>;

// The naive Internet checksum over pseudo-header + segment: 0 when the segment verifies.
std::uint16_t naive_verify(const bytes& src, const bytes& dst, const bytes& seg) {
  std::uint32_t sum = 0;
  auto add = [&](const bytes& b) {
    for (std::size_t i = 0; i < b.size(); i += 2)
      sum += (std::uint32_t{b[i]} << 8) | (i + 1 < b.size() ? b[i + 1] : 0u);
  };
  add(src);
  add(dst);
  sum += 6;  // protocol TCP
  sum += static_cast<std::uint32_t>(seg.size());  // fits in 16 bits here, as an IPv6 length would
  add(seg);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

const bytes c4{198, 18, 0, 2}, vip4{198, 18, 1, 100};
const bytes rs6{0x20, 0x01, 0x00, 0x02, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 2};
const bytes lip6{0x20, 0x01, 0x00, 0x02, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x01, 0x00};

// scapy: IP(src="198.18.0.2", dst="198.18.1.100")/TCP(sport=40000, dport=80, seq=0x11223344,
// flags="S", window=64240, options=[MSS, SAckOK, Timestamp (1, 0), NOP, WScale 7])/"hello"
const bytes v4_syn_1460{0x9c, 0x40, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
                        0xf0, 0x9a, 0xb5, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00,
                        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
const bytes v4_syn_1400{0x9c, 0x40, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
                        0xf0, 0x9a, 0xf1, 0x00, 0x00, 0x02, 0x04, 0x05, 0x78, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00,
                        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
// The same SYN with options [NOP, MSS]: the MSS value at offset 23, odd (scapy pads with EOL).
const bytes v4_odd_1460{0x9c, 0x40, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02,
                        0xfa, 0xf0, 0x6d, 0x60, 0x00, 0x00, 0x01, 0x02, 0x04, 0x05, 0xb4, 0x00, 0x00, 0x00};
const bytes v4_odd_1300{0x9c, 0x40, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02,
                        0xfa, 0xf0, 0x0d, 0x61, 0x00, 0x00, 0x01, 0x02, 0x04, 0x05, 0x14, 0x00, 0x00, 0x00};
// scapy: IPv6(src="2001:2:0:9::2", dst="2001:2:0:2::100")/TCP(sport=8000, dport=1025, seq=0xa1b2c3d4,
// ack=0x11223345, flags="SA", window=65535, options=[MSS, NOP, WScale 9])
const bytes v6_synack_1440{0x1f, 0x40, 0x04, 0x01, 0xa1, 0xb2, 0xc3, 0xd4, 0x11, 0x22, 0x33, 0x45, 0x70, 0x12,
                           0xff, 0xff, 0x75, 0xd8, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0, 0x01, 0x03, 0x03, 0x09};
const bytes v6_synack_1380{0x1f, 0x40, 0x04, 0x01, 0xa1, 0xb2, 0xc3, 0xd4, 0x11, 0x22, 0x33, 0x45, 0x70, 0x12,
                           0xff, 0xff, 0x76, 0x14, 0x00, 0x00, 0x02, 0x04, 0x05, 0x64, 0x01, 0x03, 0x03, 0x09};

// A segment with `options` (padded with EOL to a multiple of 4) and a correct checksum (naive).
bytes syn_with(const bytes& options, std::uint8_t flags = 0x02) {
  // Grown byte by byte: g++ 12 -O3 reports a bogus -Warray-bounds for vector::insert of a range here.
  bytes seg(60, 0);
  const std::uint8_t fixed[] = {0x9c, 0x40, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0, flags, 0xfa, 0xf0};
  std::size_t n = 0;
  for (const std::uint8_t b : fixed) seg[n++] = b;
  n = 20;
  for (const std::uint8_t b : options) seg[n++] = b;
  seg.resize(n);
  while (seg.size() % 4 != 0) seg.push_back(0);
  seg[12] = static_cast<std::uint8_t>((seg.size() / 4) << 4);
  const std::uint16_t c = naive_verify(c4, vip4, seg);
  seg[16] = static_cast<std::uint8_t>(c >> 8);
  seg[17] = static_cast<std::uint8_t>(c);
  return seg;
}

}  // namespace

TEST_CASE("the known answers verify (naive checksum) before any clamping", "[tcp_mss]") {
  for (const bytes* b : {&v4_syn_1460, &v4_syn_1400, &v4_odd_1460, &v4_odd_1300}) CHECK(naive_verify(c4, vip4, *b) == 0);
  for (const bytes* b : {&v6_synack_1440, &v6_synack_1380}) CHECK(naive_verify(rs6, lip6, *b) == 0);
}

TEST_CASE("IPv4 SYN, MSS 1460 clamped to 1400: scapy's bytes exactly", "[tcp_mss]") {
  bytes seg = v4_syn_1460;
  const auto r = fnat::clamp_mss(seg, 1400);
  CHECK(r.status == fnat::mss_status::clamped);
  CHECK(r.before == 1460);
  CHECK(seg == v4_syn_1400);
  CHECK(naive_verify(c4, vip4, seg) == 0);
}

TEST_CASE("an MSS at an odd offset (after one NOP): both words of the checksum updated, scapy's bytes", "[tcp_mss]") {
  const auto found = fnat::find_mss(v4_odd_1460);
  REQUIRE(found.status == fnat::mss_status::within_bound);
  REQUIRE(found.count == 1);
  CHECK(found.offset[0] == 23);
  CHECK(found.value[0] == 1460);
  bytes seg = v4_odd_1460;
  const auto r = fnat::clamp_mss(seg, 1300);
  CHECK(r.status == fnat::mss_status::clamped);
  CHECK(seg == v4_odd_1300);
  CHECK(naive_verify(c4, vip4, seg) == 0);
}

TEST_CASE("IPv6 SYN-ACK, MSS 1440 clamped to 1380: scapy's bytes", "[tcp_mss]") {
  bytes seg = v6_synack_1440;
  const auto r = fnat::clamp_mss(seg, 1380);
  CHECK(r.status == fnat::mss_status::clamped);
  CHECK(r.before == 1440);
  CHECK(seg == v6_synack_1380);
  CHECK(naive_verify(rs6, lip6, seg) == 0);
}

TEST_CASE("an MSS at or below the bound, a SYN without MSS, a segment without SYN: untouched", "[tcp_mss]") {
  bytes seg = v4_syn_1400;
  CHECK(fnat::clamp_mss(seg, 1400).status == fnat::mss_status::within_bound);
  CHECK(fnat::clamp_mss(seg, 1460).status == fnat::mss_status::within_bound);
  CHECK(seg == v4_syn_1400);

  const bytes no_mss = syn_with({0x01, 0x03, 0x03, 0x07});  // NOP, WScale 7
  seg = no_mss;
  const auto r = fnat::clamp_mss(seg, 1000);
  CHECK(r.status == fnat::mss_status::no_mss);
  CHECK(r.before == 0);
  CHECK(seg == no_mss);

  const bytes ack = syn_with({0x02, 0x04, 0x05, 0xb4}, 0x10);  // an MSS option in a plain ACK
  seg = ack;
  CHECK(fnat::clamp_mss(seg, 1000).status == fnat::mss_status::not_syn);
  CHECK(seg == ack);
}

TEST_CASE("malformed option lists and data offsets: untouched, reported as malformed", "[tcp_mss]") {
  const std::vector<bytes> bad_options{
      {0x01, 0x01, 0x02, 0x04},        // an MSS whose value lies past the data offset
      {0x03, 0x00, 0x02, 0x04, 0x05, 0xb4},  // length 0 before an MSS
      {0x03, 0x01, 0x02, 0x04, 0x05, 0xb4},  // length 1
      {0x02, 0x03, 0x05, 0x01},        // MSS of length 3
      {0x02, 0x06, 0x05, 0xb4, 0, 0},  // MSS of length 6
      {0x01, 0x01, 0x01, 0x08},        // a kind with no length byte left
      {0x04, 0x0a, 0x02, 0x04},        // an option running past the data offset
  };
  for (const bytes& o : bad_options) {
    const bytes good = syn_with(o);
    bytes seg = good;
    INFO("options " << o.size() << " bytes, first " << int(o[0]));
    CHECK(fnat::clamp_mss(seg, 536).status == fnat::mss_status::malformed);
    CHECK(seg == good);
  }
  bytes seg = v4_syn_1460;
  seg[12] = 0x40;  // data offset 4
  const bytes low = seg;
  CHECK(fnat::clamp_mss(seg, 536).status == fnat::mss_status::malformed);
  CHECK(seg == low);
  seg = v4_syn_1460;
  seg[12] = 0xf0;  // 60 bytes of header in a 45-byte buffer
  const bytes high = seg;
  CHECK(fnat::clamp_mss(seg, 536).status == fnat::mss_status::malformed);
  CHECK(seg == high);
  bytes tiny(19, 0);
  CHECK(fnat::clamp_mss(tiny, 536).status == fnat::mss_status::malformed);
  // Options after EOL are not read: an "MSS of length 3" there is no malformation.
  const bytes after_eol = syn_with({0x02, 0x04, 0x05, 0xb4, 0x00, 0x02, 0x03, 0x00});
  seg = after_eol;
  CHECK(fnat::clamp_mss(seg, 1000).status == fnat::mss_status::clamped);
  CHECK(naive_verify(c4, vip4, seg) == 0);
}

TEST_CASE("two MSS options: both clamped, before is the smaller", "[tcp_mss]") {
  bytes seg = syn_with({0x02, 0x04, 0x05, 0xb4, 0x01, 0x02, 0x04, 0x04, 0x00});
  const auto r = fnat::clamp_mss(seg, 1100);
  CHECK(r.status == fnat::mss_status::clamped);
  CHECK(r.before == 1024);
  const auto after = fnat::find_mss(seg);
  REQUIRE(after.count == 2);
  CHECK(after.value[0] == 1100);
  CHECK(after.value[1] == 1024);  // at or below the bound: kept
  CHECK(naive_verify(c4, vip4, seg) == 0);
}

TEST_CASE("random option layouts: the incremental checksum equals a full recomputation", "[tcp_mss]") {
  std::mt19937 rng(15);
  for (int round = 0; round < 2000; ++round) {
    bytes opts;
    const int nops = static_cast<int>(rng() % 8);
    for (int i = 0; i < nops; ++i) opts.push_back(0x01);  // shifts the MSS to any alignment
    const std::uint16_t mss = static_cast<std::uint16_t>(rng() % 65536);
    for (const std::uint8_t b : {std::uint8_t{0x02}, std::uint8_t{0x04}, static_cast<std::uint8_t>(mss >> 8),
                                 static_cast<std::uint8_t>(mss)})
      opts.push_back(b);
    if (rng() % 2) {  // SAckOK after it
      opts.push_back(0x04);
      opts.push_back(0x02);
    }
    bytes seg = syn_with(opts);
    for (int i = 0; i < static_cast<int>(rng() % 64); ++i) seg.push_back(static_cast<std::uint8_t>(rng()));
    // Fix the checksum for the payload too.
    seg[16] = seg[17] = 0;
    const std::uint16_t c = naive_verify(c4, vip4, seg);
    seg[16] = static_cast<std::uint8_t>(c >> 8);
    seg[17] = static_cast<std::uint8_t>(c);
    const std::uint16_t bound = static_cast<std::uint16_t>(1 + rng() % 65535);
    const bytes before = seg;
    const auto r = fnat::clamp_mss(seg, bound);
    INFO("round " << round << " nops " << nops << " mss " << mss << " bound " << bound);
    REQUIRE(r.status == (mss > bound ? fnat::mss_status::clamped : fnat::mss_status::within_bound));
    REQUIRE(fnat::find_mss(seg).value[0] == (mss > bound ? bound : mss));
    REQUIRE(naive_verify(c4, vip4, seg) == 0);
    if (mss <= bound) REQUIRE(seg == before);
  }
}
