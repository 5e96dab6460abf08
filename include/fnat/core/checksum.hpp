// SPDX-License-Identifier: BSD-3-Clause
// The Internet checksum (RFC 1071): full computation, pseudo-header sums and the incremental updates
// of RFC 1624 that a NAT rewrite uses.
//
// ## Representation
// The checksum is the ones' complement of the ones' complement sum of the data taken as 16-bit words.
// Ones' complement addition is addition modulo 2^16 - 1 with the carry wrapped around, and it is
// commutative and byte-order independent (RFC 1071 section 2(B)): summing the words as the host loads
// them, little-endian or not, gives the byte-swapped sum on a little-endian host, and storing that
// sum back the way it was loaded puts the right bytes on the wire. So every 16- and 32-bit value in
// this header is *raw*: the bits as they sit in the packet (memcpy'd, network order), never
// converted. A caller with a host-order number (a length, a protocol) converts it with hton16 first.
//
// Sums are accumulated in 64 bits (32-bit words, no carry handling in the loop: 2^32 words before the
// accumulator could overflow) and folded to 16 bits at the end with end-around carries:
//     fold(x): x = (x & 0xffffffff) + (x >> 32), twice; then the same with 16 bits, twice.
// fold(x) is 0 only for x == 0; otherwise it lies in [1, 0xffff] and is congruent to x modulo 0xffff.
// `raw_sum` returns that folded, non-complemented sum (DPDK's rte_raw_cksum); the checksum to store is
// its complement (`internet_checksum`); a received message verifies when its raw sum, checksum field
// included, is 0xffff.
//
// ## Incremental update (RFC 1624, eqn. 3)
// When a 16-bit word m of the covered data becomes m', the stored checksum HC becomes
//     HC' = ~(~HC + ~m + m')
// in ones' complement arithmetic. Several changes accumulate into one delta, sum(~m_i + m'_i), which is
// applied once (`csum_delta`). RFC 1624 derived eqn. 3 because the older form of RFC 1141 (its eqn. 2)
// could produce 0xffff where a full computation gives 0x0000. With eqn. 3 and the fold above, the
// result equals a full recomputation bit for bit whenever the old checksum was itself computed in
// full (so ~HC = fold(old sum) is nonzero, and so is the argument of the fold) and the updated data,
// checksum aside, is not all zero. The tests check this equality on random packets.
//
// UDP adds a twist (RFC 768): a transmitted checksum of 0 means "none", so a computed 0 is sent as
// 0xffff (`udp_checksum_fixup`), and a received 0 must stay 0 through a rewrite (callers check it).
// The exactness above fails in one corner: data that is all zero apart from the checksum, which only
// ICMPv4 (no pseudo-header) can have, e.g. an echo reply with identifier, sequence and payload zero.
// Its sum is +0, full computation gives 0xffff, eqn. 3 gives 0x0000, which does not verify; ICMPv4
// updates therefore write 0xffff for 0 (`csum_nonzero`), which verifies whatever the data.
//
// Everything here is noexcept, allocation-free and O(length) or O(1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "fnat/core/addr.hpp"

namespace fnat {

/// Folds a 64-bit accumulator to 16 bits with end-around carries. The result is 0 only for sum == 0,
/// otherwise in [1, 0xffff] and congruent to sum modulo 0xffff. O(1).
[[nodiscard]] constexpr std::uint16_t csum_fold(std::uint64_t sum) noexcept {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

/// Ones' complement sum of two raw 16-bit values. O(1).
[[nodiscard]] constexpr std::uint16_t csum_add(std::uint16_t a, std::uint16_t b) noexcept {
  return csum_fold(std::uint64_t{a} + b);
}

/// Ones' complement sum (not complemented, folded to 16 bits) of `len` bytes at `data`, added to
/// `init` (a previous raw sum, to continue a computation). An odd trailing byte is padded with a zero
/// byte, as RFC 1071 says. Continuing a sum is only valid at an even offset.
/// Complexity: O(len). noexcept; reads [data, data + len) and nothing else.
[[nodiscard]] inline std::uint16_t raw_sum(const void* data, std::size_t len, std::uint16_t init = 0) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t a = init, b = 0;  // two accumulators: independent add chains
  for (; len >= 8; len -= 8, p += 8) {
    std::uint32_t w0, w1;
    std::memcpy(&w0, p, 4);
    std::memcpy(&w1, p + 4, 4);
    a += w0;
    b += w1;
  }
  if (len >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    a += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    b += w;
    p += 2;
    len -= 2;
  }
  if (len == 1) {
    const unsigned char last[2] = {*p, 0};
    std::uint16_t w;
    std::memcpy(&w, last, 2);
    a += w;
  }
  return csum_fold(a + b);
}

/// raw_sum over a span.
[[nodiscard]] inline std::uint16_t raw_sum(std::span<const std::uint8_t> data, std::uint16_t init = 0) noexcept {
  return raw_sum(data.data(), data.size(), init);
}

/// The checksum to store: the complement of the raw sum of `data` (with its checksum field zero)
/// continued from `init` (e.g. a pseudo-header sum). Raw (network order) value. O(len).
[[nodiscard]] inline std::uint16_t internet_checksum(std::span<const std::uint8_t> data,
                                                     std::uint16_t init = 0) noexcept {
  return static_cast<std::uint16_t>(~raw_sum(data, init));
}

/// True when `data`, checksum field included, sums (from `init`) to 0xffff: the checksum verifies.
/// Both representations of zero, 0x0000 and 0xffff, verify. O(len).
[[nodiscard]] inline bool checksum_ok(std::span<const std::uint8_t> data, std::uint16_t init = 0) noexcept {
  return raw_sum(data, init) == 0xffff;
}

/// RFC 768: a UDP checksum that computes to 0 is transmitted as 0xffff (0 means "no checksum").
[[nodiscard]] constexpr std::uint16_t udp_checksum_fixup(std::uint16_t cksum) noexcept {
  return cksum == 0 ? std::uint16_t{0xffff} : cksum;
}

/// 0x0000 -> 0xffff, for checksums whose covered data may be all zero (ICMPv4: no pseudo-header). An
/// incremental update yields 0x0000 both when the rest of the data sums to 0xffff (then 0x0000 is what
/// a full computation gives) and when it is all zero (then only 0xffff verifies: RFC 1624 section 3's
/// +0/-0 ambiguity). 0xffff verifies in both cases, so it is the safe choice.
[[nodiscard]] constexpr std::uint16_t csum_nonzero(std::uint16_t cksum) noexcept {
  return cksum == 0 ? std::uint16_t{0xffff} : cksum;
}

// ---- pseudo-headers ---------------------------------------------------------------------------

/// Raw sum of the IPv4 pseudo-header (RFC 793 / 768): source, destination, zero, protocol, and the
/// L4 length (header + data) in host order. This, not complemented, is what DPDK's tx checksum
/// offload expects in the L4 checksum field (rte_ipv4_phdr_cksum with ol_flags = 0). O(1).
[[nodiscard]] inline std::uint16_t pseudo_header_sum(ipv4_addr saddr, ipv4_addr daddr, std::uint8_t proto,
                                                     std::uint16_t l4_len) noexcept {
  std::uint64_t s = std::uint64_t{saddr.be} + daddr.be;
  s += hton16(proto);
  s += hton16(l4_len);
  return csum_fold(s);
}

/// Raw sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination, 32-bit upper-layer
/// length (host order here), three zero bytes and the next header. O(1).
[[nodiscard]] inline std::uint16_t pseudo_header_sum(const ipv6_addr& saddr, const ipv6_addr& daddr,
                                                     std::uint8_t proto, std::uint32_t l4_len) noexcept {
  const std::uint16_t addrs = raw_sum(saddr.bytes.data(), 16, raw_sum(daddr.bytes.data(), 16));
  std::uint64_t s = addrs;
  s += hton32(l4_len);
  s += hton32(proto);
  return csum_fold(s);
}

// ---- incremental updates (RFC 1624) -----------------------------------------------------------

/// The accumulated effect of replacing covered words: sum(~old + new) over every changed word.
/// Build one per checksum (or one shared by two checksums that cover the same changes, as the IPv4
/// addresses are covered by both the IP header and the TCP/UDP pseudo-header), then `apply` it.
/// Trivially copyable, 8 bytes; every member O(1) (or O(16) for IPv6 addresses), noexcept.
class csum_delta {
 public:
  constexpr csum_delta() noexcept = default;

  /// One 16-bit word changed from `from` to `to` (raw values).
  constexpr csum_delta& add16(std::uint16_t from, std::uint16_t to) noexcept {
    acc_ += static_cast<std::uint16_t>(~from);
    acc_ += to;
    return *this;
  }
  /// A 32-bit (2-word) field changed (raw values). Requires: the field starts at an even offset of the
  /// covered data, as every address and port does.
  constexpr csum_delta& add32(std::uint32_t from, std::uint32_t to) noexcept {
    acc_ += static_cast<std::uint32_t>(~from);
    acc_ += to;
    return *this;
  }
  /// `n` bytes (even) changed from `from` to `to`; e.g. an IPv6 address, n = 16.
  csum_delta& add_bytes(const void* from, const void* to, std::size_t n) noexcept {
    const auto* f = static_cast<const unsigned char*>(from);
    const auto* t = static_cast<const unsigned char*>(to);
    for (; n >= 4; n -= 4, f += 4, t += 4) {
      std::uint32_t a, b;
      std::memcpy(&a, f, 4);
      std::memcpy(&b, t, 4);
      add32(a, b);
    }
    if (n >= 2) {
      std::uint16_t a, b;
      std::memcpy(&a, f, 2);
      std::memcpy(&b, t, 2);
      add16(a, b);
    }
    return *this;
  }
  constexpr csum_delta& add(ipv4_addr from, ipv4_addr to) noexcept { return add32(from.be, to.be); }
  csum_delta& add(const ipv6_addr& from, const ipv6_addr& to) noexcept {
    return add_bytes(from.bytes.data(), to.bytes.data(), 16);
  }
  /// Adds the changes recorded in another delta.
  constexpr csum_delta& add(const csum_delta& other) noexcept {
    acc_ += csum_fold(other.acc_);
    return *this;
  }

  /// The updated checksum, RFC 1624 eqn. 3: ~(~hc + delta). Raw values in and out.
  [[nodiscard]] constexpr std::uint16_t apply(std::uint16_t hc) const noexcept {
    return static_cast<std::uint16_t>(~csum_fold(std::uint64_t{static_cast<std::uint16_t>(~hc)} + acc_));
  }
  /// The folded delta, for tests.
  [[nodiscard]] constexpr std::uint16_t folded() const noexcept { return csum_fold(acc_); }

 private:
  std::uint64_t acc_ = 0;  // at most a few dozen 32-bit terms: no overflow
};

/// Checksum `hc` after one 16-bit word went from `from` to `to` (raw values). O(1).
[[nodiscard]] constexpr std::uint16_t csum_update16(std::uint16_t hc, std::uint16_t from, std::uint16_t to) noexcept {
  return csum_delta{}.add16(from, to).apply(hc);
}
/// Checksum `hc` after a 32-bit field (at an even offset) went from `from` to `to` (raw values). O(1).
[[nodiscard]] constexpr std::uint16_t csum_update32(std::uint16_t hc, std::uint32_t from, std::uint32_t to) noexcept {
  return csum_delta{}.add32(from, to).apply(hc);
}
/// Checksum `hc` after an IPv6 address went from `from` to `to`. O(1).
[[nodiscard]] inline std::uint16_t csum_update(std::uint16_t hc, const ipv6_addr& from, const ipv6_addr& to) noexcept {
  return csum_delta{}.add(from, to).apply(hc);
}

}  // namespace fnat
