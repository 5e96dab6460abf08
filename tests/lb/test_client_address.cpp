// SPDX-License-Identifier: BSD-3-Clause
// The client's address for the real servers through the whole balancer (in-process, three workers,
// net_ring ports with the NIC model): services with client_address = proxy_protocol_v2,
// proxy_protocol_v1 and toa, IPv4 and IPv6. Every frame the balancer sends is compared byte for byte
// with a frame the test builds from scratch (its own full checksums), and the Proxy Protocol headers
// are written out here by hand from the specification, not by the library's encoders:
//  - the SYN reaches the server as the client sent it (only FullNAT's rewrite); the server's SYN-ACK
//    reaches the client with its MSS lowered so that header plus a full segment fit the server link;
//  - the first data segment reaches the server with the header in front of its data, at the
//    client's seq; a later segment's seq is shifted by the header's length; a retransmission of the
//    first segment carries the header again;
//  - the server's ACK and SACK blocks reach the client shifted back exactly (an ack inside the
//    header acknowledges none of the client's bytes);
//  - a SYN with a new ISN on the conn's tuple (reopened from TIME_WAIT) starts a new stream: its
//    first byte gets the header, nothing of the old shift remains;
//  - UDP (v2): a header in front of every datagram;
//  - TOA: the option in the SYN and in the segments that acknowledge the SYN-ACK, not after.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lb/inprocess_rig.hpp"

namespace {

using namespace fnat;
using namespace fnat::test::inproc;
using frame = std::vector<std::uint8_t>;

int rs_index(const flow& f) { return f.v6 ? f.rs.raw()[15] - 0x10 : f.rs.v4().bytes()[3] - 10; }
fnat::inet_addr vip_of(const flow& f) { return f.v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100"); }

void put16(frame& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}
void put32(frame& b, std::uint32_t v) {
  put16(b, static_cast<std::uint16_t>(v >> 16));
  put16(b, static_cast<std::uint16_t>(v));
}
void put_addr(frame& b, const fnat::inet_addr& a) {
  if (a.is_v4()) {
    const auto x = a.v4().bytes();
    b.insert(b.end(), x.begin(), x.end());
  } else {
    b.insert(b.end(), a.raw().begin(), a.raw().end());
  }
}

// Proxy Protocol v2 (haproxy's proxy-protocol.txt, 2.2): signature, version 2 + PROXY, family and
// transport, length of the addresses, source and destination address, source and destination port.
frame pp_v2(const flow& f, std::uint16_t vport) {
  frame b = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21};
  b.push_back(static_cast<std::uint8_t>((f.v6 ? 0x20 : 0x10) | (f.tcp ? 0x01 : 0x02)));
  put16(b, f.v6 ? 36 : 12);
  put_addr(b, f.client);
  put_addr(b, vip_of(f));
  put16(b, f.cport);
  put16(b, vport);
  return b;
}

// Proxy Protocol v1 (2.1): one text line.
frame pp_v1(const flow& f) {
  const std::string s = std::string("PROXY ") + (f.v6 ? "TCP6 " : "TCP4 ") + f.client.to_string() + " " +
                        vip_of(f).to_string() + " " + std::to_string(f.cport) + " 80\r\n";
  return frame(s.begin(), s.end());
}

// The TOA option (DPVS kmod/toa/toa.h): kind 254, length 8 or 20, port, address.
frame toa_option(const flow& f) {
  frame b = {254, static_cast<std::uint8_t>(f.v6 ? 20 : 8)};
  put16(b, f.cport);
  put_addr(b, f.client);
  return b;
}

frame mss_opts(std::uint16_t mss) {  // MSS, NOP, NOP, SACK-permitted
  return {0x02, 0x04, static_cast<std::uint8_t>(mss >> 8), static_cast<std::uint8_t>(mss), 0x01, 0x01, 0x04, 0x02};
}

frame sack_opts(std::uint32_t left, std::uint32_t right) {  // NOP, NOP, SACK with one block
  frame b = {0x01, 0x01, 0x05, 0x0a};
  put32(b, left);
  put32(b, right);
  return b;
}

frame bytes_of(const std::string& s) { return frame(s.begin(), s.end()); }

// A client segment of flow f.
frame_spec from_client(const flow& f, const inprocess_rig& rig, std::uint8_t flags, std::uint32_t seq, std::uint32_t ack,
                       frame payload, frame opts = {}) {
  frame_spec s = client_packet(f, const_cast<inprocess_rig&>(rig).client_mac(), flags);
  s.seq = seq;
  s.ack = ack;
  s.payload = std::move(payload);
  s.tcp_options = std::move(opts);
  return s;
}

// What the server must receive for client segment s: FullNAT's rewrite, nothing else.
frame_spec at_server(const flow& f, const inprocess_rig& rig, frame_spec s) {
  s.dst = rs_mac(rs_index(f));
  s.src = const_cast<inprocess_rig&>(rig).server_mac();
  s.saddr = f.lip;
  s.daddr = f.rs;
  s.sport = f.lport;
  s.dport = f.rport;
  s.ttl = 63;
  return s;
}

frame_spec from_server(const flow& f, const inprocess_rig& rig, std::uint8_t flags, std::uint32_t seq, std::uint32_t ack,
                       frame payload, frame opts = {}) {
  frame_spec s = server_packet(f, const_cast<inprocess_rig&>(rig).server_mac(), flags);
  s.seq = seq;
  s.ack = ack;
  s.payload = std::move(payload);
  s.tcp_options = std::move(opts);
  return s;
}

frame_spec at_client(const flow& f, const inprocess_rig& rig, frame_spec s) {
  s.dst = f.v6 ? gw6_mac : gw_mac;
  s.src = const_cast<inprocess_rig&>(rig).client_mac();
  s.saddr = vip_of(f);
  s.daddr = f.client;
  s.sport = f.tcp ? 80 : 53;
  s.dport = f.cport;
  s.ttl = 63;
  return s;
}

// One frame through: injected on one side, exactly one out on the other, equal to `want`.
void through(inprocess_rig& rig, bool from_server_side, const frame_spec& in, const frame_spec& want, const char* what) {
  rig.inject(from_server_side, {test::build_frame(in)});
  const auto out = rig.collect(!from_server_side, 1);
  REQUIRE(out.size() == 1);
  const frame w = test::build_frame(want);
  INFO(what << "\n got  " << hex(out[0]) << "\n want " << hex(w));
  CHECK(out[0] == w);
}

// The SYN of flow f: fills in what the balancer chose (LIP, lport, RS, rport) from what the server
// side saw, and checks the SYN's bytes, with `syn_opts_at_server` as its options there.
void open_flow(inprocess_rig& rig, flow& f, const frame& syn_opts_at_server) {
  const frame_spec syn = from_client(f, rig, tcp_flags::syn, f.id, 0, {}, mss_opts(1460));
  rig.inject(false, {test::build_frame(syn)});
  const auto out = rig.collect(true, 1);
  REQUIRE(out.size() == 1);
  packet_info info;
  REQUIRE(parse(out[0], info) == drop_reason::none);
  f.lip = info.tuple.saddr;
  f.lport = ntoh16(info.tuple.sport);
  f.rs = info.tuple.daddr;
  f.rport = ntoh16(info.tuple.dport);
  frame_spec want = at_server(f, rig, syn);
  want.tcp_options = syn_opts_at_server;
  const frame w = test::build_frame(want);
  INFO("SYN\n got  " << hex(out[0]) << "\n want " << hex(w));
  CHECK(out[0] == w);
}

std::uint64_t ca_total(inprocess_rig& rig, std::size_t service, const lb::counter lb::client_address_stats::*c) {
  std::uint64_t n = 0;
  for (const auto& w : rig.lb().workers()) n += (w->ca_stats(service).*c).get();
  return n;
}

// A whole TCP conversation through a Proxy Protocol service; `hdr` is the header the server must see.
void pp_tcp_flow(inprocess_rig& rig, flow& f, const frame& hdr) {
  const std::uint32_t H = static_cast<std::uint32_t>(hdr.size());
  const std::uint32_t c0 = f.id, s0 = f.id ^ 0x5a5a0000u;  // ISNs of client and server
  open_flow(rig, f, mss_opts(1460));

  // The SYN-ACK: MSS lowered so that the header plus a full segment fit the 1500-byte server link.
  const std::uint16_t bound = static_cast<std::uint16_t>(1500 - (f.v6 ? 40 : 20) - 20 - H);
  {
    const frame_spec sa = from_server(f, rig, tcp_flags::syn | tcp_flags::ack, s0, c0 + 1, {}, mss_opts(1460));
    frame_spec want = at_client(f, rig, sa);
    want.tcp_options = mss_opts(bound);
    through(rig, true, sa, want, "SYN-ACK");
  }
  // The handshake's ACK: no data, seq = start, unchanged.
  {
    const frame_spec a = from_client(f, rig, tcp_flags::ack, c0 + 1, s0 + 1, {});
    through(rig, false, a, at_server(f, rig, a), "ACK");
  }
  const frame d1 = bytes_of("GET /client-address HTTP/1.1\r\n"), d2 = bytes_of("Host: fnat\r\n\r\n");
  const auto L1 = static_cast<std::uint32_t>(d1.size()), L2 = static_cast<std::uint32_t>(d2.size());
  // The first data segment: the header in front of its data, at the client's seq.
  const frame_spec first = from_client(f, rig, tcp_flags::ack | tcp_flags::psh, c0 + 1, s0 + 1, d1);
  frame_spec first_want = at_server(f, rig, first);
  first_want.payload = hdr;
  first_want.payload.insert(first_want.payload.end(), d1.begin(), d1.end());
  through(rig, false, first, first_want, "first data segment");
  // The second: seq shifted by H.
  {
    const frame_spec s = from_client(f, rig, tcp_flags::ack | tcp_flags::psh, c0 + 1 + L1, s0 + 1, d2);
    frame_spec want = at_server(f, rig, s);
    want.seq = c0 + 1 + L1 + H;
    through(rig, false, s, want, "second data segment");
  }
  // A retransmission of the first: the header again.
  through(rig, false, first, first_want, "retransmitted first segment");
  // The server acknowledges the header only, and SACKs the second segment: the client sees its ISN
  // + 1 acknowledged (none of its bytes) and the SACK block in its own numbers.
  {
    const frame_spec s = from_server(f, rig, tcp_flags::ack, s0 + 1, c0 + 1 + H, {},
                                     sack_opts(c0 + 1 + H + L1, c0 + 1 + H + L1 + L2));
    frame_spec want = at_client(f, rig, s);
    want.ack = c0 + 1;
    want.tcp_options = sack_opts(c0 + 1 + L1, c0 + 1 + L1 + L2);
    through(rig, true, s, want, "server ACK of the header, SACK of the second segment");
  }
  // An ack inside the header acknowledges nothing of the client's.
  {
    const frame_spec s = from_server(f, rig, tcp_flags::ack, s0 + 1, c0 + 1 + H / 2, {});
    frame_spec want = at_client(f, rig, s);
    want.ack = c0 + 1;
    through(rig, true, s, want, "server ACK inside the header");
  }
  // The server's answer acknowledges everything: shifted back by H; its own seq untouched.
  {
    const frame_spec s = from_server(f, rig, tcp_flags::ack | tcp_flags::psh, s0 + 1, c0 + 1 + H + L1 + L2,
                                     bytes_of("HTTP/1.1 200 OK\r\n"));
    frame_spec want = at_client(f, rig, s);
    want.ack = c0 + 1 + L1 + L2;
    through(rig, true, s, want, "server data");
  }
  // The client's ACK of it and its FIN: shifted.
  {
    const frame_spec s = from_client(f, rig, tcp_flags::ack | tcp_flags::fin, c0 + 1 + L1 + L2, s0 + 1 + 17, {});
    frame_spec want = at_server(f, rig, s);
    want.seq = c0 + 1 + L1 + L2 + H;
    through(rig, false, s, want, "client FIN");
  }
  // The tuple comes back with a new ISN while the conn lingers (a SYN reopens it): a new byte
  // stream, with its own header in front of its first byte and nothing of the old shift.
  {
    const std::uint32_t c1 = c0 + 0x01000000u;
    const frame_spec syn = from_client(f, rig, tcp_flags::syn, c1, 0, {}, mss_opts(1460));
    through(rig, false, syn, at_server(f, rig, syn), "SYN reopening the conn");
    const frame_spec s = from_client(f, rig, tcp_flags::ack | tcp_flags::psh, c1 + 1, s0 + 100, d2);
    frame_spec want = at_server(f, rig, s);
    want.payload = hdr;
    want.payload.insert(want.payload.end(), d2.begin(), d2.end());
    through(rig, false, s, want, "first data segment of the reopened conn");
    const frame_spec s2 = from_client(f, rig, tcp_flags::ack | tcp_flags::psh, c1 + 1 + L2, s0 + 100, d1);
    frame_spec want2 = at_server(f, rig, s2);
    want2.seq = c1 + 1 + L2 + H;
    through(rig, false, s2, want2, "second data segment of the reopened conn");
  }
}

flow make_flow(bool v6, bool tcp, int i) {
  flow f;
  f.v6 = v6;
  f.tcp = tcp;
  f.client = v6 ? addr(("2001:2:0:9::" + std::to_string(1 + i)).c_str()) : addr(("198.19.0." + std::to_string(1 + i)).c_str());
  f.cport = static_cast<std::uint16_t>(31000 + i);
  f.id = 0x71000000u + static_cast<std::uint32_t>(i) * 0x10000u;
  return f;
}

// Service indices in the rig's configuration order.
constexpr std::size_t web = 0, dns = 1, web6 = 2, dns6 = 3;

}  // namespace

TEST_CASE("client_address = proxy_protocol_v2: TCP header in front of the first byte, sequence translation, "
          "UDP header on every datagram, exact bytes",
          "[lb]") {
  inprocess_rig rig({.name = "ppv2",
                     .tcp_service_extra = "client_address = proxy_protocol_v2\n",
                     .udp_service_extra = "client_address = proxy_protocol_v2\n"});
  for (const bool v6 : {false, true}) {
    INFO((v6 ? "IPv6" : "IPv4"));
    flow f = make_flow(v6, true, v6 ? 1 : 0);
    pp_tcp_flow(rig, f, pp_v2(f, 80));
    const std::size_t svc = v6 ? web6 : web;
    CHECK(ca_total(rig, svc, &lb::client_address_stats::pp_headers) == 3);
    CHECK(ca_total(rig, svc, &lb::client_address_stats::pp_again) == 1);
    CHECK(ca_total(rig, svc, &lb::client_address_stats::translated) == 13);

    // UDP: every datagram towards the server carries the header; replies cross unchanged.
    flow u = make_flow(v6, false, v6 ? 3 : 2);
    const frame_spec d = client_packet(u, rig.client_mac(), 0);
    rig.inject(false, {test::build_frame(d)});
    auto out = rig.collect(true, 1);
    REQUIRE(out.size() == 1);
    packet_info info;
    REQUIRE(parse(out[0], info) == drop_reason::none);
    u.lip = info.tuple.saddr;
    u.lport = ntoh16(info.tuple.sport);
    u.rs = info.tuple.daddr;
    u.rport = ntoh16(info.tuple.dport);
    frame_spec want = at_server(u, rig, d);
    want.payload = pp_v2(u, 53);
    want.payload.insert(want.payload.end(), d.payload.begin(), d.payload.end());
    frame w = test::build_frame(want);
    INFO("first datagram\n got  " << hex(out[0]) << "\n want " << hex(w));
    CHECK(out[0] == w);
    through(rig, false, d, want, "second datagram");
    frame_spec r = server_packet(u, rig.server_mac(), 0);
    through(rig, true, r, at_client(u, rig, r), "reply datagram");
    CHECK(ca_total(rig, v6 ? dns6 : dns, &lb::client_address_stats::pp_headers) == 2);
  }
  CHECK(rig.all_drops() == 0);
  const std::string leaks = rig.lb().drain_and_check();
  INFO(leaks);
  CHECK(leaks.empty());
}

TEST_CASE("client_address = proxy_protocol_v1: the text line in front of the first byte, exact bytes", "[lb]") {
  inprocess_rig rig({.name = "ppv1", .tcp_service_extra = "client_address = proxy_protocol_v1\n"});
  for (const bool v6 : {false, true}) {
    INFO((v6 ? "IPv6" : "IPv4"));
    flow f = make_flow(v6, true, v6 ? 5 : 4);
    const frame hdr = pp_v1(f);
    CHECK(std::string(hdr.begin(), hdr.end()) ==
          (v6 ? "PROXY TCP6 2001:2:0:9::6 2001:2:0:3::100 31005 80\r\n" : "PROXY TCP4 198.19.0.5 198.18.1.100 31004 80\r\n"));
    pp_tcp_flow(rig, f, hdr);
    CHECK(ca_total(rig, v6 ? web6 : web, &lb::client_address_stats::pp_headers) == 3);
  }
  CHECK(rig.all_drops() == 0);
  CHECK(rig.lb().drain_and_check().empty());
}

TEST_CASE("client_address = toa: the option in the SYN and in the segments acknowledging the SYN-ACK, "
          "exact bytes",
          "[lb]") {
  inprocess_rig rig({.name = "toa", .tcp_service_extra = "client_address = toa\n"});
  for (const bool v6 : {false, true}) {
    INFO((v6 ? "IPv6" : "IPv4"));
    flow f = make_flow(v6, true, v6 ? 7 : 6);
    const std::uint32_t c0 = f.id, s0 = f.id ^ 0x5a5a0000u;
    const frame toa = toa_option(f);
    frame syn_opts = toa;
    const frame m = mss_opts(1460);
    syn_opts.insert(syn_opts.end(), m.begin(), m.end());
    open_flow(rig, f, syn_opts);
    {
      const frame_spec sa = from_server(f, rig, tcp_flags::syn | tcp_flags::ack, s0, c0 + 1, {}, mss_opts(1460));
      frame_spec want = at_client(f, rig, sa);
      want.tcp_options = mss_opts(static_cast<std::uint16_t>(1500 - (v6 ? 40 : 20) - 20 - toa.size()));
      through(rig, true, sa, want, "SYN-ACK");
    }
    {
      const frame_spec a = from_client(f, rig, tcp_flags::ack, c0 + 1, s0 + 1, {});
      frame_spec want = at_server(f, rig, a);
      want.tcp_options = toa;
      through(rig, false, a, want, "ACK");
    }
    const frame d = bytes_of("GET / HTTP/1.0\r\n\r\n");
    {
      const frame_spec s = from_client(f, rig, tcp_flags::ack | tcp_flags::psh, c0 + 1, s0 + 1, d);
      frame_spec want = at_server(f, rig, s);
      want.tcp_options = toa;
      through(rig, false, s, want, "first data segment (still acknowledging the SYN-ACK)");
    }
    {
      const frame_spec s = from_server(f, rig, tcp_flags::ack | tcp_flags::psh, s0 + 1, c0 + 1 + 18, bytes_of("OK"));
      through(rig, true, s, at_client(f, rig, s), "server data");
    }
    {
      const frame_spec s = from_client(f, rig, tcp_flags::ack, c0 + 1 + 18, s0 + 3, {});
      through(rig, false, s, at_server(f, rig, s), "ACK of server data: no TOA");
    }
    CHECK(ca_total(rig, v6 ? web6 : web, &lb::client_address_stats::toa_inserted) == 3);
    CHECK(ca_total(rig, v6 ? web6 : web, &lb::client_address_stats::toa_no_room) == 0);
  }
  CHECK(rig.all_drops() == 0);
  CHECK(rig.lb().drain_and_check().empty());
}
