// SPDX-License-Identifier: BSD-3-Clause
// The in-process balancer rig shared by tests/lb: fnat_lb's own start-up code on two net_ring ports
// (client side, server side; three rx/tx queues each), software NIC models that decide which rx
// queue each injected frame reaches (flow rules and RETA installed by the balancer through
// nic_model_ops), three workers on EAL lcores 1-3, and helpers to build the frames of a flow.
// Clients live beyond a gateway on the client side; real servers are on-link on the server side;
// every neighbour is static, so no ARP is involved.
#pragma once

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fnat_lb/balancer.hpp"
#include "support/eal.hpp"
#include "support/nic_wire.hpp"
#include "support/packet_frames.hpp"

namespace fnat::test::inproc {

using fnat::test::frame_spec;

inline const mac_addr gw_mac{{0x02, 0xaa, 0, 0, 0, 0xfe}};
inline const mac_addr gw6_mac{{0x02, 0xaa, 0, 0, 0, 0xfd}};
inline mac_addr rs_mac(int i) { return mac_addr{{0x02, 0xbb, 0, 0, 0, static_cast<std::uint8_t>(i)}}; }
inline fnat::inet_addr addr(const char* s) { return *fnat::inet_addr::parse(s); }

inline std::string port_name(std::uint16_t id) {
  char name[RTE_ETH_NAME_MAX_LEN];
  REQUIRE(rte_eth_dev_get_name_by_port(id, name) == 0);
  return name;
}

inline mac_addr port_mac(std::uint16_t id) {
  rte_ether_addr a{};
  REQUIRE(rte_eth_macaddr_get(id, &a) == 0);
  mac_addr m;
  std::memcpy(m.bytes.data(), a.addr_bytes, 6);
  return m;
}

struct rig_options {
  std::string mode = "flow";           ///< steering: flow | rss | redirect
  unsigned conns_per_lcore = 8192;
  std::string name = "ip";             ///< prefix of ports, rings and pools (unique per process)
  unsigned established_s = 30;         ///< tcp_established and tcp_syn_recv timeouts
  std::string global_extra = "";       ///< more "key = value\n" lines for [global]
  unsigned udp_s = 1;                  ///< udp_oneway and udp_normal timeouts
  unsigned server_mtu = 1500;          ///< [port] mtu of the server-side port
  std::string tcp_service_extra = "";  ///< more "key = value\n" lines for [service web] and [service web6]
  std::string udp_service_extra = "";  ///< more "key = value\n" lines for [service dns] and [service dns6]
  /// Three LIPs per family in every service (198.18.2.100-102, 2001:2:0:2::100-102), so that with
  /// steering = lip_per_lcore each of the three workers owns one of each family for every service.
  bool lip_per_worker = false;
};

inline std::string config_text(const rig_options& o, const std::string& cport, const std::string& sport) {
  std::string t;
  t += "[global]\nworkers = 1-3\nsteering = " + o.mode + "\nidle = backoff\nidle_sleep_us = 20\n";
  t += "conns_per_lcore = " + std::to_string(o.conns_per_lcore) + "\nsa_pool_buckets = 4\ntimer_tick_ms = 10\ntelemetry = off\n";
  t += o.global_extra;
  t += "[timeouts]\ntcp_syn_recv = " + std::to_string(o.established_s) + "\ntcp_established = " +
       std::to_string(o.established_s) + "\ntcp_close = 1\ntcp_time_wait = 1\ntcp_fin_wait = 1\n"
       "tcp_close_wait = 1\ntcp_last_ack = 1\n"
       "udp_oneway = " + std::to_string(o.udp_s) + "\nudp_normal = " + std::to_string(o.udp_s) + "\n";
  t += "[port " + cport + "]\nrole = client\naddress = 198.18.0.1/24\naddress = 2001:2:0:1::1/64\n"
       "address = 198.18.1.1/24\naddress = 2001:2:0:3::1/64\ngateway = 198.18.0.254\ngateway = 2001:2:0:1::fe\n"
       "neighbour = 198.18.0.254 02:aa:00:00:00:fe\nneighbour = 2001:2:0:1::fe 02:aa:00:00:00:fd\n";
  t += "[port " + sport + "]\nrole = server\naddress = 198.18.2.1/24\naddress = 2001:2:0:2::1/64\n";
  if (o.server_mtu != 1500) t += "mtu = " + std::to_string(o.server_mtu) + "\n";
  for (int i = 1; i <= 3; ++i) {
    t += "neighbour = 198.18.2.1" + std::to_string(i) + " 02:bb:00:00:00:0" + std::to_string(i) + "\n";
    t += "neighbour = 2001:2:0:2::1" + std::to_string(i) + " 02:bb:00:00:00:0" + std::to_string(i) + "\n";
  }
  const std::string lips4 = o.lip_per_worker ? "lip = 198.18.2.100\nlip = 198.18.2.101\nlip = 198.18.2.102\n" : "";
  const std::string lips6 =
      o.lip_per_worker ? "lip = 2001:2:0:2::100\nlip = 2001:2:0:2::101\nlip = 2001:2:0:2::102\n" : "";
  t += "[service web]\nvip = 198.18.1.100\nvport = 80\nproto = tcp\nscheduler = wrr\n" +
       (o.lip_per_worker ? lips4 : "lip = 198.18.2.100\nlip = 198.18.2.101\n") +
       "rs = 198.18.2.11:8080\nrs = 198.18.2.12:8080\nrs = 198.18.2.13:8080 weight=2\n" + o.tcp_service_extra;
  t += "[service dns]\nvip = 198.18.1.100\nvport = 53\nproto = udp\nscheduler = maglev\n" +
       (o.lip_per_worker ? lips4 : "lip = 198.18.2.100\n") + "rs = 198.18.2.11:5353\nrs = 198.18.2.12:5353\n" + o.udp_service_extra;
  t += "[service web6]\nvip = 2001:2:0:3::100\nvport = 80\nproto = tcp\nscheduler = rr\n" +
       (o.lip_per_worker ? lips6 : "lip = 2001:2:0:2::100\n") +
       "rs = [2001:2:0:2::11]:8080\nrs = [2001:2:0:2::12]:8080\nrs = [2001:2:0:2::13]:8080\n" + o.tcp_service_extra;
  t += "[service dns6]\nvip = 2001:2:0:3::100\nvport = 53\nproto = udp\nscheduler = rr\n" +
       (o.lip_per_worker ? lips6 : "lip = 2001:2:0:2::100\n") + "rs = [2001:2:0:2::11]:5353\n" + o.udp_service_extra;
  return t;
}

// One flow: the client's side of it and what the balancer chose (filled from the first packet out).
struct flow {
  bool v6 = false;
  bool tcp = true;
  fnat::inet_addr client;
  std::uint16_t cport = 0;
  std::uint32_t id = 0;  // TCP sequence number / first 4 payload bytes: identifies the flow
  // Learned from the balancer's output.
  fnat::inet_addr lip, rs;
  std::uint16_t lport = 0, rport = 0;
};

inline std::string hex(const std::vector<std::uint8_t>& b) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < b.size() && i < 96; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    s += buf;
  }
  return s;
}

inline std::uint32_t flow_id_of(std::span<const std::uint8_t> f, const packet_info& info) {
  const std::uint8_t* p = f.data() + (info.proto == ipproto::tcp ? info.l4_off + 4 : info.payload_off);
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

inline frame_spec client_packet(const flow& f, const mac_addr& lb_mac, std::uint8_t flags) {
  frame_spec s;
  s.dst = lb_mac;
  s.src = f.v6 ? gw6_mac : gw_mac;
  s.saddr = f.client;
  s.daddr = f.v6 ? addr("2001:2:0:3::100") : addr("198.18.1.100");
  s.proto = f.tcp ? ipproto::tcp : ipproto::udp;
  s.sport = f.cport;
  s.dport = f.tcp ? 80 : 53;
  s.tcp_flags = flags;
  s.seq = f.id;
  s.ip_id = static_cast<std::uint16_t>(f.id);
  s.payload = {static_cast<std::uint8_t>(f.id >> 24), static_cast<std::uint8_t>(f.id >> 16),
               static_cast<std::uint8_t>(f.id >> 8), static_cast<std::uint8_t>(f.id), 'q', 'u', 'e', 'r', 'y'};
  if (f.tcp && flags == tcp_flags::syn) s.payload.clear();
  return s;
}

inline frame_spec server_packet(const flow& f, const mac_addr& lb_mac, std::uint8_t flags) {
  frame_spec s;
  s.dst = lb_mac;
  s.src = rs_mac(f.v6 ? f.rs.raw()[15] - 0x10 : f.rs.v4().bytes()[3] - 10);
  s.saddr = f.rs;
  s.daddr = f.lip;
  s.proto = f.tcp ? ipproto::tcp : ipproto::udp;
  s.sport = f.rport;
  s.dport = f.lport;
  s.tcp_flags = flags;
  s.seq = f.id;  // the server's ISN: the same id, so replies are found by it too
  s.ack = f.id + 1;
  s.ip_id = static_cast<std::uint16_t>(~f.id);
  s.payload = {static_cast<std::uint8_t>(f.id >> 24), static_cast<std::uint8_t>(f.id >> 16),
               static_cast<std::uint8_t>(f.id >> 8), static_cast<std::uint8_t>(f.id), 'a', 'n', 's'};
  if (f.tcp) s.payload.clear();
  return s;
}

class inprocess_rig {
 public:
  explicit inprocess_rig(const rig_options& o)
      : client_(o.name + "_" + o.mode + "_c", 3, 4096), server_(o.name + "_" + o.mode + "_s", 3, 4096) {
    fnat::test::require_eal();
    cmodel_.emplace(std::move(*dpdk::nic_model::make({.rx_queues = 3})));
    smodel_.emplace(std::move(*dpdk::nic_model::make({.rx_queues = 3, .reta_size = 128})));
    REQUIRE(nic_ports_.attach(client_.port_id(), *cmodel_).has_value());
    REQUIRE(nic_ports_.attach(server_.port_id(), *smodel_).has_value());
    // The balancer configures and starts the ports itself.
    rte_eth_dev_stop(client_.port_id());
    rte_eth_dev_stop(server_.port_id());
    cfg_path_ = "/tmp/fnat-inprocess-" + std::to_string(::getpid()) + "-" + o.mode + ".ini";
    std::ofstream(cfg_path_) << config_text(o, port_name(client_.port_id()), port_name(server_.port_id()));
    auto cfg = lb::load_config(cfg_path_);
    INFO((cfg ? "" : cfg.err().message()));
    REQUIRE(cfg);
    auto b = lb::balancer::make(*cfg, nic_ports_.ops(), {.name = o.name + "_" + o.mode});
    INFO((b ? "" : b.err().message()));
    REQUIRE(b);
    lb_ = std::move(*b);
    cmac_ = port_mac(client_.port_id());
    smac_ = port_mac(server_.port_id());
    REQUIRE(lb_->launch().has_value());
  }
  ~inprocess_rig() {
    lb_.reset();
    std::remove(cfg_path_.c_str());
  }

  lb::balancer& lb() { return *lb_; }
  /// The INI file the balancer was started from (tests of reload write variants of it).
  const std::string& config_path() const { return cfg_path_; }
  const mac_addr& client_mac() const { return cmac_; }
  const mac_addr& server_mac() const { return smac_; }

  // Sends frames into a port as its NIC would: the model picks the rx queue.
  void inject(bool to_server_port, const std::vector<std::vector<std::uint8_t>>& frames) {
    std::vector<rte_mbuf*> mbufs;
    for (const auto& f : frames) mbufs.push_back(fnat::test::make_mbuf(f));
    const auto st = fnat::test::wire_deliver(to_server_port ? *smodel_ : *cmodel_, to_server_port ? server_ : client_,
                                             mbufs.data(), mbufs.size());
    REQUIRE(st.delivered == frames.size());
  }

  // Collects `n` frames the balancer sent on a port (all its tx queues), waiting up to 60 s.
  std::vector<std::vector<std::uint8_t>> collect(bool from_server_port, std::size_t n) {
    std::vector<std::vector<std::uint8_t>> out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const fnat::test::ring_port& p = from_server_port ? server_ : client_;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      bool any = false;
      for (std::uint16_t q = 0; q < p.queues(); ++q) {
        void* objs[64];
        const unsigned k = rte_ring_dequeue_burst(p.tx_ring(q), objs, 64, nullptr);
        for (unsigned i = 0; i < k; ++i) {
          auto* m = static_cast<rte_mbuf*>(objs[i]);
          std::vector<std::uint8_t> bytes(rte_pktmbuf_pkt_len(m));
          const void* data = rte_pktmbuf_read(m, 0, static_cast<std::uint32_t>(bytes.size()), bytes.data());
          REQUIRE(data != nullptr);
          if (data != bytes.data()) std::memcpy(bytes.data(), data, bytes.size());
          rte_pktmbuf_free(m);
          out.push_back(std::move(bytes));
        }
        any |= k != 0;
      }
      if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return out;
  }

  std::uint64_t total(const lb::counter lb::worker_stats::*c) const {
    std::uint64_t n = 0;
    for (const auto& w : lb_->workers()) n += (w->stats().*c).get();
    return n;
  }
  std::uint64_t total_drop(lb::lb_drop d) const {
    std::uint64_t n = 0;
    for (const auto& w : lb_->workers()) n += w->stats().drops[static_cast<std::size_t>(d)].get();
    return n;
  }
  std::uint64_t total_parse_drop(drop_reason d) const {
    std::uint64_t n = 0;
    for (const auto& w : lb_->workers()) n += w->stats().parse_drops[static_cast<std::size_t>(d)].get();
    return n;
  }
  std::uint64_t all_drops() const {
    std::uint64_t n = 0;
    for (const auto& w : lb_->workers()) n += w->stats().total_drops();
    return n;
  }

 private:
  fnat::test::ring_port client_, server_;
  std::optional<dpdk::nic_model> cmodel_, smodel_;
  dpdk::nic_model_ports nic_ports_;
  std::unique_ptr<lb::balancer> lb_;
  std::string cfg_path_;
  mac_addr cmac_{}, smac_{};
};

}  // namespace fnat::test::inproc
