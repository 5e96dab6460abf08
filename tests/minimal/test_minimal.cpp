// SPDX-License-Identifier: BSD-3-Clause
// examples/minimal carries real traffic: its forwarder runs in-process on two net_ring ports (two
// queues each) behind software NIC models, so the client side spreads flows by RSS and the server
// side steers replies by the flow rules the forwarder installs. The test plays client and real server:
// it sends TCP and UDP over IPv4 and IPv6 to the VIP, compares every forwarded frame byte for byte
// with one built independently (tests/support/packet_frames.hpp computes checksums in full, so the
// incremental rewrite is checked too), answers from the server, checks the reply reaches the client
// from the lcore that opened the session, and then lets the sessions expire and checks that every
// session, timer and local port was given back.
#include "minimal/minimal.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/eal.hpp"
#include "support/nic_wire.hpp"
#include "support/packet_frames.hpp"

namespace {

using namespace std::chrono_literals;
using fnat::test::frame_spec;
using frame = std::vector<std::uint8_t>;

fnat::inet_addr addr_of(const char* s) { return *fnat::inet_addr::parse(s); }
const fnat::mac_addr client_gw{{0x02, 0xaa, 0, 0, 0, 0x01}};
const fnat::mac_addr server_gw{{0x02, 0xbb, 0, 0, 0, 0x01}};
const fnat::endpoint vip4{addr_of("198.18.1.100"), 80}, vip6{addr_of("2001:2:0:3::100"), 80};
const fnat::endpoint rs4{addr_of("198.18.2.11"), 8080}, rs6{addr_of("2001:2:0:2::11"), 8080};
const fnat::inet_addr lip4 = addr_of("198.18.2.100"), lip6 = addr_of("2001:2:0:2::100");
constexpr std::uint64_t second = 1'000'000'000;  // the forwarder's clock counts nanoseconds here

fnat::mac_addr port_mac(std::uint16_t port) {
  rte_ether_addr a{};
  REQUIRE(rte_eth_macaddr_get(port, &a) == 0);
  fnat::mac_addr m;
  std::memcpy(m.bytes.data(), a.addr_bytes, 6);
  return m;
}

// A frame's addressing; the rest keeps frame_spec's defaults (TTL 64, no payload).
frame_spec spec(const fnat::mac_addr& dst, const fnat::mac_addr& src, const fnat::inet_addr& saddr, std::uint16_t sport,
                const fnat::inet_addr& daddr, std::uint16_t dport, std::uint8_t proto, std::uint8_t flags) {
  frame_spec s;
  s.dst = dst, s.src = src, s.saddr = saddr, s.sport = sport, s.daddr = daddr, s.dport = dport;
  s.proto = proto, s.tcp_flags = flags;
  return s;
}

struct sent {
  std::uint16_t queue;  // the tx queue, i.e. the worker that sent it
  frame bytes;
};

// The forwarder on two ring ports, lcores 1 and 2 (driven from this thread, worker i on queue i).
struct rig {
  static inline int made = 0;  // ethdev names stay taken after a port closes: one pair per rig
  fnat::test::ring_port client{"min_c" + std::to_string(made), 2}, server{"min_s" + std::to_string(made++), 2};
  fnat::dpdk::nic_model cmodel = *fnat::dpdk::nic_model::make({.rx_queues = 2});
  fnat::dpdk::nic_model smodel = *fnat::dpdk::nic_model::make({.rx_queues = 2});
  fnat::dpdk::nic_model_ports nics;
  std::unique_ptr<minimal::forwarder<fnat::dpdk::nic_model_ops>> fwd;
  fnat::mac_addr cmac, smac;
  std::uint64_t now = 0;

  rig() {
    REQUIRE(nics.attach(client.port_id(), cmodel).has_value());
    REQUIRE(nics.attach(server.port_id(), smodel).has_value());
    minimal::config c{.client_port = client.port_id(),
                      .server_port = server.port_id(),
                      .vips = {vip4, vip6},
                      .servers = {rs4, rs6},
                      .lips = {lip4, lip6},
                      .client_gw = client_gw,
                      .server_gw = server_gw,
                      .lcores = {1, 2},
                      .sessions = 1024,
                      .timeouts = {.syn_recv = 2s, .udp_oneway = 1s, .udp_normal = 1s}};
    auto f = minimal::forwarder<fnat::dpdk::nic_model_ops>::make(c, {.value = 0, .hz = second}, nics.ops());
    INFO((f ? "" : f.err().message()));
    REQUIRE(f);
    fwd = std::move(*f);
    cmac = port_mac(client.port_id());
    smac = port_mac(server.port_id());
  }
  ~rig() { fwd.reset(); }  // drains, then removes its flow rules while the models exist

  // Delivers a frame to a port (the model picks the rx queue), runs one round of every worker at
  // `now`, and returns what left the other port (and anything sent back out of the same one).
  std::vector<sent> exchange(const frame& f, bool to_server) {
    rte_mbuf* m = fnat::test::make_mbuf(f);
    const auto st = fnat::test::wire_deliver(to_server ? smodel : cmodel, to_server ? server : client, &m, 1);
    REQUIRE(st.delivered == 1);
    for (std::size_t i = 0; i < fwd->workers.size(); ++i) fwd->poll(i, now);
    std::vector<sent> out = drain(!to_server), back = drain(to_server);
    out.insert(out.end(), back.begin(), back.end());
    return out;
  }
  std::vector<sent> drain(bool from_server) {
    std::vector<sent> out;
    const fnat::test::ring_port& p = from_server ? server : client;
    for (std::uint16_t q = 0; q < p.queues(); ++q) {
      void* obj = nullptr;
      while (rte_ring_dequeue(p.tx_ring(q), &obj) == 0) {
        auto* m = static_cast<rte_mbuf*>(obj);
        const auto* d = rte_pktmbuf_mtod(m, const std::uint8_t*);
        out.push_back({q, frame(d, d + rte_pktmbuf_data_len(m))});
        rte_pktmbuf_free(m);
      }
    }
    return out;
  }
  std::size_t sessions() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < fwd->workers.size(); ++i) n += fwd->workers[i]->table->size();
    return n;
  }
  std::uint64_t drops(minimal::drop d) const {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < fwd->workers.size(); ++i) n += fwd->workers[i]->drops[static_cast<std::size_t>(d)];
    return n;
  }
};

struct flow_case {
  bool v6, tcp;
};

}  // namespace

TEST_CASE("minimal: TCP and UDP over IPv4 and IPv6 forwarded byte for byte both ways, then expired without a leak",
          "[minimal]") {
  rig r;
  CHECK(r.fwd->steering.mode() == fnat::dpdk::reply_steering_mode::flow);
  const flow_case cases[] = {{false, true}, {false, false}, {true, true}, {true, false}};
  std::set<std::uint16_t> workers_used;
  std::size_t opened = 0;
  for (const flow_case& fc : cases)
    for (std::uint16_t n = 0; n < 6; ++n) {  // several clients, so that RSS spreads them over both lcores
      CAPTURE(fc.v6, fc.tcp, n);
      const fnat::endpoint& vip = fc.v6 ? vip6 : vip4;
      const fnat::endpoint& rs = fc.v6 ? rs6 : rs4;
      const fnat::inet_addr& lip = fc.v6 ? lip6 : lip4;
      const std::string c = (fc.v6 ? "2001:2:0:1::" : "198.18.0.") + std::to_string(10 + n);
      // 1. client -> VIP: a SYN, or a datagram with data.
      frame_spec in = spec(r.cmac, client_gw, addr_of(c.c_str()), static_cast<std::uint16_t>(40000 + n), vip.addr,
                           vip.port, fc.tcp ? fnat::ipproto::tcp : fnat::ipproto::udp, fnat::tcp_flags::syn);
      in.ip_id = static_cast<std::uint16_t>(0x100 + n), in.flow_label = 0x12345, in.seq = 0x11110000u + n;
      if (!fc.tcp) in.payload = {'q', 'u', 'e', 'r', 'y', static_cast<std::uint8_t>(n)};
      const auto to_rs = r.exchange(fnat::test::build_frame(in), false);
      REQUIRE(to_rs.size() == 1);
      fnat::packet_info pi;
      REQUIRE(fnat::parse(to_rs[0].bytes, pi) == fnat::drop_reason::none);
      const std::uint16_t lport = fnat::ntoh16(pi.tuple.sport);
      const std::uint16_t worker = to_rs[0].queue;
      // The lport belongs to the lcore that opened the session, so its replies are steered back there.
      CHECK(r.fwd->steering.owner_of(lip, lport, rs) == worker);
      workers_used.insert(worker);
      ++opened;
      frame_spec out = in;  // what the real server must receive: LIP:lport -> RS:rport, TTL - 1
      out.dst = server_gw, out.src = r.smac, out.saddr = lip, out.daddr = rs.addr;
      out.sport = lport, out.dport = rs.port, out.ttl = 63;
      CHECK(to_rs[0].bytes == fnat::test::build_frame(out));

      // 2. the real server answers LIP:lport; the reply reaches the client as VIP -> client.
      frame_spec reply = spec(r.smac, server_gw, rs.addr, rs.port, lip, lport, in.proto,
                              fnat::tcp_flags::syn | fnat::tcp_flags::ack);
      reply.ip_id = 0x7777, reply.flow_label = 0x54321, reply.seq = 0x22220000u + n, reply.ack = in.seq + 1;
      if (!fc.tcp) reply.payload = {'a', 'n', 's', 'w', 'e', 'r'};
      const auto to_client = r.exchange(fnat::test::build_frame(reply), true);
      REQUIRE(to_client.size() == 1);
      CHECK(to_client[0].queue == worker);  // steered to the owner: no other lcore saw it
      frame_spec back = reply;
      back.dst = client_gw, back.src = r.cmac, back.saddr = vip.addr, back.daddr = in.saddr;
      back.sport = vip.port, back.dport = in.sport, back.ttl = 63;
      CHECK(to_client[0].bytes == fnat::test::build_frame(back));

      if (fc.tcp) {  // 3. the client's ACK with data takes the same way (established now)
        frame_spec data = in;
        data.tcp_flags = fnat::tcp_flags::ack | fnat::tcp_flags::psh;
        data.seq = in.seq + 1, data.ack = reply.seq + 1, data.payload = {'G', 'E', 'T', ' ', '/'};
        const auto fwd_data = r.exchange(fnat::test::build_frame(data), false);
        REQUIRE(fwd_data.size() == 1);
        CHECK(fwd_data[0].queue == worker);
        frame_spec want = data;
        want.dst = server_gw, want.src = r.smac, want.saddr = lip, want.daddr = rs.addr;
        want.sport = lport, want.dport = rs.port, want.ttl = 63;
        CHECK(fwd_data[0].bytes == fnat::test::build_frame(want));
        if (n == 0) {  // the server's tuple arriving from the client side: dropped, the session unchanged
          frame_spec spoof = reply;
          spoof.dst = r.cmac, spoof.tcp_flags = fnat::tcp_flags::rst;
          CHECK(r.exchange(fnat::test::build_frame(spoof), false).empty());
          auto hit = r.fwd->workers[worker]->table->lookup(
              fnat::make_tuple(fnat::ipproto::tcp, rs.addr, rs.port, lip, lport));
          REQUIRE(hit.conn != nullptr);
          CHECK(hit.conn->state == std::uint8_t(fnat::tcp_state::established));
        }
      }
    }
  CHECK(workers_used.size() == 2);  // both lcores opened sessions (RSS on the client side)
  CHECK(r.sessions() == opened);
  for (std::size_t i = 0; i < r.fwd->workers.size(); ++i) CHECK(r.fwd->workers[i]->leak_report().empty());

  // Not a first packet: a bare ACK to the VIP, a SYN to another port, a reply to an unused lport.
  frame_spec stray = spec(r.cmac, client_gw, addr_of("198.18.0.99"), 40000, vip4.addr, 80, fnat::ipproto::tcp,
                          fnat::tcp_flags::ack);
  CHECK(r.exchange(fnat::test::build_frame(stray), false).empty());
  stray.tcp_flags = fnat::tcp_flags::syn, stray.dport = 81;
  CHECK(r.exchange(fnat::test::build_frame(stray), false).empty());
  CHECK(r.drops(minimal::drop::no_session) == 2 + 2);  // and the two spoofed RSTs
  CHECK(r.sessions() == opened);

  // 3. Idle expiry: nothing before the shortest timeout (1 s), everything once the longest (TCP
  // established, 90 s) has passed; every port goes back to its pool.
  r.now = second / 2;
  for (std::size_t i = 0; i < r.fwd->workers.size(); ++i) r.fwd->poll(i, r.now);
  CHECK(r.sessions() == opened);
  r.now = 200 * second;
  for (std::size_t i = 0; i < r.fwd->workers.size(); ++i) r.fwd->poll(i, r.now);
  CHECK(r.sessions() == 0);
  std::uint64_t expired = 0;
  for (std::size_t i = 0; i < r.fwd->workers.size(); ++i) {
    expired += r.fwd->workers[i]->table->stats().expired;
    CHECK(r.fwd->workers[i]->leak_report().empty());
    for (const auto& p : r.fwd->workers[i]->pools) CHECK(p.stats().used == 0);
  }
  CHECK(expired == opened);

  // An expired session is gone: the server's late reply is dropped, not forwarded.
  frame_spec late = spec(r.smac, server_gw, rs4.addr, rs4.port, lip4, 1025, fnat::ipproto::udp, 0);
  late.payload = {'x'};
  const std::uint64_t before = r.drops(minimal::drop::no_session);
  CHECK(r.exchange(fnat::test::build_frame(late), true).empty());
  CHECK(r.drops(minimal::drop::no_session) == before + 1);
}

TEST_CASE("minimal: answers ARP for its VIP and counts what it cannot parse by reason", "[minimal]") {
  rig r;
  std::array<std::uint8_t, 128> buf{};
  const std::size_t len = fnat::build_arp_request(buf, client_gw, addr_of("198.18.0.254").v4(), vip4.addr.v4());
  REQUIRE(len > 0);
  const auto got = r.exchange(frame(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(len)), false);
  REQUIRE(got.size() == 1);
  fnat::packet_info pi;
  REQUIRE(fnat::parse(got[0].bytes, pi) == fnat::drop_reason::none);
  REQUIRE(pi.kind == fnat::packet_kind::arp);
  const fnat::arp_message m = fnat::parse_arp(got[0].bytes, pi);
  CHECK(m.op == fnat::arp_op::reply);
  CHECK(m.sha == r.cmac);
  CHECK(m.spa == vip4.addr.v4());
  CHECK(m.tha == client_gw);

  CHECK(r.exchange(frame(60, 0xee), false).empty());  // EtherType 0xeeee
  std::uint64_t parse_drops = 0;
  for (std::size_t i = 0; i < r.fwd->workers.size(); ++i)
    parse_drops += r.fwd->workers[i]->parse_drops[static_cast<std::size_t>(fnat::drop_reason::unsupported_ethertype)];
  CHECK(parse_drops == 1);
  CHECK(r.sessions() == 0);
}
