// SPDX-License-Identifier: BSD-3-Clause
// The hash-flooding attacker of issue 14, for the attack benchmark and the keyed hash's tests: SYN-flood
// tuples (spoofed IPv4 sources and ports, one VIP:vport) whose CRC32C agrees in its low `bits` bits,
// so that a table indexed by CRC32C & (2^bits - 1) files them all in one bucket.
//
// CRC32C over a fixed length is affine over GF(2): crc(base ^ d) = crc(base) ^ L(d) with L linear. The
// attacker controls 48 bits of the tuple (source address and port). Column j of L is
// crc(base ^ e_j) ^ crc(base); the differences d with L(d) = 0 in the low `bits` bits form the null
// space of a bits x 48 matrix, of dimension at least 48 - bits, found by Gaussian elimination. Every
// combination of its basis vectors, xored onto the base tuple, is one more colliding tuple.
#pragma once

#include <fnat/core/addr.hpp>
#include <fnat/core/hash.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace fnat_flood {

/// `count` distinct TCP tuples src:sport -> vip:vport (vport host order), all with the same
/// crc32c_key(t, seed) & (2^bits - 1). Requires count <= 2^(48 - bits) (returns fewer otherwise).
inline std::vector<fnat::tuple4> crc_colliding_syns(fnat::ipv4_addr vip, std::uint16_t vport, unsigned bits,
                                                    std::size_t count, std::uint32_t seed = 0,
                                                    std::uint32_t base_src = 0xc6120000u) {
  const fnat::tuple4 base =
      fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(base_src), std::uint16_t{40000}, vip, vport);
  // The attacker's bits: bytes 0..3 (source address) and 8..9 (source port) of the tuple.
  std::vector<unsigned> free_bits;
  for (unsigned byte : {0u, 1u, 2u, 3u, 8u, 9u})
    for (unsigned b = 0; b < 8; ++b) free_bits.push_back(byte * 8 + b);
  const std::uint32_t mask = bits >= 32 ? 0xffffffffu : (std::uint32_t{1} << bits) - 1;
  auto flip = [](fnat::tuple4 t, unsigned bit) {
    auto* p = reinterpret_cast<unsigned char*>(&t);
    p[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
    return t;
  };
  const std::uint32_t h0 = fnat::crc32c_key(base, seed);
  // Rows: one per free bit, (column of L restricted to `mask`, the combination of free bits it is).
  struct row {
    std::uint32_t image;
    std::uint64_t combo;
  };
  std::vector<row> rows;
  for (std::size_t j = 0; j < free_bits.size(); ++j)
    rows.push_back({(fnat::crc32c_key(flip(base, free_bits[j]), seed) ^ h0) & mask, std::uint64_t{1} << j});
  // Eliminate: each pivot bit of the image is cleared from every other row; rows left with image 0
  // span the null space.
  std::size_t r = 0;
  for (unsigned bit = 0; bit < 32 && r < rows.size(); ++bit) {
    const std::uint32_t pb = std::uint32_t{1} << bit;
    std::size_t p = r;
    while (p < rows.size() && !(rows[p].image & pb)) ++p;
    if (p == rows.size()) continue;
    std::swap(rows[r], rows[p]);
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (i != r && (rows[i].image & pb)) {
        rows[i].image ^= rows[r].image;
        rows[i].combo ^= rows[r].combo;
      }
    ++r;
  }
  std::vector<std::uint64_t> basis;
  for (std::size_t i = r; i < rows.size(); ++i) basis.push_back(rows[i].combo);
  std::vector<fnat::tuple4> out;
  out.reserve(count);
  for (std::uint64_t k = 0; out.size() < count && (basis.size() >= 64 || k < (std::uint64_t{1} << basis.size())); ++k) {
    std::uint64_t combo = 0;
    for (std::size_t i = 0; i < basis.size(); ++i)
      if (k >> i & 1) combo ^= basis[i];
    fnat::tuple4 t = base;
    for (std::size_t j = 0; j < free_bits.size(); ++j)
      if (combo >> j & 1) t = flip(t, free_bits[j]);
    out.push_back(t);
  }
  return out;
}

}  // namespace fnat_flood
