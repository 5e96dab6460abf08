// SPDX-License-Identifier: BSD-3-Clause
// Hashing of fixed-size keys: a keyed, non-linear hash for every table whose keys packets choose
// (conn table, neighbour cache), and CRC32C, unkeyed, for everything else.
//
// ## Why not CRC32C for tables that strangers fill
// CRC is linear over GF(2): for messages of one length, crc(a ^ b) = crc(a) ^ crc(b) ^ crc(0), and a
// seed (the initial value) only changes the constant crc(0). So crc(a) ^ crc(b) does not depend on
// the seed, and anyone who has read this file can solve a linear system for the bits of a tuple they
// control. A SYN flood with spoofed sources controls the 32 bits of an IPv4 source and 16 of the port:
// 48 unknowns against the 18 bits a table of 2^18 buckets indexes with leave 2^30 tuples that all land
// in ONE bucket, whatever the seed (bench/conn_table_bench.cpp builds such a set by Gaussian
// elimination in a few microseconds). Every SYN of that flood walks the whole chain on lookup and on
// insert: the lcore's time goes quadratic in the flood. A keyed *non-linear* function closes this:
// without the key, where a tuple lands is unpredictable, and no algebra relates two tuples' buckets.
//
// ## The keyed hash: two implementations of one contract
// keyed_hash is a 128-bit secret turned into a function of the key's bytes. Which function is a
// type, chosen at compile time (so a program cannot mix two in one table, and every TU that names a
// type compiles the same body):
//
//   aes_keyed_hash (x86-64 with AES-NI, i.e. -march=native on any server since 2010):
//     the key is cut into 16-byte blocks m_0..m_{b-1} (a partial last block is the key's last 16
//     bytes, overlapping the one before; a key under 16 bytes is zero-padded), and
//       F_i(m)  = AESENC(AESENC(m ^ K_i, R_1), R_2)             (two AES rounds per block)
//       h       = low 32 bits of AESENC(F_0(m_0) ^ ... ^ F_{b-1}(m_{b-1}), R_3)
//     with K_0..K_2, R_1..R_3 derived from the secret (SipHash of constants). Every key bit goes
//     through three AES rounds, whose S-box (inversion in GF(2^8)) is the least linear map on a byte
//     there is; the blocks' rounds are independent, so the latency is 3 rounds (~12 cycles) for any
//     key up to 48 bytes, against 2 (tuple4) to 5 (tuple6) dependent CRC32 instructions of 3 cycles.
//     Per-position secrets K_i keep F_i apart: with one K for all, blocks that differ by a public
//     constant would cancel in the xor. A flood needs pairs whose differences survive AES rounds
//     under an unknown key: two rounds activate at least five S-boxes, each of which passes a chosen
//     difference with probability at most 2^-6, and the third round spreads what is left over the 32
//     output bits, so the attacker is back to guessing (1 in 2^k for a table of 2^k buckets). Nothing
//     in it is linear over GF(2) beyond the key xor (a test checks that h(a^b)^h(a)^h(b)^h(0), always
//     0 for CRC, is not). This is not a MAC: an attacker who can time millions of lookups might learn
//     something about the key; conn_table's bounded chains (max_chain) are the backstop for that.
//     Cost: three dependent AESENC (~12 cycles) against two CRC32 (~6) for a 16-byte key, and about
//     the same throughput; against a lookup's cache misses the difference does not show
//     (docs/ROBUSTNESS.md has the measurements).
//   siphash13_hash (everything else; DPDK's -march=corei7 builds, hence the unit tests):
//     SipHash-1-3 (Aumasson & Bernstein; Rust's and Python's table hash) keyed with the secret: one
//     ARX round per 8-byte word and three to finish, a PRF by design. Slower (~25 cycles for 16 bytes,
//     ~40 for 40) but portable and well studied.
//
// keyed_hash names the one the build selects (aes_keyed_hash where __AES__ is defined). Its output
// is not the same across the two: a table is built and read by one process, so that does not matter;
// a cluster that must agree on a hash (Maglev) uses its own deterministic hash, not this.
//
// ## Keys: random by default, fixed on request
// A default-constructed keyed hash (and tuple_hash{}, its alias) takes the process-wide secret:
// 16 bytes from getrandom(2), drawn once, on first use, thread-safely (a function-local static), and
// the same for every table of the process. Pass a hash_secret to get a fixed key: tests (known
// answers) and clusters that must agree. If the kernel has no getrandom and /dev/urandom cannot be
// read, the secret is mixed from clocks and addresses and process_hash_secret_is_weak() says so.
//
// ## CRC32C, kept where nobody chooses the keys
// crc32c_hash is the SSE4.2 CRC32C instruction (DPDK's rte_hash_crc) or the same CRC in software: for
// keys from configuration (sa_pool buckets by real server), for the cluster-wide scheduler input,
// and as the benchmark's `fnat_crc32c` peer. crc32c_tuple_hash is it as a table hash policy.
#pragma once

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#include <wmmintrin.h>
#define FNAT_HAVE_AES_HASH 1
#endif

#include "fnat/core/addr.hpp"

namespace fnat {

namespace detail {
[[nodiscard]] inline std::uint64_t load64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
[[nodiscard]] inline std::uint32_t load32(const unsigned char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) in software, byte at a time: the same
// values as the SSE4.2 instruction (no pre/post inversion, like _mm_crc32_*).
inline constexpr std::array<std::uint32_t, 256> crc32c_table = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    t[i] = c;
  }
  return t;
}();
[[nodiscard]] inline std::uint32_t crc32c_sw(std::uint32_t crc, const unsigned char* p, std::size_t len) noexcept {
  for (std::size_t i = 0; i < len; ++i) crc = crc32c_table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return crc;
}

[[nodiscard]] constexpr std::uint64_t rotl(std::uint64_t x, int b) noexcept { return (x << b) | (x >> (64 - b)); }

struct sip_state {
  std::uint64_t v0, v1, v2, v3;
  constexpr void round() noexcept {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};
}  // namespace detail

/// SipHash-C-D of `len` bytes under the 128-bit key (k0, k1), as in the reference implementation
/// (little-endian words). Complexity: C rounds per 8 bytes plus D. noexcept, no allocation.
template <int C, int D>
[[nodiscard]] inline std::uint64_t siphash(std::uint64_t k0, std::uint64_t k1, const void* data,
                                           std::size_t len) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  detail::sip_state s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
                      k1 ^ 0x7465646279746573ULL};
  const std::size_t n = len;
  for (; len >= 8; len -= 8, p += 8) {
    const std::uint64_t m = detail::load64(p);
    s.v3 ^= m;
    for (int i = 0; i < C; ++i) s.round();
    s.v0 ^= m;
  }
  std::uint64_t b = static_cast<std::uint64_t>(n) << 56;
  for (std::size_t i = 0; i < len; ++i) b |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  s.v3 ^= b;
  for (int i = 0; i < C; ++i) s.round();
  s.v0 ^= b;
  s.v2 ^= 0xff;
  for (int i = 0; i < D; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

// ---- CRC32C: unkeyed, linear; only for keys nobody hostile chooses ------------------------------

/// True when crc32c_hash uses the SSE4.2 CRC32C instruction (else a table, same values).
inline constexpr bool crc32c_in_hardware =
#if defined(__SSE4_2__)
    true;
#else
    false;
#endif

/// CRC32C of `len` bytes (a multiple of 4) starting from `seed`, as DPDK's rte_hash_crc computes it.
/// Unkeyed and linear over GF(2): never index a table whose keys packets choose with it (see the
/// file comment). Complexity: len/8 instructions (or len table steps). noexcept, no allocation.
[[nodiscard]] inline std::uint32_t crc32c_hash(const void* data, std::size_t len, std::uint32_t seed = 0) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__SSE4_2__)
  std::uint64_t crc = seed;
  for (; len >= 8; len -= 8, p += 8) crc = _mm_crc32_u64(crc, detail::load64(p));
  std::uint32_t c = static_cast<std::uint32_t>(crc);
  if (len >= 4) c = _mm_crc32_u32(c, detail::load32(p));
  return c;
#else
  return detail::crc32c_sw(seed, p, len & ~std::size_t{3});
#endif
}

/// The former name of crc32c_hash (same function), for keys from configuration.
[[nodiscard]] inline std::uint32_t hash_bytes(const void* data, std::size_t len, std::uint32_t seed = 0) noexcept {
  return crc32c_hash(data, len, seed);
}

/// CRC32C of a key whose bytes are all significant. Unkeyed: see crc32c_hash.
template <class T>
  requires std::has_unique_object_representations_v<T>
[[nodiscard]] inline std::uint32_t crc32c_key(const T& key, std::uint32_t seed = 0) noexcept {
  static_assert(sizeof(T) % 4 == 0, "pad keys to a multiple of 4 bytes");
  return crc32c_hash(&key, sizeof(T), seed);
}

/// CRC32C as a table hash policy: the old default, for tables filled from configuration only, and
/// the benchmarks' `fnat_crc32c` peer. Linear: a flood can fill one bucket whatever the seed.
struct crc32c_tuple_hash {
  std::uint32_t seed = 0;
  template <class T>
  [[nodiscard]] std::uint32_t operator()(const T& key) const noexcept {
    return crc32c_key(key, seed);
  }
};

// ---- the secret -----------------------------------------------------------------------------------

/// A 128-bit hash key. Build one explicitly only for tests and for clusters that must agree.
struct hash_secret {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
  friend constexpr bool operator==(const hash_secret&, const hash_secret&) noexcept = default;
};

namespace detail {
inline bool& weak_secret_flag() noexcept {
  static bool weak = false;
  return weak;
}

// Reads n random bytes: getrandom(2), else /dev/urandom. False if neither works.
inline bool os_random(void* out, std::size_t n) noexcept {
  auto* p = static_cast<unsigned char*>(out);
  std::size_t got = 0;
#if defined(__linux__)
  while (got < n) {
    const ssize_t r = ::getrandom(p + got, n - got, 0);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r < 0 && errno != EINTR) {
      break;
    }
  }
  if (got == n) return true;
#endif
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fd);
  return got == n;
}

inline hash_secret draw_process_secret() noexcept {
  hash_secret s;
  std::uint64_t w[2] = {0, 0};
  if (os_random(w, sizeof w)) {
    s.k0 = w[0];
    s.k1 = w[1];
    return s;
  }
  // No kernel randomness: mix what differs between runs (clocks, ASLR). Weak, and said so.
  weak_secret_flag() = true;
  timespec a{}, b{};
  ::clock_gettime(CLOCK_REALTIME, &a);
  ::clock_gettime(CLOCK_MONOTONIC, &b);
  const std::uint64_t m[4] = {static_cast<std::uint64_t>(a.tv_sec) ^ static_cast<std::uint64_t>(b.tv_nsec),
                              static_cast<std::uint64_t>(a.tv_nsec) ^ static_cast<std::uint64_t>(b.tv_sec),
                              reinterpret_cast<std::uintptr_t>(&s), static_cast<std::uint64_t>(::getpid())};
  s.k0 = siphash<2, 4>(0, 1, m, sizeof m);
  s.k1 = siphash<2, 4>(2, 3, m, sizeof m);
  return s;
}
}  // namespace detail

/// The process-wide random secret: drawn from the kernel once, on first call, thread-safely; the
/// same for the life of the process. noexcept, no allocation after the first call.
[[nodiscard]] inline const hash_secret& process_hash_secret() noexcept {
  static const hash_secret s = detail::draw_process_secret();
  return s;
}

/// True if the kernel gave no randomness and process_hash_secret() was mixed from clocks.
[[nodiscard]] inline bool process_hash_secret_is_weak() noexcept {
  (void)process_hash_secret();
  return detail::weak_secret_flag();
}

// ---- the keyed hashes -------------------------------------------------------------------------------

/// SipHash-1-3 under a 128-bit secret, folded to 32 bits: the portable keyed hash.
/// Default-constructed: the process secret (process_hash_secret()).
class siphash13_hash {
 public:
  siphash13_hash() noexcept : siphash13_hash(process_hash_secret()) {}
  explicit constexpr siphash13_hash(const hash_secret& s) noexcept : k0_(s.k0), k1_(s.k1) {}

  /// 64-bit hash of `len` bytes. Complexity: one SipRound per 8 bytes, plus four. noexcept.
  [[nodiscard]] std::uint64_t hash64(const void* data, std::size_t len) const noexcept {
    return siphash<1, 3>(k0_, k1_, data, len);
  }
  template <class T>
    requires std::has_unique_object_representations_v<T>
  [[nodiscard]] std::uint32_t operator()(const T& key) const noexcept {
    const std::uint64_t h = hash64(&key, sizeof(T));
    return static_cast<std::uint32_t>(h ^ (h >> 32));
  }

 private:
  std::uint64_t k0_, k1_;
};

#if defined(FNAT_HAVE_AES_HASH)
/// The AES-round keyed hash (see the file comment). Its operator() is compiled for AES-NI in every
/// translation unit (target attribute): call it only where available() is true. keyed_hash selects
/// it when the whole build has AES (__AES__), where it inlines into the table's lookup.
/// Default-constructed: the process secret.
class aes_keyed_hash {
 public:
  /// Longest key hashed: three 16-byte blocks (a tuple6 or inet_tuple is 40 bytes).
  static constexpr std::size_t max_key_bytes = 48;

  aes_keyed_hash() noexcept : aes_keyed_hash(process_hash_secret()) {}
  explicit aes_keyed_hash(const hash_secret& s) noexcept {
    // Six independent 128-bit round keys from the secret: SipHash-2-4 of a counter.
    for (std::uint64_t i = 0; i < 12; ++i) {
      const std::uint64_t m[2] = {0x666e61742d616573ULL /* "fnat-aes" */, i};
      rk_[i] = siphash<2, 4>(s.k0, s.k1, m, sizeof m);
    }
  }

  /// True if this CPU executes AES-NI.
  [[nodiscard]] static bool available() noexcept { return __builtin_cpu_supports("aes"); }

  template <class T>
    requires std::has_unique_object_representations_v<T>
  [[nodiscard]] __attribute__((target("aes,sse4.1"))) std::uint32_t operator()(const T& key) const noexcept {
    static_assert(sizeof(T) <= max_key_bytes, "aes_keyed_hash takes keys of at most 48 bytes");
    const auto* p = reinterpret_cast<const unsigned char*>(&key);
    const __m128i r1 = rk(3), r2 = rk(4);
    constexpr std::size_t full = sizeof(T) / 16, tail = sizeof(T) % 16;
    __m128i acc = _mm_setzero_si128();
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((acc = _mm_xor_si128(acc, block(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * I)), I, r1, r2))),
       ...);
    }(std::make_index_sequence<full>{});
    if constexpr (tail != 0 && full != 0) {
      // The last 16 bytes, overlapping the block before: one load, no copy through the stack (a
      // short store then a wide load stalls store forwarding). The overlap is hashed twice, under
      // two independent position keys.
      acc = _mm_xor_si128(acc, block(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + sizeof(T) - 16)), full, r1, r2));
    } else if constexpr (tail != 0) {
      alignas(16) unsigned char last[16] = {};
      std::memcpy(last, p, tail);
      acc = _mm_xor_si128(acc, block(_mm_load_si128(reinterpret_cast<const __m128i*>(last)), 0, r1, r2));
    }
    return static_cast<std::uint32_t>(_mm_cvtsi128_si32(_mm_aesenc_si128(acc, rk(5))));
  }

 private:
  [[nodiscard]] __m128i rk(std::size_t i) const noexcept {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(&rk_[2 * i]));
  }
  [[nodiscard]] __attribute__((target("aes,sse4.1"))) __m128i block(__m128i m, std::size_t pos, __m128i r1,
                                                                    __m128i r2) const noexcept {
    return _mm_aesenc_si128(_mm_aesenc_si128(_mm_xor_si128(m, rk(pos)), r1), r2);
  }

  std::uint64_t rk_[12];  // K_0, K_1, K_2, R_1, R_2, R_3 (two words each)
};
#endif

/// The keyed hash this build uses for tables packets index: aes_keyed_hash where the build targets
/// AES-NI, else SipHash-1-3. Default-constructed: the process secret; hash_secret: fixed.
#if defined(__AES__) && defined(FNAT_HAVE_AES_HASH)
using keyed_hash = aes_keyed_hash;
#else
using keyed_hash = siphash13_hash;
#endif
/// True when keyed_hash is the AES one.
inline constexpr bool keyed_hash_uses_aes = std::is_same_v<keyed_hash,
#if defined(FNAT_HAVE_AES_HASH)
                                                           aes_keyed_hash
#else
                                                           void
#endif
                                                           >;

/// The default hash policy of fnat's tables: keyed_hash. `tuple_hash{}` takes the process-wide
/// random secret (the same for every table of the process, drawn once); `tuple_hash(secret)` a
/// fixed one. Copyable; hashing is noexcept and allocates nothing.
using tuple_hash = keyed_hash;

/// The process-wide default tuple_hash (built once: its round keys are derived once, not per call).
[[nodiscard]] inline const tuple_hash& process_tuple_hash() noexcept {
  static const tuple_hash h{process_hash_secret()};
  return h;
}

/// Keyed hash of a key whose bytes are all significant (five-tuples, addresses), under the process
/// secret. For a table that must be reproducible, hold a tuple_hash(hash_secret) instead.
template <class T>
  requires std::has_unique_object_representations_v<T>
[[nodiscard]] inline std::uint32_t hash_key(const T& key) noexcept {
  static_assert(sizeof(T) % 4 == 0, "pad keys to a multiple of 4 bytes");
  return process_tuple_hash()(key);
}

}  // namespace fnat
