// SPDX-License-Identifier: BSD-3-Clause
// Stateful fuzzer of the balancer's per-lcore step: sequences of packets (client -> VIP and real
// server -> LIP, any TCP flags, crafted sources, corrupted checksums, TTL 1) and clock advances,
// through fnat_lb's worker::process_burst and worker::expire, checked after every step against what
// the packet was and what the worker held before it.
//
// ## Set-up (once, in LLVMFuzzerInitialize)
// EAL without hugepages or PCI, a unique file prefix; two balancers (fnat_lb's own start-up code),
// each on two net_ring ports (client side, server side), one worker each, never launched: the
// fuzzer calls the worker's step itself on the main lcore, and a tx sink collects what it sends.
//  - "table": conn table (24) smaller than the conn objects (32), half-open bound 16, one-way UDP
//    bound 10, plenty of local ports: table_full and the per-state bounds are reachable;
//  - "ports": 4 local ports per LIP in one bucket: port_exhausted is reachable.
// Both refuse SYNs with resets (rate limit out of reach, so every refusal is answered).
//
// ## Input
// Byte 0 picks the balancer; then operations of a few bytes each (fuzz_support.hpp's reader):
//   op % 3 == 0: a client packet: source (valid clients beyond the gateway, an on-link client, the
//                VIP, a LIP, a real server, the client network's broadcast, loopback), client port,
//                protocol and destination port, TCP flags, corruption (none, IPv4 header checksum,
//                L4 checksum, TTL 1), ISN;
//   op % 3 == 1: a real server's packet to a conn the model knows (or to a LIP port nobody holds);
//   op % 3 == 2: the clock moves 0.1..25.6 s and the timer runs.
// Each input starts from an empty worker (every conn removed, then the leak check must pass), and
// ends by emptying it again.
//
// ## Checks after every step
//  - accounting: each packet ends in exactly one of inbound, outbound, or a drop reason;
//  - every frame sent has valid IPv4 and L4 checksums, except a forwarded packet that came with a
//    wrong L4 checksum (the incremental rewrite keeps it wrong, by design);
//  - a packet with a wrong IPv4 header checksum, loopback, own or broadcast source, or a source
//    failing the reverse path, never makes a conn and is counted under its reason; a first packet
//    with a wrong L4 checksum likewise; TTL 1 likewise;
//  - a new conn appears in the table under the tuple of the packet, and its rewritten frame leaves
//    on the server port from a LIP; a packet of a known conn is forwarded;
//  - a refusal happens only at its bound (half_open_limit: half-open conns at the bound;
//    udp_oneway_limit likewise; table_full: the table at capacity), and a refused SYN is answered by
//    exactly one reset, RST|ACK with ack = ISN + 1, from the VIP; a refusal of a tuple and ISN never
//    refused before counts one refused connection;
//  - the worker's half-open and one-way counts equal a count over the table; one-way conns stay
//    within their bound; a conn is made only below its bound; table size = conn objects in use =
//    local ports in use;
//  - expiry: the conns that leave the table are the conns counted expired.
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <fnat/core/packet.hpp>
#include <fnat/core/tcp_reset.hpp>

#include "fnat_lb/balancer.hpp"
#include "fuzz/fuzz_support.hpp"
#include "support/packet_frames.hpp"

namespace {

using namespace fnat;
using fnat::test::build_frame;
using fnat::test::frame_spec;

const mac_addr gw_mac{{0x02, 0xaa, 0, 0, 0, 0xfe}};
const mac_addr rs_mac1{{0x02, 0xbb, 0, 0, 0, 0x01}};
fnat::inet_addr A(const char* s) { return *fnat::inet_addr::parse(s); }

struct sent_frame {
  std::uint16_t port_id;
  std::vector<std::uint8_t> bytes;
};
std::vector<sent_frame> g_sent;

std::uint16_t sink(void*, std::uint16_t port_id, std::uint16_t, rte_mbuf** pkts, std::uint16_t n) {
  for (std::uint16_t i = 0; i < n; ++i) {
    std::vector<std::uint8_t> b(rte_pktmbuf_pkt_len(pkts[i]));
    const void* p = rte_pktmbuf_read(pkts[i], 0, static_cast<std::uint32_t>(b.size()), b.data());
    FUZZ_CHECK(p != nullptr);
    if (p != b.data()) std::memcpy(b.data(), p, b.size());
    g_sent.push_back({port_id, std::move(b)});
    rte_pktmbuf_free(pkts[i]);
  }
  return n;
}

std::uint16_t make_ring_port(const std::string& name) {
  rte_ring* rx = rte_ring_create((name + "_rx").c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx = rte_ring_create((name + "_tx").c_str(), 256, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  FUZZ_CHECK(rx != nullptr && tx != nullptr);
  const int id = rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, 0);
  FUZZ_CHECK(id >= 0);
  return static_cast<std::uint16_t>(id);
}

std::string port_name(std::uint16_t id) {
  char n[RTE_ETH_NAME_MAX_LEN];
  FUZZ_CHECK(rte_eth_dev_get_name_by_port(id, n) == 0);
  return n;
}

struct rig {
  lb::balancer* lb = nullptr;  // never destroyed: lives as long as the process
  lb::worker* w = nullptr;
  std::uint16_t cport = 0, sport = 0;
  mac_addr cmac{}, smac{};
  std::uint32_t table_cap = 0, half_open_max = 0, oneway_max = 0;
};
rig g_rigs[2];
std::uint64_t g_now = 0;  // the worker's clock (TSC ticks), only ever moved forward
std::uint64_t g_hz = 0;

mac_addr mac_of(std::uint16_t id) {
  rte_ether_addr a{};
  FUZZ_CHECK(rte_eth_macaddr_get(id, &a) == 0);
  mac_addr m;
  std::memcpy(m.bytes.data(), a.addr_bytes, 6);
  return m;
}

void build_rig(rig& r, const std::string& name, const std::string& global) {
  r.cport = make_ring_port(name + "c");
  r.sport = make_ring_port(name + "s");
  rte_eth_dev_stop(r.cport);
  rte_eth_dev_stop(r.sport);
  std::string t = "[global]\nworkers = 1\nsteering = redirect\ntelemetry = off\nsyn_refusal = rst\n"
                  "rst_rate = 10000000\nrst_burst = 10000000\n" + global;
  t += "[timeouts]\ntcp_syn_recv = 2\ntcp_established = 5\ntcp_close = 1\ntcp_time_wait = 1\ntcp_fin_wait = 1\n"
       "tcp_close_wait = 1\ntcp_last_ack = 1\nudp_oneway = 1\nudp_normal = 2\n";
  t += "[port " + port_name(r.cport) + "]\nrole = client\naddress = 198.18.0.1/24\naddress = 198.18.1.1/24\n"
       "gateway = 198.18.0.254\nneighbour = 198.18.0.254 02:aa:00:00:00:fe\n";
  t += "[port " + port_name(r.sport) + "]\nrole = server\naddress = 198.18.2.1/24\n"
       "neighbour = 198.18.2.11 02:bb:00:00:00:01\nneighbour = 198.18.2.12 02:bb:00:00:00:02\n";
  t += "[service web]\nvip = 198.18.1.100\nvport = 80\nproto = tcp\nlip = 198.18.2.100\nlip = 198.18.2.101\n"
       "rs = 198.18.2.11:8080\nrs = 198.18.2.12:8080\n";
  t += "[service dns]\nvip = 198.18.1.100\nvport = 53\nproto = udp\nlip = 198.18.2.100\nrs = 198.18.2.11:5353\n";
  const std::string path = "/tmp/fnat-fuzz-worker-" + std::to_string(::getpid()) + "-" + name + ".ini";
  std::ofstream(path) << t;
  auto cfg = lb::load_config(path);
  std::remove(path.c_str());
  if (!cfg) std::fprintf(stderr, "fuzz_worker: %s\n", cfg.err().message().c_str());
  FUZZ_CHECK(cfg);
  auto b = lb::balancer::make(*cfg, dpdk::rte_ethdev_ops{}, {.mbufs = 4096, .tx = sink, .name = "fw" + name});
  if (!b) std::fprintf(stderr, "fuzz_worker: %s\n", b.err().message().c_str());
  FUZZ_CHECK(b);
  r.lb = b->release();
  r.w = r.lb->workers()[0].get();
  r.cmac = mac_of(r.cport);
  r.smac = mac_of(r.sport);
  r.table_cap = cfg->global.table_capacity();
  r.half_open_max = cfg->global.half_open_bound();
  r.oneway_max = cfg->global.udp_oneway_bound();
}

// The worker's table, for lookups (conn_table's find and for_each are not const; they only read).
lb::lb_table& table_of(const lb::worker& w) { return const_cast<lb::lb_table&>(w.table()); }

// Tuples as map keys: their bytes (inet_tuple has no padding of unspecified value).
struct tuple_less {
  bool operator()(const inet_tuple& a, const inet_tuple& b) const noexcept { return std::memcmp(&a, &b, sizeof a) < 0; }
};
std::string refusal_key(const inet_tuple& t, std::uint32_t isn) {
  std::string k(reinterpret_cast<const char*>(&t), sizeof t);
  k.append(reinterpret_cast<const char*>(&isn), sizeof isn);
  return k;
}

// What the model knows of a conn: its tuples as the packets showed them.
struct model_conn {
  inet_tuple in, out;
};

struct stats_view {
  std::uint64_t in, out, drops, created, expired, refused, rsts;
};
stats_view view(const lb::worker& w) {
  const auto& s = w.stats();
  return {s.inbound.get(), s.outbound.get(), s.total_drops(), s.conns_created.get(), s.conns_expired.get(),
          s.refused_conns.get(), s.rsts_sent.get()};
}
std::uint64_t drop_of(const lb::worker& w, lb::lb_drop d) { return w.stats().drops[static_cast<std::size_t>(d)].get(); }
std::uint64_t pdrop_of(const lb::worker& w, drop_reason d) {
  return w.stats().parse_drops[static_cast<std::size_t>(d)].get();
}

// Half-open and one-way conns counted over the table; and the table's size.
void count_states(const lb::worker& w, std::uint64_t& half, std::uint64_t& oneway, std::uint64_t& total) {
  half = oneway = total = 0;
  table_of(w).for_each([&](lb::lb_conn& c) {
    ++total;
    if (c.proto == ipproto::tcp) {
      const auto s = static_cast<tcp_state>(c.state);
      half += s == tcp_state::syn_recv || s == tcp_state::syn_sent;
    } else {
      oneway += static_cast<udp_state>(c.state) == udp_state::oneway;
    }
  });
}

void check_invariants(rig& r) {
  std::uint64_t half = 0, oneway = 0, total = 0;
  count_states(*r.w, half, oneway, total);
  FUZZ_CHECK(half == r.w->half_open_now());
  FUZZ_CHECK(oneway == r.w->udp_oneway_now());
  // (No "half <= bound" here: the bounds refuse new conns; an existing conn may go back to SYN_RECV
  // or SYN_SENT, a new SYN on a closing conn's tuple, and that takes no new resource. UDP conns never
  // go back to one-way, so that bound holds always.)
  FUZZ_CHECK(oneway <= r.oneway_max);
  FUZZ_CHECK(total == r.w->table().size());
  FUZZ_CHECK(total <= r.table_cap);
  r.w->publish();
  FUZZ_CHECK(r.w->stats().conn_objects_in_use.get() == total);
  FUZZ_CHECK(r.w->stats().ports_in_use.get() == total);
}

// Removes every conn as if it had expired (drain_all would also clear the static neighbours: it is
// for shutdown). Afterwards nothing may be in use.
void empty_worker(lb::worker& w) {
  std::vector<inet_tuple> keys;
  table_of(w).for_each([&](lb::lb_conn& c) { keys.push_back(c.in()); });
  for (const inet_tuple& k : keys) FUZZ_CHECK(w.remove_conn(k));
  FUZZ_CHECK(w.table().size() == 0);
  FUZZ_CHECK(w.leak_report().empty());
  FUZZ_CHECK(w.half_open_now() == 0 && w.udp_oneway_now() == 0);
}

bool verifies(const std::vector<std::uint8_t>& f, packet_info& info) {
  return parse(f, info, {.verify_ip_checksum = true, .verify_l4_checksum = true}) == drop_reason::none;
}

void inject(rig& r, bool to_server, const std::vector<std::uint8_t>& frame) {
  rte_mbuf* m = rte_pktmbuf_alloc(r.lb->shared().mbufs);
  FUZZ_CHECK(m != nullptr);
  char* p = rte_pktmbuf_append(m, static_cast<std::uint16_t>(frame.size()));
  FUZZ_CHECK(p != nullptr);
  std::memcpy(p, frame.data(), frame.size());
  m->port = to_server ? r.sport : r.cport;
  g_sent.clear();
  r.w->set_now(g_now);
  r.w->process_burst(to_server ? 1 : 0, &m, 1);
  r.w->flush();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string prefix = "--file-prefix=fnat-fuzz-worker-" + std::to_string(::getpid());
  const char* argv[] = {"fuzz_worker", "--no-huge", "--no-shconf", "--no-pci", "-m", "256", "--lcores", "0-1",
                        "--log-level", "lib.*:error", prefix.c_str()};
  if (rte_eal_init(static_cast<int>(sizeof argv / sizeof argv[0]), const_cast<char**>(argv)) < 0) {
    std::fprintf(stderr, "fuzz_worker: rte_eal_init failed\n");
    std::abort();
  }
  g_hz = rte_get_tsc_hz();
  build_rig(g_rigs[0], "t", "conns_per_lcore = 32\nconn_table_capacity = 24\nmax_half_open = 16\nmax_udp_oneway = 10\n"
                            "local_ports = 30000-30063\nsa_pool_buckets = 2\n");
  build_rig(g_rigs[1], "p", "conns_per_lcore = 64\nlocal_ports = 30000-30003\nsa_pool_buckets = 1\n");
  g_now = rte_rdtsc();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::reader in(data, size);
  rig& r = g_rigs[in.u8() & 1];
  lb::worker& w = *r.w;

  // A fresh worker: whatever the last input left is removed; nothing may leak. ISNs carry the input's
  // number, so that the worker's recent-refusals cache, which outlives inputs, never holds one of
  // this input's (tuple, ISN) pairs before this input refuses it.
  empty_worker(w);
  static std::uint32_t input_no = 0;
  ++input_no;
  const stats_view start = view(w);
  const std::uint64_t drops_start = w.stats().total_drops();

  std::map<inet_tuple, model_conn, tuple_less> conns;  // by inbound tuple, as created in this input
  std::set<std::string> refused;                        // (tuple, ISN) refused in this input
  static const char* const sources[] = {"198.19.0.1", "198.19.0.2", "198.19.1.7",  "198.19.2.9", "198.18.0.77",
                                        "198.18.1.100", "198.18.2.100", "198.18.2.11", "198.18.0.255", "127.0.0.1"};
  const std::size_t valid_sources = 5;

  while (!in.empty()) {
    const std::uint8_t op = in.u8() % 3;
    if (op == 2) {
      const std::uint64_t before = w.stats().conns_expired.get();
      const std::size_t size_before = w.table().size();
      g_now += (std::uint64_t{in.u8()} + 1) * (g_hz / 10);
      (void)w.expire(g_now);
      const std::uint64_t expired = w.stats().conns_expired.get() - before;
      FUZZ_CHECK(size_before - w.table().size() == expired);
      for (auto it = conns.begin(); it != conns.end();)
        it = table_of(w).find(it->first) ? std::next(it) : conns.erase(it);
      check_invariants(r);
      continue;
    }
    const stats_view s0 = view(w);
    std::array<std::uint64_t, lb::lb_drop_count> d0{};
    for (std::size_t i = 0; i < d0.size(); ++i) d0[i] = w.stats().drops[i].get();
    std::array<std::uint64_t, drop_reason_count> p0{};
    for (std::size_t i = 0; i < p0.size(); ++i) p0[i] = w.stats().parse_drops[i].get();
    const std::uint64_t half0 = w.half_open_now(), oneway0 = w.udp_oneway_now(), size0 = w.table().size();
    frame_spec f;
    bool to_server = false, corrupt_l4 = false, corrupt_ip = false, ttl1 = false, known = false;
    fnat::inet_addr known_client;
    std::size_t src = 0;
    if (op == 0) {
      src = in.u8() % (sizeof sources / sizeof sources[0]);
      f.dst = r.cmac;
      f.src = gw_mac;
      f.saddr = A(sources[src]);
      f.daddr = A("198.18.1.100");
      f.sport = static_cast<std::uint16_t>(40000 + (in.u8() & 7));
      const std::uint8_t svc = in.u8();
      f.proto = (svc & 1) ? ipproto::udp : ipproto::tcp;
      f.dport = (svc & 6) == 6 ? 81 : (f.proto == ipproto::tcp ? 80 : 53);
      f.tcp_flags = in.u8();
      const std::uint8_t c = in.u8() & 7;
      corrupt_ip = c == 1;
      corrupt_l4 = c == 2;
      ttl1 = c == 3;
      if (ttl1) f.ttl = 1;
      f.seq = (input_no << 12) + 0x10u * in.u8();
      f.payload = {'q'};
      if (f.proto == ipproto::tcp && (f.tcp_flags & tcp_flags::syn)) f.payload.clear();
    } else {
      to_server = true;
      const std::uint8_t pick = in.u8();
      f.dst = r.smac;
      f.src = rs_mac1;
      f.tcp_flags = in.u8();
      if (!conns.empty()) {
        auto it = conns.begin();
        std::advance(it, pick % conns.size());
        const inet_tuple& o = it->second.out;
        f.saddr = o.saddr;
        f.daddr = o.daddr;
        f.sport = ntoh16(o.sport);
        f.dport = ntoh16(o.dport);
        f.proto = o.proto;
        known = true;
        known_client = it->second.in.saddr;
      } else {
        f.saddr = A("198.18.2.11");
        f.daddr = A("198.18.2.100");
        f.sport = 8080;
        f.dport = static_cast<std::uint16_t>(30000 + pick % 64);
        f.proto = ipproto::tcp;
      }
      f.payload = {'a'};
    }
    std::vector<std::uint8_t> frame = build_frame(f);
    packet_info pi;
    FUZZ_CHECK(parse(frame, pi) == drop_reason::none || src == 9);
    if (corrupt_ip) frame[14 + 10] ^= 0x5a;
    if (corrupt_l4) frame[14 + 20 + (f.proto == ipproto::tcp ? 16 : 6)] ^= 0x21;
    const bool was_known = op == 0 ? static_cast<bool>(table_of(w).find(pi.tuple)) : known;
    inject(r, to_server, frame);
    const stats_view s1 = view(w);

    // Accounting: exactly one outcome per packet.
    if ((s1.in - s0.in) + (s1.out - s0.out) + (s1.drops - s0.drops) != 1) {
      std::fprintf(stderr, "op %u src %zu in +%llu out +%llu drops +%llu:", op, src, (unsigned long long)(s1.in - s0.in),
                   (unsigned long long)(s1.out - s0.out), (unsigned long long)(s1.drops - s0.drops));
      for (std::size_t i = 0; i < lb::lb_drop_count; ++i)
        if (w.stats().drops[i].get() != d0[i]) std::fprintf(stderr, " %s", std::string(lb::to_string(static_cast<lb::lb_drop>(i))).c_str());
      for (std::size_t i = 0; i < drop_reason_count; ++i)
        if (w.stats().parse_drops[i].get() != p0[i]) std::fprintf(stderr, " %s", std::string(to_string(static_cast<drop_reason>(i))).c_str());
      std::fprintf(stderr, "\n");
    }
    FUZZ_CHECK((s1.in - s0.in) + (s1.out - s0.out) + (s1.drops - s0.drops) == 1);
    const bool forwarded = s1.in + s1.out != s0.in + s0.out;
    const bool created = s1.created != s0.created;
    // Every frame sent verifies, but a forwarded one that came with a wrong L4 checksum.
    for (const sent_frame& sf : g_sent) {
      packet_info oi;
      if (forwarded && corrupt_l4) {
        FUZZ_CHECK(parse(sf.bytes, oi, {.verify_ip_checksum = true}) == drop_reason::none);
        FUZZ_CHECK(parse(sf.bytes, oi, {.verify_l4_checksum = true}) == drop_reason::bad_l4_checksum);
      } else {
        FUZZ_CHECK(verifies(sf.bytes, oi));
      }
    }
    const auto dmoved = [&](lb::lb_drop d) { return drop_of(w, d) - d0[static_cast<std::size_t>(d)] == 1; };
    const auto pmoved = [&](drop_reason d) { return pdrop_of(w, d) - p0[static_cast<std::size_t>(d)] == 1; };
    if (src == 9) FUZZ_CHECK(pmoved(drop_reason::bad_source));
    if (corrupt_ip && src != 9) FUZZ_CHECK(pmoved(drop_reason::bad_ip_checksum));
    if (op == 0 && src >= valid_sources) FUZZ_CHECK(!created);
    // A packet that would be a first packet (to a service, a SYN or a datagram, no conn, TTL > 1)
    // meets the trust checks in their order: L4 checksum, own / broadcast source, reverse path.
    const bool first = op == 0 && !was_known && !corrupt_ip && !ttl1 && src != 9 && f.dport != 81 &&
                       (pi.proto == ipproto::udp || pi.is_tcp_syn());
    if (first && corrupt_l4) FUZZ_CHECK(pmoved(drop_reason::bad_l4_checksum));
    if (first && !corrupt_l4 && (src == 5 || src == 6)) FUZZ_CHECK(dmoved(lb::lb_drop::own_source));
    if (first && !corrupt_l4 && src == 7) FUZZ_CHECK(dmoved(lb::lb_drop::reverse_path));
    if (first && !corrupt_l4 && src == 8) FUZZ_CHECK(dmoved(lb::lb_drop::broadcast_source));
    if (created) {
      FUZZ_CHECK(op == 0 && !was_known && !corrupt_ip && !corrupt_l4 && !ttl1 && src < valid_sources);
      FUZZ_CHECK(pi.proto == ipproto::udp || pi.is_tcp_syn());
      FUZZ_CHECK(f.proto == ipproto::tcp ? half0 < r.half_open_max : oneway0 < r.oneway_max);
      FUZZ_CHECK(size0 < r.table_cap);
      const auto h = table_of(w).find(pi.tuple);
      FUZZ_CHECK(h && h.dir == direction::inbound);
      FUZZ_CHECK(g_sent.size() == 1 && g_sent[0].port_id == r.sport);
      packet_info oi;
      FUZZ_CHECK(verifies(g_sent[0].bytes, oi));
      if (!(oi.tuple == h.conn->out().reversed()))
        std::fprintf(stderr, "sent %s:%u -> %s:%u p%u, conn out %s:%u -> %s:%u p%u\n", oi.tuple.saddr.to_string().c_str(),
                     ntoh16(oi.tuple.sport), oi.tuple.daddr.to_string().c_str(), ntoh16(oi.tuple.dport), oi.tuple.proto,
                     h.conn->out().saddr.to_string().c_str(), ntoh16(h.conn->out().sport),
                     h.conn->out().daddr.to_string().c_str(), ntoh16(h.conn->out().dport), h.conn->out().proto);
      FUZZ_CHECK(oi.tuple == h.conn->out().reversed());
      FUZZ_CHECK(oi.tuple.saddr == A("198.18.2.100") || oi.tuple.saddr == A("198.18.2.101"));
      conns[pi.tuple] = {pi.tuple, h.conn->out()};
    }
    if (op == 0 && !corrupt_ip && !corrupt_l4 && !ttl1 && was_known) FUZZ_CHECK(forwarded && !created);
    // A packet of a known conn is forwarded; towards the on-link client, whose address nobody answers
    // ARP for, it is held (forwarded, in the counters) until the hold queue is full, then dropped.
    if (op == 1 && known)
      FUZZ_CHECK(forwarded || (known_client == A(sources[4]) && dmoved(lb::lb_drop::unknown_neighbour)));
    // Refusals only at their bound; a refused SYN gets exactly one reset.
    const bool refusal = first && !corrupt_l4 && !forwarded && src < valid_sources;
    if (refusal) {
      // The packet passed every check and was still not taken: a bound, the table, the objects or the
      // ports, each counted under its reason, and only when it is really reached.
      if (dmoved(lb::lb_drop::half_open_limit)) {
        FUZZ_CHECK(f.proto == ipproto::tcp && half0 >= r.half_open_max);
      } else if (dmoved(lb::lb_drop::udp_oneway_limit)) {
        FUZZ_CHECK(f.proto == ipproto::udp && oneway0 >= r.oneway_max);
      } else if (dmoved(lb::lb_drop::table_full)) {
        FUZZ_CHECK(size0 >= r.table_cap);
      } else if (dmoved(lb::lb_drop::conn_pool_empty)) {
        FUZZ_CHECK(size0 >= r.lb->config().global.conns_per_lcore);
      } else {
        FUZZ_CHECK(dmoved(lb::lb_drop::port_exhausted) && &r == &g_rigs[1]);
      }
      if (f.proto == ipproto::tcp) {
        FUZZ_CHECK(s1.rsts - s0.rsts == 1);
        FUZZ_CHECK(g_sent.size() == 1 && g_sent[0].port_id == r.cport);
        packet_info ri;
        FUZZ_CHECK(verifies(g_sent[0].bytes, ri));
        FUZZ_CHECK(ri.tcp_flags == (tcp_flags::rst | tcp_flags::ack));
        FUZZ_CHECK(ri.tuple == pi.tuple.reversed());
        FUZZ_CHECK(load_be32(g_sent[0].bytes.data() + ri.l4_off + 8) == f.seq + 1);
        const bool first = refused.insert(refusal_key(pi.tuple, f.seq)).second;
        if (first) FUZZ_CHECK(s1.refused - s0.refused == 1);
        FUZZ_CHECK(s1.refused - s0.refused <= 1);
      } else {
        FUZZ_CHECK(g_sent.empty() && s1.refused == s0.refused);
      }
    } else {
      FUZZ_CHECK(s1.rsts == s0.rsts && s1.refused == s0.refused);
    }
    check_invariants(r);
  }

  if (fuzz::summary_wanted()) {
    const stats_view end = view(w);
    std::fprintf(stderr,
                 "fuzz_worker: rig %s: %llu conns created, %llu expired, %llu refused connections, %llu resets, %llu drops;"
                 " %zu conns at the end\n",
                 &r == &g_rigs[1] ? "ports" : "table", static_cast<unsigned long long>(end.created - start.created),
                 static_cast<unsigned long long>(end.expired - start.expired),
                 static_cast<unsigned long long>(end.refused - start.refused),
                 static_cast<unsigned long long>(end.rsts - start.rsts),
                 static_cast<unsigned long long>(w.stats().total_drops() - drops_start), conns.size());
  }
  empty_worker(w);
  return 0;
}
