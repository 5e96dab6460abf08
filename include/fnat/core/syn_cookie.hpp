// SPDX-License-Identifier: BSD-3-Clause
// Keyed SYN cookies: answer a SYN with a SYN-ACK whose initial sequence number carries, under a MAC,
// everything the balancer must remember about the SYN, so that a SYN costs no conn, no port and no
// memory until the client proves its address by completing the handshake (SYN proxy).
//
// ## Why
// A spoofed SYN flood claims a conn and a local port per SYN until the idle timer frees them; past
// the pools' size legitimate clients are refused. With cookies the balancer keeps nothing: the ACK
// that completes the handshake echoes ISN + 1, and only an ACK whose echo verifies under the secret
// opens a session (and then the connection to the real server, whose own ISN seq_adjust.hpp maps).
//
// ## The cookie (32 bits)
// With K the 128-bit secret, c the time counter (now / period, low 32 bits), the SYN's tuple
// (client address and port, VIP and vport) and its ISN s:
//     h      = SipHash-2-4_K(saddr, daddr, sport, dport, s, c)           (64 bits)
//     cookie = hi32(h) xor T[i]
// where i (3 bits) indexes the MSS table entry chosen for the client (the largest entry not above
// the MSS the client sent) and T is a fixed table of eight 32-bit words whose pairwise Hamming
// distance is at least 13 (pinned by a test). Checking the ACK (ack = cookie + 1, seq = s + 1): for
// each counter c' in [c_now - max_age, c_now], recompute h and accept when (ack - 1) xor hi32(h) is
// one of T's words; its position is i. Properties:
//  - not guessable: without K, hi32(h) is uniform and independent per tuple, ISN and counter
//    (SipHash is a PRF), so a blind ACK is accepted with probability 8 (T words) * (max_age + 1)
//    counters / 2^32, i.e. 2^-27.4 for the default max_age 2; every cookie bit depends on every
//    input bit (a test measures ~16 of 32 bits flipping per input bit);
//  - tamper-evident: changing fewer than 13 bits of a cookie never yields another T word; a client
//    that changes exactly T[i] xor T[j] swaps one table MSS for another, which it could have asked
//    for in its SYN anyway (the MSS is the client's own claim, as in Linux's cookies);
//  - bounded life: a cookie verifies for max_age + 1 counter values, i.e. between max_age and
//    max_age + 1 periods (default 64 s periods, 2: two to three minutes, Linux's MAX_SYNCOOKIE_AGE);
//  - cost: one SipHash of 20 bytes (IPv4) or 44 (IPv6) per SYN; up to max_age + 1 per ACK checked.
//
// ## Options through the timestamp (as Linux does)
// Thirty-two bits hold no room for window scale and SACK-permitted, yet without them a connection
// loses most of its throughput on long paths. When the SYN carries timestamps (RFC 7323), the
// SYN-ACK's TSval is the balancer's clock with its low 5 bits replaced: bits 0-3 the client's window
// shift (15: none), bit 4 SACK-permitted; the client echoes TSval in TSecr of the ACK, from which they
// are read back. TSval is moved back by 32 when the substitution would put it ahead of the clock, so
// the clock never runs backwards for the client's PAWS check. These bits are the client's own
// claims and are not authenticated (a client lying about them hurts only itself). Without
// timestamps the SYN-ACK offers neither window scaling nor SACK (RFC 7323 and 2018: an option the
// SYN-ACK does not carry is off), and the connection works without them.
//
// ## The SYN-ACK
// make_synack reads the SYN's values (so the SYN-ACK may be built into the SYN's own buffer) and
// writes: Ethernet to the SYN's source (l2 from reply_l2), IPv4 (IHL 5, DF, id 0) or IPv6 (flow
// label 0) from the VIP to the client, TCP vport -> client port, seq = cookie, ack = s + 1, SYN|ACK,
// window config.window (a SYN's window is never scaled), and options in Linux's order: MSS
// (config.advertised_mss), SACK-permitted and timestamps, NOP + window scale config.wscale (only
// when the client offered window scaling and timestamps); both checksums computed in full; an IPv4
// frame shorter than 60 bytes is zero-padded. Everything here is noexcept and allocation-free;
// make() is the only configuration-time call.
//
// Thread safety: a syn_cookies object is immutable after make(); share it between lcores freely.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "fnat/core/addr.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/packet.hpp"
#include "fnat/core/tcp_options.hpp"

namespace fnat {

/// Why a SYN was not answered or an ACK not accepted. `none` (0): answered / accepted.
enum class syn_cookie_refusal : std::uint8_t {
  none = 0,
  not_syn,      ///< make_synack: not a TCP SYN alone (SYN+ACK, SYN+RST, SYN+FIN, not TCP)
  not_ack,      ///< check_ack: not an ACK, or SYN / RST set
  bad_options,  ///< the segment's option list is malformed (tcp_option_error)
  no_room,      ///< make_synack: the output buffer is too small
  bad_cookie,   ///< check_ack: the echo verifies under no counter of the validity window (forged,
                ///< tampered, expired, or another secret)
};
inline constexpr std::size_t syn_cookie_refusal_count = static_cast<std::size_t>(syn_cookie_refusal::bad_cookie) + 1;

[[nodiscard]] constexpr std::string_view to_string(syn_cookie_refusal r) noexcept {
  switch (r) {
    case syn_cookie_refusal::none: return "none";
    case syn_cookie_refusal::not_syn: return "not_syn";
    case syn_cookie_refusal::not_ack: return "not_ack";
    case syn_cookie_refusal::bad_options: return "bad_options";
    case syn_cookie_refusal::no_room: return "no_room";
    case syn_cookie_refusal::bad_cookie: return "bad_cookie";
  }
  return "unknown";
}

/// SYN cookie settings. Build with designated initializers; syn_cookies::make checks them.
struct syn_cookie_config {
  /// Seconds per counter step. Default 64 (Linux: 60).
  std::uint32_t period_s = 64;
  /// Older counters still accepted (validity max_age..max_age + 1 periods). Default 2; at most 8.
  std::uint32_t max_age = 2;
  /// MSS values a cookie can carry for IPv4 clients, ascending, 8 entries; the client gets the
  /// largest not above its own (the smallest when its own is smaller still). Default: 536 (RFC 9293's
  /// default) up to 1460 (Ethernet), with the tunnel and PPPoE sizes between.
  std::array<std::uint16_t, 8> mss_v4 = {536, 1200, 1300, 1360, 1400, 1440, 1452, 1460};
  /// The same for IPv6 (RFC 8200's minimum MTU gives 1220).
  std::array<std::uint16_t, 8> mss_v6 = {1220, 1280, 1340, 1380, 1400, 1420, 1432, 1440};
  /// The MSS the SYN-ACK advertises to IPv4 / IPv6 clients (what the balancer's path can carry).
  std::uint16_t advertised_mss_v4 = 1460;
  std::uint16_t advertised_mss_v6 = 1440;
  /// The window scale the SYN-ACK offers (when the client offers one and sends timestamps). 0..14.
  std::uint8_t wscale = 7;
  /// The SYN-ACK's window field (unscaled).
  std::uint16_t window = 65535;
  /// TTL / hop limit of the SYN-ACK.
  std::uint8_t ttl = 64;
};

/// What a verified ACK says about the SYN it completes.
struct syn_cookie_ack {
  syn_cookie_refusal why = syn_cookie_refusal::bad_cookie;
  std::uint16_t mss = 0;                ///< the client's MSS as the table encoded it
  std::optional<std::uint8_t> wscale;   ///< the client's window shift (timestamps only)
  bool sack_permitted = false;          ///< timestamps only
  bool timestamps = false;              ///< the ACK carries timestamps with a cookie echo
  std::uint32_t tsval = 0;              ///< the client's TSval in the ACK (host order)
  std::uint32_t tsecr = 0;              ///< the echo of the SYN-ACK's TSval (host order)
  std::uint32_t cookie = 0;             ///< the balancer's ISN (ack - 1)
  std::uint32_t client_isn = 0;         ///< the SYN's ISN (seq - 1)
  explicit operator bool() const noexcept { return why == syn_cookie_refusal::none; }
};

/// Result of make_synack: frame length (0 when refused) and the cookie sent.
struct syn_cookie_synack {
  std::size_t len = 0;
  syn_cookie_refusal why = syn_cookie_refusal::none;
  std::uint32_t cookie = 0;
  std::uint32_t tsval = 0;  ///< the SYN-ACK's TSval (host order) when it carries timestamps
  explicit operator bool() const noexcept { return why == syn_cookie_refusal::none; }
};

/// Keyed SYN cookies (see the file comment). Immutable after make(); copyable.
class syn_cookies {
 public:
  /// Pairwise Hamming distance >= 13 (a test pins it): the masks of the eight MSS indexes.
  static constexpr std::array<std::uint32_t, 8> index_words = {0x56f25271, 0xca6b50e4, 0xcfc41a9a, 0xd53df080,
                                                               0xd2ef67a9, 0xa840a525, 0x8b7c227b, 0x78262ae2};
  /// Bits of the SYN-ACK's TSval that carry options.
  static constexpr std::uint32_t ts_option_bits = 5;
  static constexpr std::uint32_t ts_option_mask = (1u << ts_option_bits) - 1;
  static constexpr std::uint8_t ts_no_wscale = 0xf;
  static constexpr std::uint32_t ts_sack_bit = 0x10;

  /// Checks `cfg` and keys the cookies with `secret` (draw it at random per process, or share it
  /// between the lcores and processes that must accept each other's cookies). Configuration time.
  /// Errors (errc::invalid_argument): period 0, max_age > 8, wscale > 14, an MSS table not ascending
  /// or with an entry below 64, an advertised MSS below 64.
  [[nodiscard]] static result<syn_cookies> make(const syn_cookie_config& cfg, const hash_secret& secret) {
    if (cfg.period_s == 0) return error(errc::invalid_argument, "syn cookies: period_s is 0; use seconds per counter step, e.g. 64");
    if (cfg.max_age > 8)
      return error(errc::invalid_argument, "syn cookies: max_age " + std::to_string(cfg.max_age) +
                                               " exceeds 8; a cookie would live too long (use 2, as Linux does)");
    if (cfg.wscale > tcp_opt::max_wscale)
      return error(errc::invalid_argument, "syn cookies: wscale " + std::to_string(cfg.wscale) + " exceeds 14 (RFC 7323)");
    for (const auto* t : {&cfg.mss_v4, &cfg.mss_v6})
      for (std::size_t i = 0; i < t->size(); ++i)
        if ((*t)[i] < 64 || (i > 0 && (*t)[i] < (*t)[i - 1]))
          return error(errc::invalid_argument,
                       "syn cookies: MSS tables must ascend with entries of at least 64; entry " + std::to_string(i) +
                           " is " + std::to_string((*t)[i]));
    if (cfg.advertised_mss_v4 < 64 || cfg.advertised_mss_v6 < 64)
      return error(errc::invalid_argument, "syn cookies: the advertised MSS must be at least 64");
    return syn_cookies(cfg, secret);
  }

  [[nodiscard]] const syn_cookie_config& config() const noexcept { return cfg_; }

  /// The time counter for `now_s` (seconds of a monotonic clock). O(1).
  [[nodiscard]] std::uint32_t counter(std::uint64_t now_s) const noexcept {
    return static_cast<std::uint32_t>(now_s / cfg_.period_s);
  }

  /// The table index for a client MSS (absent: RFC 9293's default 536 / RFC 8200's 1220). O(8).
  [[nodiscard]] std::uint8_t mss_index(ip_family f, std::optional<std::uint16_t> client_mss) const noexcept {
    const auto& t = f == ip_family::v4 ? cfg_.mss_v4 : cfg_.mss_v6;
    const std::uint16_t m = client_mss.value_or(f == ip_family::v4 ? 536 : 1220);
    std::uint8_t i = 7;
    while (i > 0 && t[i] > m) --i;
    return i;
  }
  [[nodiscard]] std::uint16_t mss_of(ip_family f, std::uint8_t index) const noexcept {
    return (f == ip_family::v4 ? cfg_.mss_v4 : cfg_.mss_v6)[index & 7];
  }

  /// The cookie for a SYN of `syn` (client -> VIP, ports raw) with ISN `client_isn` (host order),
  /// MSS index `index` (0..7), at counter `c`. One SipHash-2-4. noexcept.
  [[nodiscard]] std::uint32_t cookie(const inet_tuple& syn, std::uint32_t client_isn, std::uint8_t index,
                                     std::uint32_t c) const noexcept {
    return mac(syn, client_isn, c) ^ index_words[index & 7];
  }

  /// Answers a parsed SYN with the cookie SYN-ACK (see the file comment) written into `out` (which
  /// may be the SYN's own buffer). `now_s`: seconds of a monotonic clock (the counter); `ts_now`: the
  /// balancer's timestamp clock (host order, e.g. milliseconds). Refusals: not_syn, bad_options,
  /// no_room (nothing written then). Requires: info from a successful parse of `syn`.
  /// O(1): one SipHash, ~80 bytes written; noexcept.
  [[nodiscard]] syn_cookie_synack make_synack(std::span<std::uint8_t> out, std::span<const std::uint8_t> syn,
                                              const packet_info& info, const l2_spec& l2, std::uint64_t now_s,
                                              std::uint32_t ts_now) const noexcept {
    syn_cookie_synack r;
    if (!info.is_tcp_syn() || info.payload_off > syn.size()) {
      r.why = syn_cookie_refusal::not_syn;
      return r;
    }
    const std::uint8_t* tcp_in = syn.data() + info.l4_off;
    tcp_syn_options so;
    if (read_syn_options({tcp_in, std::size_t{info.payload_off} - info.l4_off}, so) != tcp_option_error::none) {
      r.why = syn_cookie_refusal::bad_options;
      return r;
    }
    const bool v4 = info.family == ip_family::v4;
    // Options: MSS (4) + [SACK-perm, TS (12) | NOP NOP TS (12)] + [NOP WS (4)].
    const bool ts = so.timestamps;
    const bool ws = ts && so.wscale.has_value();
    const std::size_t opt_len = 4 + (ts ? 12 : 0) + (ws ? 4 : 0);
    const std::size_t tcp_len = tcp_hdr_len + opt_len;
    const std::size_t ip_hl = v4 ? ipv4_hdr_len : ipv6_hdr_len;
    const std::size_t raw_len = l2.len() + ip_hl + tcp_len;
    const std::size_t len = raw_len < ether_min_frame_len ? ether_min_frame_len : raw_len;
    if (out.size() < len) {
      r.why = syn_cookie_refusal::no_room;
      return r;
    }
    // Everything read from the SYN before the first write (out may alias syn).
    const inet_tuple t = info.tuple;
    const std::uint32_t isn = load_be32(tcp_in + 4);
    const std::uint8_t idx = mss_index(info.family, so.mss);
    r.cookie = cookie(t, isn, idx, counter(now_s));
    if (ts) {
      const std::uint32_t opts = (ws ? std::min<std::uint32_t>(*so.wscale, tcp_opt::max_wscale) : ts_no_wscale) |
                                 (so.sack_permitted ? ts_sack_bit : 0u);
      std::uint32_t v = (ts_now & ~ts_option_mask) | opts;
      if (seq_before_(ts_now, v)) v -= (1u << ts_option_bits);
      r.tsval = v;
    }

    std::uint8_t* p = out.data();
    std::memset(p, 0, len);
    std::uint8_t* ip = p + detail::write_l2(p, l2, v4 ? ethertype::ipv4 : ethertype::ipv6);
    std::uint8_t* tcp = ip + ip_hl;
    std::uint16_t pseudo;
    if (v4) {
      ip[0] = 0x45;
      store_be16(ip + 2, static_cast<std::uint16_t>(ip_hl + tcp_len));
      store_be16(ip + 6, ipv4_frag::dont_fragment);
      ip[8] = cfg_.ttl;
      ip[9] = ipproto::tcp;
      const ipv4_addr s = t.daddr.v4(), d = t.saddr.v4();
      store(ip + 12, s.be);
      store(ip + 16, d.be);
      store(ip + 10, internet_checksum({ip, ipv4_hdr_len}));
      pseudo = pseudo_header_sum(s, d, ipproto::tcp, static_cast<std::uint16_t>(tcp_len));
    } else {
      store(ip, hton32(0x60000000u));
      store_be16(ip + 4, static_cast<std::uint16_t>(tcp_len));
      ip[6] = ipproto::tcp;
      ip[7] = cfg_.ttl;
      const ipv6_addr s = t.daddr.v6(), d = t.saddr.v6();
      std::memcpy(ip + 8, s.bytes.data(), 16);
      std::memcpy(ip + 24, d.bytes.data(), 16);
      pseudo = pseudo_header_sum(s, d, ipproto::tcp, static_cast<std::uint32_t>(tcp_len));
    }
    store(tcp, t.dport);
    store(tcp + 2, t.sport);
    store(tcp + 4, hton32(r.cookie));
    store(tcp + 8, hton32(isn + 1));
    tcp[12] = static_cast<std::uint8_t>((tcp_len / 4) << 4);
    tcp[13] = tcp_flags::syn | tcp_flags::ack;
    store_be16(tcp + 14, cfg_.window);
    std::uint8_t* o = tcp + tcp_hdr_len;
    o[0] = tcp_opt::mss;
    o[1] = tcp_opt::mss_len;
    store_be16(o + 2, v4 ? cfg_.advertised_mss_v4 : cfg_.advertised_mss_v6);
    o += 4;
    if (ts) {
      if (so.sack_permitted) {
        o[0] = tcp_opt::sack_permitted;
        o[1] = tcp_opt::sack_permitted_len;
      } else {
        o[0] = o[1] = tcp_opt::nop;
      }
      o[2] = tcp_opt::timestamp;
      o[3] = tcp_opt::timestamp_len;
      store(o + 4, hton32(r.tsval));
      store(o + 8, hton32(so.tsval));
      o += 12;
    }
    if (ws) {
      o[0] = tcp_opt::nop;
      o[1] = tcp_opt::wscale;
      o[2] = tcp_opt::wscale_len;
      o[3] = cfg_.wscale;
    }
    store(tcp + 16, internet_checksum({tcp, tcp_len}, pseudo));
    r.len = len;
    return r;
  }

  /// Checks the ACK that completes a cookie handshake (a parsed segment client -> VIP) at `now_s`.
  /// Returns the decoded MSS, window scale, SACK-permitted and timestamps, or the refusal: not_ack,
  /// bad_options, bad_cookie. Requires: info from a successful parse of `head`. O(max_age + 1)
  /// SipHashes at most; noexcept.
  [[nodiscard]] syn_cookie_ack check_ack(std::span<const std::uint8_t> head, const packet_info& info,
                                         std::uint64_t now_s) const noexcept {
    syn_cookie_ack r;
    constexpr std::uint8_t mask = tcp_flags::ack | tcp_flags::syn | tcp_flags::rst;
    if (!info.is_ip() || info.proto != ipproto::tcp || (info.tcp_flags & mask) != tcp_flags::ack ||
        info.payload_off > head.size()) {
      r.why = syn_cookie_refusal::not_ack;
      return r;
    }
    const std::uint8_t* tcp = head.data() + info.l4_off;
    tcp_syn_options so;  // the walker reads timestamps from any segment
    if (read_syn_options({tcp, std::size_t{info.payload_off} - info.l4_off}, so) != tcp_option_error::none) {
      r.why = syn_cookie_refusal::bad_options;
      return r;
    }
    r.client_isn = load_be32(tcp + 4) - 1;
    r.cookie = load_be32(tcp + 8) - 1;
    const std::uint32_t now_c = counter(now_s);
    for (std::uint32_t age = 0; age <= cfg_.max_age; ++age) {
      const std::uint32_t x = r.cookie ^ mac(info.tuple, r.client_isn, now_c - age);
      for (std::uint8_t i = 0; i < index_words.size(); ++i) {
        if (x != index_words[i]) continue;
        r.why = syn_cookie_refusal::none;
        r.mss = mss_of(info.family, i);
        if (so.timestamps && so.tsecr != 0) {
          r.timestamps = true;
          r.tsval = so.tsval;
          r.tsecr = so.tsecr;
          const std::uint8_t w = static_cast<std::uint8_t>(so.tsecr & 0xf);
          if (w != ts_no_wscale) r.wscale = w > tcp_opt::max_wscale ? tcp_opt::max_wscale : w;
          r.sack_permitted = (so.tsecr & ts_sack_bit) != 0;
        }
        return r;
      }
    }
    r.why = syn_cookie_refusal::bad_cookie;
    return r;
  }

 private:
  syn_cookies(const syn_cookie_config& cfg, const hash_secret& s) noexcept : cfg_(cfg), k0_(s.k0), k1_(s.k1) {}

  [[nodiscard]] static constexpr bool seq_before_(std::uint32_t a, std::uint32_t b) noexcept {
    return static_cast<std::int32_t>(a - b) < 0;
  }

  /// hi32(SipHash-2-4_K(tuple, isn, counter)): the IPv4 form hashes 20 bytes, the IPv6 form 44.
  /// Each form passes a constant length, so the SipHash loop unrolls.
  [[nodiscard]] std::uint32_t mac(const inet_tuple& t, std::uint32_t isn, std::uint32_t c) const noexcept {
    const std::uint32_t ports = std::uint32_t{t.sport} << 16 | t.dport;
    if (t.saddr.is_v4()) {
      const std::uint32_t w[5] = {t.saddr.v4().be, t.daddr.v4().be, ports, isn, c};
      return static_cast<std::uint32_t>(siphash<2, 4>(k0_, k1_, w, sizeof w) >> 32);
    }
    std::uint32_t w[11];
    std::memcpy(w, t.saddr.raw().data(), 16);
    std::memcpy(w + 4, t.daddr.raw().data(), 16);
    w[8] = ports;
    w[9] = isn;
    w[10] = c;
    return static_cast<std::uint32_t>(siphash<2, 4>(k0_, k1_, w, sizeof w) >> 32);
  }

  syn_cookie_config cfg_;
  std::uint64_t k0_, k1_;
};

}  // namespace fnat
