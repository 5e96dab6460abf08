// SPDX-License-Identifier: BSD-3-Clause
// core/fragment.hpp: what a fragment is, what is dropped and why, and where the fragments of one
// datagram meet (every fragment of a datagram has the same home; a LIP's datagrams spread by id).
#include <fnat/core/fragment.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <span>
#include <vector>

#include "support/packet_frames.hpp"

using fnat::drop_reason;
using fnat::fragment_info;
using bytes = std::vector<std::uint8_t>;

namespace {

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }

// An IPv4 UDP fragment: offset in bytes, MF, payload of `len` bytes.
bytes frag4(std::uint16_t id, std::uint16_t offset, bool more, std::size_t len, const char* src = "198.18.0.2") {
  fnat::test::frame_spec s;
  s.saddr = A(src);
  s.daddr = A("198.18.1.100");
  s.proto = fnat::ipproto::udp;
  s.ip_id = id;
  s.payload.assign(len - 8, 0x5a);  // the UDP header is 8 of the len bytes
  bytes f = fnat::test::build_frame(s);
  const std::uint16_t fo = static_cast<std::uint16_t>((more ? 0x2000 : 0) | offset / 8);
  f[14 + 6] = static_cast<std::uint8_t>(fo >> 8);
  f[14 + 7] = static_cast<std::uint8_t>(fo);
  return f;  // the IP checksum is stale: parse_fragment does not verify it (the NIC does)
}

// An IPv6 fragment: the fixed header, a fragment header, `len` bytes.
bytes frag6(std::uint32_t id, std::uint16_t offset, bool more, std::size_t len, std::uint8_t nh = 17) {
  bytes f(14 + 40 + 8 + len, 0x5a);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[6] = 2;
  std::uint8_t* ip = f.data() + 14;
  ip[0] = 0x60;
  ip[1] = ip[2] = ip[3] = 0;
  ip[4] = static_cast<std::uint8_t>((len + 8) >> 8);
  ip[5] = static_cast<std::uint8_t>(len + 8);
  ip[6] = 44;
  ip[7] = 64;
  const auto src = A("2001:2:0:1::2").raw(), dst = A("2001:2:0:3::100").raw();
  std::copy(src.begin(), src.end(), ip + 8);
  std::copy(dst.begin(), dst.end(), ip + 24);
  std::uint8_t* fh = ip + 40;
  fh[0] = nh;
  fh[1] = 0;
  const std::uint16_t om = static_cast<std::uint16_t>(offset | (more ? 1 : 0));
  fh[2] = static_cast<std::uint8_t>(om >> 8);
  fh[3] = static_cast<std::uint8_t>(om);
  fh[4] = static_cast<std::uint8_t>(id >> 24);
  fh[5] = static_cast<std::uint8_t>(id >> 16);
  fh[6] = static_cast<std::uint8_t>(id >> 8);
  fh[7] = static_cast<std::uint8_t>(id);
  return f;
}

drop_reason parse(const bytes& f, fragment_info& fi) { return fnat::parse_fragment(f, f.size(), fi); }

}  // namespace

TEST_CASE("fragment: IPv4 and IPv6 fragments are read", "[fragment]") {
  fragment_info fi;
  REQUIRE(parse(frag4(0x1234, 0, true, 1480), fi) == drop_reason::none);
  CHECK(fi.family == fnat::ip_family::v4);
  CHECK(fi.id == 0x1234);
  CHECK(fi.offset == 0);
  CHECK(fi.more);
  CHECK(fi.is_first());
  CHECK(fi.payload_len == 1480);
  CHECK(fi.l3_off == 14);
  CHECK(fi.l3_len == 20);
  CHECK(fi.proto == fnat::ipproto::udp);
  CHECK(fi.saddr == A("198.18.0.2"));
  CHECK(fi.daddr == A("198.18.1.100"));
  // The unfragmented packet's parse says `fragment`, and parse_fragment accepts it: they agree.
  fnat::packet_info info;
  CHECK(fnat::parse(std::span<const std::uint8_t>(frag4(0x1234, 1480, false, 100)), info) == drop_reason::fragment);
  REQUIRE(parse(frag4(0x1234, 1480, false, 100), fi) == drop_reason::none);
  CHECK(fi.offset == 1480);
  CHECK_FALSE(fi.more);

  REQUIRE(parse(frag6(0xdeadbeef, 1448, true, 1448), fi) == drop_reason::none);
  CHECK(fi.family == fnat::ip_family::v6);
  CHECK(fi.id == 0xdeadbeef);
  CHECK(fi.offset == 1448);
  CHECK(fi.more);
  CHECK(fi.payload_len == 1448);
  CHECK(fi.l3_len == 48);
  CHECK(fi.proto == 17);
  CHECK(fnat::parse(std::span<const std::uint8_t>(frag6(1, 0, true, 1448)), info) == drop_reason::fragment);
}

TEST_CASE("fragment: malformed fragments are drops with a reason", "[fragment][drop]") {
  fragment_info fi;
  CHECK(parse(frag4(1, 0, false, 100), fi) == drop_reason::unsupported_l4);  // not a fragment
  CHECK(parse(frag4(1, 0, true, 101), fi) == drop_reason::fragment);         // MF and not a multiple of 8
  CHECK(parse(frag4(1, 65528, false, 100), fi) == drop_reason::fragment);    // beyond 64 KiB
  CHECK(parse(frag4(1, 0, true, 1480, "127.0.0.1"), fi) == drop_reason::bad_source);
  bytes f = frag4(1, 0, true, 1480);
  f[14] = 0x46;
  CHECK(parse(f, fi) == drop_reason::ip_options);
  f = frag4(1, 0, true, 1480);
  f.resize(f.size() - 1);
  CHECK(parse(f, fi) == drop_reason::bad_ip_length);
  CHECK(parse(frag6(1, 8, true, 13), fi) == drop_reason::fragment);
  CHECK(parse(frag6(1, 0, true, 16, 0), fi) == drop_reason::ipv6_ext_header);  // hop-by-hop after it
  f = frag6(1, 0, true, 16);
  f[14 + 6] = 17;
  CHECK(parse(f, fi) == drop_reason::unsupported_l4);
  f = frag6(1, 0, true, 16);
  f.resize(14 + 40 + 4);
  CHECK(parse(f, fi) == drop_reason::ip_truncated);
}

TEST_CASE("fragment: home lcore is the same for every fragment of a datagram, any lcore count", "[fragment]") {
  for (std::size_t lcores = 1; lcores <= 7; ++lcores) {
    std::set<std::size_t> homes_lip, homes_vip;
    for (std::uint16_t id = 0; id < 512; ++id) {
      fragment_info a, b;
      REQUIRE(parse(frag4(id, 0, true, 1480), a) == drop_reason::none);
      REQUIRE(parse(frag4(id, 2960, false, 300), b) == drop_reason::none);
      const std::size_t h = fnat::fragment_home(a, true, 0x5eed, lcores);
      CHECK(h < lcores);
      CHECK(fnat::fragment_home(b, true, 0x5eed, lcores) == h);
      homes_lip.insert(h);
      homes_vip.insert(fnat::fragment_home(a, false, 0x5eed, lcores));
    }
    CHECK(homes_lip.size() == lcores);  // to a LIP: datagrams spread by identification
    CHECK(homes_vip.size() == 1);       // to a VIP: one client's datagrams meet on one lcore
  }
}
