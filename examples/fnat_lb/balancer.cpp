// SPDX-License-Identifier: BSD-3-Clause
#include "fnat_lb/balancer.hpp"

#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <bit>
#include <random>
#include <sstream>

namespace fnat::lb {

int log_type() noexcept {
  static const int type = [] {
    const int t = rte_log_register_type_and_pick_level("fnat.lb", RTE_LOG_INFO);
    return t < 0 ? RTE_LOGTYPE_USER1 : t;
  }();
  return type;
}

namespace {

std::uint16_t eth_tx(void*, std::uint16_t port_id, std::uint16_t queue, rte_mbuf** pkts, std::uint16_t n) {
  return rte_eth_tx_burst(port_id, queue, pkts, n);
}

int worker_main(void* arg) {
  static_cast<worker*>(arg)->run();
  return 0;
}

}  // namespace

balancer::~balancer() {
  stop();
  workers_.clear();  // frees held and buffered mbufs while the pool still exists
  steering_.clear();  // flow rules go before their ports stop
  for (std::uint16_t id : started_ports_) {
    rte_eth_dev_stop(id);
  }
  if (sh_) {
    sh_->redirect.reset();
    for (rte_ring* r : sh_->neigh_rings) rte_ring_free(r);
    if (sh_->mbufs != nullptr) rte_mempool_free(sh_->mbufs);
  }
}

result<void> balancer::setup_ports(const balancer_options& opt) {
  const auto nq = static_cast<std::uint16_t>(cfg_.global.workers.size());
  const std::size_t nports = cfg_.ports.size();
  const int socket = static_cast<int>(rte_socket_id());
  // Enough mbufs for every rx and tx ring, the redirect rings, the neighbour hold queues and the
  // per-lcore caches, rounded to 2^k - 1 (the mempool's best size).
  unsigned n = opt.mbufs;
  if (n == 0) {
    const unsigned want = static_cast<unsigned>(nports * nq * (opt.rx_desc + opt.tx_desc) + nq * (4096 + 2 * 256 + 64 * nports) + 4096 +
                                                   nq * cfg_.global.frag_entries);  // held by reassembly
    n = std::bit_ceil(want) - 1;
  }
  const std::string pool_name = name_ + "_mbufs";
  sh_->mbufs = rte_pktmbuf_pool_create(pool_name.c_str(), n, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  if (sh_->mbufs == nullptr)
    return error(errc::no_memory, "mbuf pool of " + std::to_string(n) + " mbufs: " + rte_strerror(rte_errno) +
                                      "; give EAL more memory (-m) or fewer descriptors");
  sh_->tx = opt.tx != nullptr ? opt.tx : eth_tx;
  sh_->tx_ctx = opt.tx_ctx;

  sh_->frag_key = std::random_device{}();
  sh_->ports.resize(nports);
  sh_->port_index_of_id.fill(0);
  for (std::size_t pi = 0; pi < nports; ++pi) {
    const port_config& pc = cfg_.ports[pi];
    lb_port& port = sh_->ports[pi];
    port.port_id = *pc.port_id;
    port.name = pc.name;
    sh_->port_index_of_id[port.port_id] = static_cast<std::uint16_t>(pi);
    const std::string where = cfg_.source + ":" + std::to_string(pc.line) + ": [port " + pc.name + "]";
    rte_eth_dev_info info{};
    if (const int rc = rte_eth_dev_info_get(port.port_id, &info); rc != 0)
      return error(errc::device_error, where + ": rte_eth_dev_info_get: " + rte_strerror(-rc));
    if (info.max_rx_queues < nq || info.max_tx_queues < nq)
      return error(errc::invalid_argument,
                   where + ": the device has " + std::to_string(info.max_rx_queues) + " rx / " +
                       std::to_string(info.max_tx_queues) + " tx queues and the " + std::to_string(nq) +
                       " workers need one each (for net_af_packet, give qpairs=" + std::to_string(nq) + ")");
    rte_eth_conf conf{};
    const std::uint64_t want_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
    if (nq > 1 && (info.flow_type_rss_offloads & want_hf) != 0) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = want_hf & info.flow_type_rss_offloads;
    }
    const std::uint64_t cksum = info.tx_offload_capa & (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                                                        RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
    conf.txmode.offloads = cksum;
    if (const int rc = rte_eth_dev_configure(port.port_id, nq, nq, &conf); rc != 0)
      return error(errc::device_error, where + ": rte_eth_dev_configure with " + std::to_string(nq) +
                                           " queues: " + rte_strerror(-rc));
    std::uint16_t rxd = opt.rx_desc, txd = opt.tx_desc;
    (void)rte_eth_dev_adjust_nb_rx_tx_desc(port.port_id, &rxd, &txd);
    const int psock = rte_eth_dev_socket_id(port.port_id) < 0 ? socket : rte_eth_dev_socket_id(port.port_id);
    for (std::uint16_t q = 0; q < nq; ++q) {
      if (const int rc = rte_eth_rx_queue_setup(port.port_id, q, rxd, static_cast<unsigned>(psock), nullptr, sh_->mbufs); rc != 0)
        return error(errc::device_error, where + ": rx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
      if (const int rc = rte_eth_tx_queue_setup(port.port_id, q, txd, static_cast<unsigned>(psock), nullptr); rc != 0)
        return error(errc::device_error, where + ": tx queue " + std::to_string(q) + ": " + rte_strerror(-rc));
    }
    if (const int rc = rte_eth_dev_start(port.port_id); rc != 0)
      return error(errc::device_error, where + ": rte_eth_dev_start: " + rte_strerror(-rc));
    started_ports_.push_back(port.port_id);
    rte_ether_addr mac{};
    if (const int rc = rte_eth_macaddr_get(port.port_id, &mac); rc != 0)
      return error(errc::device_error, where + ": rte_eth_macaddr_get: " + rte_strerror(-rc));
    std::memcpy(port.mac.bytes.data(), mac.addr_bytes, 6);
    port.offload = dpdk::checksum_offload_from(cksum);
    for (const inet_prefix& a : pc.addresses) {
      if (a.addr.is_v4() && !port.src4) port.src4 = a.addr.v4();
      if (a.addr.is_v6() && !port.src6) port.src6 = a.addr.v6();
    }
    for (const inet_addr& a : cfg_.local_addresses(pi)) (void)port.local.insert(a, 1);
  }
  return {};
}

result<void> balancer::build_shared() {
  lb_shared& sh = *sh_;
  // LIPs (each once, with its port) and services.
  for (std::size_t si = 0; si < cfg_.services.size(); ++si) {
    const service_config& sc = cfg_.services[si];
    lb_service svc;
    svc.name = sc.name;
    svc.vip = sc.vip;
    svc.proto = sc.proto;
    svc.sched = sc.scheduler_cfg();
    svc.backends = sc.backends();
    svc.mss_clamp = sc.mss_clamp;
    svc.client_address = sc.client_address;
    for (const real_server& rs : sc.rss) {
      const next_hop nh = cfg_.routes.lookup(rs.addr.addr);
      if (!nh) return error(errc::invalid_argument, "service " + sc.name + ": no route to " + rs.addr.to_string());
      svc.rss.push_back(lb_real_server{rs.addr, egress{nh.addr, nh.port}});
    }
    for (const inet_addr& lip : sc.lips) {
      const std::uint16_t* known = sh.lip_map.find(lip);
      std::uint16_t li;
      if (known != nullptr) {
        li = *known;
      } else {
        const next_hop nh = cfg_.routes.lookup(lip);
        if (!nh) return error(errc::invalid_argument, "service " + sc.name + ": LIP " + lip.to_string() + " is on no port");
        li = static_cast<std::uint16_t>(sh.lips.size());
        sh.lips.push_back(lb_lip{lip, nh.port});
        (void)sh.lip_map.insert(lip, li);
      }
      svc.lips.push_back(li);
    }
    const service_key key{sc.vip.addr, hton16(sc.vip.port), sc.proto, 0};
    if (sh.service_map.insert(key, static_cast<std::uint16_t>(si)) != errc::ok)
      return error(errc::exists, "service " + sc.name + ": VIP, port and protocol already served");
    sh.services.push_back(std::move(svc));
  }
  // The live part (live.hpp): slot i = rs i, the schedulers of every worker; each worker a reader.
  auto live = build_live(cfg_, nullptr, cfg_.global.workers.size());
  if (!live) return live.err();
  auto cell = dpdk::rcu_cell<lb_live>::make(
      std::move(*live), {.max_readers = static_cast<std::uint32_t>(std::max<std::size_t>(1, cfg_.global.workers.size())),
                         .max_retired = 64});
  if (!cell) return cell.err();
  sh.live.emplace(std::move(*cell));
  for (std::size_t i = 0; i < cfg_.global.workers.size(); ++i)
    if (auto r = sh.live->register_reader(static_cast<unsigned>(i)); !r) return r.err();
  // Rings: redirect (one per worker) and neighbour broadcast (one per worker).
  auto red = dpdk::redirect::make(*sh.plan, {.name = name_ + "_redir", .capacity = 4096});
  if (!red) return red.err();
  sh.redirect.emplace(std::move(*red));
  for (std::size_t i = 0; i < cfg_.global.workers.size(); ++i) {
    const std::string rn = name_ + "_neigh_" + std::to_string(i);
    rte_ring* r = rte_ring_create_elem(rn.c_str(), sizeof(neigh_update), 1024,
                                       static_cast<int>(rte_lcore_to_socket_id(cfg_.global.workers[i])), RING_F_SC_DEQ);
    if (r == nullptr) return error(errc::no_memory, "ring " + rn + ": " + rte_strerror(rte_errno));
    sh.neigh_rings.push_back(r);
  }
  return {};
}

result<void> balancer::build_workers() {
  for (std::size_t i = 0; i < cfg_.global.workers.size(); ++i) {
    const unsigned lcore = cfg_.global.workers[i];
    const int socket = rte_lcore_is_enabled(lcore) ? static_cast<int>(rte_lcore_to_socket_id(lcore)) : SOCKET_ID_ANY;
    auto w = worker::make(*sh_, i, socket);
    if (!w) return w.err();
    workers_.push_back(std::move(*w));
  }
  return {};
}

result<void> balancer::launch() {
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const unsigned lcore = cfg_.global.workers[i];
    if (lcore == rte_get_main_lcore() || !rte_lcore_is_enabled(lcore))
      return error(errc::invalid_argument, "worker lcore " + std::to_string(lcore) +
                                               " is not an EAL worker lcore; list it in -l/--lcores and keep the main "
                                               "lcore (" + std::to_string(rte_get_main_lcore()) + ") out of workers");
  }
  sh_->stop.store(false);
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const int rc = rte_eal_remote_launch(worker_main, workers_[i].get(), cfg_.global.workers[i]);
    if (rc != 0) {
      stop();
      return error(errc::device_error, "worker lcore " + std::to_string(cfg_.global.workers[i]) + " is busy");
    }
    running_ = true;
  }
  return {};
}

void balancer::stop() {
  if (!running_) return;
  sh_->stop.store(true);
  for (std::size_t i = 0; i < workers_.size(); ++i) rte_eal_wait_lcore(cfg_.global.workers[i]);
  running_ = false;
}

std::string balancer::drain_and_check() {
  stop();
  std::string leaks;
  for (auto& w : workers_) {
    w->drain_all();
    const std::string r = w->leak_report();
    if (!r.empty()) leaks += "worker " + std::to_string(w->index()) + ":" + r + "\n";
  }
  return leaks;
}

result<std::string> balancer::reload(const std::string& path) {
  if (!running_ini_)
    return error(errc::not_supported, "reload: the running configuration did not come from a readable file (" +
                                          cfg_.source + "); restart fnat_lb to change it");
  auto ini = read_ini(path);
  if (!ini) return ini.err();
  auto next = parse_config(*ini);
  if (!next) return next.err();
  if (auto r = check_reloadable(*running_ini_, *ini); !r) return r.err();
  auto live = build_live(*next, sh_->live->read(), workers_.size());
  if (!live) return live.err();
  if (auto r = sh_->live->publish(std::move(*live)); !r) return error(r.err().code(), "reload: " + r.err().message());
  std::string what = describe_reload(live_cfg_, *next);
  live_cfg_ = std::move(*next);
  running_ini_.emplace(std::move(*ini));
  return what;
}

void balancer::reclaim() {
  if (sh_ && sh_->live) (void)sh_->live->reclaim();
}

std::string balancer::summary() const {
  std::ostringstream o;
  std::uint64_t rx = 0, tx = 0, in = 0, out = 0, created = 0, expired = 0, red_out = 0, red_in = 0, drops = 0;
  for (const auto& w : workers_) {
    const worker_stats& s = w->stats();
    o << "  worker " << w->index() << " (lcore " << cfg_.global.workers[w->index()] << "): rx " << s.rx_packets.get()
      << ", tx " << s.tx_packets.get() << ", inbound " << s.inbound.get() << ", outbound " << s.outbound.get()
      << ", conns " << s.conns_created.get() << " created / " << s.conns_expired.get() << " expired / "
      << s.conns_live.get() << " live, redirected " << s.redirected_out.get() << " out / " << s.redirected_in.get()
      << " in, drops " << s.total_drops() << "\n";
    rx += s.rx_packets.get();
    tx += s.tx_packets.get();
    in += s.inbound.get();
    out += s.outbound.get();
    created += s.conns_created.get();
    expired += s.conns_expired.get();
    red_out += s.redirected_out.get();
    red_in += s.redirected_in.get();
    drops += s.total_drops();
  }
  std::ostringstream head;
  head << "fnat_lb: rx " << rx << ", tx " << tx << ", inbound " << in << ", outbound " << out << ", conns " << created
       << " created / " << expired << " expired, redirected " << red_out << " out / " << red_in << " in, drops " << drops
       << "\n";
  std::string reasons;
  for (std::size_t r = 1; r < drop_reason_count; ++r) {
    std::uint64_t n = 0;
    for (const auto& w : workers_) n += w->stats().parse_drops[r].get();
    if (n != 0) reasons.append(" ").append(to_string(static_cast<drop_reason>(r))).append("=").append(std::to_string(n));
  }
  for (std::size_t r = 0; r < lb_drop_count; ++r) {
    std::uint64_t n = 0;
    for (const auto& w : workers_) n += w->stats().drops[r].get();
    if (n != 0) reasons.append(" ").append(to_string(static_cast<lb_drop>(r))).append("=").append(std::to_string(n));
  }
  if (!reasons.empty()) o << "  drops by reason:" << reasons << "\n";
  return head.str() + o.str();
}

std::string balancer::summary_json() const {
  std::ostringstream o;
  auto field = [&](const char* name, std::uint64_t v, bool comma = true) {
    o << '"' << name << "\":" << v << (comma ? "," : "");
  };
  o << "{\"workers\":[";
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const worker_stats& s = workers_[i]->stats();
    o << (i ? "," : "") << "{";
    field("lcore", cfg_.global.workers[i]);
    field("rx", s.rx_packets.get());
    field("tx", s.tx_packets.get());
    field("inbound", s.inbound.get());
    field("outbound", s.outbound.get());
    field("conns_created", s.conns_created.get());
    field("conns_expired", s.conns_expired.get());
    field("conns_live", s.conns_live.get());
    field("conn_objects_in_use", s.conn_objects_in_use.get());
    field("ports_in_use", s.ports_in_use.get());
    field("redirected_out", s.redirected_out.get());
    field("redirected_in", s.redirected_in.get());
    field("held", s.held.get());
    field("icmp_errors_out", s.icmp_errors_out.get());
    field("icmp_errors_in", s.icmp_errors_in.get());
    field("frags_in", s.frags_in.get());
    field("reassembled", s.reassembled.get());
    field("fragmented", s.fragmented.get());
    field("frags_out", s.frags_out.get());
    field("icmp_too_big_sent", s.icmp_too_big_sent.get());
    field("mss_clamped", s.mss_clamped.get());
    field("mss_malformed", s.mss_malformed.get());
    o << "\"drops\":{";
    bool first = true;
    for (std::size_t r = 1; r < drop_reason_count; ++r) {
      o << (first ? "" : ",") << '"' << to_string(static_cast<drop_reason>(r)) << "\":" << s.parse_drops[r].get();
      first = false;
    }
    for (std::size_t r = 0; r < lb_drop_count; ++r)
      o << ",\"" << to_string(static_cast<lb_drop>(r)) << "\":" << s.drops[r].get();
    o << "}}";
  }
  o << "],\"ports\":[";
  for (std::size_t p = 0; p < sh_->ports.size(); ++p)
    o << (p ? "," : "") << "{\"name\":\"" << sh_->ports[p].name << "\",\"steering\":\""
      << to_string(sh_->ports[p].steering) << "\"}";
  o << "]}";
  return o.str();
}

}  // namespace fnat::lb
