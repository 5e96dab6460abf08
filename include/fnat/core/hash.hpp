// SPDX-License-Identifier: BSD-3-Clause
// Hashing of fixed-size keys (five-tuples) for the conn table and the sa_pool buckets.
//
// With SSE4.2 (any x86-64 DPDK build: libdpdk's pkg-config flags carry -march=corei7) the hash is
// CRC32C over 8-byte words, the instruction DPDK's rte_hash_crc uses, so fnat and rte_hash tables
// compare on equal hashing cost. Without it, a 64x64->128 multiply-fold mix (wyhash's "mum") of the
// same words; both spread every input bit into the low bits that power-of-two tables index with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
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
[[nodiscard]] inline std::uint64_t mum(std::uint64_t a, std::uint64_t b) noexcept {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}
}  // namespace detail

/// True when hash_bytes uses the CRC32C instruction.
inline constexpr bool hash_uses_crc32c =
#if defined(__SSE4_2__)
    true;
#else
    false;
#endif

/// Hashes `len` bytes (a multiple of 4) with `seed`. Complexity: len/8 steps. noexcept, no allocation.
[[nodiscard]] inline std::uint32_t hash_bytes(const void* data, std::size_t len, std::uint32_t seed = 0) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__SSE4_2__)
  std::uint64_t crc = seed;
  for (; len >= 8; len -= 8, p += 8) crc = _mm_crc32_u64(crc, detail::load64(p));
  std::uint32_t c = static_cast<std::uint32_t>(crc);
  if (len >= 4) c = _mm_crc32_u32(c, detail::load32(p));
  return c;
#else
  constexpr std::uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
  std::uint64_t h = seed ^ k0;
  for (; len >= 8; len -= 8, p += 8) h = detail::mum(h ^ detail::load64(p), k1);
  if (len >= 4) h = detail::mum(h ^ detail::load32(p), k1);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
#endif
}

/// Hash of a key whose bytes are all significant (five-tuples, addresses).
template <class T>
  requires std::has_unique_object_representations_v<T>
[[nodiscard]] inline std::uint32_t hash_key(const T& key, std::uint32_t seed = 0) noexcept {
  static_assert(sizeof(T) % 4 == 0, "pad keys to a multiple of 4 bytes");
  return hash_bytes(&key, sizeof(T), seed);
}

/// Function object form, the default hash policy of fnat's tables.
struct tuple_hash {
  std::uint32_t seed = 0;
  template <class T>
  [[nodiscard]] std::uint32_t operator()(const T& key) const noexcept {
    return hash_key(key, seed);
  }
};

}  // namespace fnat
