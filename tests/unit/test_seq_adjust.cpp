// SPDX-License-Identifier: BSD-3-Clause
// TCP sequence translation (core/seq_adjust.hpp): the Proxy Protocol shift (bounded, header in front
// of the first data byte), the SYN proxy shift (server ISN, window scale, timestamps), SACK blocks,
// wrap-around at 2^32, the switch to unbounded 2^30 past the start; every translated segment is
// compared byte for byte with one built from scratch with full checksums (packet_frames.hpp); and
// the struct living in a session_table<seq_adjust> payload.
#include <fnat/core/packet.hpp>
#include <fnat/core/port_plan.hpp>
#include <fnat/core/proxy_protocol.hpp>
#include <fnat/core/seq_adjust.hpp>
#include <fnat/core/session_table.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "support/packet_frames.hpp"

namespace {

using namespace fnat;
using fnat::test::build_frame;
using fnat::test::frame_spec;
using bytes = std::vector<std::uint8_t>;

fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }

void put32(bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 24);
  b[at + 1] = static_cast<std::uint8_t>(v >> 16);
  b[at + 2] = static_cast<std::uint8_t>(v >> 8);
  b[at + 3] = static_cast<std::uint8_t>(v);
}

// NOP NOP SACK with the given blocks (left, right edges), host order.
bytes sack_opts(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& blocks) {
  bytes o = {0x01, 0x01, 0x05, static_cast<std::uint8_t>(2 + 8 * blocks.size())};
  for (const auto& [l, r] : blocks) {
    o.resize(o.size() + 8);
    put32(o, o.size() - 8, l);
    put32(o, o.size() - 4, r);
  }
  return o;
}
// NOP NOP TS(tsval, tsecr).
bytes ts_opts(std::uint32_t tsval, std::uint32_t tsecr) {
  bytes o = {0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0};
  put32(o, 4, tsval);
  put32(o, 8, tsecr);
  return o;
}

// Applies `adj` to the frame of `s` travelling `dir`; returns the frame.
bytes translated(seq_adjust& adj, const frame_spec& s, direction dir, bool shift_seq = true) {
  auto f = build_frame(s);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  REQUIRE(adj.apply({f.data() + info.l4_off, info.frame_len - info.l4_off}, dir, shift_seq) == tcp_option_error::none);
  return f;
}

frame_spec segment(std::uint32_t seq, std::uint32_t ack, std::uint8_t flags = tcp_flags::ack) {
  frame_spec s;
  s.seq = seq;
  s.ack = ack;
  s.tcp_flags = flags;
  return s;
}

}  // namespace

TEST_CASE("default seq_adjust is inactive and changes nothing", "[seq_adjust]") {
  seq_adjust a;
  CHECK_FALSE(a.active());
  frame_spec s = segment(1000, 2000);
  s.tcp_options = sack_opts({{2100, 2200}});
  CHECK(translated(a, s, direction::inbound) == build_frame(s));
  CHECK(translated(a, s, direction::outbound) == build_frame(s));
}

TEST_CASE("Proxy Protocol shift: header segment keeps its seq, later ones move, acks come back", "[seq_adjust]") {
  constexpr std::uint32_t isn = 0x10000000, P = isn + 1, H = 28;
  seq_adjust a;
  a.insert_inbound(P, H);
  REQUIRE(a.active());
  // The segment at P carries the header in front of its data: its seq stays (shift_seq = false).
  frame_spec first = segment(P, 0x50000001, tcp_flags::ack | tcp_flags::psh);
  first.payload = {'h', 'i'};
  CHECK(translated(a, first, direction::inbound, false) == build_frame(first));
  // The third handshake ACK (seq P, no data) stays; later data moves by H.
  CHECK(translated(a, segment(P, 0x50000001), direction::inbound) == build_frame(segment(P, 0x50000001)));
  CHECK(translated(a, segment(P + 2, 0x50000001), direction::inbound) == build_frame(segment(P + 2 + H, 0x50000001)));
  // A retransmission from the middle of the first segment moves too.
  CHECK(translated(a, segment(P + 1, 0x50000001), direction::inbound) == build_frame(segment(P + 1 + H, 0x50000001)));
  // Server acks: everything (header + 2) -> P + 2; header only -> P; part of the header -> P; the
  // SYN's ack (P) and earlier stay.
  struct {
    std::uint32_t server_ack, client_ack;
  } const acks[] = {{P + H + 2, P + 2}, {P + H, P}, {P + 5, P}, {P, P}, {isn, isn}};
  for (const auto& k : acks) {
    INFO("server ack " << k.server_ack);
    CHECK(translated(a, segment(0x50000001, k.server_ack), direction::outbound) ==
          build_frame(segment(0x50000001, k.client_ack)));
  }
  // Outbound SACK blocks count client bytes: unmapped like acks; inbound SACK (server bytes) untouched.
  frame_spec sack = segment(0x50000001, P + H);
  sack.tcp_options = sack_opts({{P + H + 100, P + H + 200}, {P + H + 300, P + H + 400}});
  frame_spec want = segment(0x50000001, P);
  want.tcp_options = sack_opts({{P + 100, P + 200}, {P + 300, P + 400}});
  CHECK(translated(a, sack, direction::outbound) == build_frame(want));
  frame_spec in_sack = segment(P + 2, 0x50000001);
  in_sack.tcp_options = sack_opts({{0x50000100, 0x50000200}});
  frame_spec in_want = in_sack;
  in_want.seq = P + 2 + H;
  CHECK(translated(a, in_sack, direction::inbound) == build_frame(in_want));
}

TEST_CASE("SYN proxy: server ISN, window scale and timestamps translated both ways (IPv6)", "[seq_adjust]") {
  constexpr std::uint32_t cookie = 0xfffffff0, server_isn = 0x00001000;  // the shift wraps 2^32
  seq_adjust a;
  a.set_server_isn(server_isn, cookie);
  a.set_window_scales(7, 9);  // server scales by 2^7, the client reads the balancer's 2^9
  a.set_timestamp_delta(0x80000000u);
  auto v6 = [](frame_spec s) {
    s.saddr = A("2001:2::10");
    s.daddr = A("2001:2:0:1::64");
    return s;
  };
  // Outbound data: seq S+1 -> C+1 (wrapping), window 1000 * 2^7 / 2^9 = 250, TSval + delta.
  frame_spec out = v6(segment(server_isn + 1, 0x70000000));
  out.window = 1000;
  out.tcp_options = ts_opts(0x00000005, 0x11111111);
  frame_spec out_want = out;
  out_want.seq = cookie + 1;
  out_want.window = 250;
  out_want.tcp_options = ts_opts(0x80000005, 0x11111111);
  CHECK(translated(a, out, direction::outbound) == build_frame(out_want));
  // A tiny open window is not closed; a large one is capped at 65535.
  out.window = 1;
  out_want.window = 1;
  CHECK(translated(a, out, direction::outbound) == build_frame(out_want));
  a.set_window_scales(9, 2);
  out.window = 60000;
  out_want.window = 65535;
  CHECK(translated(a, out, direction::outbound) == build_frame(out_want));
  a.set_window_scales(3, 3);  // equal: windows left alone
  CHECK((a.flags & seq_adjust::win_on) == 0);
  out.window = 1234;
  out_want.window = 1234;
  CHECK(translated(a, out, direction::outbound) == build_frame(out_want));
  // Inbound: ack C+1+n -> S+1+n, SACK edges likewise, TSecr - delta; the client's window untouched.
  frame_spec in = v6(segment(0x70000000, cookie + 1 + 100));
  in.window = 777;
  in.tcp_options = ts_opts(0x22222222, 0x80000005);
  bytes sk = sack_opts({{cookie + 1 + 200, cookie + 1 + 300}});
  in.tcp_options.insert(in.tcp_options.end(), sk.begin(), sk.end());
  frame_spec in_want = in;
  in_want.ack = server_isn + 1 + 100;
  in_want.tcp_options = ts_opts(0x22222222, 0x00000005);
  sk = sack_opts({{server_isn + 1 + 200, server_isn + 1 + 300}});
  in_want.tcp_options.insert(in_want.tcp_options.end(), sk.begin(), sk.end());
  CHECK(translated(a, in, direction::inbound) == build_frame(in_want));
}

TEST_CASE("a bounded shift becomes unbounded 2^30 past its start, before the comparison flips", "[seq_adjust]") {
  constexpr std::uint32_t P = 0xc0000000, H = 40;
  seq_adjust a;
  a.insert_inbound(P, H);
  CHECK(a.map_seq(direction::inbound, P + (1u << 29)) == P + (1u << 29) + H);
  CHECK((a.flags & seq_adjust::in_unbounded) == 0);
  CHECK(a.map_seq(direction::inbound, P + (1u << 30)) == P + (1u << 30) + H);
  CHECK((a.flags & seq_adjust::in_unbounded) != 0);
  // 2^31 + 10 past P: a bounded shift would call it "before" and leave it; unbounded moves it.
  const std::uint32_t far = P + (1u << 31) + 10;
  CHECK(a.map_seq(direction::inbound, far) == far + H);
  CHECK(a.unmap_ack(direction::inbound, far + H) == far);
}

TEST_CASE("random translations verify and equal a full recomputation", "[seq_adjust]") {
  std::mt19937_64 rng(1624);
  for (int i = 0; i < 3000; ++i) {
    seq_adjust a;
    const auto isn = static_cast<std::uint32_t>(rng());
    a.insert_inbound(isn + 1, static_cast<std::uint32_t>(rng() % 200));
    a.set_server_isn(static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng()));
    a.set_timestamp_delta(static_cast<std::uint32_t>(rng()));
    a.set_window_scales(static_cast<std::uint8_t>(rng() % 15), static_cast<std::uint8_t>(rng() % 15));
    const direction dir = rng() % 2 ? direction::inbound : direction::outbound;
    frame_spec s = segment(static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng()));
    if (i % 2) {
      s.saddr = A("2001:2::10");
      s.daddr = A("2001:2:0:1::64");
    }
    s.window = static_cast<std::uint16_t>(rng());
    bytes o = {0x01};  // odd alignment for what follows
    bytes t = ts_opts(static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng()));
    o.insert(o.end(), t.begin() + 2, t.end());  // TS alone, at offset 1
    bytes sk = sack_opts({{static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng())},
                          {static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng())}});
    o.insert(o.end(), sk.begin() + 2, sk.end());  // SACK alone, at offset 11
    o.resize((o.size() + 3) / 4 * 4, 0);
    s.tcp_options = o;
    s.payload.resize(rng() % 50);
    for (auto& b : s.payload) b = static_cast<std::uint8_t>(rng());
    // Expected: the same fields mapped by the formulas, frame rebuilt from scratch.
    seq_adjust ref = a;
    frame_spec want = s;
    want.seq = ref.map_seq(dir, s.seq);
    want.ack = ref.unmap_ack(opposite(dir), s.ack);
    if (dir == direction::outbound) want.window = ref.rescale_window(s.window);
    auto rd = [&](std::size_t at) {
      return std::uint32_t{s.tcp_options[at]} << 24 | std::uint32_t{s.tcp_options[at + 1]} << 16 |
             std::uint32_t{s.tcp_options[at + 2]} << 8 | s.tcp_options[at + 3];
    };
    // TS option at options offset 1: TSval at 3, TSecr at 7; SACK edges at 13, 17, 21, 25.
    if (dir == direction::outbound) put32(want.tcp_options, 3, rd(3) + a.ts_delta);
    else put32(want.tcp_options, 7, rd(7) - a.ts_delta);
    for (std::size_t e = 13; e < 29; e += 4) put32(want.tcp_options, e, ref.unmap_ack(opposite(dir), rd(e)));
    REQUIRE(translated(a, s, dir) == build_frame(want));
  }
}

TEST_CASE("a malformed option list is refused with nothing written", "[seq_adjust]") {
  seq_adjust a;
  a.set_server_isn(1, 2);
  frame_spec s = segment(100, 200);
  s.tcp_options = {0x05, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};  // SACK of length 11
  auto f = build_frame(s);
  const auto orig = f;
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  CHECK(a.apply({f.data() + info.l4_off, info.frame_len - info.l4_off}, direction::outbound) ==
        tcp_option_error::bad_length_for_kind);
  CHECK(f == orig);
}

TEST_CASE("seq_adjust as a session_table payload: set at open, applied to what the lookup finds", "[seq_adjust]") {
  auto plan = port_plan::make({.lcores = {{1, 0}}, .port_low = 20000, .port_high = 20063});
  REQUIRE(plan);
  auto pol = hashed_buckets::make(*plan, 0, {.buckets = 1});
  REQUIRE(pol);
  auto pool = sa_pool<hashed_buckets>::make(A("198.18.2.100"), std::move(*pol));
  REQUIRE(pool);
  sa_pool_rotation<hashed_buckets> rotation;
  REQUIRE(rotation.add(*pool));
  auto table = session_table<seq_adjust>::make({.capacity = 16, .wheel = {.slots = 64, .tick = std::chrono::milliseconds(1)}});
  REQUIRE(table);
  const auto group = table->add_group(rotation);
  REQUIRE(group);

  const inet_tuple in = make_tuple(ipproto::tcp, A("198.18.0.10"), std::uint16_t{40000}, A("198.18.1.1"), std::uint16_t{80});
  seq_adjust adj;
  adj.set_server_isn(0x1000, 0xabcdef00);  // the SYN proxy opened with the cookie as ISN
  auto r = table->open({.in = in, .dest = {A("198.18.3.10"), 80}, .group = *group, .timeout = 10}, adj);
  REQUIRE(r);
  // The server's reply arrives on the outbound tuple.
  frame_spec s = segment(0x1001, 0x77777777);
  s.saddr = A("198.18.3.10");
  s.sport = 80;
  s.daddr = r.session->lip();
  s.dport = r.session->lport();
  auto f = build_frame(s);
  packet_info info;
  REQUIRE(parse(f, info) == drop_reason::none);
  auto hit = table->lookup(info.tuple);
  REQUIRE(hit.conn == r.session);
  REQUIRE(hit.dir == direction::outbound);
  REQUIRE(hit.conn->data.apply({f.data() + info.l4_off, info.frame_len - info.l4_off}, hit.dir) == tcp_option_error::none);
  frame_spec want = s;
  want.seq = 0xabcdef01;
  CHECK(f == build_frame(want));
  table->close(*r.session);
  CHECK(pool->stats().used == 0);
}

TEST_CASE("Proxy Protocol header in front of the first data: exact bytes, then the shift", "[seq_adjust]") {
  for (const bool v6 : {false, true}) {
    frame_spec s = segment(0x10000001, 0x50000001, tcp_flags::ack | tcp_flags::psh);
    if (v6) {
      s.saddr = A("2001:2:0:2::100");
      s.daddr = A("2001:2:0:3::10");
    }
    s.payload = {'G', 'E', 'T', ' ', '/', '\r', '\n'};
    bytes hdr(120);
    const std::size_t n = encode_proxy_v1(hdr, {A(v6 ? "2001:2::10" : "198.18.0.10"), 40000},
                                          {A(v6 ? "2001:2:0:1::64" : "198.18.1.100"), std::uint16_t(v6 ? 80 : 443)});
    REQUIRE(n % 2 == 1);  // odd: every payload byte changes word half
    hdr.resize(n);
    auto f = build_frame(s);
    const std::size_t room = 128;
    f.resize(f.size() + room, 0xee);
    packet_info info;
    REQUIRE(parse(std::span<const std::uint8_t>(f.data(), f.size() - room), info) == drop_reason::none);
    REQUIRE(insert_tcp_payload(f, info, hdr, {.capacity = f.size(), .max_ip_len = 1500}) == tcp_option_error::none);
    frame_spec want = s;
    want.payload = hdr;
    want.payload.insert(want.payload.end(), s.payload.begin(), s.payload.end());
    CHECK(bytes(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(info.frame_len)) == build_frame(want));
    // The server sees the header; the client's next segment moves by its length.
    seq_adjust a;
    a.insert_inbound(0x10000001, static_cast<std::uint32_t>(n));
    const frame_spec next = segment(0x10000001 + 7, 0x50000001);
    CHECK(translated(a, next, direction::inbound) == build_frame(segment(0x10000001 + 7 + static_cast<std::uint32_t>(n), 0x50000001)));
    // Refusals change nothing.
    packet_info i2;
    auto g = build_frame(s);
    REQUIRE(parse(g, i2) == drop_reason::none);
    const auto orig = g;
    CHECK(insert_tcp_payload(g, i2, hdr, {.capacity = g.size() + 200}) == tcp_option_error::no_buffer_room);
    g.resize(g.size() + 200);
    CHECK(insert_tcp_payload(g, i2, hdr, {.capacity = g.size(), .max_ip_len = i2.frame_len - i2.l3_off + n - 1}) ==
          tcp_option_error::too_big);
    CHECK(bytes(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(orig.size())) == orig);
    g[i2.payload_off] ^= 1;  // corrupted on the way: refused, not laundered by the recomputation
    const auto corrupt = g;
    CHECK(insert_tcp_payload(g, i2, hdr, {.capacity = g.size()}) == tcp_option_error::bad_checksum);
    CHECK(g == corrupt);
  }
}
