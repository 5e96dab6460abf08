// SPDX-License-Identifier: BSD-3-Clause
// Keyed SYN cookies (core/syn_cookie.hpp): the SYN-ACK to a SYN byte for byte (cookie computed by an
// independent SipHash in Python, frame by scapy: tests/unit/vectors/syn_cookie_vectors.py), the
// round trip of every MSS table entry with window scale and SACK through the timestamp, refusals
// (wrong key, expired counter, every single-bit tamper, another tuple), and the avalanche: one input
// bit flips about half of the cookie's bits.
#include <fnat/core/packet.hpp>
#include <fnat/core/syn_cookie.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <random>
#include <vector>

#include "support/packet_frames.hpp"

namespace {

using namespace fnat;
using fnat::test::build_frame;
using fnat::test::frame_spec;
using bytes = std::vector<std::uint8_t>;

const mac_addr lb_mac{{0x02, 0, 0, 0, 0, 0x01}};
const mac_addr gw_mac{{0x02, 0xaa, 0, 0, 0, 0xfe}};
const hash_secret key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }

syn_cookies make_cookies(const hash_secret& k = key, syn_cookie_config cfg = {}) {
  auto c = syn_cookies::make(cfg, k);
  REQUIRE(c);
  return *c;
}

bytes opts_of(std::optional<std::uint16_t> mss, bool sack, std::optional<std::uint32_t> tsval,
              std::optional<std::uint8_t> ws) {
  bytes o;
  if (mss) o.insert(o.end(), {0x02, 0x04, static_cast<std::uint8_t>(*mss >> 8), static_cast<std::uint8_t>(*mss)});
  if (sack) o.insert(o.end(), {0x04, 0x02});
  if (tsval)
    o.insert(o.end(), {0x08, 0x0a, static_cast<std::uint8_t>(*tsval >> 24), static_cast<std::uint8_t>(*tsval >> 16),
                       static_cast<std::uint8_t>(*tsval >> 8), static_cast<std::uint8_t>(*tsval), 0, 0, 0, 0});
  if (ws) o.insert(o.end(), {0x01, 0x03, 0x03, *ws});
  while (o.size() % 4) o.push_back(0x01);
  return o;
}

frame_spec syn_spec(bool v6 = false) {
  frame_spec s;
  s.dst = lb_mac;
  s.src = gw_mac;
  s.saddr = A(v6 ? "2001:2::10" : "198.18.0.10");
  s.daddr = A(v6 ? "2001:2:0:1::64" : "198.18.1.100");
  s.sport = 40000;
  s.dport = 80;
  s.tcp_flags = tcp_flags::syn;
  s.seq = 0x01020304;
  return s;
}

struct handshake {
  bytes synack;
  syn_cookie_synack sa;
  packet_info syn_info;
};

handshake answer(const syn_cookies& c, const frame_spec& s, std::uint64_t now_s = 6400, std::uint32_t ts_now = 0x00abcdef) {
  handshake h;
  const auto f = build_frame(s);
  REQUIRE(parse(f, h.syn_info) == drop_reason::none);
  h.synack.assign(128, 0xee);
  h.sa = c.make_synack(h.synack, f, h.syn_info, reply_l2(f, h.syn_info, lb_mac), now_s, ts_now);
  REQUIRE(h.sa);
  h.synack.resize(h.sa.len);
  return h;
}

// The client's ACK to a SYN-ACK: seq ISN + 1, ack cookie + 1, TS echoing the SYN-ACK's TSval.
bytes ack_for(const frame_spec& syn, const handshake& h, bool with_ts) {
  frame_spec a = syn;
  a.tcp_flags = tcp_flags::ack;
  a.seq = syn.seq + 1;
  a.ack = h.sa.cookie + 1;
  a.tcp_options.clear();
  if (with_ts) {
    a.tcp_options = {0x01, 0x01, 0x08, 0x0a, 0x11, 0x22, 0x33, 0x45};
    for (int i = 3; i >= 0; --i) a.tcp_options.push_back(static_cast<std::uint8_t>(h.sa.tsval >> (8 * i)));
  }
  return build_frame(a);
}

syn_cookie_ack check(const syn_cookies& c, const bytes& ack, std::uint64_t now_s = 6400) {
  packet_info info;
  REQUIRE(parse(ack, info) == drop_reason::none);
  return c.check_ack(ack, info, now_s);
}

}  // namespace

TEST_CASE("SYN-ACK to a Linux SYN: exact bytes (Python SipHash + scapy)", "[syn_cookie]") {
  const auto c = make_cookies();
  frame_spec s = syn_spec();
  s.tcp_options = {0x02, 0x04, 0x05, 0x78, 0x04, 0x02, 0x08, 0x0a, 0x11, 0x22,
                   0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07};  // MSS 1400, SACK, TS, wscale 7
  const auto h = answer(c, s);
  // cookie 0xbdccfabf tsval 0x00abcdd7 (vectors/syn_cookie_vectors.py)
  const bytes want = {
      0x02, 0xaa, 0x00, 0x00, 0x00, 0xfe, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x3c, 0x00, 0x00,
      0x40, 0x00, 0x40, 0x06, 0xad, 0x29, 0xc6, 0x12, 0x01, 0x64, 0xc6, 0x12, 0x00, 0x0a, 0x00, 0x50, 0x9c, 0x40, 0xbd, 0xcc,
      0xfa, 0xbf, 0x01, 0x02, 0x03, 0x05, 0xa0, 0x12, 0xff, 0xff, 0x4e, 0x50, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
      0x08, 0x0a, 0x00, 0xab, 0xcd, 0xd7, 0x11, 0x22, 0x33, 0x44, 0x01, 0x03, 0x03, 0x07};
  CHECK(h.synack == want);
  CHECK(h.sa.cookie == 0xbdccfabfu);
  CHECK(h.sa.tsval == 0x00abcdd7u);
}

TEST_CASE("SYN-ACK to an IPv6 SYN without options: MSS only (exact bytes)", "[syn_cookie]") {
  const auto c = make_cookies();
  frame_spec s = syn_spec(true);
  s.sport = 51000;
  s.dport = 443;
  s.seq = 0xfffffffe;  // ack wraps to 0xffffffff
  const auto h = answer(c, s);
  const bytes want = {
      0x02, 0xaa, 0x00, 0x00, 0x00, 0xfe, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x18,
      0x06, 0x40, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x20, 0x01,
      0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0xbb, 0xc7, 0x38, 0x8b, 0x0d,
      0xec, 0x29, 0xff, 0xff, 0xff, 0xff, 0x60, 0x12, 0xff, 0xff, 0x17, 0x85, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0};
  CHECK(h.synack == want);
  // The SYN-ACK can be built into the SYN's own buffer.
  auto f = build_frame(s);
  f.resize(128);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  const auto sa = c.make_synack(f, f, info, reply_l2(f, info, lb_mac), 6400, 0);
  REQUIRE(sa);
  f.resize(sa.len);
  CHECK(f == want);
}

TEST_CASE("round trip of every MSS table entry, both families, with and without timestamps", "[syn_cookie]") {
  const auto c = make_cookies();
  for (const bool v6 : {false, true}) {
    const auto& table = v6 ? c.config().mss_v6 : c.config().mss_v4;
    for (std::size_t i = 0; i < table.size(); ++i) {
      for (const int extra : {0, 1, 7}) {  // exactly the entry, or a little above (rounds down)
        for (const bool ts : {false, true}) {
          const auto mss = static_cast<std::uint16_t>(table[i] + extra);
          frame_spec s = syn_spec(v6);
          s.seq = 0x9000 + static_cast<std::uint32_t>(i);
          const std::uint8_t ws = static_cast<std::uint8_t>(i + 3);  // 3..10
          s.tcp_options = opts_of(mss, i % 2 == 0, ts ? std::optional<std::uint32_t>(77) : std::nullopt, ws);
          INFO("v6 " << v6 << " entry " << i << " mss " << mss << " ts " << ts);
          const auto h = answer(c, s);
          const auto r = check(c, ack_for(s, h, ts));
          REQUIRE(r);
          // When the next entry equals mss (extra pushes into it), it is chosen instead.
          const std::size_t want = (i + 1 < table.size() && table[i + 1] <= mss) ? i + 1 : i;
          CHECK(r.mss == table[want]);
          CHECK(r.client_isn == s.seq);
          CHECK(r.cookie == h.sa.cookie);
          CHECK(r.timestamps == ts);
          if (ts) {
            CHECK(r.wscale == ws);
            CHECK(r.sack_permitted == (i % 2 == 0));
            CHECK(r.tsval == 0x11223345u);
            CHECK(r.tsecr == h.sa.tsval);
            CHECK(h.sa.tsval <= 0x00abcdefu);  // never ahead of the clock
            CHECK(0x00abcdefu - h.sa.tsval < 64u);
          } else {
            CHECK_FALSE(r.wscale);
            CHECK_FALSE(r.sack_permitted);
          }
        }
      }
    }
  }
  // No MSS: RFC 9293's 536 for IPv4 (entry 0); a tiny MSS still gets entry 0.
  CHECK(c.mss_index(ip_family::v4, std::nullopt) == 0);
  CHECK(c.mss_index(ip_family::v4, std::uint16_t{100}) == 0);
  CHECK(c.mss_index(ip_family::v4, std::uint16_t{9000}) == 7);
  CHECK(c.mss_index(ip_family::v6, std::nullopt) == 0);
}

TEST_CASE("refused: wrong key, expired counter, every single-bit tamper, another tuple", "[syn_cookie]") {
  const auto c = make_cookies();
  frame_spec s = syn_spec();
  s.tcp_options = opts_of(1460, true, 1000, 7);
  const auto h = answer(c, s, 6400);
  const bytes ack = ack_for(s, h, true);
  REQUIRE(check(c, ack, 6400));
  // Validity: counters 100 (now), 99, 98 accepted; 101 is the future relative to the cookie's 100
  // only when now went back, which a monotonic clock does not.
  CHECK(check(c, ack, 6400 + 64 * 2 + 63));       // counter 102: age 2
  CHECK(check(c, ack, 6400 + 64 * 3).why == syn_cookie_refusal::bad_cookie);  // age 3: expired
  CHECK(check(c, ack, 6400 - 64).why == syn_cookie_refusal::bad_cookie);      // before it was made
  // Another secret.
  CHECK(check(make_cookies({key.k0 ^ 1, key.k1}), ack).why == syn_cookie_refusal::bad_cookie);
  // Every single bit of the ack number and of the seq (the client ISN the MAC covers).
  packet_info info;
  REQUIRE(parse(ack, info) == drop_reason::none);
  for (const std::size_t field : {std::size_t{8}, std::size_t{4}}) {
    for (int bit = 0; bit < 32; ++bit) {
      bytes t = ack;
      t[info.l4_off + field + static_cast<std::size_t>(bit / 8)] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      INFO("field " << field << " bit " << bit);
      CHECK(c.check_ack(t, info, 6400).why == syn_cookie_refusal::bad_cookie);
    }
  }
  // Another client port or address.
  frame_spec other = s;
  other.sport = 40001;
  CHECK(check(c, ack_for(other, h, true)).why == syn_cookie_refusal::bad_cookie);
  other = s;
  other.saddr = A("198.18.0.11");
  CHECK(check(c, ack_for(other, h, true)).why == syn_cookie_refusal::bad_cookie);
  // Not an ACK: a SYN, a RST, or no ACK flag.
  frame_spec bad = s;
  bad.tcp_flags = tcp_flags::ack | tcp_flags::rst;
  CHECK(check(c, build_frame(bad)).why == syn_cookie_refusal::not_ack);
  bad.tcp_flags = tcp_flags::syn;
  CHECK(check(c, build_frame(bad)).why == syn_cookie_refusal::not_ack);
}

TEST_CASE("the index masks keep 13 bits apart: fewer flipped bits never turn one into another", "[syn_cookie]") {
  const auto& t = syn_cookies::index_words;
  for (std::size_t i = 0; i < t.size(); ++i)
    for (std::size_t j = i + 1; j < t.size(); ++j) CHECK(std::popcount(t[i] ^ t[j]) >= 13);
}

TEST_CASE("avalanche: one input bit changes about half of the cookie's 32 bits", "[syn_cookie]") {
  const auto c = make_cookies();
  std::mt19937_64 rng(2026);
  double total = 0;
  int n = 0;
  std::vector<int> hist(33, 0);
  for (int trial = 0; trial < 4000; ++trial) {
    inet_tuple t = make_tuple(ipproto::tcp, fnat::inet_addr(ipv4_addr{static_cast<std::uint32_t>(rng())}),
                              static_cast<std::uint16_t>(rng()), fnat::inet_addr(ipv4_addr{static_cast<std::uint32_t>(rng())}),
                              static_cast<std::uint16_t>(rng()));
    const auto isn = static_cast<std::uint32_t>(rng());
    const auto ctr = static_cast<std::uint32_t>(rng());
    const std::uint32_t base = c.cookie(t, isn, 3, ctr);
    const int which = static_cast<int>(rng() % 5);
    const int bit = static_cast<int>(rng() % (which >= 3 ? 32 : which == 2 ? 16 : 32));
    inet_tuple t2 = t;
    std::uint32_t isn2 = isn, ctr2 = ctr;
    switch (which) {
      case 0: t2.saddr = fnat::inet_addr(ipv4_addr{t.saddr.v4().be ^ (1u << bit)}); break;
      case 1: t2.daddr = fnat::inet_addr(ipv4_addr{t.daddr.v4().be ^ (1u << bit)}); break;
      case 2: t2.sport = static_cast<std::uint16_t>(t.sport ^ (1u << bit)); break;
      case 3: isn2 ^= 1u << bit; break;
      default: ctr2 ^= 1u << bit; break;
    }
    const int d = std::popcount(base ^ c.cookie(t2, isn2, 3, ctr2));
    ++hist[static_cast<std::size_t>(d)];
    total += d;
    ++n;
  }
  const double mean = total / n;
  INFO("mean flipped bits " << mean);
  // Binomial(32, 1/2): mean 16, sd 2.83; the mean of 4000 has sd 0.045.
  CHECK(mean > 15.7);
  CHECK(mean < 16.3);
  CHECK(hist[0] == 0);  // never unchanged
}

TEST_CASE("make_synack refusals and configuration errors", "[syn_cookie]") {
  const auto c = make_cookies();
  frame_spec s = syn_spec();
  s.tcp_flags = tcp_flags::syn | tcp_flags::fin;
  auto f = build_frame(s);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  bytes out(128);
  CHECK(c.make_synack(out, f, info, reply_l2(f, info, lb_mac), 0, 0).why == syn_cookie_refusal::not_syn);
  s = syn_spec();
  s.tcp_options = {0x02, 0x03, 0x05, 0x01};  // MSS of length 3
  f = build_frame(s);
  REQUIRE(parse(f, info) == drop_reason::none);
  CHECK(c.make_synack(out, f, info, reply_l2(f, info, lb_mac), 0, 0).why == syn_cookie_refusal::bad_options);
  s.tcp_options = opts_of(1460, true, 5, 7);
  f = build_frame(s);
  REQUIRE(parse(f, info) == drop_reason::none);
  bytes small(73, 0xee);  // the SYN-ACK needs 74
  CHECK(c.make_synack(small, f, info, reply_l2(f, info, lb_mac), 0, 0).why == syn_cookie_refusal::no_room);
  CHECK(small == bytes(73, 0xee));

  CHECK_FALSE(syn_cookies::make({.period_s = 0}, key));
  CHECK_FALSE(syn_cookies::make({.max_age = 9}, key));
  CHECK_FALSE(syn_cookies::make({.wscale = 15}, key));
  syn_cookie_config bad_table;
  bad_table.mss_v4[3] = 100;
  const auto r = syn_cookies::make(bad_table, key);
  REQUIRE_FALSE(r);
  CHECK(r.err().message().find("entry 3") != std::string::npos);
}
