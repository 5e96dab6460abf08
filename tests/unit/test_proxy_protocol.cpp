// SPDX-License-Identifier: BSD-3-Clause
// Proxy Protocol (core/proxy_protocol.hpp): v1 lines from the spec (haproxy doc/proxy-protocol.txt,
// its example and its worst-case lengths), v2 headers laid out by tests/unit/vectors/
// proxy_protocol_vectors.py (CRC32C computed there bit by bit), encoders against them, the parser's
// refusals one by one, and the prefix property: every proper prefix of a valid header is
// `truncated`, never accepted and never another error.
#include <fnat/core/proxy_protocol.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace fnat;
using bytes = std::vector<std::uint8_t>;

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }
bytes B(std::string_view s) { return bytes(s.begin(), s.end()); }

const bytes v2_tcp4 = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
                       0x00, 0x0c, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0x0b, 0xdc, 0x04, 0x01, 0xbb};
const bytes v2_udp6_crc = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x22, 0x00, 0x39, 0x20, 0x01, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x14, 0xe9, 0x00, 0x35, 0x02, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70,
    0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d, 0x03, 0x00, 0x04, 0x7d, 0x8c, 0x02, 0xe0};

// Every proper prefix is `truncated`.
void check_prefixes(const bytes& h) {
  for (std::size_t k = 0; k < h.size(); ++k) {
    const bytes p(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(k));  // exact size: ASan sees over-reads
    INFO("prefix " << k << " of " << h.size());
    REQUIRE(parse_proxy_header(p).error == proxy_error::truncated);
  }
}

}  // namespace

TEST_CASE("CRC32C of RFC 4960: the standard check value", "[proxy_protocol]") {
  CHECK(crc32c_rfc(B("123456789")) == 0xe3069283u);
  CHECK(crc32c_rfc({}) == 0u);
}

TEST_CASE("v1: the spec's example parses, with the client's data after it", "[proxy_protocol]") {
  const bytes line = B("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n");
  const auto h = parse_proxy_header(line);
  REQUIRE(h);
  CHECK(h.version == 1);
  CHECK(h.length == 47);
  CHECK(h.proto == ipproto::tcp);
  CHECK(h.has_addresses());
  CHECK(h.src == endpoint{A("192.168.0.1"), 56324});
  CHECK(h.dst == endpoint{A("192.168.0.11"), 443});
  check_prefixes(bytes(line.begin(), line.begin() + 47));
  // And the encoder writes exactly that line.
  bytes out(200);
  const std::size_t n = encode_proxy_v1(out, {A("192.168.0.1"), 56324}, {A("192.168.0.11"), 443});
  CHECK(bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)) == bytes(line.begin(), line.begin() + 47));
}

TEST_CASE("v1: the spec's maximum lengths (56, 104, 15, 107) and one byte more refused", "[proxy_protocol]") {
  const std::string f39 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  const bytes tcp4 = B("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
  const bytes tcp6 = B("PROXY TCP6 " + f39 + " " + f39 + " 65535 65535\r\n");
  const bytes unknown = B("PROXY UNKNOWN\r\n");
  const bytes worst = B("PROXY UNKNOWN " + f39 + " " + f39 + " 65535 65535\r\n");
  CHECK(tcp4.size() == 56);
  CHECK(tcp6.size() == 104);
  CHECK(unknown.size() == 15);
  CHECK(worst.size() == 107);
  for (const auto* b : {&tcp4, &tcp6, &unknown, &worst}) {
    const auto h = parse_proxy_header(*b);
    REQUIRE(h);
    CHECK(h.length == b->size());
    check_prefixes(*b);
  }
  CHECK(parse_proxy_header(unknown).local);
  CHECK_FALSE(parse_proxy_header(unknown).has_addresses());
  const auto h6 = parse_proxy_header(tcp6);
  CHECK(h6.src.addr.v6().bytes == std::array<std::uint8_t, 16>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                               0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  // 108 bytes: the CRLF is not within 107.
  const bytes longer = B("PROXY UNKNOWN " + f39 + " " + f39 + " 65535 655355\r\n");
  CHECK(parse_proxy_header(longer).error == proxy_error::v1_too_long);
  CHECK(parse_proxy_header(bytes(longer.begin(), longer.begin() + 106)).error == proxy_error::v1_too_long);
}

TEST_CASE("v1: strict grammar, each deviation refused", "[proxy_protocol]") {
  const char* bad[] = {
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",         // lone LF
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rX",        // CR not followed by LF
      "PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",      // two spaces
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",      // trailing space
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",           // a field missing
      "PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",      // leading zero in a port
      "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",       // port out of range
      "PROXY TCP4 192.168.00.1 192.168.0.11 56324 443\r\n",      // leading zero in an octet
      "PROXY TCP4 192.168.0.256 192.168.0.11 56324 443\r\n",     // octet out of range
      "PROXY TCP4 192.168.0 192.168.0.11 56324 443\r\n",         // three octets
      "PROXY TCP4 2001:2::1 192.168.0.11 56324 443\r\n",         // IPv6 under TCP4
      "PROXY TCP6 192.168.0.1 2001:2::1 56324 443\r\n",          // IPv4 under TCP6
      "PROXY TCP6 2001:2::1::2 2001:2::1 1 2\r\n",               // two "::"
      "PROXY TCP6 2001:2:0:0:0:0:0:1:2 2001:2::1 1 2\r\n",       // nine groups
      "PROXY TCP6 2001:00002::1 2001:2::1 1 2\r\n",              // five hex digits
      "PROXY TCP6 ::ffff:1.2.3.4 2001:2::1 1 2\r\n",             // dotted quad (not in the grammar)
      "PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",       // v1 is TCP only
      "PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",       // case matters
      "PROXY UNKNOWNX\r\n",
      "PROXY\r\n",
  };
  for (const char* s : bad) {
    INFO(s);
    const auto e = parse_proxy_header(B(s)).error;
    CHECK(e == proxy_error::bad_v1);
  }
  CHECK(parse_proxy_header(B("PROXX TCP4")).error == proxy_error::not_proxy);
  CHECK(parse_proxy_header(B("GET / HTTP/1.1\r\n")).error == proxy_error::not_proxy);
  CHECK(parse_proxy_header(B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2")).error == proxy_error::truncated);
  // Accepted IPv6 spellings: upper case, "::" at either end, and the address is decoded.
  const auto h = parse_proxy_header(B("PROXY TCP6 2001:2::A 1:: 0 65535\r\n"));
  REQUIRE(h);
  CHECK(h.src.addr == A("2001:2::a"));
  CHECK(h.dst.addr == A("1::"));
  CHECK(h.src.port == 0);
}

TEST_CASE("v1 encoder writes RFC 5952 IPv6 text that parses back", "[proxy_protocol]") {
  struct {
    const char* addr;
    const char* text;
  } const cases[] = {{"2001:2::10", "2001:2::10"},
                     {"2001:2:0:1::64", "2001:2:0:1::64"},
                     {"::1", "::1"},
                     {"1::", "1::"},
                     {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},        // a single zero group stays
                     {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},                // the longer run is compressed
                     {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},          // the first of equal runs
                     {"::102:304", "::102:304"}};  // IPv4-compatible: inet_ntop writes ::1.2.3.4, we never do
  for (const auto& c : cases) {
    bytes out(120);
    const auto sa = fnat::inet_addr::parse(c.addr);
    REQUIRE(sa);
    const endpoint s{*sa, 1}, d{A("2001:2::1"), 2};
    const std::size_t n = encode_proxy_v1(out, s, d);
    REQUIRE(n > 0);
    const std::string line(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK(line == std::string("PROXY TCP6 ") + c.text + " 2001:2::1 1 2\r\n");
    const auto h = parse_proxy_header(bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)));
    REQUIRE(h);
    CHECK(h.src == s);
  }
  bytes small(20);
  CHECK(encode_proxy_v1(small, {A("198.18.0.1"), 1}, {A("198.18.0.2"), 2}) == 0);
  CHECK(encode_proxy_v1(small, {A("198.18.0.1"), 1}, {A("2001:2::1"), 2}) == 0);
}

TEST_CASE("v2: known headers parse, and the encoder writes the same bytes", "[proxy_protocol]") {
  const auto h = parse_proxy_header(v2_tcp4);
  REQUIRE(h);
  CHECK(h.version == 2);
  CHECK(h.length == 28);
  CHECK(h.proto == ipproto::tcp);
  CHECK(h.src == endpoint{A("192.168.0.1"), 56324});
  CHECK(h.dst == endpoint{A("192.168.0.11"), 443});
  CHECK_FALSE(h.has_crc);
  check_prefixes(v2_tcp4);
  bytes out(100);
  CHECK(encode_proxy_v2(out, h.src, h.dst, ipproto::tcp) == 28);
  out.resize(28);
  CHECK(out == v2_tcp4);

  const auto u = parse_proxy_header(v2_udp6_crc);
  REQUIRE(u);
  CHECK(u.proto == ipproto::udp);
  CHECK(u.has_crc);
  CHECK(u.src == endpoint{A("2001:2::10"), 5353});
  CHECK(u.dst == endpoint{A("2001:2:0:1::64"), 53});
  std::vector<std::pair<std::uint8_t, std::string>> tlvs;
  for_each_tlv(v2_udp6_crc, u, [&](std::uint8_t t, std::span<const std::uint8_t> v) {
    tlvs.emplace_back(t, std::string(v.begin(), v.end()));
  });
  REQUIRE(tlvs.size() == 2);
  CHECK(tlvs[0] == std::pair<std::uint8_t, std::string>{pp2::type_authority, "example.com"});
  CHECK(tlvs[1].first == pp2::type_crc32c);
  check_prefixes(v2_udp6_crc);
  const bytes authority = B("example.com");
  const pp2_tlv t[] = {{pp2::type_authority, authority}};
  bytes out6(200);
  const std::size_t n = encode_proxy_v2(out6, u.src, u.dst, ipproto::udp, t, true);
  CHECK(n == proxy_v2_len(false, t, true));
  out6.resize(n);
  CHECK(out6 == v2_udp6_crc);

  bytes local(16);
  REQUIRE(encode_proxy_v2_local(local) == 16);
  const auto l = parse_proxy_header(local);
  REQUIRE(l);
  CHECK(l.local);
  CHECK_FALSE(l.has_addresses());
}

TEST_CASE("v2: each malformed field refused with its reason", "[proxy_protocol]") {
  auto with = [](bytes b, std::size_t at, std::uint8_t v) {
    b[at] = v;
    return b;
  };
  CHECK(parse_proxy_header(with(v2_tcp4, 12, 0x11)).error == proxy_error::bad_version);
  CHECK(parse_proxy_header(with(v2_tcp4, 12, 0x22)).error == proxy_error::bad_command);
  CHECK(parse_proxy_header(with(v2_tcp4, 13, 0x13)).error == proxy_error::bad_family);
  CHECK(parse_proxy_header(with(v2_tcp4, 13, 0x41)).error == proxy_error::bad_family);
  CHECK(parse_proxy_header(with(v2_tcp4, 13, 0x21)).error == proxy_error::bad_address_length);  // IPv6 needs 36
  CHECK(parse_proxy_header(with(v2_tcp4, 3, 0x0b)).error == proxy_error::not_proxy);
  // Length claims more than is there: truncated; more than the bound: too_long.
  CHECK(parse_proxy_header(with(v2_tcp4, 15, 0x0d)).error == proxy_error::truncated);
  CHECK(parse_proxy_header(with(with(v2_tcp4, 14, 0x10), 15, 0x00)).error == proxy_error::too_long);
  CHECK(parse_proxy_header(with(with(v2_tcp4, 14, 0x10), 15, 0x00), {.max_v2_len = 65551}).error ==
        proxy_error::truncated);
  // A TLV that runs past the header; a second CRC32C; a CRC32C of length 3; a wrong CRC.
  bytes t = v2_tcp4;
  t[15] = 0x0c + 4;
  t.insert(t.end(), {0x04, 0x00, 0x02, 0xaa});  // NOOP claiming 2 bytes, 1 present
  CHECK(parse_proxy_header(t).error == proxy_error::bad_tlv);
  bytes c = v2_udp6_crc;
  c.back() ^= 1;
  CHECK(parse_proxy_header(c).error == proxy_error::bad_crc);
  c = v2_udp6_crc;
  c[c.size() - 8] ^= 0x20;  // a byte of "example.com"
  CHECK(parse_proxy_header(c).error == proxy_error::bad_crc);
  bytes c3 = v2_tcp4;
  c3[15] = 0x0c + 6;
  c3.insert(c3.end(), {0x03, 0x00, 0x03, 1, 2, 3});
  CHECK(parse_proxy_header(c3).error == proxy_error::bad_tlv);
  // LOCAL skips whatever follows, even bytes that would be a bad TLV.
  bytes l = t;
  l[12] = pp2::cmd_local;
  const auto h = parse_proxy_header(l);
  REQUIRE(h);
  CHECK(h.local);
  CHECK(h.length == l.size());
}

TEST_CASE("encode then parse: random endpoints, both versions, TCP and UDP", "[proxy_protocol]") {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 3000; ++i) {
    const bool v4 = rng() % 2;
    auto addr = [&] {
      if (v4) return fnat::inet_addr(ipv4_addr{static_cast<std::uint32_t>(rng())});
      ipv6_addr a;
      for (auto& b : a.bytes) b = static_cast<std::uint8_t>(rng() % 3 == 0 ? 0 : rng());  // zero runs
      if (a.is_v4_mapped()) a.bytes[0] = 0x20;
      return fnat::inet_addr(a);
    };
    const endpoint s{addr(), static_cast<std::uint16_t>(rng())}, d{addr(), static_cast<std::uint16_t>(rng())};
    bytes out(300);
    std::size_t n = encode_proxy_v1(out, s, d);
    REQUIRE(n > 0);
    REQUIRE(n <= 104);
    auto h = parse_proxy_header(bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)));
    REQUIRE(h);
    CHECK((h.src == s && h.dst == d && h.length == n));
    const std::uint8_t proto = rng() % 2 ? ipproto::tcp : ipproto::udp;
    n = encode_proxy_v2(out, s, d, proto, {}, rng() % 2);
    REQUIRE(n > 0);
    h = parse_proxy_header(bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)));
    REQUIRE(h);
    CHECK((h.src == s && h.dst == d && h.length == n && h.proto == proto));
  }
}
