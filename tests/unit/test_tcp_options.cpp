// SPDX-License-Identifier: BSD-3-Clause
// The TCP option walker, lookup, in-place rewrite and insertion (core/tcp_options.hpp): what is
// yielded for a real SYN's options, every malformed shape refused with its reason and without a read
// past the header, and rewrites / insertions compared byte for byte with frames built from scratch
// (tests/support/packet_frames.hpp computes every checksum in full, independently).
#include <fnat/core/packet.hpp>
#include <fnat/core/tcp_options.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "support/packet_frames.hpp"

namespace {

using namespace fnat;
using fnat::test::build_frame;
using fnat::test::frame_spec;
using bytes = std::vector<std::uint8_t>;

// Linux's SYN options: MSS 1460, SACK-permitted, timestamps (TSval 0x01020304, TSecr 0), NOP,
// window scale 7 (20 bytes, as `tcpdump -x` shows a SYN from Linux 6.x).
const bytes linux_syn_opts = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x01, 0x02,
                              0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07};

// A TCP header (checksum arbitrary) with the given options.
bytes tcp_with(const bytes& opts) {
  bytes t(20, 0);
  t[12] = static_cast<std::uint8_t>(((20 + opts.size()) / 4) << 4);
  t.insert(t.end(), opts.begin(), opts.end());
  return t;
}

std::vector<tcp_option> walk(const bytes& tcp, tcp_option_error& err) {
  std::vector<tcp_option> v;
  tcp_option_walker w(tcp);
  tcp_option o;
  while (w.next(o)) v.push_back(o);
  err = w.error();
  return v;
}

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }

}  // namespace

TEST_CASE("walker yields a Linux SYN's options with offsets and lengths", "[tcp_options]") {
  const bytes t = tcp_with(linux_syn_opts);
  tcp_option_error err;
  const auto v = walk(t, err);
  REQUIRE(err == tcp_option_error::none);
  REQUIRE(v.size() == 5);
  CHECK((v[0].kind == tcp_opt::mss && v[0].off == 20 && v[0].len == 4));
  CHECK((v[1].kind == tcp_opt::sack_permitted && v[1].off == 24 && v[1].len == 2));
  CHECK((v[2].kind == tcp_opt::timestamp && v[2].off == 26 && v[2].len == 10));
  CHECK((v[3].kind == tcp_opt::nop && v[3].off == 36 && v[3].len == 1));
  CHECK((v[4].kind == tcp_opt::wscale && v[4].off == 37 && v[4].len == 3));
  tcp_syn_options so;
  REQUIRE(read_syn_options(t, so) == tcp_option_error::none);
  CHECK(so.mss == 1460);
  CHECK(so.wscale == 7);
  CHECK(so.sack_permitted);
  CHECK(so.timestamps);
  CHECK(so.tsval == 0x01020304u);
  CHECK(so.tsecr == 0u);
}

TEST_CASE("EOL ends the walk: the padding after it is not read", "[tcp_options]") {
  // MSS, EOL, then garbage that would be a bad length if read.
  const bytes t = tcp_with({0x02, 0x04, 0x05, 0xb4, 0x00, 0x09, 0x00, 0xff});
  tcp_option_error err;
  const auto v = walk(t, err);
  CHECK(err == tcp_option_error::none);
  REQUIRE(v.size() == 2);
  CHECK(v[1].kind == tcp_opt::eol);
  CHECK(find_tcp_option(t, tcp_opt::wscale).error == tcp_option_error::not_found);
}

TEST_CASE("malformed option lists are refused with their reason", "[tcp_options]") {
  struct bad {
    bytes opts;
    tcp_option_error why;
  };
  const std::vector<bad> cases = {
      {{0x01, 0x01, 0x01, 0x08}, tcp_option_error::truncated},              // kind in the last byte
      {{0x02, 0x00, 0x01, 0x01}, tcp_option_error::bad_length},             // length 0 (loops forever)
      {{0x02, 0x01, 0x01, 0x01}, tcp_option_error::bad_length},             // length 1 (steps back)
      {{0x08, 0x0a, 0x00, 0x00}, tcp_option_error::bad_length},             // runs past the header
      {{0x02, 0x03, 0x05, 0x01}, tcp_option_error::bad_length_for_kind},    // MSS of length 3
      {{0x03, 0x04, 0x07, 0x01}, tcp_option_error::bad_length_for_kind},    // window scale of length 4
      {{0x04, 0x03, 0x00, 0x01}, tcp_option_error::bad_length_for_kind},    // SACK-permitted of length 3
      {{0x05, 0x06, 0, 0, 0, 0, 0x01, 0x01}, tcp_option_error::bad_length_for_kind},  // SACK, half a block
      {{0x08, 0x08, 0, 0, 0, 0, 0, 0}, tcp_option_error::bad_length_for_kind},         // short timestamps
  };
  for (const auto& c : cases) {
    const bytes t = tcp_with(c.opts);
    INFO("options " << c.opts.size() << " bytes, first kind " << int(c.opts[0]));
    CHECK(validate_tcp_options(t) == c.why);
    // find refuses the list even for a kind that sits in front of the fault.
    bytes with_mss = {0x02, 0x04, 0x05, 0xb4};
    with_mss.insert(with_mss.end(), c.opts.begin(), c.opts.end());
    CHECK(find_tcp_option(tcp_with(with_mss), tcp_opt::mss).error == c.why);
  }
  // Data offset below 5, beyond the bytes given, or a header shorter than 20 bytes.
  bytes t = tcp_with({});
  t[12] = 4 << 4;
  CHECK(validate_tcp_options(t) == tcp_option_error::bad_data_offset);
  t[12] = 6 << 4;  // claims 24 bytes, 20 given
  CHECK(validate_tcp_options(t) == tcp_option_error::bad_data_offset);
  CHECK(validate_tcp_options(bytes(19, 0)) == tcp_option_error::bad_data_offset);
}

TEST_CASE("walker never reads past the header: every option list of a random header", "[tcp_options]") {
  // Random data offsets and bytes, each copied into a buffer of exactly its size: under ASan a read
  // past it is a failure. The walk must end (bounded steps) with none or a reason.
  std::mt19937_64 rng(18);
  for (int i = 0; i < 20000; ++i) {
    const std::size_t len = 20 + rng() % 41;
    std::vector<std::uint8_t> t(len);
    for (auto& b : t) b = static_cast<std::uint8_t>(rng() % 12 == 0 ? rng() : rng() % 9);
    t[12] = static_cast<std::uint8_t>((rng() % 16) << 4);
    tcp_option_walker w(t);
    tcp_option o;
    int steps = 0;
    while (w.next(o)) {
      REQUIRE(o.off + o.len <= w.header_len());
      REQUIRE(++steps <= 40);
    }
  }
}

TEST_CASE("rewrite of an MSS at an odd offset: the checksum equals a full recomputation", "[tcp_options]") {
  frame_spec s;
  s.tcp_options = {0x01, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x01};  // NOP, MSS 1460 at offset 21
  s.payload = {'x', 'y', 'z'};
  auto f = build_frame(s);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  std::span<std::uint8_t> tcp(f.data() + info.l4_off, info.frame_len - info.l4_off);
  const std::uint8_t mss1400[2] = {0x05, 0x78};
  REQUIRE(rewrite_tcp_option(tcp, tcp_opt::mss, mss1400) == tcp_option_error::none);
  frame_spec want = s;
  want.tcp_options = {0x01, 0x02, 0x04, 0x05, 0x78, 0x01, 0x01, 0x01};
  CHECK(f == build_frame(want));
  // Wrong data size for the option: refused, nothing written.
  const std::uint8_t three[3] = {1, 2, 3};
  CHECK(rewrite_tcp_option(tcp, tcp_opt::mss, three) == tcp_option_error::bad_length_for_kind);
  CHECK(f == build_frame(want));
  // NOP-out: the MSS becomes four NOPs.
  const auto m = find_tcp_option(tcp, tcp_opt::mss);
  REQUIRE(m);
  REQUIRE(nop_out_tcp_option(tcp, m.opt) == tcp_option_error::none);
  want.tcp_options = {0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01};
  CHECK(f == build_frame(want));
  // Out of the options: refused.
  CHECK(overwrite_tcp_option_bytes(tcp, 27, mss1400) == tcp_option_error::bad_length);  // 27 + 2 > 28
  CHECK(overwrite_tcp_option_bytes(tcp, 10, mss1400) == tcp_option_error::bad_length);
}

TEST_CASE("random option rewrites at every alignment match a full recomputation", "[tcp_options]") {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    frame_spec s;
    if (i % 2) {
      s.saddr = A("2001:2::1");
      s.daddr = A("2001:2::2");
    }
    s.tcp_flags = tcp_flags::ack;
    const std::size_t olen = 4 * (1 + rng() % 10);
    s.tcp_options.assign(olen, tcp_opt::nop);
    s.payload.resize(rng() % 64);
    for (auto& b : s.payload) b = static_cast<std::uint8_t>(rng());
    auto f = build_frame(s);
    packet_info info;
    REQUIRE(parse(f, info) == drop_reason::none);
    const std::size_t off = 20 + rng() % olen, n = rng() % (20 + olen - off + 1);
    bytes nb(n);
    for (auto& b : nb) b = static_cast<std::uint8_t>(rng());
    REQUIRE(overwrite_tcp_option_bytes({f.data() + info.l4_off, info.frame_len - info.l4_off}, off, nb) ==
            tcp_option_error::none);
    frame_spec want = s;
    std::copy(nb.begin(), nb.end(), want.tcp_options.begin() + static_cast<std::ptrdiff_t>(off - 20));
    REQUIRE(f == build_frame(want));
  }
}

TEST_CASE("insert an option into IPv4 and IPv6 segments: exact bytes, lengths, checksums", "[tcp_options]") {
  for (const bool v6 : {false, true}) {
    frame_spec s;
    if (v6) {
      s.saddr = A("2001:2::10");
      s.daddr = A("2001:2:0:1::64");
    }
    s.tcp_flags = tcp_flags::ack | tcp_flags::psh;
    s.tcp_options = {0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2};  // NOP NOP TS
    s.payload = {'G', 'E', 'T', ' ', '/'};
    auto f = build_frame(s);
    f.resize(f.size() + 32, 0xee);  // room
    packet_info info;
    REQUIRE(parse(std::span<const std::uint8_t>(f.data(), f.size() - 32), info) == drop_reason::none);
    const bytes opt = {0xfd, 0x06, 0xaa, 0xbb, 0xcc, 0xdd};  // 6 bytes: two NOPs of padding in front
    REQUIRE(insert_tcp_option(f, info, opt, {.capacity = f.size()}) == tcp_option_error::none);
    frame_spec want = s;
    want.tcp_options = {0x01, 0x01, 0xfd, 0x06, 0xaa, 0xbb, 0xcc, 0xdd, 0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2};
    const auto w = build_frame(want);
    CHECK(info.frame_len == w.size());
    CHECK(bytes(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(info.frame_len)) == w);
    packet_info again;
    REQUIRE(parse(std::span<const std::uint8_t>(f.data(), info.frame_len), again, {.verify_ip_checksum = true, .verify_l4_checksum = true}) ==
            drop_reason::none);
    CHECK(again.payload_off == info.payload_off);
  }
}

TEST_CASE("insert refusals leave every byte unchanged", "[tcp_options]") {
  frame_spec s;
  s.tcp_flags = tcp_flags::ack;
  s.tcp_options.assign(36, tcp_opt::nop);  // header 56 bytes: room for 4 more
  s.payload = {1, 2, 3};
  auto f = build_frame(s);
  const auto orig = f;
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  const packet_info info0 = info;
  const bytes toa8 = {0xfe, 0x08, 0, 80, 198, 18, 0, 1};
  f.resize(f.size() + 16);
  CHECK(insert_tcp_option(f, info, toa8, {.capacity = f.size()}) == tcp_option_error::no_header_room);
  const bytes four = {0xfd, 0x04, 1, 2};
  CHECK(insert_tcp_option(f, info, four, {.capacity = orig.size() + 3}) == tcp_option_error::no_buffer_room);
  CHECK(insert_tcp_option(f, info, four, {.capacity = f.size(), .max_ip_len = info.frame_len - info.l3_off + 3}) ==
        tcp_option_error::too_big);
  const bytes lying = {0xfd, 0x05, 1, 2};  // length byte disagrees with the size
  CHECK(insert_tcp_option(f, info, lying, {.capacity = f.size()}) == tcp_option_error::bad_length_for_kind);
  CHECK(bytes(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(orig.size())) == orig);
  CHECK(info.frame_len == info0.frame_len);
  // Exactly fits: header becomes 60 bytes.
  REQUIRE(insert_tcp_option(f, info, four, {.capacity = f.size(), .max_ip_len = info.frame_len - info.l3_off + 4}) ==
          tcp_option_error::none);
  CHECK((f[info.l4_off + 12] >> 4) == 15);
  CHECK(l4_checksum_ok(std::span<const std::uint8_t>(f.data(), info.frame_len), info));
  // A UDP datagram is not TCP.
  frame_spec u;
  u.proto = ipproto::udp;
  u.payload = {1};
  auto uf = build_frame(u);
  packet_info ui;
  REQUIRE(parse(uf, ui) == drop_reason::none);
  CHECK(insert_tcp_option(uf, ui, four, {.capacity = uf.size() + 8}) == tcp_option_error::not_tcp);
}
