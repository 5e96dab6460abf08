// SPDX-License-Identifier: BSD-3-Clause
// fnat's Toeplitz against DPDK's: rte_softrss (original key), rte_softrss_be (converted key) and,
// where the CPU has it, rte_thash_gfni, on random IPv4 and IPv6 tuples and random keys.
//
// DPDK defines rte_thash_gfni only when the translation unit is compiled with GFNI and AVX512F, and
// this test is built for DPDK's baseline (-march=corei7). So its header is included below with those
// features enabled for the functions it defines only (target pragma) and the two feature macros set
// for its #if; every other header is included first, normally. The functions are called only after
// the CPUID check, so the binary stays safe on any x86-64.
#define ALLOW_EXPERIMENTAL_API 1
#define ALLOW_INTERNAL_API 1

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_compat.h>
#include <rte_ip.h>
#include <rte_log.h>
#include <rte_vect.h>

#if defined(RTE_ARCH_X86) && !defined(__GFNI__) && (defined(__GNUC__) || defined(__clang__))
#define FNAT_TEST_DPDK_GFNI 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,gfni"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,gfni")
// GCC 12 misreports the `_mm*_undefined_*()` inside its own intrinsics as uninitialised once they are
// inlined into a target-attribute function (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define __GFNI__ 1
#define __AVX512F__ 1
#include <rte_thash_x86_gfni.h>
#undef __GFNI__
#undef __AVX512F__
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
#elif defined(__GFNI__) && defined(__AVX512F__)
#define FNAT_TEST_DPDK_GFNI 1
#else
#define FNAT_TEST_DPDK_GFNI 0
#endif

#include <rte_thash.h>

#include <fnat/core/toeplitz.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

struct dpdk_views {
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> key_be;  // rte_convert_rss_key's form, for rte_softrss_be
  std::vector<std::uint64_t> matrices;
};

dpdk_views views_of(std::span<const std::uint8_t> key) {
  dpdk_views v;
  v.key.assign(key.begin(), key.end());
  v.key_be.resize(key.size());
  rte_convert_rss_key(reinterpret_cast<const std::uint32_t*>(v.key.data()),
                      reinterpret_cast<std::uint32_t*>(v.key_be.data()), static_cast<int>(key.size()));
  v.matrices.resize(key.size());
  rte_thash_complete_matrix(v.matrices.data(), v.key.data(), static_cast<int>(key.size()));
  return v;
}

// rte_softrss takes the input as CPU-order 32-bit words.
std::vector<std::uint32_t> cpu_words(std::span<const std::uint8_t> in) {
  std::vector<std::uint32_t> w(in.size() / 4);
  for (std::size_t i = 0; i < w.size(); ++i) {
    std::uint32_t be;
    std::memcpy(&be, in.data() + 4 * i, 4);
    w[i] = rte_be_to_cpu_32(be);
  }
  return w;
}

bool gfni_runs() { return FNAT_TEST_DPDK_GFNI && fnat::toeplitz_gfni_supported(); }

void cross_check(std::span<const std::uint8_t> key, std::size_t len, int rounds, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto views = views_of(key);
  auto table = fnat::toeplitz_table::make(key);
  REQUIRE(table);
  const bool gfni = gfni_runs();
  std::optional<fnat::basic_toeplitz<fnat::toeplitz_path::gfni>> g;
  if (gfni) {
    auto r = fnat::basic_toeplitz<fnat::toeplitz_path::gfni>::make(key);
    REQUIRE(r);
    g.emplace(std::move(*r));
  }
  std::vector<std::uint8_t> in(len);
  int mismatches = 0;
  for (int i = 0; i < rounds; ++i) {
    for (auto& b : in) b = static_cast<std::uint8_t>(rng());
    auto words = cpu_words(in);
    const std::uint32_t soft = rte_softrss(words.data(), static_cast<std::uint32_t>(words.size()), views.key.data());
    const std::uint32_t soft_be =
        rte_softrss_be(words.data(), static_cast<std::uint32_t>(words.size()), views.key_be.data());
    std::uint32_t fast = table->hash(in);
    if (len == fnat::rss_input_v4_len) fast = table->hash_v4(std::span<const std::uint8_t, 12>(in.data(), 12));
    if (len == fnat::rss_input_v6_len) fast = table->hash_v6(std::span<const std::uint8_t, 36>(in.data(), 36));
    bool ok = soft == soft_be && fast == soft;
#if FNAT_TEST_DPDK_GFNI
    if (gfni) {
      const std::uint32_t dpdk_gfni = rte_thash_gfni(views.matrices.data(), in.data(), static_cast<int>(len));
      ok = ok && dpdk_gfni == soft && g->hash(in) == soft;
      if (len == fnat::rss_input_v4_len) ok = ok && g->hash_v4(std::span<const std::uint8_t, 12>(in.data(), 12)) == soft;
      if (len == fnat::rss_input_v6_len) ok = ok && g->hash_v6(std::span<const std::uint8_t, 36>(in.data(), 36)) == soft;
    }
#endif
    if (i < 64) ok = ok && fnat::toeplitz_hash_reference(key, in) == soft;
    if (!ok && ++mismatches <= 3) FAIL_CHECK("mismatch at round " << i << " (input " << len << " bytes)");
  }
  REQUIRE(mismatches == 0);
}

}  // namespace

TEST_CASE("fnat Toeplitz equals rte_softrss, rte_softrss_be and rte_thash_gfni on random tuples", "[toeplitz][dpdk]") {
  if (!gfni_runs()) WARN("rte_thash_gfni / fnat GFNI not compared: this CPU (or build) lacks GFNI + AVX-512");
  SECTION("Microsoft key, IPv4 and IPv6 four-tuples and their address-only inputs") {
    cross_check(fnat::rss_key_microsoft, 12, 20000, 1);
    cross_check(fnat::rss_key_microsoft, 36, 20000, 2);
    cross_check(fnat::rss_key_microsoft, 8, 5000, 3);
    cross_check(fnat::rss_key_microsoft, 32, 5000, 4);
  }
  SECTION("random 40- and 52-byte keys") {
    std::mt19937_64 rng(77);
    for (std::size_t key_len : {40u, 52u}) {
      std::vector<std::uint8_t> key(key_len);
      for (auto& b : key) b = static_cast<std::uint8_t>(rng());
      cross_check(key, 12, 10000, 5 + key_len);
      cross_check(key, 36, 10000, 6 + key_len);
      cross_check(key, key_len - 4, 2000, 7 + key_len);
    }
  }
}

TEST_CASE("the RSS verification suite through rte_softrss matches fnat", "[toeplitz][dpdk]") {
  // One vector from each family, DPDK's way of building the tuple (rte_ipv4_tuple in CPU order).
  auto tz = fnat::toeplitz_table::make(fnat::rss_key_microsoft);
  REQUIRE(tz);
  rte_thash_tuple t{};
  t.v4.src_addr = RTE_IPV4(66, 9, 149, 187);
  t.v4.dst_addr = RTE_IPV4(161, 142, 100, 80);
  t.v4.sport = 2794;
  t.v4.dport = 1766;
  std::array<std::uint8_t, 40> key = fnat::rss_key_microsoft;
  CHECK(rte_softrss(reinterpret_cast<std::uint32_t*>(&t), RTE_THASH_V4_L4_LEN, key.data()) == 0x51ccc178u);
  CHECK(tz->hash_v4(*fnat::ipv4_addr::parse("66.9.149.187"), *fnat::ipv4_addr::parse("161.142.100.80"),
                    fnat::hton16(2794), fnat::hton16(1766)) == 0x51ccc178u);
}
