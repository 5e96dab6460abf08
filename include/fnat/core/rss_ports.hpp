// SPDX-License-Identifier: BSD-3-Clause
// RSS-aware local ports: an sa_pool policy whose ports bring each reply back, through the NIC's RSS,
// to the queue of the lcore that opened the connection. For NICs that cannot steer by a masked
// destination port (virtio-net, ENA, gVNIC, older Intel parts) but hash with a key and RETA we know.
//
// ## The problem
// The reply RS:rport -> LIP:lport reaches rx queue reta[h & (R - 1)], with
// h = toeplitz(key, RS, LIP, rport, lport) and R the RETA size (a power of two). For a destination
// (RS, rport) and a LIP, an lcore may only hand out lports that make that entry its own queue.
//
// ## Linearity makes it O(1)
// Toeplitz is linear over GF(2) (toeplitz.hpp), so
//     h(RS, LIP, rport, lport) = f xor c(lport),   f = h(RS, LIP, rport, 0),   c(p) = h(0, 0, 0, p),
// and the queue of port p for a destination is reta[(f xor c(p)) & (R - 1)]. Only the low log2 R
// bits of f matter: destinations fall into R classes by f & (R - 1), and all destinations of one
// class accept the same ports. A class is an sa_pool bucket:
//     bucket_of(LIP, dest) = f & (R - 1)         admits(b, p) = reta[(b xor c(p)) & (R - 1)] == queue
// A fetch is the class of the fixed part (a few table loads, below) and the pool's pop: no search and
// no retry, where Seastar draws ports until one fits and DPDK's rte_thash_adjust_tuple rehashes and
// checks per attempt (and needs a key it rewrote itself, while this works with any key whose port
// window mixes, the NIC's default included).
//
// ## Fewer buckets: only the index bits that decide "mine"
// Whether entry i is mine, g(i) = (reta[i] == queue), often depends on few of the index bits. Let D be
// the bits k for which flipping bit k of some index i changes g(i). Then g(i) = g(i & D), classes
// need only the bits in D, and the pool only 2^|D| buckets:
//     round robin over 4 queues (any R):          D = {0, 1}      4 buckets, not 512
//     round robin / SWRR over 2^a queues:         D = {0 .. a-1}  2^a buckets
//     halves (0..255 -> q0, 256..511 -> q1):      D = {8}         2 buckets
//     6 queues over 512 entries (6 does not divide 512): all 9 bits, 512 buckets
// With pext(v, D) the bits of v in D packed to the bottom (linear, like c), and x(p) = pext(c(p), D):
//     bucket_of(LIP, dest) = pext(f, D)          admits(b, p) = mine[b xor x(p)]
// with mine[y] = g(pdep(y, D)).
//
// ## The fast path computes |D| bits, not a hash
// pext(f, D) is linear in the tuple too, so it is the XOR over the tuple's bytes of per-byte tables
// B_i[v] = pext(h(v at byte i) & (R - 1), D): 10 lookups for IPv4 (RS, LIP, rport; the lport bytes
// are zero), 34 for IPv6, into 5 / 17 KiB of uint16 tables. All loads are independent and the XOR
// is a balanced tree, so bucket_of costs about two load latencies plus log2(lookups) XORs (~12
// cycles), less than a full Toeplitz hash (even GFNI's ~25-cycle chain) followed by a pext, and it
// needs no particular CPU. (A GF2P8AFFINEQB form, one 8x8 matrix per input byte, saves loads but
// not latency, and latency is what a fetch pays: consecutive fetches may touch one bucket header,
// which keeps the CPU from running them far ahead of each other. Tried: no faster with 4 buckets,
// slower with 128; not used.)
// A pool serves one LIP, so the copy it holds carries that LIP's part precomputed
// (bound_to(lip)): 6 loads for IPv4, 18 for IPv6, behind one test (the LIP's 4 bytes against the
// bound ones, or'ed with an IPv6 flag); an unbound policy is in effect bound to 0.0.0.0 / ::, whose
// part is 0 by linearity.
// IPv6, and a LIP the copy is not bound to, go out of line, so that the inlined IPv4 path is ~20
// instructions in few registers: sa_pool's fetch then saves one callee-saved register, not five,
// and runs 59 instructions where it ran 76 (callgrind). IPv6 reads its address as two 8-byte words
// and takes the bytes from registers, more instructions but fewer loads: its 18 table loads keep the
// load ports busy enough (measured ~10% faster than 16 byte loads). x(p) is the same with two
// tables (the port's high and low byte), so admits is three loads. The Toeplitz hasher (table path)
// is kept for fixed_hash()/queue_of(), the inspection side.
//
// ## Ports per bucket, and memory
// x maps the 16 port bits linearly onto |D| bits. If it is onto (any sane key: make() checks every
// bucket gets a port), each value y is taken by 2^(16 - |D|) of the 65536 ports, and bucket b holds
//     count(b) = sum over y with mine[b xor y] of |{p in [low, high] : x(p) = y}|,
// about (entries of my queue / R) * ports in range. make() computes it exactly, as an XOR
// convolution (Walsh-Hadamard, O(|D| 2^|D|)), and hands it to sa_pool as port_count(b).
// An sa_pool bucket costs 64 + (range / 8) + 2 * count(b) bytes (in-use bitmap over the whole range,
// the policy's dense numbering, plus the port ring); the policy's own tables, shared by its copies,
// are ~21 KiB for IPv4 and ~57 KiB for IPv6 (byte tables, Toeplitz tables, RETA) plus 33 B per
// bucket. For the range 1025-65535 (8 KiB bitmaps):
//     4 queues, round robin:          4 buckets * (8 + 31.5) KiB ~ 158 KiB per (LIP, lcore)
//     8 queues, round robin:          8 buckets * (8 + 15.8) KiB ~ 190 KiB
//     6 queues, 512-entry round robin: 512 buckets * (8 + 21) KiB ~ 14.6 MiB per (LIP, lcore),
//                                      ~88 MiB per LIP for the 6 lcores.
// Hence the RETA decides the memory: a table that repeats every 2^m entries costs at most 2^m
// buckets. reta_periodic (reta.hpp, the RSS programmer's default) picks the shortest period that
// keeps every queue within 1/16 of the mean share: for 6 queues 128 entries, 128 buckets, 3.7 MiB
// per (LIP, lcore) and 21.7 MiB per LIP instead of 88 (its file comment tabulates the trade). A
// narrower port range shrinks both terms of every bucket.
//
// ## What is assumed
// The NIC hashes TCP/UDP replies over (source address, destination address, source port,
// destination port) with this key, and indexes the RETA with the hash's low bits, as RSS specifies
// (rss_l4 types enabled). TCP and UDP share the layout. The policy copies the key and the RETA: when
// either is reprogrammed, build a new policy (and pools).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fnat/core/checked.hpp"
#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/sa_pool_policy.hpp"
#include "fnat/core/toeplitz.hpp"

#define FNAT_RSS_PORTS_EXPECT(cond, msg) FNAT_EXPECT("rss_buckets", cond, msg)


namespace fnat {

/// What an RSS-aware port policy is made from. Build with designated initializers:
/// `rss_buckets::make({.family = ip_family::v4, .key = key, .reta = reta, .queue = 3})`.
/// The spans need only live during make(): the policy copies what it keeps.
struct rss_buckets_config {
  /// Address family of the LIP and the real servers: IPv4 tuples are 12 bytes, IPv6 36, and the
  /// lport sits at byte 10 or 34.
  ip_family family = ip_family::v4;
  /// The RSS key the NIC hashes with, at least 16 bytes for IPv4 and 40 for IPv6. Default: the
  /// Microsoft key most NICs ship with.
  std::span<const std::uint8_t> key = rss_key_microsoft;
  /// The RETA as programmed: the rx queue of each entry. Size: a power of two, 1 to 65536.
  std::span<const std::uint16_t> reta = {};
  /// The rx queue of the lcore this policy serves; it must hold at least one RETA entry.
  std::uint16_t queue = 0;
  /// Lowest local port handed out (host order). Default: just above the privileged ports.
  std::uint16_t port_low = 1025;
  /// Highest local port handed out (host order).
  std::uint16_t port_high = 65535;
  /// Most buckets accepted (make() refuses a RETA that needs more). Each bucket of an sa_pool costs
  /// about range/8 + 2 * (its ports) bytes, ~29 KiB for 6 queues over the full range, so the default
  /// bounds one (LIP, lcore) pool near 120 MiB; a periodic RETA (reta_periodic) needs few buckets.
  std::size_t max_buckets = 4096;
};

/// The RSS-aware sa_pool policy (concept sa_pool_policy): bucket = RETA-index class of the
/// destination's fixed hash, bucket b admits p iff the reply to p lands on this lcore's queue.
/// One object per lcore (it takes the LIP as an argument); copies share its tables (one shared_ptr),
/// so one per LIP pool costs a pointer. Immutable after make(): any thread may read it.
class rss_buckets {
 public:
  /// Buckets hand out different ports (sa_pool builds each one).
  static constexpr bool uniform_buckets = false;
  /// Largest RETA taken (the most any NIC reports is 2048; RSS index bits fit 16).
  static constexpr std::size_t max_reta_size = 65536;

  /// Builds the policy of the lcore polling `cfg.queue`.
  /// Errors: errc::invalid_argument when the RETA is empty, not a power of two or larger than
  /// max_reta_size, has no entry for cfg.queue, the key is shorter than the family needs, or the
  /// port range is empty or starts at 0; errc::not_supported when the key leaves some destination
  /// class without any port of the range for this queue (the key's bits at the lport window do not
  /// reach the RETA index bits: use another key, e.g. the Microsoft default).
  /// Complexity: O(ports in range + |D| 2^|D| + R log R + key tables). Allocates the shared tables.
  [[nodiscard]] static result<rss_buckets> make(const rss_buckets_config& cfg) {
    const bool v4 = cfg.family == ip_family::v4;
    const std::size_t input_len = v4 ? rss_input_v4_len : rss_input_v6_len;
    const std::size_t rsize = cfg.reta.size();
    if (rsize == 0 || !std::has_single_bit(rsize) || rsize > max_reta_size)
      return error(errc::invalid_argument, "rss_buckets: RETA of " + std::to_string(rsize) +
                                               " entries; give the table as programmed, a power of two from 1 to " +
                                               std::to_string(max_reta_size) + " entries");
    if (cfg.key.size() < input_len + 4)
      return error(errc::invalid_argument, "rss_buckets: a " + std::to_string(cfg.key.size()) + "-byte RSS key cannot hash " +
                                               std::string(to_string(cfg.family)) + " tuples (" +
                                               std::to_string(input_len) + " bytes); it needs at least " +
                                               std::to_string(input_len + 4) + " bytes");
    if (cfg.port_low == 0 || cfg.port_low > cfg.port_high)
      return error(errc::invalid_argument, "rss_buckets: port range " + std::to_string(cfg.port_low) + "-" +
                                               std::to_string(cfg.port_high) +
                                               " is empty or starts at 0; give 1 <= port_low <= port_high");
    std::size_t entries = 0;
    for (std::uint16_t q : cfg.reta) entries += q == cfg.queue ? 1 : 0;
    if (entries == 0)
      return error(errc::invalid_argument, "rss_buckets: rx queue " + std::to_string(cfg.queue) +
                                               " has no RETA entry, so no reply could reach it; program the RETA "
                                               "with this queue or serve this lcore by redirect");

    auto tz = toeplitz_table::make(cfg.key, input_len);
    if (!tz) return tz.err();

    auto st = std::make_shared<state>(std::move(*tz));
    state& s = *st;
    s.family = cfg.family;
    s.queue = cfg.queue;
    s.low = cfg.port_low;
    s.high = cfg.port_high;
    s.reta.assign(cfg.reta.begin(), cfg.reta.end());
    s.reta_mask = static_cast<std::uint32_t>(rsize - 1);
    s.mine_entries = static_cast<std::uint32_t>(entries);

    // D: index bits whose flip changes "mine" somewhere.
    std::uint32_t dmask = 0;
    for (std::uint32_t k = 1; k < rsize; k <<= 1)
      for (std::uint32_t i = 0; i < rsize; ++i)
        if ((cfg.reta[i] == cfg.queue) != (cfg.reta[i ^ k] == cfg.queue)) {
          dmask |= k;
          break;
        }
    s.dmask = dmask;
    s.bits = static_cast<unsigned>(std::popcount(dmask));
    const std::size_t nb = std::size_t{1} << s.bits;
    if (nb > cfg.max_buckets)
      return error(errc::invalid_argument,
                   "rss_buckets: whether a RETA entry is queue " + std::to_string(cfg.queue) + "'s depends on " +
                       std::to_string(s.bits) + " index bits (mask " + detail::hex(dmask) + "), which makes " +
                       std::to_string(nb) + " buckets, above max_buckets " + std::to_string(cfg.max_buckets) +
                       "; program a RETA that repeats every 2^k entries (reta_periodic, the RSS programmer's "
                       "default, or round robin over a power-of-two queue count), or narrow the port range "
                       "and raise max_buckets");

    // pext tables over D (linear: low byte xor high byte), mine[] over compact indices.
    const auto pext = [dmask](std::uint32_t v) {
      std::uint32_t out = 0;
      unsigned at = 0;
      for (std::uint32_t m = dmask; m != 0; m &= m - 1, ++at)
        if (v & m & (~m + 1)) out |= 1u << at;
      return out;
    };
    const auto pdep = [dmask](std::uint32_t y) {
      std::uint32_t out = 0;
      unsigned at = 0;
      for (std::uint32_t m = dmask; m != 0; m &= m - 1, ++at)
        if ((y >> at) & 1u) out |= m & (~m + 1);
      return out;
    };
    // c(p) for the 8 low and 8 high port bits: hash of the input with only the lport set.
    const std::size_t off = v4 ? rss_input_v4_dport : rss_input_v6_dport;
    std::array<std::uint8_t, rss_input_v6_len> in{};
    for (std::uint32_t v = 0; v < 256; ++v) {
      in[off] = 0;
      in[off + 1] = static_cast<std::uint8_t>(v);  // network order: low byte second
      const std::uint32_t c_lo = s.tz.hash(std::span<const std::uint8_t>(in.data(), input_len));
      in[off] = static_cast<std::uint8_t>(v);
      in[off + 1] = 0;
      const std::uint32_t c_hi = s.tz.hash(std::span<const std::uint8_t>(in.data(), input_len));
      s.tables[t_comp_lo + v] = static_cast<std::uint16_t>(pext(v));
      s.tables[t_comp_hi + v] = static_cast<std::uint16_t>(pext(v << 8));
      s.tables[t_x_lo + v] = static_cast<std::uint16_t>(pext(c_lo & s.reta_mask));
      s.tables[t_x_hi + v] = static_cast<std::uint16_t>(pext(c_hi & s.reta_mask));
      s.tables[t_c_lo + v] = static_cast<std::uint16_t>(c_lo & 0xffffu);
      s.tables[t_c_hi + v] = static_cast<std::uint16_t>(c_hi & 0xffffu);
    }
    in[off] = 0;
    // B_i[v] for the fixed part's bytes (all but the lport): bucket_of XORs one entry per byte.
    const std::size_t fixed_len = input_len - 2;
    s.bytes.assign(fixed_len * 256, 0);
    for (std::size_t i = 0; i < fixed_len; ++i)
      for (std::uint32_t v = 1; v < 256; ++v) {
        in[i] = static_cast<std::uint8_t>(v);
        s.bytes[i * 256 + v] =
            static_cast<std::uint16_t>(pext(s.tz.hash(std::span<const std::uint8_t>(in.data(), input_len)) & s.reta_mask));
        in[i] = 0;
      }
    s.mine.resize(nb);
    for (std::size_t y = 0; y < nb; ++y)
      s.mine[y] = cfg.reta[pdep(static_cast<std::uint32_t>(y))] == cfg.queue ? 1 : 0;
    // low_sets[z] = {low byte l : mine[z ^ x(l)]}: for_each_port walks a bucket's ports high byte by
    // high byte (z = b ^ x(h << 8)) in O(256 * 4 + ports) instead of testing all 65536.
    s.low_sets.assign(nb, {});
    for (std::size_t z = 0; z < nb; ++z)
      for (std::uint32_t l = 0; l < 256; ++l)
        if (s.mine[z ^ s.tables[t_x_lo + l]] != 0) s.low_sets[z][l >> 6] |= std::uint64_t{1} << (l & 63);

    // count(b) = sum_y hist[y] * mine[b ^ y]: XOR convolution by Walsh-Hadamard.
    std::vector<std::int64_t> hist(nb, 0), g(nb, 0);
    for (std::uint32_t p = cfg.port_low; p <= cfg.port_high; ++p) ++hist[s.x_of(static_cast<std::uint16_t>(p))];
    for (std::size_t y = 0; y < nb; ++y) g[y] = s.mine[y];
    walsh_hadamard(hist);
    walsh_hadamard(g);
    for (std::size_t y = 0; y < nb; ++y) hist[y] *= g[y];
    walsh_hadamard(hist);
    s.counts.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) {
      s.counts[b] = static_cast<std::uint32_t>(hist[b] / static_cast<std::int64_t>(nb));
      if (s.counts[b] == 0)
        return error(errc::not_supported,
                     "rss_buckets: with this key and RETA, destinations in RETA class " + std::to_string(pdep(
                         static_cast<std::uint32_t>(b))) + " can get no port of " + std::to_string(cfg.port_low) + "-" +
                         std::to_string(cfg.port_high) + " that reaches queue " + std::to_string(cfg.queue) +
                         ": the key bits under the lport do not reach the RETA index bits; use a key that mixes "
                         "them (the Microsoft default does) or a wider port range");
    }

    rss_buckets r;
    r.tables_ = s.tables.data();
    r.bytes_ = s.bytes.data();
    r.mine_ = s.mine.data();
    r.nb_ = static_cast<std::uint32_t>(nb);
    r.low_ = s.low;
    r.high_ = s.high;
    r.v4_ = v4;
    r.not_v4_ = v4 ? 0 : 1;
    r.s_ = std::move(st);
    return r;
  }

  // ---- sa_pool_policy -------------------------------------------------------------------------

  /// 2^|D|: the number of destination classes that differ for this queue (file comment). O(1).
  [[nodiscard]] std::size_t bucket_count() const noexcept { return nb_; }

  /// The class of destination `dest` (address + host-order port) seen from `lip`: pext of the
  /// RETA index of h(RS, LIP, rport, 0), i.e. bucket_of == pext(fixed_hash(lip, dest), D).
  /// Requires: lip and dest of the policy's family (sa_pool refuses other destinations before it
  /// asks; fixed_hash asserts it in checked mode). Complexity: on a copy bound_to(lip), 6 (IPv4) or
  /// 18 (IPv6) independent table loads XORed after a 4- or 16-byte compare; with another LIP, 4 or
  /// 16 loads more (out of line). noexcept, no allocation.
  [[nodiscard]] FNAT_ALWAYS_INLINE std::size_t bucket_of(const inet_addr& lip, const endpoint& dest) const noexcept {
    // One test and one out-of-line call for everything but an IPv4 policy's own LIP: the inlined
    // body stays small and needs few registers in sa_pool's fetch and release.
    std::uint32_t l;
    std::memcpy(&l, lip.raw().data() + 12, 4);  // IPv4-mapped: the address is bytes 12..15
    if (((l ^ lip4_) | not_v4_) != 0) [[unlikely]]
      return bucket_of_other(lip, dest);
    const std::uint8_t* a = dest.addr.raw().data() + 12;
    const std::uint16_t* t = bytes_;
    const std::uint32_t port = dest.port;
    return ((std::uint32_t{t[a[0]]} ^ t[256 + a[1]]) ^ (std::uint32_t{t[512 + a[2]]} ^ t[768 + a[3]])) ^
           ((std::uint32_t{t[8 * 256 + (port >> 8)]} ^ t[9 * 256 + (port & 0xffu)]) ^ lip_part_);
  }

  /// A copy that knows `lip`: bucket_of with that LIP takes its contribution (4 or 16 table loads)
  /// from the copy instead of the tables; any other LIP still works, the long way. Give each LIP's
  /// sa_pool its bound copy: `sa_pool<rss_buckets>::make(lip, policy.bound_to(lip))`. (An unbound
  /// policy is, in effect, bound to 0.0.0.0 or ::, whose contribution is 0 by linearity.)
  /// Requires: lip of the policy's family. O(1), noexcept; shares the tables.
  [[nodiscard]] rss_buckets bound_to(const inet_addr& lip) const noexcept {
    rss_buckets r = *this;
    r.set_lip(lip);
    r.lip_part_ = lip_part_slow(lip);
    r.bound_ = true;
    return r;
  }
  /// True when bound_to() made this copy for `lip`.
  [[nodiscard]] bool bound_to_lip(const inet_addr& lip) const noexcept { return bound_ && same_lip(lip); }

  /// The bucket of a destination whose fixed hash h(RS, LIP, rport, 0) is known: pext(h & (R-1), D).
  /// bucket_of(lip, dest) == bucket_of_hash(fixed_hash(lip, dest)). O(1): two loads. noexcept.
  [[nodiscard]] std::size_t bucket_of_hash(std::uint32_t fixed) const noexcept {
    return tables_[t_comp_lo + (fixed & 0xffu)] | tables_[t_comp_hi + ((fixed >> 8) & 0xffu)];
  }

  /// True when bucket b hands out `port`: the port is in range and the reply to it from any
  /// destination of class b lands on this queue. b >= bucket_count() admits nothing. O(1), noexcept.
  [[nodiscard]] bool admits(std::size_t b, std::uint16_t port) const noexcept {
    return b < nb_ && port >= low_ && port <= high_ && mine_[b ^ x_of(port)] != 0;
  }

  /// Dense numbering for sa_pool's in-use bitmaps: port - port_low, over the whole range (a port
  /// belongs to some bucket for most classes). O(1).
  [[nodiscard]] std::uint32_t dense_size() const noexcept { return std::uint32_t{high_} - low_ + 1; }
  /// Requires: port in [port_low, port_high]. O(1), noexcept.
  [[nodiscard]] std::uint32_t dense_index(std::uint16_t port) const noexcept { return std::uint32_t{port} - low_; }

  /// Ports bucket b hands out (computed exactly at make). Requires: b < bucket_count(). O(1).
  [[nodiscard]] std::uint32_t port_count(std::size_t b) const noexcept { return s_->counts[b]; }

  /// Calls f(port) for each port bucket b hands out, ascending. Requires: b < bucket_count().
  /// Complexity: O(port_count(b) + 1024): one 256-bit set of low bytes per high byte (construction).
  template <class F>
  void for_each_port(std::size_t b, F&& f) const {
    const state& s = *s_;
    for (std::uint32_t h = std::uint32_t{low_} >> 8; h <= (std::uint32_t{high_} >> 8); ++h) {
      const auto& set = s.low_sets[b ^ s.tables[t_x_hi + h]];
      for (std::uint32_t w = 0; w < 4; ++w)
        for (std::uint64_t bits = set[w]; bits != 0; bits &= bits - 1) {
          const std::uint32_t p = (h << 8) | (w << 6) | static_cast<std::uint32_t>(std::countr_zero(bits));
          if (p < low_) continue;
          if (p > high_) return;
          f(static_cast<std::uint16_t>(p));
        }
    }
  }

  // ---- inspection and verification ------------------------------------------------------------

  /// h(RS, LIP, rport, 0), the destination's fixed part of the reply hash (a full Toeplitz hash,
  /// table path: for inspection; bucket_of does not need it). O(1), noexcept.
  /// Requires: lip and dest of the policy's family.
  [[nodiscard]] std::uint32_t fixed_hash(const inet_addr& lip, const endpoint& dest) const noexcept {
    FNAT_RSS_PORTS_EXPECT(lip.is_v4() == v4_ && dest.addr.is_v4() == v4_,
                          "LIP or destination of the other address family than the policy was built for; build one "
                          "policy per family");
    return v4_ ? s_->tz.hash_v4(dest.addr.v4(), lip.v4(), hton16(dest.port), 0)
               : s_->tz.hash_v6(dest.addr.v6(), lip.v6(), hton16(dest.port), 0);
  }
  /// Low 16 bits of c(port) = h(0, 0, 0, port), the port's contribution to the reply hash. O(1).
  [[nodiscard]] std::uint16_t port_contribution(std::uint16_t port) const noexcept {
    return static_cast<std::uint16_t>(tables_[t_c_lo + (port & 0xffu)] ^ tables_[t_c_hi + (port >> 8)]);
  }
  /// The RETA entry the reply RS:rport -> LIP:port selects: (fixed_hash ^ c(port)) & (R - 1).
  [[nodiscard]] std::uint32_t reta_index_of(const inet_addr& lip, const endpoint& dest, std::uint16_t port) const noexcept {
    return (fixed_hash(lip, dest) ^ port_contribution(port)) & s_->reta_mask;
  }
  /// The rx queue the NIC would deliver that reply to (the invariant's left side). O(1).
  [[nodiscard]] std::uint16_t queue_of(const inet_addr& lip, const endpoint& dest, std::uint16_t port) const noexcept {
    return s_->reta[reta_index_of(lip, dest, port)];
  }

  [[nodiscard]] ip_family family() const noexcept { return v4_ ? ip_family::v4 : ip_family::v6; }
  [[nodiscard]] std::uint16_t queue() const noexcept { return s_->queue; }
  [[nodiscard]] std::uint16_t port_low() const noexcept { return low_; }
  [[nodiscard]] std::uint16_t port_high() const noexcept { return high_; }
  [[nodiscard]] std::size_t reta_size() const noexcept { return s_->reta.size(); }
  /// RETA entries holding this queue.
  [[nodiscard]] std::uint32_t reta_entries() const noexcept { return s_->mine_entries; }
  /// D: the RETA index bits that decide "mine" (bucket_count() == 2^popcount).
  [[nodiscard]] std::uint32_t index_mask() const noexcept { return s_->dmask; }
  /// The hasher of the policy's key (table path; for callers that want the same hash, e.g. to check
  /// which queue a reply takes).
  [[nodiscard]] const toeplitz_table& hasher() const noexcept { return s_->tz; }
  /// Fewest and most ports a bucket hands out. O(buckets).
  [[nodiscard]] std::pair<std::uint32_t, std::uint32_t> port_count_range() const noexcept {
    const auto [lo, hi] = std::minmax_element(s_->counts.begin(), s_->counts.end());
    return {*lo, *hi};
  }

  /// One line for logs: family, RETA share, index bits, buckets, ports per bucket and the memory a
  /// full-range sa_pool of this policy takes.
  [[nodiscard]] std::string describe() const {
    const auto [lo, hi] = port_count_range();
    std::uint64_t total = 0;
    for (std::uint32_t c : s_->counts) total += c;
    const std::uint64_t words = (std::uint64_t{dense_size()} + 63) / 64;
    const std::uint64_t pool_bytes = nb_ * (64 + 8 * words) + 2 * total;
    return "rss_buckets: " + std::string(to_string(family())) + ", queue " + std::to_string(queue()) + " holds " +
           std::to_string(reta_entries()) + "/" + std::to_string(reta_size()) + " RETA entries, index bits mask " +
           detail::hex(s_->dmask) + " -> " + std::to_string(nb_) + " buckets of " + std::to_string(lo) + ".." +
           std::to_string(hi) + " ports (range " + std::to_string(low_) + "-" + std::to_string(high_) +
           "), sa_pool ~" + std::to_string((pool_bytes + 1023) / 1024) + " KiB per (LIP, lcore)";
  }

 private:
  // Table slots in state::tables: pext of a hash's low/high byte, x(p) of a port's low/high byte,
  // c(p)'s low 16 bits for a port's low/high byte.
  static constexpr std::size_t t_comp_lo = 0, t_comp_hi = 256, t_x_lo = 512, t_x_hi = 768, t_c_lo = 1024,
                               t_c_hi = 1280, t_size = 1536;

  struct state {
    explicit state(toeplitz_table&& t) : tz(std::move(t)) {}
    toeplitz_table tz;
    std::vector<std::uint16_t> bytes;   // B_i[v], (input length - 2) x 256
    std::array<std::uint16_t, t_size> tables{};
    std::vector<std::uint8_t> mine;     // compact index -> 1 when the entry is this queue's
    std::vector<std::array<std::uint64_t, 4>> low_sets;  // compact index z -> low bytes l with mine[z ^ x(l)]
    std::vector<std::uint32_t> counts;  // bucket -> ports in range
    std::vector<std::uint16_t> reta;
    std::uint32_t reta_mask = 0;
    std::uint32_t dmask = 0;
    std::uint32_t mine_entries = 0;
    unsigned bits = 0;
    ip_family family = ip_family::v4;
    std::uint16_t queue = 0;
    std::uint16_t low = 0;
    std::uint16_t high = 0;

    [[nodiscard]] std::uint32_t x_of(std::uint16_t p) const noexcept {
      return tables[t_x_lo + (p & 0xffu)] ^ tables[t_x_hi + (p >> 8)];
    }
  };

  rss_buckets() = default;

  [[nodiscard]] std::uint32_t x_of(std::uint16_t p) const noexcept {
    return tables_[t_x_lo + (p & 0xffu)] ^ tables_[t_x_hi + (p >> 8)];
  }
  // XOR of rows [First, First + N) of the byte tables indexed by p[0 .. N): unrolled, independent
  // loads, combined as a balanced tree (depth log2 N, not a chain of N dependent XORs).
  template <std::size_t First, std::size_t N>
  [[nodiscard]] static std::uint32_t xor_rows(const std::uint16_t* t, const std::uint8_t* p) noexcept {
    if constexpr (N == 1)
      return t[First * 256 + p[0]];
    else
      return xor_rows<First, N / 2>(t, p) ^ xor_rows<First + N / 2, N - N / 2>(t, p + N / 2);
  }
  // XOR of rows [First, First + 8) indexed by the bytes of w, least significant first (a little-endian
  // load of 8 address bytes).
  template <std::size_t First>
  [[nodiscard]] static std::uint32_t xor_word(const std::uint16_t* t, std::uint64_t w) noexcept {
    const auto row = [t, w](std::size_t i) { return std::uint32_t{t[(First + i) * 256 + ((w >> (8 * i)) & 0xffu)]}; };
    return ((row(0) ^ row(1)) ^ (row(2) ^ row(3))) ^ ((row(4) ^ row(5)) ^ (row(6) ^ row(7)));
  }
  // bucket_of for an IPv6 policy (16 + 2 rows, the LIP's part after two 8-byte compares; inet_addr's
  // operator== becomes a memcmp call here), or for an IPv4 policy and a LIP it is not bound to.
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((noinline))
#endif
  std::size_t bucket_of_other(const inet_addr& lip, const endpoint& dest) const noexcept {
    if (v4_) [[unlikely]]
      return bucket_of_v4_slow(lip, dest);
    const std::uint32_t part = same_lip(lip) ? lip_part_ : lip_part_slow(lip);
    const std::uint8_t rport[2] = {static_cast<std::uint8_t>(dest.port >> 8), static_cast<std::uint8_t>(dest.port)};
    if constexpr (std::endian::native == std::endian::little) {
      // Two 8-byte loads and register byte extraction instead of 16 byte loads: the 18 table loads
      // already keep the load ports busy.
      std::uint64_t w[2];
      std::memcpy(w, dest.addr.raw().data(), 16);
      return (xor_word<0>(bytes_, w[0]) ^ xor_word<8>(bytes_, w[1])) ^ xor_rows<32, 2>(bytes_, rport) ^ part;
    }
    return (xor_rows<0, 16>(bytes_, dest.addr.raw().data()) ^ xor_rows<32, 2>(bytes_, rport)) ^ part;
  }
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((noinline, cold))
#endif
  std::size_t bucket_of_v4_slow(const inet_addr& lip, const endpoint& dest) const noexcept {
    const std::uint8_t rport[2] = {static_cast<std::uint8_t>(dest.port >> 8), static_cast<std::uint8_t>(dest.port)};
    return xor_rows<0, 4>(bytes_, dest.addr.raw().data() + 12) ^ xor_rows<8, 2>(bytes_, rport) ^ lip_part_slow(lip);
  }
  [[nodiscard]] bool same_lip(const inet_addr& lip) const noexcept {
    std::uint64_t a[2];
    std::memcpy(a, lip.raw().data(), 16);
    return ((a[0] ^ lip6_[0]) | (a[1] ^ lip6_[1])) == 0;
  }
  void set_lip(const inet_addr& lip) noexcept {
    std::memcpy(lip6_, lip.raw().data(), 16);
    std::memcpy(&lip4_, lip.raw().data() + 12, 4);
  }
  // The LIP's contribution from the tables: rows 4..7 (IPv4) or 16..31 (IPv6). Out of line: a pool
  // meets it only when its policy is not bound to its LIP.
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((noinline, cold))
#endif
  std::uint32_t lip_part_slow(const inet_addr& lip) const noexcept {
    return v4_ ? xor_rows<4, 4>(bytes_, lip.raw().data() + 12) : xor_rows<16, 16>(bytes_, lip.raw().data());
  }
  static void walsh_hadamard(std::vector<std::int64_t>& a) noexcept {
    for (std::size_t len = 1; len < a.size(); len <<= 1)
      for (std::size_t i = 0; i < a.size(); i += 2 * len)
        for (std::size_t j = i; j < i + len; ++j) {
          const std::int64_t u = a[j], v = a[j + len];
          a[j] = u + v;
          a[j + len] = u - v;
        }
  }

  // Hot members first: the fast path reads these and the shared tables, never s_ itself.
  const std::uint16_t* bytes_ = nullptr;
  std::uint32_t lip4_ = 0;        // bound_to()'s LIP, bytes 12..15 (0.0.0.0 when unbound)
  std::uint32_t lip_part_ = 0;    // its contribution to bucket_of (0 when unbound)
  std::uint32_t not_v4_ = 0;      // 1 for an IPv6 policy: bucket_of's one test sends it out of line
  std::uint64_t lip6_[2] = {};    // bound_to()'s LIP, all 16 bytes (:: when unbound)
  const std::uint16_t* tables_ = nullptr;
  const std::uint8_t* mine_ = nullptr;
  bool bound_ = false;
  std::uint32_t nb_ = 0;
  std::uint16_t low_ = 0;
  std::uint16_t high_ = 0;
  bool v4_ = true;
  std::shared_ptr<const state> s_;
};

static_assert(sa_pool_policy<rss_buckets>);

}  // namespace fnat
