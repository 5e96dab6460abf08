// SPDX-License-Identifier: BSD-3-Clause
// Toeplitz hash, the RSS hash NICs compute (Microsoft "Verifying the RSS Hash Calculation").
//
// ## Definition
// For input bits d_0 d_1 ... (most significant bit of the first byte first) and key bits
// k_0 k_1 ..., the 32-bit result is XOR over every set input bit s of the key window
// k_s .. k_{s+31}. Bit by bit, with t = 0 the most significant bit of the result:
//     h_t = XOR_s d_s k_{s+t}.
// The key must hold at least input length + 4 bytes (40 bytes covers an IPv6 four-tuple: 16 + 16 + 2 + 2 = 36).
// For TCP and UDP a NIC hashes (source address, destination address, source port, destination port)
// as they sit in the packet, network order: 12 bytes for IPv4, 36 for IPv6 (`rss_input_v4/v6`).
//
// ## Linearity
// h is linear over GF(2) in its input: h(a xor b) = h(a) xor h(b). So a tuple's hash is the XOR of
// the hashes of its parts, each part alone in an otherwise zero input. rss_ports.hpp lives on that:
// h(RS, LIP, rport, lport) = h(RS, LIP, rport, 0) xor h(0, 0, 0, lport).
//
// ## Table path (any CPU)
// Split the input into bytes: h(d) = XOR_i T_i[d_i], with T_i[v] the hash of an input that is v at
// byte i and zero elsewhere. One load and one XOR per input byte; the tables take 1 KiB per byte of
// the longest input (12 KiB for IPv4 four-tuples, 36 KiB for IPv6), built by linearity again:
// T_i[v] = T_i[v & (v - 1)] xor T_i[lowest bit of v].
//
// ## GFNI path (AVX-512 + GFNI: Intel Ice Lake, AMD Zen 4 and later)
// At byte granularity the hash is still a Toeplitz product. Input byte i reaches output byte j
// (j = 0 the most significant) through an 8x8 bit matrix that reads only key bits
// [8(i + j), 8(i + j) + 15), so the matrix depends on k = i + j alone:
//     out_j = XOR_i M_{i+j} d_i,     (M_k)[u][b] = k_{8k + u + b}   (u: output bit, b: input bit, MSB first).
// GF2P8AFFINEQB multiplies every byte of a 64-bit lane by that lane's 8x8 matrix. Lane k gets M_k and
// the bytes d_k, d_{k-1}, d_{k-2}, d_{k-3}, with d_{k-j} at byte 3 - j: the product for output byte j
// then sits where a little-endian uint32 keeps byte j of the hash, and the XOR of all lanes leaves the
// hash in the low 32 bits, already in host order. An n-byte input needs lanes k = 0 .. n + 2, i.e.
// blocks of 8 lanes: 2 for IPv4, 5 for IPv6. Per block one VPERMB places the bytes (and zeroes those
// outside the input and the idle upper half of each lane: only 4 (i, j) pairs share a k), one affine
// multiplies, one XOR accumulates; a fold of the 8 lanes ends it. Inputs over 64 bytes go in 64-byte
// chunks, since VPERMB reads one register; chunk c starts at matrix k = 64c.
// Matrix layout: GF2P8AFFINEQB computes result bit p (p = 0 least significant) as
// parity(matrix byte 7 - p AND input byte). Result bit p is hash bit u = 7 - p of its byte, so matrix
// byte u is the row of output bit u: the 8 key bits starting at bit 8k + u, first one most significant.
// Input bit q (0 least significant) is data bit b = 7 - q, which meets key bit 8k + u + 7 - q = 8k + u + b.
//
// ## Which path
// `toeplitz` = basic_toeplitz<toeplitz_default_path>: the GFNI path when the translation unit is
// compiled with GFNI and AVX512F/BW/VL/VBMI enabled (e.g. -march=native on such a CPU; DPDK's own
// pkg-config flags say -march=corei7, which does not), the table path otherwise. The choice is made at
// compile time, so the fast path has no dispatch branch. The GFNI kernels carry a target attribute,
// so on x86-64 with GCC or Clang they compile whatever -march says (`toeplitz_gfni_compiled`), and
// `toeplitz_gfni_supported()` asks the CPU: a baseline build may still use
// basic_toeplitz<toeplitz_path::gfni> after checking (make() refuses it where the CPU lacks it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fnat/core/checked.hpp"
#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"

#define FNAT_TOEPLITZ_EXPECT(cond, msg) FNAT_EXPECT("toeplitz", cond, msg)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define FNAT_TOEPLITZ_GFNI_COMPILED 1
#define FNAT_TOEPLITZ_GFNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,gfni")))
#else
#define FNAT_TOEPLITZ_GFNI_COMPILED 0
#endif

namespace fnat {

/// The 40-byte key from Microsoft's RSS specification, which most NICs ship as their default.
inline constexpr std::array<std::uint8_t, 40> rss_key_microsoft = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

/// Bit-serial reference implementation: the definition, one input bit at a time. Slow (the speed of
/// DPDK's rte_softrss); kept as the oracle the fast paths are tested against.
/// Requires: key.size() >= data.size() + 4.
[[nodiscard]] constexpr std::uint32_t toeplitz_hash_reference(std::span<const std::uint8_t> key,
                                                              std::span<const std::uint8_t> data) noexcept {
  std::uint32_t hash = 0;
  // window = key bits [i, i + 32) for the current input bit i; shifted left one bit per input bit.
  std::uint64_t window = (std::uint64_t{key[0]} << 56) | (std::uint64_t{key[1]} << 48) |
                         (std::uint64_t{key[2]} << 40) | (std::uint64_t{key[3]} << 32) |
                         (std::uint64_t{key[4]} << 24);
  for (std::size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 7; bit >= 0; --bit) {
      if ((data[byte] >> bit) & 1u) hash ^= static_cast<std::uint32_t>(window >> 32);
      window <<= 1;
    }
    // Refill the byte that just moved into the low end of the 40-bit view.
    if (byte + 5 < key.size()) window |= std::uint64_t{key[byte + 5]} << 24;
  }
  return hash;
}

// ---- RSS input layouts --------------------------------------------------------------------------

/// Bytes a NIC hashes for an IPv4 TCP/UDP packet src -> dst (ports in network order).
inline constexpr std::size_t rss_input_v4_len = 12;
/// Bytes a NIC hashes for an IPv6 TCP/UDP packet.
inline constexpr std::size_t rss_input_v6_len = 36;
/// Offset of the destination port in the IPv4 input (the lport of a reply RS -> LIP).
inline constexpr std::size_t rss_input_v4_dport = 10;
/// Offset of the destination port in the IPv6 input.
inline constexpr std::size_t rss_input_v6_dport = 34;

/// The 12 hash input bytes of an IPv4 TCP/UDP packet: source, destination, source port, destination
/// port, as on the wire. `sport_be`/`dport_be` are network order.
[[nodiscard]] inline std::array<std::uint8_t, rss_input_v4_len> rss_input_v4(ipv4_addr src, ipv4_addr dst,
                                                                             std::uint16_t sport_be,
                                                                             std::uint16_t dport_be) noexcept {
  std::array<std::uint8_t, rss_input_v4_len> b{};
  std::memcpy(b.data(), &src.be, 4);
  std::memcpy(b.data() + 4, &dst.be, 4);
  std::memcpy(b.data() + 8, &sport_be, 2);
  std::memcpy(b.data() + 10, &dport_be, 2);
  return b;
}

/// The 36 hash input bytes of an IPv6 TCP/UDP packet (ports network order).
[[nodiscard]] inline std::array<std::uint8_t, rss_input_v6_len> rss_input_v6(const ipv6_addr& src,
                                                                             const ipv6_addr& dst,
                                                                             std::uint16_t sport_be,
                                                                             std::uint16_t dport_be) noexcept {
  std::array<std::uint8_t, rss_input_v6_len> b{};
  std::memcpy(b.data(), src.bytes.data(), 16);
  std::memcpy(b.data() + 16, dst.bytes.data(), 16);
  std::memcpy(b.data() + 32, &sport_be, 2);
  std::memcpy(b.data() + 34, &dport_be, 2);
  return b;
}

// ---- path selection -----------------------------------------------------------------------------

/// How a basic_toeplitz computes the hash (see the file comment).
enum class toeplitz_path : std::uint8_t {
  table,  ///< one 256-entry table per input byte; any CPU
  gfni,   ///< GF2P8AFFINEQB on AVX-512; x86-64 with GFNI and AVX512F/BW/VL/VBMI
};

[[nodiscard]] constexpr std::string_view to_string(toeplitz_path p) noexcept {
  return p == toeplitz_path::gfni ? "gfni" : "table";
}

/// True when this compiler can build the GFNI kernels (x86-64, GCC or Clang), whatever -march says.
/// Whether the CPU runs them is toeplitz_gfni_supported().
inline constexpr bool toeplitz_gfni_compiled = FNAT_TOEPLITZ_GFNI_COMPILED != 0;

/// The path `fnat::toeplitz` takes in this translation unit: gfni when it is compiled with GFNI and
/// AVX512F, AVX512BW, AVX512VL and AVX512VBMI enabled (-march=native on Ice Lake / Zen 4 or later,
/// or -mgfni -mavx512f -mavx512bw -mavx512vl -mavx512vbmi), table otherwise.
inline constexpr toeplitz_path toeplitz_default_path =
#if FNAT_TOEPLITZ_GFNI_COMPILED && defined(__GFNI__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__) && defined(__AVX512VBMI__)
    toeplitz_path::gfni;
#else
    toeplitz_path::table;
#endif

/// True when this CPU and OS run the GFNI kernels: CPUID reports GFNI, AVX512F, AVX512BW, AVX512VL
/// and AVX512VBMI, and the OS saves the ZMM state (XCR0). The CPUID probe runs once (thread-safe
/// static); later calls are a load. noexcept.
[[nodiscard]] inline bool toeplitz_gfni_supported() noexcept {
#if FNAT_TOEPLITZ_GFNI_COMPILED
  static const bool supported = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid(1, a, b, c, d);
    if ((c & (1u << 27)) == 0) return false;  // OSXSAVE: XGETBV usable
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6u) != 0xe6u) return false;  // SSE, AVX, opmask, ZMM0-15 high, ZMM16-31 saved
    __cpuid_count(7, 0, a, b, c, d);
    const bool f = (b >> 16) & 1u, bw = (b >> 30) & 1u, vl = (b >> 31) & 1u;
    const bool vbmi = (c >> 1) & 1u, gfni = (c >> 8) & 1u;
    return f && bw && vl && vbmi && gfni;
  }();
  return supported;
#else
  return false;
#endif
}

namespace detail {

/// std::allocator with a stronger alignment, so vector storage meets aligned vector loads.
template <class T, std::size_t Align>
struct aligned_allocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = aligned_allocator<U, Align>;
  };
  aligned_allocator() noexcept = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U, Align>&) noexcept {}  // NOLINT: allocator conversion
  [[nodiscard]] T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Align}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{Align}); }
  friend bool operator==(const aligned_allocator&, const aligned_allocator&) noexcept { return true; }
};

/// VPERMB index of block 0: lane l (k = l), byte p < 4 takes input byte i = k - (3 - p) = l - 3 + p;
/// block b adds 8b. Bytes p >= 4 and negative i are masked off, their index does not matter.
inline constexpr std::array<std::uint8_t, 64> toeplitz_gfni_index = [] {
  std::array<std::uint8_t, 64> idx{};
  for (int l = 0; l < 8; ++l)
    for (int p = 0; p < 4; ++p) idx[static_cast<std::size_t>(8 * l + p)] = static_cast<std::uint8_t>((l - 3 + p) & 63);
  return idx;
}();
/// Byte masks of the VPERMB: in block 0 only 0 <= i; in a middle block every p < 4; in block 8 of a
/// 64-byte chunk only i < 64 (lanes 0-2, the last three bytes of the chunk).
inline constexpr std::uint64_t toeplitz_gfni_mask_first = 0x0f0f0f0f0f0e0c08ULL;
inline constexpr std::uint64_t toeplitz_gfni_mask_mid = 0x0f0f0f0f0f0f0f0fULL;
inline constexpr std::uint64_t toeplitz_gfni_mask_wrap = 0x0000000000010307ULL;

}  // namespace detail

/// A Toeplitz hasher for one key: the key's precomputed tables (table path) or GF(2) matrices (GFNI
/// path). Built once at configuration time, then const: any number of threads may hash with one
/// object concurrently. Copyable (copies own their tables) and movable.
///
/// Memory: table path 1 KiB per byte of max_input_len (36 KiB for IPv6 tuples); GFNI path 8 bytes per
/// input byte, 64-byte aligned (320 bytes for a 40-byte key), plus a copy of the key.
template <toeplitz_path Path = toeplitz_default_path>
class basic_toeplitz {
  static_assert(Path == toeplitz_path::table || toeplitz_gfni_compiled,
                "the GFNI Toeplitz path needs x86-64 and GCC or Clang; use toeplitz_path::table");

 public:
  static constexpr toeplitz_path path = Path;

  /// Builds the hasher of `key` for inputs up to `max_input_len` bytes (0: the most the key allows,
  /// key.size() - 4). The key is copied.
  /// Errors: errc::invalid_argument when the key has fewer than 5 bytes or max_input_len exceeds
  /// key.size() - 4 (the hash of input bit s reads key bits s .. s + 31); errc::not_supported for the
  /// GFNI path on a CPU without it. Complexity: O(max_input_len * 256). Allocates.
  [[nodiscard]] static result<basic_toeplitz> make(std::span<const std::uint8_t> key, std::size_t max_input_len = 0) {
    if (key.size() < 5)
      return error(errc::invalid_argument, "toeplitz: a " + std::to_string(key.size()) +
                                               "-byte key hashes nothing; RSS keys are 40 or 52 bytes (at least "
                                               "input length + 4)");
    const std::size_t limit = key.size() - 4;
    if (max_input_len == 0) max_input_len = limit;
    if (max_input_len > limit)
      return error(errc::invalid_argument, "toeplitz: inputs of " + std::to_string(max_input_len) +
                                               " bytes need a key of at least " + std::to_string(max_input_len + 4) +
                                               " bytes, this one has " + std::to_string(key.size()));
    if constexpr (Path == toeplitz_path::gfni) {
      if (!toeplitz_gfni_supported())
        return error(errc::not_supported,
                     "toeplitz: this CPU lacks GFNI or AVX-512 (F, BW, VL, VBMI), which the GFNI path needs; use "
                     "fnat::toeplitz_table, or fnat::toeplitz built without -march flags that enable GFNI");
    }
    basic_toeplitz t;
    t.key_.assign(key.begin(), key.end());
    t.max_len_ = max_input_len;
    if constexpr (Path == toeplitz_path::table)
      t.build_tables();
    else
      t.build_matrices();
    return t;
  }

  /// Longest input hash() takes.
  [[nodiscard]] std::size_t max_input_len() const noexcept { return max_len_; }
  /// The key (the object's copy).
  [[nodiscard]] std::span<const std::uint8_t> key() const noexcept { return key_; }

  /// Hash of `data`. Requires: data.size() <= max_input_len(). noexcept, no allocation.
  /// Complexity: table path one load per byte; GFNI path one VPERMB + GF2P8AFFINEQB per 8 bytes.
  [[nodiscard]] std::uint32_t hash(std::span<const std::uint8_t> data) const noexcept {
    FNAT_TOEPLITZ_EXPECT(data.size() <= max_len_, "input longer than max_input_len(); build the hasher for it");
    if constexpr (Path == toeplitz_path::table) {
      std::uint32_t h = 0;
      const std::uint32_t* t = tables_.data();
      for (std::uint8_t byte : data) {
        h ^= t[byte];
        t += 256;
      }
      return h;
    } else {
      return gfni_bytes(data.data(), data.size());
    }
  }

  /// Hash of the 12 input bytes of an IPv4 packet (rss_input_v4). Requires: max_input_len() >= 12.
  [[nodiscard]] std::uint32_t hash_v4(std::span<const std::uint8_t, rss_input_v4_len> input) const noexcept {
    FNAT_TOEPLITZ_EXPECT(max_len_ >= rss_input_v4_len, "IPv4 tuple hashed with a hasher built for shorter inputs");
    if constexpr (Path == toeplitz_path::table)
      return table_fixed<rss_input_v4_len>(input.data());
    else
      return gfni_v4_bytes(input.data());
  }
  /// Hash of an IPv4 TCP/UDP packet src:sport -> dst:dport as the NIC computes it (ports network
  /// order). Requires: max_input_len() >= 12. noexcept, O(1).
  [[nodiscard]] std::uint32_t hash_v4(ipv4_addr src, ipv4_addr dst, std::uint16_t sport_be,
                                      std::uint16_t dport_be) const noexcept {
    FNAT_TOEPLITZ_EXPECT(max_len_ >= rss_input_v4_len, "IPv4 tuple hashed with a hasher built for shorter inputs");
    if constexpr (Path == toeplitz_path::table) {
      const auto in = rss_input_v4(src, dst, sport_be, dport_be);
      return table_fixed<rss_input_v4_len>(in.data());
    } else {
      std::uint16_t ports[2] = {sport_be, dport_be};
      std::uint32_t pw;
      std::memcpy(&pw, ports, 4);
      return gfni_v4_words(src.be, dst.be, pw);
    }
  }

  /// Hash of the 36 input bytes of an IPv6 packet (rss_input_v6). Requires: max_input_len() >= 36.
  [[nodiscard]] std::uint32_t hash_v6(std::span<const std::uint8_t, rss_input_v6_len> input) const noexcept {
    FNAT_TOEPLITZ_EXPECT(max_len_ >= rss_input_v6_len, "IPv6 tuple hashed with a hasher built for shorter inputs");
    if constexpr (Path == toeplitz_path::table)
      return table_fixed<rss_input_v6_len>(input.data());
    else
      return gfni_v6_bytes(input.data());
  }
  /// Hash of an IPv6 TCP/UDP packet (ports network order). Requires: max_input_len() >= 36.
  [[nodiscard]] std::uint32_t hash_v6(const ipv6_addr& src, const ipv6_addr& dst, std::uint16_t sport_be,
                                      std::uint16_t dport_be) const noexcept {
    FNAT_TOEPLITZ_EXPECT(max_len_ >= rss_input_v6_len, "IPv6 tuple hashed with a hasher built for shorter inputs");
    if constexpr (Path == toeplitz_path::table) {
      const auto in = rss_input_v6(src, dst, sport_be, dport_be);
      return table_fixed<rss_input_v6_len>(in.data());
    } else {
      std::uint16_t ports[2] = {sport_be, dport_be};
      std::uint32_t pw;
      std::memcpy(&pw, ports, 4);
      return gfni_v6_parts(src.bytes.data(), dst.bytes.data(), pw);
    }
  }

  /// Hash of the packet a five-tuple describes (the protocol is not hashed: TCP and UDP share the
  /// layout). Requires: max_input_len() >= 12 (tuple4), 36 (tuple6, and inet_tuple of IPv6).
  [[nodiscard]] std::uint32_t hash(const tuple4& t) const noexcept { return hash_v4(t.saddr, t.daddr, t.sport, t.dport); }
  [[nodiscard]] std::uint32_t hash(const tuple6& t) const noexcept { return hash_v6(t.saddr, t.daddr, t.sport, t.dport); }
  [[nodiscard]] std::uint32_t hash(const inet_tuple& t) const noexcept {
    return t.saddr.is_v4() ? hash_v4(t.saddr.v4(), t.daddr.v4(), t.sport, t.dport)
                           : hash_v6(t.saddr.v6(), t.daddr.v6(), t.sport, t.dport);
  }

 private:
  basic_toeplitz() = default;

  // ---- table path ----
  void build_tables() {
    tables_.assign(max_len_ * 256, 0);
    for (std::size_t i = 0; i < max_len_; ++i) {
      // Key bits [8i, 8i + 40) with key bit 8i at bit 39; input bit b (MSB first) of byte i reads
      // key bits [8i + b, 8i + b + 32) = window >> (8 - b).
      std::uint64_t window = 0;
      for (std::size_t j = 0; j < 5; ++j) window = (window << 8) | key_[i + j];
      std::uint32_t* t = tables_.data() + i * 256;
      for (unsigned b = 0; b < 8; ++b) t[0x80u >> b] = static_cast<std::uint32_t>(window >> (8 - b));
      for (unsigned v = 1; v < 256; ++v)
        if ((v & (v - 1)) != 0) t[v] = t[v & (v - 1)] ^ t[v & (~v + 1)];
    }
  }
  template <std::size_t N>
  [[nodiscard]] std::uint32_t table_fixed(const std::uint8_t* p) const noexcept {
    const std::uint32_t* t = tables_.data();
    std::uint32_t h = 0;
    for (std::size_t i = 0; i < N; ++i) h ^= t[i * 256 + p[i]];
    return h;
  }

  // ---- GFNI path ----
  void build_matrices() {
    // Lanes k = 0 .. max_len + 2, in whole blocks of 8; matrices past the key read zero key bytes.
    const std::size_t lanes = (max_len_ + 3 + 7) / 8 * 8;
    matrices_.assign(lanes, 0);
    auto key_byte = [&](std::size_t i) -> unsigned { return i < key_.size() ? key_[i] : 0u; };
    for (std::size_t k = 0; k < lanes; ++k) {
      const unsigned pair = (key_byte(k) << 8) | key_byte(k + 1);  // key bits [8k, 8k + 16)
      std::uint64_t m = 0;
      for (unsigned u = 0; u < 8; ++u) m |= std::uint64_t{(pair >> (8 - u)) & 0xffu} << (8 * u);
      matrices_[k] = m;
    }
  }

#if FNAT_TOEPLITZ_GFNI_COMPILED
#if defined(__GNUC__) && !defined(__clang__)
  // GCC 12 flags the self-initialised `_mm*_undefined_*()` inside its own cast/extract intrinsics as
  // uninitialised when they are inlined into a target-attribute function (GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  FNAT_TOEPLITZ_GFNI_TARGET static std::uint32_t gfni_fold(__m512i acc) noexcept {
    const __m256i h = _mm256_xor_si256(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
    __m128i q = _mm_xor_si128(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    q = _mm_xor_si128(q, _mm_unpackhi_epi64(q, q));
    return static_cast<std::uint32_t>(_mm_cvtsi128_si32(q));
  }
  // `blocks` blocks of 8 lanes over the input in register d (at most 64 bytes, zero past its end),
  // matrices from m. Block 8 exists only for a full 64-byte chunk.
  FNAT_TOEPLITZ_GFNI_TARGET static __m512i gfni_blocks(__m512i d, const std::uint64_t* m, std::size_t blocks) noexcept {
    __m512i idx = _mm512_loadu_si512(detail::toeplitz_gfni_index.data());
    const __m512i eight = _mm512_set1_epi8(8);
    __m512i acc = _mm512_setzero_si512();
    for (std::size_t b = 0; b < blocks; ++b) {
      const __mmask64 mask = b == 0   ? detail::toeplitz_gfni_mask_first
                             : b == 8 ? detail::toeplitz_gfni_mask_wrap
                                      : detail::toeplitz_gfni_mask_mid;
      const __m512i x = _mm512_maskz_permutexvar_epi8(mask, idx, d);
      acc = _mm512_xor_si512(acc, _mm512_gf2p8affine_epi64_epi8(x, _mm512_load_si512(m + 8 * b), 0));
      idx = _mm512_add_epi8(idx, eight);
    }
    return acc;
  }
  FNAT_TOEPLITZ_GFNI_TARGET std::uint32_t gfni_bytes(const std::uint8_t* p, std::size_t n) const noexcept {
    __m512i acc = _mm512_setzero_si512();
    const std::uint64_t* m = matrices_.data();
    while (n > 0) {
      const std::size_t len = n < 64 ? n : 64;
      const __mmask64 load = len == 64 ? ~__mmask64{0} : (__mmask64{1} << len) - 1;
      const __m512i d = _mm512_maskz_loadu_epi8(load, p);
      acc = _mm512_xor_si512(acc, gfni_blocks(d, m, (len + 3 + 7) / 8));
      p += len;
      n -= len;
      m += 64;
    }
    return gfni_fold(acc);
  }
  // Fixed shapes: the block count is a constant, the loop unrolls, and the indices stay below 16
  // (IPv4) or 40 (IPv6), inside the bytes the register really holds.
  FNAT_TOEPLITZ_GFNI_TARGET std::uint32_t gfni_v4_words(std::uint32_t s, std::uint32_t d,
                                                        std::uint32_t ports) const noexcept {
    const __m128i x = _mm_set_epi32(0, static_cast<int>(ports), static_cast<int>(d), static_cast<int>(s));
    return gfni_fold(gfni_blocks(_mm512_castsi128_si512(x), matrices_.data(), 2));
  }
  FNAT_TOEPLITZ_GFNI_TARGET std::uint32_t gfni_v4_bytes(const std::uint8_t* p) const noexcept {
    const __m128i x = _mm_maskz_loadu_epi8(0x0fff, p);
    return gfni_fold(gfni_blocks(_mm512_castsi128_si512(x), matrices_.data(), 2));
  }
  FNAT_TOEPLITZ_GFNI_TARGET std::uint32_t gfni_v6_bytes(const std::uint8_t* p) const noexcept {
    const __m512i d = _mm512_maskz_loadu_epi8((__mmask64{1} << rss_input_v6_len) - 1, p);
    return gfni_fold(gfni_blocks(d, matrices_.data(), 5));
  }
  FNAT_TOEPLITZ_GFNI_TARGET std::uint32_t gfni_v6_parts(const std::uint8_t* src, const std::uint8_t* dst,
                                                        std::uint32_t ports) const noexcept {
    __m512i d = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
    d = _mm512_inserti32x4(d, _mm_loadu_si128(reinterpret_cast<const __m128i*>(dst)), 1);
    d = _mm512_inserti32x4(d, _mm_cvtsi32_si128(static_cast<int>(ports)), 2);
    return gfni_fold(gfni_blocks(d, matrices_.data(), 5));
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#else
  std::uint32_t gfni_bytes(const std::uint8_t*, std::size_t) const noexcept { return 0; }
  std::uint32_t gfni_v4_words(std::uint32_t, std::uint32_t, std::uint32_t) const noexcept { return 0; }
  std::uint32_t gfni_v4_bytes(const std::uint8_t*) const noexcept { return 0; }
  std::uint32_t gfni_v6_bytes(const std::uint8_t*) const noexcept { return 0; }
  std::uint32_t gfni_v6_parts(const std::uint8_t*, const std::uint8_t*, std::uint32_t) const noexcept { return 0; }
#endif

  std::vector<std::uint8_t> key_;
  std::vector<std::uint32_t> tables_;                                              // table path
  std::vector<std::uint64_t, detail::aligned_allocator<std::uint64_t, 64>> matrices_;  // GFNI path
  std::size_t max_len_ = 0;
};

/// The hasher this translation unit's flags make fastest (see toeplitz_default_path).
using toeplitz = basic_toeplitz<>;
/// The table path, on any CPU.
using toeplitz_table = basic_toeplitz<toeplitz_path::table>;

}  // namespace fnat
