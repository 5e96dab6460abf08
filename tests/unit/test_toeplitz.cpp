// SPDX-License-Identifier: BSD-3-Clause
// Toeplitz: the published RSS verification vectors, both fast paths against the bit-serial
// reference, and the linearity the RSS-aware port policy relies on.
//
// The test binary is built for the baseline CPU, so `fnat::toeplitz` is the table path here; the
// GFNI kernels carry their own target attribute and run when the CPU has GFNI + AVX-512 (checked
// at run time; the test says so when it has to skip them).
#include <fnat/core/toeplitz.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

using fnat::errc;
using fnat::ipv4_addr;
using fnat::ipv6_addr;
using fnat::rss_key_microsoft;
using fnat::toeplitz_path;

namespace {

using gfni_toeplitz = fnat::basic_toeplitz<toeplitz_path::gfni>;

// Intel 82599 datasheet 7.1.2.8.3 / Microsoft "Verifying the RSS Hash Calculation": destination and
// source with ports; the hash over addresses only and over addresses and ports, Microsoft key.
struct rss_vector {
  const char* dst;
  std::uint16_t dport;
  const char* src;
  std::uint16_t sport;
  std::uint32_t l3;
  std::uint32_t l3l4;
};
constexpr rss_vector v4_vectors[] = {
    {"161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178},
    {"65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea},
    {"12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a},
    {"209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f},
    {"202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2},
};
constexpr rss_vector v6_vectors[] = {
    {"3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc18cd5, 0x40207d3d},
    {"ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c461c, 0xdde51bbf},
    {"fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, 0x4b61e985, 0x02d1feef},
};

std::vector<std::uint8_t> random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

bool gfni_runs() {
  if (!fnat::toeplitz_gfni_supported()) {
    WARN("this CPU lacks GFNI/AVX-512 (F, BW, VL, VBMI): the GFNI path is not exercised here");
    return false;
  }
  return true;
}

// Checks one hasher (either path) against the vectors through every entry point.
template <class T>
void check_vectors(const T& tz) {
  for (const auto& v : v4_vectors) {
    INFO(v.src << ":" << v.sport << " -> " << v.dst << ":" << v.dport);
    const auto src = *ipv4_addr::parse(v.src), dst = *ipv4_addr::parse(v.dst);
    const auto in = fnat::rss_input_v4(src, dst, fnat::hton16(v.sport), fnat::hton16(v.dport));
    CHECK(fnat::toeplitz_hash_reference(rss_key_microsoft, in) == v.l3l4);
    CHECK(fnat::toeplitz_hash_reference(rss_key_microsoft, std::span(in).first(8)) == v.l3);
    CHECK(tz.hash(in) == v.l3l4);
    CHECK(tz.hash(std::span<const std::uint8_t>(in).first(8)) == v.l3);
    CHECK(tz.hash_v4(in) == v.l3l4);
    CHECK(tz.hash_v4(src, dst, fnat::hton16(v.sport), fnat::hton16(v.dport)) == v.l3l4);
    const auto t = fnat::make_tuple(fnat::ipproto::tcp, src, v.sport, dst, v.dport);
    CHECK(tz.hash(t) == v.l3l4);
    CHECK(tz.hash(fnat::make_tuple(fnat::ipproto::udp, fnat::inet_addr(src), v.sport, fnat::inet_addr(dst), v.dport)) ==
          v.l3l4);
  }
  for (const auto& v : v6_vectors) {
    INFO(v.src << ":" << v.sport << " -> " << v.dst << ":" << v.dport);
    const auto src = *ipv6_addr::parse(v.src), dst = *ipv6_addr::parse(v.dst);
    const auto in = fnat::rss_input_v6(src, dst, fnat::hton16(v.sport), fnat::hton16(v.dport));
    CHECK(fnat::toeplitz_hash_reference(rss_key_microsoft, in) == v.l3l4);
    CHECK(fnat::toeplitz_hash_reference(rss_key_microsoft, std::span(in).first(32)) == v.l3);
    CHECK(tz.hash(in) == v.l3l4);
    CHECK(tz.hash(std::span<const std::uint8_t>(in).first(32)) == v.l3);
    CHECK(tz.hash_v6(in) == v.l3l4);
    CHECK(tz.hash_v6(src, dst, fnat::hton16(v.sport), fnat::hton16(v.dport)) == v.l3l4);
    CHECK(tz.hash(fnat::make_tuple(fnat::ipproto::tcp, src, v.sport, dst, v.dport)) == v.l3l4);
    CHECK(tz.hash(fnat::make_tuple(fnat::ipproto::tcp, fnat::inet_addr(src), v.sport, fnat::inet_addr(dst), v.dport)) ==
          v.l3l4);
  }
}

// Random keys, every input length up to the key's limit, random data: hasher == reference.
template <class T>
void check_random(std::size_t key_len, int rounds_per_len, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto key = random_bytes(rng, key_len);
  auto tz = T::make(key);
  REQUIRE(tz);
  REQUIRE(tz->max_input_len() == key_len - 4);
  for (std::size_t len = 0; len <= key_len - 4; ++len)
    for (int r = 0; r < rounds_per_len; ++r) {
      const auto data = random_bytes(rng, len);
      INFO("key " << key_len << " bytes, input " << len << " bytes");
      REQUIRE(tz->hash(data) == fnat::toeplitz_hash_reference(key, data));
    }
  // The fixed shapes with random tuples and this key (a 16-byte key covers IPv4 only).
  for (int r = 0; r < 200; ++r) {
    std::uint16_t sp, dp;
    const auto d4 = random_bytes(rng, 12);
    REQUIRE(tz->hash_v4(std::span<const std::uint8_t, 12>(d4.data(), 12)) == fnat::toeplitz_hash_reference(key, d4));
    ipv4_addr s4, t4;
    std::memcpy(&s4.be, d4.data(), 4);
    std::memcpy(&t4.be, d4.data() + 4, 4);
    std::memcpy(&sp, d4.data() + 8, 2);
    std::memcpy(&dp, d4.data() + 10, 2);
    REQUIRE(tz->hash_v4(s4, t4, sp, dp) == fnat::toeplitz_hash_reference(key, d4));
    if (key_len < 40) continue;
    const auto d6 = random_bytes(rng, 36);
    REQUIRE(tz->hash_v6(std::span<const std::uint8_t, 36>(d6.data(), 36)) == fnat::toeplitz_hash_reference(key, d6));
    ipv6_addr s6, t6;
    std::memcpy(s6.bytes.data(), d6.data(), 16);
    std::memcpy(t6.bytes.data(), d6.data() + 16, 16);
    std::memcpy(&sp, d6.data() + 32, 2);
    std::memcpy(&dp, d6.data() + 34, 2);
    REQUIRE(tz->hash_v6(s6, t6, sp, dp) == fnat::toeplitz_hash_reference(key, d6));
  }
}

}  // namespace

TEST_CASE("reference Toeplitz reproduces the RSS verification suite", "[toeplitz]") {
  auto tz = fnat::toeplitz_table::make(rss_key_microsoft);
  REQUIRE(tz);
  check_vectors(*tz);
}

TEST_CASE("GFNI Toeplitz reproduces the RSS verification suite", "[toeplitz][gfni]") {
  if (!gfni_runs()) return;
  auto tz = gfni_toeplitz::make(rss_key_microsoft);
  REQUIRE(tz);
  check_vectors(*tz);
}

TEST_CASE("table path equals the reference for random keys, lengths and data", "[toeplitz]") {
  check_random<fnat::toeplitz_table>(40, 20, 1);
  check_random<fnat::toeplitz_table>(52, 20, 2);
  check_random<fnat::toeplitz_table>(16, 50, 3);
}

TEST_CASE("GFNI path equals the reference for random keys, lengths and data, past 64 bytes too", "[toeplitz][gfni]") {
  if (!gfni_runs()) return;
  check_random<gfni_toeplitz>(40, 20, 11);
  check_random<gfni_toeplitz>(52, 20, 12);
  check_random<gfni_toeplitz>(16, 50, 13);
  // 64-byte chunks: lengths 60..136 cross one and two chunk boundaries (and block 8 of a chunk).
  check_random<gfni_toeplitz>(140, 5, 14);
}

TEST_CASE("Toeplitz is linear over GF(2): h(a ^ b) == h(a) ^ h(b)", "[toeplitz]") {
  // The identity rss_ports.hpp builds on: h(RS, LIP, rport, lport) = h(RS, LIP, rport, 0) ^ h(0, 0, 0, lport).
  std::mt19937_64 rng(7);
  auto tz = fnat::toeplitz_table::make(rss_key_microsoft);
  REQUIRE(tz);
  for (int r = 0; r < 1000; ++r) {
    auto a = random_bytes(rng, 36), b = random_bytes(rng, 36), c = a;
    for (std::size_t i = 0; i < c.size(); ++i) c[i] ^= b[i];
    REQUIRE(tz->hash(c) == (tz->hash(a) ^ tz->hash(b)));
    const auto src = *ipv4_addr::parse("198.18.2.1"), lip = *ipv4_addr::parse("198.18.0.7");
    const std::uint16_t rport = static_cast<std::uint16_t>(rng()), lport = static_cast<std::uint16_t>(rng());
    REQUIRE(tz->hash_v4(src, lip, rport, lport) ==
            (tz->hash_v4(src, lip, rport, 0) ^ tz->hash_v4(ipv4_addr{}, ipv4_addr{}, 0, lport)));
  }
}

TEST_CASE("default path follows the compile flags and GFNI support is reported", "[toeplitz]") {
  STATIC_REQUIRE(fnat::toeplitz::path == fnat::toeplitz_default_path);
  STATIC_REQUIRE(fnat::toeplitz_table::path == toeplitz_path::table);
#if defined(__GFNI__) && defined(__AVX512VBMI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  STATIC_REQUIRE(fnat::toeplitz_default_path == toeplitz_path::gfni);
#else
  STATIC_REQUIRE(fnat::toeplitz_default_path == toeplitz_path::table);
#endif
#if defined(__x86_64__)
  STATIC_REQUIRE(fnat::toeplitz_gfni_compiled);
  // Cross-check the CPUID probe with the compiler's own.
  __builtin_cpu_init();
  const bool cpu = __builtin_cpu_supports("gfni") && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512vbmi");
  CHECK(fnat::toeplitz_gfni_supported() == cpu);
#endif
  CHECK(std::string(fnat::to_string(toeplitz_path::gfni)) == "gfni");
  CHECK(std::string(fnat::to_string(toeplitz_path::table)) == "table");
}

TEST_CASE("Toeplitz make() refuses keys too short for the inputs", "[toeplitz]") {
  std::array<std::uint8_t, 4> tiny{};
  auto a = fnat::toeplitz_table::make(tiny);
  REQUIRE_FALSE(a);
  CHECK(a.err().code() == errc::invalid_argument);
  auto b = fnat::toeplitz_table::make(rss_key_microsoft, 37);
  REQUIRE_FALSE(b);
  CHECK(b.err().code() == errc::invalid_argument);
  CHECK(b.err().message().find("41") != std::string::npos);  // says how long the key must be
  auto c = fnat::toeplitz_table::make(rss_key_microsoft, 12);
  REQUIRE(c);
  CHECK(c->max_input_len() == 12);
  CHECK(c->key().size() == 40);
  // Copies own their tables.
  fnat::toeplitz_table copy = *c;
  const auto in = fnat::rss_input_v4(*ipv4_addr::parse("66.9.149.187"), *ipv4_addr::parse("161.142.100.80"),
                                     fnat::hton16(2794), fnat::hton16(1766));
  CHECK(copy.hash(in) == 0x51ccc178u);
}
