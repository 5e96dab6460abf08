// SPDX-License-Identifier: BSD-3-Clause
// The keyed hash (hash.hpp): published vectors for SipHash and CRC32C, pinned answers for fixed keys,
// and the property the issue is about: tuples crafted to share a CRC32C bucket spread under the keyed
// hash, and no xor relation holds between outputs as it does for CRC.
#include <fnat/core/conn_table.hpp>
#include <fnat/core/hash.hpp>
#include <fnat/core/neighbour.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "../../bench/support/crc_flood.hpp"

namespace {

constexpr fnat::hash_secret key_a{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
constexpr fnat::hash_secret key_b{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};

fnat::tuple4 random_tuple(std::mt19937_64& rng) {
  const auto r = rng();
  return fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(static_cast<std::uint32_t>(r)),
                          static_cast<std::uint16_t>(r >> 32), fnat::ipv4_addr::from_host(0xc6120101u), 443);
}

// Nodes in the fullest of 2^bits buckets, and the chi-square statistic against uniform.
struct spread {
  std::size_t max = 0;
  double chi2 = 0;
};
template <class H, class K>
spread spread_of(const H& h, const std::vector<K>& keys, unsigned bits) {
  std::vector<std::size_t> n(std::size_t{1} << bits);
  for (const auto& k : keys) ++n[h(k) & (n.size() - 1)];
  const double e = static_cast<double>(keys.size()) / static_cast<double>(n.size());
  spread s;
  for (std::size_t c : n) {
    s.max = std::max(s.max, c);
    s.chi2 += (static_cast<double>(c) - e) * (static_cast<double>(c) - e) / e;
  }
  return s;
}

template <class H>
void check_keyed(const char* name) {
  INFO(name);
  constexpr unsigned bits = 10;  // 1024 buckets
  const auto crafted = fnat_flood::crc_colliding_syns(fnat::ipv4_addr::from_host(0xc6120101u), 443, bits, 4096);
  REQUIRE(crafted.size() == 4096);
  // The attack works on CRC32C, seed or no seed: one bucket.
  REQUIRE(spread_of(fnat::crc32c_tuple_hash{}, crafted, bits).max == 4096);
  REQUIRE(spread_of(fnat::crc32c_tuple_hash{0xdeadbeefu}, crafted, bits).max == 4096);
  // Under the keyed hash: 4 per bucket on average. Chi-square with 1023 degrees of freedom has mean
  // 1023 and standard deviation ~45; a Poisson(4) bucket above 20 has probability ~1e-8.
  for (const auto& k : {key_a, key_b}) {
    const spread s = spread_of(H(k), crafted, bits);
    CHECK(s.max <= 20);
    CHECK(s.chi2 < 1023 + 6 * 45);
  }
  CHECK(spread_of(H(), crafted, bits).max <= 20);  // the process's random key

  // Different keys, different placements: two keys put a key in the same bucket 1 time in 1024.
  std::mt19937_64 rng(7);
  std::vector<fnat::tuple4> keys(8192);
  for (auto& k : keys) k = random_tuple(rng);
  std::size_t same = 0;
  const H ha(key_a), hb(key_b);
  for (const auto& k : keys) same += (ha(k) & 1023) == (hb(k) & 1023);
  CHECK(same < 64);  // expected 8

  // Fixed key: deterministic, also across copies and threads.
  const H again(key_a);
  const H copy = ha;
  std::uint32_t from_thread = 0;
  std::thread([&] { from_thread = H(key_a)(keys[0]); }).join();
  for (const auto& k : keys) {
    REQUIRE(ha(k) == again(k));
    REQUIRE(ha(k) == copy(k));
  }
  REQUIRE(from_thread == ha(keys[0]));

  // Not affine: for CRC, h(a ^ b) ^ h(a) ^ h(b) ^ h(0) is always 0; for a keyed non-linear hash it
  // is 0 about once in 2^32.
  std::size_t crc_zero = 0, keyed_zero = 0;
  const fnat::tuple4 zero{};
  for (int i = 0; i < 1000; ++i) {
    fnat::tuple4 a = random_tuple(rng), b = random_tuple(rng), x;
    auto* pa = reinterpret_cast<unsigned char*>(&a);
    auto* pb = reinterpret_cast<unsigned char*>(&b);
    auto* px = reinterpret_cast<unsigned char*>(&x);
    for (std::size_t j = 0; j < sizeof x; ++j) px[j] = pa[j] ^ pb[j];
    crc_zero += (fnat::crc32c_key(x) ^ fnat::crc32c_key(a) ^ fnat::crc32c_key(b) ^ fnat::crc32c_key(zero)) == 0;
    keyed_zero += (ha(x) ^ ha(a) ^ ha(b) ^ ha(zero)) == 0;
  }
  CHECK(crc_zero == 1000);
  CHECK(keyed_zero == 0);
}

}  // namespace

TEST_CASE("SipHash-2-4 reference vectors (Aumasson & Bernstein, appendix A)", "[hash]") {
  std::array<std::uint8_t, 15> msg{};
  for (std::size_t i = 0; i < msg.size(); ++i) msg[i] = static_cast<std::uint8_t>(i);
  REQUIRE(fnat::siphash<2, 4>(key_a.k0, key_a.k1, msg.data(), 15) == 0xa129ca6149be45e5ULL);
  REQUIRE(fnat::siphash<2, 4>(key_a.k0, key_a.k1, msg.data(), 0) == 0x726fdb47dd0e0e31ULL);
  REQUIRE(fnat::siphash<2, 4>(key_a.k0, key_a.k1, msg.data(), 8) == 0x93f5f5799a932462ULL);
}

TEST_CASE("CRC32C matches the iSCSI vectors, in hardware and in software", "[hash]") {
  const char digits[] = "123456789";
  REQUIRE(~fnat::detail::crc32c_sw(~0u, reinterpret_cast<const unsigned char*>(digits), 9) == 0xE3069283u);
  const std::array<std::uint8_t, 32> zeros{};
  REQUIRE(~fnat::crc32c_hash(zeros.data(), 32, ~0u) == 0x8A9136AAu);  // RFC 3720 B.4
  std::array<std::uint8_t, 32> ones{};
  ones.fill(0xff);
  REQUIRE(~fnat::crc32c_hash(ones.data(), 32, ~0u) == 0x62A8AB43u);
  REQUIRE(fnat::hash_bytes(ones.data(), 32, 5) == fnat::crc32c_hash(ones.data(), 32, 5));
}

TEST_CASE("SipHash-1-3 keyed hash: crafted CRC collisions spread, keys differ, fixed key is fixed", "[hash]") {
  check_keyed<fnat::siphash13_hash>("siphash13_hash");
  // Known answer for the fixed key (pinned: a change of function is a visible decision).
  const fnat::tuple4 t = fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(0xc6120001u), 1234,
                                          fnat::ipv4_addr::from_host(0xc6120101u), 443);
  REQUIRE(fnat::siphash13_hash(key_a)(t) == 0x79894fe8u);
  const fnat::inet_tuple t6 = fnat::make_tuple(fnat::ipproto::udp, fnat::inet_addr(fnat::ipv4_addr::from_host(0xc6120001u)),
                                               53, fnat::inet_addr(fnat::ipv4_addr::from_host(0xc6120101u)), 5353);
  REQUIRE(fnat::siphash13_hash(key_a)(t6) == 0xb57dba67u);
}

#if defined(FNAT_HAVE_AES_HASH)
TEST_CASE("AES keyed hash: crafted CRC collisions spread, keys differ, fixed key is fixed", "[hash]") {
  if (!fnat::aes_keyed_hash::available()) {
    WARN("this CPU has no AES-NI: aes_keyed_hash not tested");
    return;
  }
  check_keyed<fnat::aes_keyed_hash>("aes_keyed_hash");
  const fnat::tuple4 t = fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(0xc6120001u), 1234,
                                          fnat::ipv4_addr::from_host(0xc6120101u), 443);
  REQUIRE(fnat::aes_keyed_hash(key_a)(t) == 0x3331cb36u);
  const fnat::inet_tuple t6 = fnat::make_tuple(fnat::ipproto::udp, fnat::inet_addr(fnat::ipv4_addr::from_host(0xc6120001u)),
                                               53, fnat::inet_addr(fnat::ipv4_addr::from_host(0xc6120101u)), 5353);
  REQUIRE(fnat::aes_keyed_hash(key_a)(t6) == 0x14fc2603u);
  // Every byte of a 40-byte key matters, the 8-byte tail too.
  for (std::size_t i = 0; i < sizeof t6; ++i) {
    fnat::inet_tuple u = t6;
    reinterpret_cast<unsigned char*>(&u)[i] ^= 1;
    CHECK(fnat::aes_keyed_hash(key_a)(u) != 0x14fc2603u);
  }
}
#endif

TEST_CASE("tuple_hash defaults to the process-wide random key", "[hash]") {
  REQUIRE_FALSE(fnat::process_hash_secret_is_weak());
  const fnat::hash_secret& s = fnat::process_hash_secret();
  REQUIRE((s.k0 | s.k1) != 0);
  REQUIRE(&s == &fnat::process_hash_secret());  // drawn once
  std::mt19937_64 rng(3);
  const fnat::tuple4 t = random_tuple(rng);
  const fnat::tuple_hash a, b;
  REQUIRE(a(t) == b(t));
  REQUIRE(a(t) == fnat::tuple_hash(s)(t));
  REQUIRE(fnat::hash_key(t) == a(t));
  std::uint32_t other = 0;
  std::thread([&] { other = fnat::tuple_hash{}(t); }).join();
  REQUIRE(other == a(t));
  // A table made without a hash argument hashes with it.
  struct conn : fnat::conn_hooks<fnat::tuple4> {};
  auto table = fnat::conn_table<conn>::make({.capacity = 4});
  REQUIRE(table);
  REQUIRE(table->hash_of(t) == a(t));
  // The neighbour cache too, and it takes a fixed key when given one.
  auto nc = fnat::neighbour_cache<void*>::make({}, fnat::tuple_hash(key_a));
  REQUIRE(nc);
}
