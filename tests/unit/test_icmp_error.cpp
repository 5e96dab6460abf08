// SPDX-License-Identifier: BSD-3-Clause
// ICMP error translation (core/icmp_error.hpp) against errors crafted by scapy: the translated frame
// must equal, byte for byte, the error scapy builds for the receiver (all checksums computed in full by
// scapy), in both directions, IPv4 and IPv6, with the quoted L4 checksum inside and outside the quote.
#include <fnat/core/icmp_error.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

using fnat::direction;
using fnat::icmp_error_info;
using fnat::icmp_error_status;
using fnat::inet_tuple;
using fnat::packet_info;
using bytes = std::vector<std::uint8_t>;

namespace {

#include "icmp_error_vectors.inc"

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }
inet_tuple T(std::uint8_t proto, const char* s, std::uint16_t sp, const char* d, std::uint16_t dp) {
  return fnat::make_tuple(proto, A(s), sp, A(d), dp);
}

// One conn of the balancer, as its two tuples (inbound client -> VIP, outbound RS -> LIP).
struct conn {
  inet_tuple in, out;
  // What the conn table would answer for `key`.
  [[nodiscard]] bool find(const inet_tuple& key, direction& dir) const {
    if (key == in) dir = direction::inbound;
    else if (key == out) dir = direction::outbound;
    else return false;
    return true;
  }
};

conn udp4() {
  return {T(17, "198.18.0.1", 40000, "198.18.1.1", 53), T(17, "198.18.3.10", 5353, "198.18.2.100", 1025)};
}
conn tcp4() {
  return {T(6, "198.18.0.1", 40000, "198.18.1.1", 80), T(6, "198.18.3.10", 8080, "198.18.2.100", 1025)};
}
conn udp6() {
  return {T(17, "2001:2::1", 40000, "2001:2:0:1::1", 53), T(17, "2001:2:0:3::a", 5353, "2001:2:0:2::64", 1025)};
}
conn tcp6() {
  return {T(6, "2001:2::1", 40000, "2001:2:0:1::1", 80), T(6, "2001:2:0:3::a", 8080, "2001:2:0:2::64", 1025)};
}

// Parses `in`, finds the conn by the quote, translates; returns the frame.
bytes translate(const bytes& in, const conn& c, direction want_dir) {
  bytes f = in;
  packet_info info;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(f), info) == fnat::drop_reason::none);
  REQUIRE(fnat::is_icmp_error(info.proto, info.icmp_type));
  icmp_error_info err;
  REQUIRE(fnat::parse_icmp_error(f, info, err) == icmp_error_status::ok);
  direction dir{};
  REQUIRE(c.find(err.conn_key(), dir));
  CHECK(dir == want_dir);
  const auto r = fnat::translate_icmp_error(f, info, err, fnat::translated_quote(dir, c.in, c.out));
  REQUIRE(r.ok());
  // The packet_info describes the translated frame.
  packet_info again;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(f), again, {.verify_ip_checksum = true, .verify_l4_checksum = true}) ==
          fnat::drop_reason::none);
  CHECK(again.tuple == info.tuple);
  CHECK(again.ttl == info.ttl);
  return f;
}

}  // namespace

TEST_CASE("icmp_error: IPv4 port unreachable from the RS reaches the client as VIP's, exact bytes", "[icmp_error]") {
  const conn c = udp4();
  packet_info info;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(udp4_unreach_in), info) == fnat::drop_reason::none);
  icmp_error_info err;
  REQUIRE(fnat::parse_icmp_error(udp4_unreach_in, info, err) == icmp_error_status::ok);
  CHECK(err.quoted == c.out.reversed());
  CHECK(err.conn_key() == c.out);
  CHECK(err.type == 3);
  CHECK(err.code == 3);
  CHECK_FALSE(err.is_too_big(info.proto));
  CHECK(translate(udp4_unreach_in, c, direction::outbound) == udp4_unreach_out);
}

TEST_CASE("icmp_error: IPv4 fragmentation needed quoting 8 bytes of TCP (checksum outside the quote)", "[icmp_error]") {
  packet_info info;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(tcp4_fragneeded_in), info) == fnat::drop_reason::none);
  icmp_error_info err;
  REQUIRE(fnat::parse_icmp_error(tcp4_fragneeded_in, info, err) == icmp_error_status::ok);
  CHECK(err.is_too_big(info.proto));
  CHECK(err.inner_l4_bytes() == 8);
  CHECK(translate(tcp4_fragneeded_in, tcp4(), direction::outbound) == tcp4_fragneeded_out);
}

TEST_CASE("icmp_error: IPv4 error from the client goes to the RS as the LIP's", "[icmp_error]") {
  CHECK(translate(udp4_client_unreach_in, udp4(), direction::inbound) == udp4_client_unreach_out);
}

TEST_CASE("icmp_error: IPv6 port unreachable, packet too big, time exceeded, exact bytes", "[icmp_error]") {
  CHECK(translate(udp6_unreach_in, udp6(), direction::outbound) == udp6_unreach_out);
  CHECK(translate(tcp6_toobig_in, tcp6(), direction::outbound) == tcp6_toobig_out);
  CHECK(translate(udp6_client_timex_in, udp6(), direction::inbound) == udp6_client_timex_out);
  packet_info info;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(tcp6_toobig_in), info) == fnat::drop_reason::none);
  icmp_error_info err;
  REQUIRE(fnat::parse_icmp_error(tcp6_toobig_in, info, err) == icmp_error_status::ok);
  CHECK(err.is_too_big(info.proto));
  CHECK(err.inner_l4_bytes() == 20);
}

TEST_CASE("icmp_error: every unusable error is a reason, and nothing is written", "[icmp_error][drop]") {
  auto status_of = [](bytes f) {
    packet_info info;
    if (fnat::parse(std::span<const std::uint8_t>(f), info) != fnat::drop_reason::none) return icmp_error_status::not_an_error;
    icmp_error_info err;
    return fnat::parse_icmp_error(f, info, err);
  };
  // Fixes the ICMP checksum of a mutated IPv4 error (so that the mutation, not the checksum, is seen).
  auto fix4 = [](bytes f) {
    const std::size_t icmp = 14 + 20;
    f[icmp + 2] = f[icmp + 3] = 0;
    const std::uint16_t c = fnat::internet_checksum({f.data() + icmp, f.size() - icmp});
    std::memcpy(&f[icmp + 2], &c, 2);
    return f;
  };
  const std::size_t icmp = 14 + 20, inner = icmp + 8;
  CHECK(status_of(udp4_unreach_in) == icmp_error_status::ok);
  bytes f = udp4_unreach_in;
  f[inner + 30] ^= 1;  // a payload byte: the ICMP checksum no longer verifies
  CHECK(status_of(f) == icmp_error_status::bad_checksum);
  f = udp4_unreach_in;
  f[icmp] = 8;  // echo request: not an error
  CHECK(status_of(fix4(f)) == icmp_error_status::not_an_error);
  f = udp4_unreach_in;
  f[inner] = 0x46;  // quoted IPv4 header with options
  CHECK(status_of(fix4(f)) == icmp_error_status::bad_inner);
  f = udp4_unreach_in;
  f[inner] = 0x65;  // quoted version 6 in an ICMPv4 error
  CHECK(status_of(fix4(f)) == icmp_error_status::bad_inner);
  f = udp4_unreach_in;
  f[inner + 7] = 0x10;  // a non-first fragment: no ports in it
  CHECK(status_of(fix4(f)) == icmp_error_status::bad_inner);
  f = udp4_unreach_in;
  f[inner + 9] = 1;  // quoted ICMP
  CHECK(status_of(fix4(f)) == icmp_error_status::unsupported_inner);
  f = udp4_unreach_in;
  f[inner + 15] ^= 1;  // the quoted source is not the error's destination (and the quoted IP sum is off)
  CHECK(status_of(fix4(f)) == icmp_error_status::not_to_sender);
  // Quote cut to 20 + 7 bytes: not the 8 bytes of L4 RFC 792 promises.
  f = bytes(udp4_unreach_in.begin(), udp4_unreach_in.begin() + static_cast<long>(inner + 27));
  const std::uint16_t total = static_cast<std::uint16_t>(f.size() - 14);
  f[16] = static_cast<std::uint8_t>(total >> 8);
  f[17] = static_cast<std::uint8_t>(total);
  CHECK(status_of(fix4(f)) == icmp_error_status::truncated);
  // The whole message must be in the head.
  packet_info info;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(udp4_unreach_in), info) == fnat::drop_reason::none);
  icmp_error_info err;
  CHECK(fnat::parse_icmp_error(std::span<const std::uint8_t>(udp4_unreach_in.data(), 60), info, err) ==
        icmp_error_status::header_split);
}

TEST_CASE("icmp_error: TTL 1 is not forwarded, and the frame is untouched", "[icmp_error]") {
  bytes f = udp6_unreach_in;
  f[14 + 7] = 1;
  packet_info info;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(f), info) == fnat::drop_reason::none);
  icmp_error_info err;
  REQUIRE(fnat::parse_icmp_error(f, info, err) == icmp_error_status::ok);
  const bytes before = f;
  const conn c = udp6();
  CHECK(fnat::translate_icmp_error(f, info, err, c.in).reason == fnat::drop_reason::ttl_expired);
  CHECK(f == before);
}

TEST_CASE("icmp_error: error types", "[icmp_error]") {
  CHECK(fnat::is_icmp_error(1, 3));
  CHECK(fnat::is_icmp_error(1, 11));
  CHECK(fnat::is_icmp_error(1, 12));
  CHECK_FALSE(fnat::is_icmp_error(1, 0));
  CHECK_FALSE(fnat::is_icmp_error(1, 8));
  CHECK_FALSE(fnat::is_icmp_error(1, 5));  // redirect: not about a conn
  for (std::uint8_t t = 1; t <= 4; ++t) CHECK(fnat::is_icmp_error(58, t));
  CHECK_FALSE(fnat::is_icmp_error(58, 128));
  CHECK_FALSE(fnat::is_icmp_error(58, 135));
  CHECK_FALSE(fnat::is_icmp_error(17, 3));
}

TEST_CASE("icmp_error: build_too_big answers a DF packet / an IPv6 packet, exact bytes", "[icmp_error][too_big]") {
  const fnat::l2_spec l2{.dst = *fnat::mac_addr::parse("02:00:00:00:00:02"), .src = *fnat::mac_addr::parse("02:00:00:00:00:01")};
  bytes out(1600);
  std::size_t n = fnat::build_too_big(out, l2, A("198.18.1.1"), too_big4_packet, 1280);
  REQUIRE(n == too_big4_out.size());
  out.resize(n);
  CHECK(out == too_big4_out);
  out.assign(1600, 0);
  n = fnat::build_too_big(out, l2, A("2001:2:0:1::1"), too_big6_packet, 1280);
  REQUIRE(n == too_big6_out.size());
  out.resize(n);
  CHECK(out == too_big6_out);
  // The answer is itself a translatable error: parse_icmp_error reads back the quoted tuple.
  packet_info info;
  REQUIRE(fnat::parse(std::span<const std::uint8_t>(out), info) == fnat::drop_reason::none);
  icmp_error_info err;
  REQUIRE(fnat::parse_icmp_error(out, info, err) == icmp_error_status::ok);
  CHECK(err.is_too_big(info.proto));
  CHECK(err.quoted == T(6, "2001:2::1", 40000, "2001:2:0:1::1", 80));
  // Too small a buffer, a packet without 8 bytes beyond its header, the wrong family: 0.
  bytes small(100);
  CHECK(fnat::build_too_big(small, l2, A("198.18.1.1"), too_big4_packet, 1280) == 0);
  CHECK(fnat::build_too_big(out, l2, A("198.18.1.1"), std::span<const std::uint8_t>(too_big4_packet.data(), 27), 1280) == 0);
  CHECK(fnat::build_too_big(out, l2, A("198.18.1.1"), too_big6_packet, 1280) == 0);
}
