// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/checksum.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "support/packet_frames.hpp"

using fnat::test::ref_sum;

namespace {

std::uint16_t host_sum(const std::vector<std::uint8_t>& v, std::size_t off = 0, std::size_t len = SIZE_MAX) {
  if (len == SIZE_MAX) len = v.size() - off;
  return fnat::ntoh16(fnat::raw_sum(v.data() + off, len));
}

std::uint16_t load_host16(const std::vector<std::uint8_t>& v, std::size_t off) {
  return static_cast<std::uint16_t>(v[off] << 8 | v[off + 1]);
}

}  // namespace

TEST_CASE("raw_sum: RFC 1071 section 3 example and the classic IPv4 header", "[checksum]") {
  // RFC 1071 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (big-endian words).
  const std::vector<std::uint8_t> rfc = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(host_sum(rfc) == 0xddf2);
  CHECK(fnat::ntoh16(fnat::internet_checksum(rfc)) == 0x220d);

  // 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7
  std::vector<std::uint8_t> ip = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                  0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  const std::uint16_t c = fnat::internet_checksum(ip);
  CHECK(fnat::ntoh16(c) == 0xb861);
  std::memcpy(&ip[10], &c, 2);
  CHECK(fnat::checksum_ok(ip));
  ip[19] ^= 1;
  CHECK_FALSE(fnat::checksum_ok(ip));
}

TEST_CASE("raw_sum: odd lengths pad with a zero byte, and every length and alignment matches the reference",
          "[checksum]") {
  CHECK(host_sum({0x01}) == 0x0100);
  CHECK(host_sum({0x01, 0x02, 0x03}) == 0x0402);
  CHECK(fnat::raw_sum(nullptr, 0) == 0);

  std::mt19937_64 rng(1);
  std::vector<std::uint8_t> buf(600);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (std::size_t off = 0; off < 8; ++off)
    for (std::size_t len = 0; len <= 520; ++len) {
      INFO("off " << off << " len " << len);
      REQUIRE(host_sum(buf, off, len) == ref_sum(buf.data() + off, len));
    }
  // All-ones data: the sum must stay 0xffff (never fold to 0).
  std::vector<std::uint8_t> ones(1000, 0xff);
  CHECK(host_sum(ones) == 0xffff);
}

TEST_CASE("raw_sum continues a sum at an even offset", "[checksum]") {
  std::mt19937_64 rng(2);
  std::vector<std::uint8_t> buf(300);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (std::size_t cut = 0; cut <= buf.size(); cut += 2)
    REQUIRE(fnat::raw_sum(buf.data() + cut, buf.size() - cut, fnat::raw_sum(buf.data(), cut)) ==
            fnat::raw_sum(buf.data(), buf.size()));
}

TEST_CASE("csum_fold: end-around carry, zero only for zero", "[checksum]") {
  STATIC_REQUIRE(fnat::csum_fold(0) == 0);
  STATIC_REQUIRE(fnat::csum_fold(0xffff) == 0xffff);
  STATIC_REQUIRE(fnat::csum_fold(0x1fffe) == 0xffff);
  STATIC_REQUIRE(fnat::csum_fold(0x10000) == 1);
  STATIC_REQUIRE(fnat::csum_fold(~std::uint64_t{0}) == 0xffff);  // 2^64-1 is a multiple of 0xffff
  STATIC_REQUIRE(fnat::csum_fold(0x123456789abcdefULL) == fnat::csum_fold(0x123456789abcdefULL % 0xffff));
  STATIC_REQUIRE(fnat::csum_add(0xffff, 1) == 1);
}

TEST_CASE("incremental update: RFC 1624 section 4 example gives 0x0000, not eqn. 2's 0xffff", "[checksum]") {
  // Other header words sum to 0xCD7A; m = 0x5555 -> m' = 0x3285; HC = 0xDD2F; recomputation gives 0.
  // Byte order does not matter to ones' complement algebra, so the host numbers can be used as raw.
  STATIC_REQUIRE(fnat::csum_update16(0xdd2f, 0x5555, 0x3285) == 0x0000);
  // And back.
  STATIC_REQUIRE(fnat::csum_update16(0x0000, 0x3285, 0x5555) == 0xdd2f);
}

TEST_CASE("incremental updates equal full recomputation bit for bit on random data", "[checksum]") {
  std::mt19937_64 rng(3);
  for (int iter = 0; iter < 20000; ++iter) {
    const std::size_t len = 24 + 2 * (rng() % 200);
    std::vector<std::uint8_t> d(len);
    for (auto& b : d) b = static_cast<std::uint8_t>(rng());
    // Checksum field at offset 0 (any even offset behaves the same).
    d[0] = d[1] = 0;
    std::uint16_t hc = fnat::internet_checksum(d);
    const int kind = static_cast<int>(rng() % 4);
    std::size_t off = 2 + 2 * (rng() % ((len - 20) / 2));
    std::vector<std::uint8_t> old(d.begin() + static_cast<std::ptrdiff_t>(off),
                                  d.begin() + static_cast<std::ptrdiff_t>(off + 16));
    fnat::csum_delta delta;
    if (kind == 0) {
      std::uint16_t o, n = static_cast<std::uint16_t>(rng());
      std::memcpy(&o, &d[off], 2);
      std::memcpy(&d[off], &n, 2);
      hc = fnat::csum_update16(hc, o, n);
    } else if (kind == 1) {
      std::uint32_t o, n = static_cast<std::uint32_t>(rng());
      std::memcpy(&o, &d[off], 4);
      std::memcpy(&d[off], &n, 4);
      hc = fnat::csum_update32(hc, o, n);
    } else if (kind == 2) {
      fnat::ipv6_addr o, n;
      std::memcpy(o.bytes.data(), &d[off], 16);
      for (auto& b : n.bytes) b = static_cast<std::uint8_t>(rng());
      std::memcpy(&d[off], n.bytes.data(), 16);
      hc = fnat::csum_update(hc, o, n);
    } else {
      // Several changes accumulated in one delta.
      for (std::size_t i = 0; i < 16; i += 2) {
        std::uint16_t o, n = static_cast<std::uint16_t>(rng());
        std::memcpy(&o, &d[off + i], 2);
        std::memcpy(&d[off + i], &n, 2);
        delta.add16(o, n);
      }
      hc = delta.apply(hc);
    }
    std::vector<std::uint8_t> z = d;
    z[0] = z[1] = 0;
    INFO("iter " << iter << " kind " << kind);
    REQUIRE(hc == fnat::internet_checksum(z));
  }
}

TEST_CASE("csum_delta: add_bytes equals word-wise adds, and adding deltas composes", "[checksum]") {
  std::mt19937_64 rng(4);
  for (int i = 0; i < 1000; ++i) {
    std::uint8_t a[16], b[16];
    for (auto& x : a) x = static_cast<std::uint8_t>(rng());
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    fnat::csum_delta d1, d2, d3, d4;
    d1.add_bytes(a, b, 16);
    for (int w = 0; w < 16; w += 2) {
      std::uint16_t o, n;
      std::memcpy(&o, a + w, 2);
      std::memcpy(&n, b + w, 2);
      d2.add16(o, n);
      (w < 8 ? d3 : d4).add16(o, n);
    }
    d3.add(d4);
    const auto hc = static_cast<std::uint16_t>(rng());
    REQUIRE(d1.apply(hc) == d2.apply(hc));
    REQUIRE(d3.apply(hc) == d2.apply(hc));
  }
  // An empty delta leaves a computed checksum as it was.
  STATIC_REQUIRE(fnat::csum_delta{}.apply(0x1234) == 0x1234);
}

TEST_CASE("pseudo-header sums match the pseudo-header laid out and summed by the reference", "[checksum]") {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 2000; ++i) {
    const auto s4 = fnat::ipv4_addr{static_cast<std::uint32_t>(rng())};
    const auto d4 = fnat::ipv4_addr{static_cast<std::uint32_t>(rng())};
    const auto len = static_cast<std::uint16_t>(rng());
    const std::uint8_t proto = rng() & 1 ? 6 : 17;
    std::uint8_t ph4[12];
    std::memcpy(ph4, &s4.be, 4);
    std::memcpy(ph4 + 4, &d4.be, 4);
    ph4[8] = 0;
    ph4[9] = proto;
    ph4[10] = static_cast<std::uint8_t>(len >> 8);
    ph4[11] = static_cast<std::uint8_t>(len);
    REQUIRE(fnat::ntoh16(fnat::pseudo_header_sum(s4, d4, proto, len)) == ref_sum(ph4, 12));

    fnat::ipv6_addr s6, d6;
    for (auto& b : s6.bytes) b = static_cast<std::uint8_t>(rng());
    for (auto& b : d6.bytes) b = static_cast<std::uint8_t>(rng());
    const auto len6 = static_cast<std::uint32_t>(rng() & 0x1ffff);
    std::uint8_t ph6[40] = {};
    std::memcpy(ph6, s6.bytes.data(), 16);
    std::memcpy(ph6 + 16, d6.bytes.data(), 16);
    ph6[32] = static_cast<std::uint8_t>(len6 >> 24);
    ph6[33] = static_cast<std::uint8_t>(len6 >> 16);
    ph6[34] = static_cast<std::uint8_t>(len6 >> 8);
    ph6[35] = static_cast<std::uint8_t>(len6);
    ph6[39] = proto;
    REQUIRE(fnat::ntoh16(fnat::pseudo_header_sum(s6, d6, proto, len6)) == ref_sum(ph6, 40));
  }
}

TEST_CASE("UDP: a computed 0 is sent as 0xffff, and an incremental update that lands on 0 is fixed up",
          "[checksum]") {
  STATIC_REQUIRE(fnat::udp_checksum_fixup(0) == 0xffff);
  STATIC_REQUIRE(fnat::udp_checksum_fixup(0x1234) == 0x1234);
  // A datagram whose data sums to 0xffff: its checksum computes to 0.
  std::vector<std::uint8_t> d = {0x12, 0x34, 0x00, 0x00, 0xab, 0xcd, 0x00, 0x00};  // [4..5] adjusted below
  const std::uint16_t rest = ref_sum(d.data(), d.size());
  const auto fill = static_cast<std::uint16_t>(~rest);
  d[6] = static_cast<std::uint8_t>(fill >> 8);
  d[7] = static_cast<std::uint8_t>(fill);
  REQUIRE(ref_sum(d.data(), d.size()) == 0xffff);
  CHECK(fnat::internet_checksum(d) == 0);
  CHECK(fnat::udp_checksum_fixup(fnat::internet_checksum(d)) == 0xffff);
  // 0xffff is a valid representation: with it in the checksum field (offset 2) the datagram verifies.
  d[2] = d[3] = 0xff;
  CHECK(fnat::checksum_ok(d));
  CHECK(load_host16(d, 2) == 0xffff);
}
