// SPDX-License-Identifier: BSD-3-Clause
// Toeplitz hash, the RSS hash NICs compute (Microsoft "Verifying the RSS Hash Calculation").
//
// For input bits d_0 d_1 ... (most significant bit of the first byte first) and key bits
// k_0 k_1 ..., the 32-bit result is XOR over every set input bit i of the key window
// k_i .. k_{i+31}. The key must hold at least input length + 4 bytes (40 bytes covers an IPv6
// four-tuple: 16 + 16 + 2 + 2 = 36).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

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

}  // namespace fnat
