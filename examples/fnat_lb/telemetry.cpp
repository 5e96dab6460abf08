// SPDX-License-Identifier: BSD-3-Clause
#include "fnat_lb/telemetry.hpp"

#include <rte_telemetry.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fnat_lb/balancer.hpp"

namespace fnat::lb {

namespace {

std::atomic<balancer*> current{nullptr};

// Names telemetry accepts: alphanumerics, '_' and '/'.
std::string key_name(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '/') c = '_';
  return s;
}

template <class F>
void per_counter(const worker_stats& s, F&& f) {
  f("rx_packets", s.rx_packets.get());
  f("tx_packets", s.tx_packets.get());
  f("inbound", s.inbound.get());
  f("outbound", s.outbound.get());
  f("conns_created", s.conns_created.get());
  f("conns_expired", s.conns_expired.get());
  f("conns_live", s.conns_live.get());
  f("conn_objects_in_use", s.conn_objects_in_use.get());
  f("ports_in_use", s.ports_in_use.get());
  f("ports_free", s.ports_free.get());
  f("port_misses", s.port_misses.get());
  f("redirected_out", s.redirected_out.get());
  f("redirected_in", s.redirected_in.get());
  f("arp_replies", s.arp_replies.get());
  f("neigh_requests", s.neigh_requests.get());
  f("neigh_learned", s.neigh_learned.get());
  f("echo_replies", s.echo_replies.get());
  f("held", s.held.get());
  f("refused_conns", s.refused_conns.get());
  f("rsts_sent", s.rsts_sent.get());
  f("rsts_limited", s.rsts_limited.get());
  f("half_open", s.half_open.get());
  f("udp_oneway", s.udp_oneway.get());
  f("icmp_errors_out", s.icmp_errors_out.get());
  f("icmp_errors_in", s.icmp_errors_in.get());
  f("frags_in", s.frags_in.get());
  f("reassembled", s.reassembled.get());
  f("fragmented", s.fragmented.get());
  f("frags_out", s.frags_out.get());
  f("icmp_too_big_sent", s.icmp_too_big_sent.get());
  f("mss_clamped", s.mss_clamped.get());
  f("mss_malformed", s.mss_malformed.get());
  f("drops", s.total_drops());
  for (std::size_t r = 1; r < drop_reason_count; ++r)
    f(("drop_" + std::string(to_string(static_cast<drop_reason>(r)))).c_str(), s.parse_drops[r].get());
  for (std::size_t r = 0; r < lb_drop_count; ++r)
    f(("drop_" + std::string(to_string(static_cast<lb_drop>(r)))).c_str(), s.drops[r].get());
}

int cmd_stats(const char*, const char*, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  rte_tel_data_start_dict(d);
  // Sum per key: collect names from the first worker, then add.
  std::vector<std::pair<std::string, std::uint64_t>> sums;
  for (const auto& w : b->workers()) {
    std::size_t i = 0;
    per_counter(w->stats(), [&](const char* name, std::uint64_t v) {
      if (i == sums.size()) sums.emplace_back(name, 0);
      sums[i++].second += v;
    });
  }
  rte_tel_data_add_dict_u64(d, "workers", b->workers().size());
  for (const auto& [name, v] : sums) rte_tel_data_add_dict_u64(d, name.c_str(), v);
  return 0;
}

int cmd_lcores(const char*, const char*, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  rte_tel_data_start_dict(d);
  rte_tel_data* lcores = rte_tel_data_alloc();
  rte_tel_data_start_array(lcores, RTE_TEL_U64_VAL);
  for (unsigned id : b->config().global.workers) rte_tel_data_add_array_u64(lcores, id);
  rte_tel_data_add_dict_container(d, "lcore", lcores, 0);
  std::vector<std::pair<std::string, rte_tel_data*>> arrays;
  for (const auto& w : b->workers()) {
    std::size_t i = 0;
    per_counter(w->stats(), [&](const char* name, std::uint64_t v) {
      if (i == arrays.size()) {
        rte_tel_data* a = rte_tel_data_alloc();
        rte_tel_data_start_array(a, RTE_TEL_U64_VAL);
        arrays.emplace_back(name, a);
      }
      rte_tel_data_add_array_u64(arrays[i++].second, v);
    });
  }
  for (auto& [name, a] : arrays)
    if (rte_tel_data_add_dict_container(d, name.c_str(), a, 0) != 0) rte_tel_data_free(a);
  return 0;
}

int cmd_lcore(const char*, const char* params, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  if (params == nullptr || *params == '\0') return -EINVAL;
  char* end = nullptr;
  const unsigned long i = std::strtoul(params, &end, 10);
  if (*end != '\0' || i >= b->workers().size()) return -EINVAL;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "lcore", b->config().global.workers[i]);
  per_counter(b->workers()[i]->stats(), [&](const char* name, std::uint64_t v) { rte_tel_data_add_dict_u64(d, name, v); });
  return 0;
}

int cmd_services(const char*, const char*, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  rte_tel_data_start_dict(d);
  const auto& services = b->shared().services;
  for (std::size_t s = 0; s < services.size(); ++s) {
    rte_tel_data* a = rte_tel_data_alloc();
    rte_tel_data_start_array(a, RTE_TEL_U64_VAL);
    for (std::size_t r = 0; r < services[s].rss.size(); ++r) {
      std::uint64_t n = 0;
      for (const auto& w : b->workers()) n += w->rs_conns(s, r).get();
      rte_tel_data_add_array_u64(a, n);
    }
    if (rte_tel_data_add_dict_container(d, key_name(services[s].name).c_str(), a, 0) != 0) rte_tel_data_free(a);
  }
  return 0;
}

int cmd_service(const char*, const char* params, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  if (params == nullptr) return -EINVAL;
  const auto& services = b->shared().services;
  for (std::size_t s = 0; s < services.size(); ++s) {
    if (services[s].name != params) continue;
    const lb_service& svc = services[s];
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_string(d, "vip", svc.vip.to_string().c_str());
    rte_tel_data_add_dict_string(d, "proto", svc.proto == ipproto::tcp ? "tcp" : "udp");
    rte_tel_data* lips = rte_tel_data_alloc();
    rte_tel_data_start_array(lips, RTE_TEL_STRING_VAL);
    for (std::uint16_t li : svc.lips) rte_tel_data_add_array_string(lips, b->shared().lips[li].addr.to_string().c_str());
    rte_tel_data_add_dict_container(d, "lips", lips, 0);
    rte_tel_data* rss = rte_tel_data_alloc();
    rte_tel_data_start_array(rss, RTE_TEL_STRING_VAL);
    rte_tel_data* conns = rte_tel_data_alloc();
    rte_tel_data_start_array(conns, RTE_TEL_U64_VAL);
    for (std::size_t r = 0; r < svc.rss.size(); ++r) {
      rte_tel_data_add_array_string(rss, svc.rss[r].addr.to_string().c_str());
      std::uint64_t n = 0;
      for (const auto& w : b->workers()) n += w->rs_conns(s, r).get();
      rte_tel_data_add_array_u64(conns, n);
    }
    rte_tel_data_add_dict_container(d, "real_servers", rss, 0);
    rte_tel_data_add_dict_container(d, "conns", conns, 0);
    rte_tel_data_add_dict_string(d, "client_address", std::string(to_string(svc.client_address)).c_str());
    if (svc.client_address != client_address_mode::none) {
      const auto sum = [&](counter client_address_stats::*f) {
        std::uint64_t n = 0;
        for (const auto& w : b->workers()) n += (w->ca_stats(s).*f).get();
        return n;
      };
      rte_tel_data_add_dict_u64(d, "pp_headers", sum(&client_address_stats::pp_headers));
      rte_tel_data_add_dict_u64(d, "pp_again", sum(&client_address_stats::pp_again));
      rte_tel_data_add_dict_u64(d, "translated", sum(&client_address_stats::translated));
      rte_tel_data_add_dict_u64(d, "toa_inserted", sum(&client_address_stats::toa_inserted));
      rte_tel_data_add_dict_u64(d, "toa_no_room", sum(&client_address_stats::toa_no_room));
      rte_tel_data_add_dict_u64(d, "no_room", sum(&client_address_stats::no_room));
      rte_tel_data_add_dict_u64(d, "refused", sum(&client_address_stats::refused));
    }
    return 0;
  }
  return -EINVAL;
}

int cmd_sapool(const char*, const char*, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  rte_tel_data_start_dict(d);
  rte_tel_data* lips = rte_tel_data_alloc();
  rte_tel_data_start_array(lips, RTE_TEL_STRING_VAL);
  for (const auto& l : b->shared().lips) rte_tel_data_add_array_string(lips, l.addr.to_string().c_str());
  rte_tel_data_add_dict_container(d, "lips", lips, 0);
  for (const auto& w : b->workers()) {
    const std::string base = "lcore" + std::to_string(b->config().global.workers[w->index()]) + "_";
    rte_tel_data* used = rte_tel_data_alloc();
    rte_tel_data* free_ = rte_tel_data_alloc();
    rte_tel_data* misses = rte_tel_data_alloc();
    rte_tel_data_start_array(used, RTE_TEL_U64_VAL);
    rte_tel_data_start_array(free_, RTE_TEL_U64_VAL);
    rte_tel_data_start_array(misses, RTE_TEL_U64_VAL);
    for (const lip_gauges& g : w->lip_stats()) {
      rte_tel_data_add_array_u64(used, g.used.get());
      rte_tel_data_add_array_u64(free_, g.free.get());
      rte_tel_data_add_array_u64(misses, g.misses.get());
    }
    rte_tel_data_add_dict_container(d, (base + "used").c_str(), used, 0);
    rte_tel_data_add_dict_container(d, (base + "free").c_str(), free_, 0);
    rte_tel_data_add_dict_container(d, (base + "misses").c_str(), misses, 0);
  }
  return 0;
}

int cmd_ports(const char*, const char*, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  rte_tel_data_start_dict(d);
  for (const lb_port& p : b->shared().ports)
    rte_tel_data_add_dict_string(d, key_name(p.name).c_str(), std::string(to_string(p.steering)).c_str());
  return 0;
}

int cmd_port(const char*, const char* params, rte_tel_data* d) {
  balancer* b = current.load();
  if (b == nullptr) return -ENODEV;
  if (params == nullptr) return -EINVAL;
  for (const lb_port& p : b->shared().ports) {
    if (p.name != params) continue;
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "port_id", p.port_id);
    rte_tel_data_add_dict_string(d, "steering", std::string(to_string(p.steering)).c_str());
    // Long reasons are cut at telemetry's string limit; the start-up log has them whole.
    rte_tel_data_add_dict_string(d, "reason", p.steering_reason.substr(0, RTE_TEL_MAX_STRING_LEN - 1).c_str());
    rte_tel_data_add_dict_u64(d, "reta_size", p.reta.size());
    return 0;
  }
  return -EINVAL;
}

}  // namespace

bool register_telemetry(balancer* b) {
  current.store(b);
  static bool registered = false;  // the commands stay registered for the life of the process
  if (registered || b == nullptr) return true;
  registered = true;
  bool ok = true;
  ok &= rte_telemetry_register_cmd("/fnat/stats", cmd_stats, "Totals over all workers. No parameters") == 0;
  ok &= rte_telemetry_register_cmd("/fnat/lcores", cmd_lcores, "Per-worker counters, one value per worker. No parameters") == 0;
  ok &= rte_telemetry_register_cmd("/fnat/lcore", cmd_lcore, "One worker's counters. Parameter: worker index") == 0;
  ok &= rte_telemetry_register_cmd("/fnat/services", cmd_services, "Conns per real server of each service. No parameters") == 0;
  ok &= rte_telemetry_register_cmd("/fnat/service", cmd_service, "A service in detail. Parameter: service name") == 0;
  ok &= rte_telemetry_register_cmd("/fnat/sapool", cmd_sapool, "Local ports per LIP and worker. No parameters") == 0;
  ok &= rte_telemetry_register_cmd("/fnat/ports", cmd_ports, "Steering mode of each port. No parameters") == 0;
  ok &= rte_telemetry_register_cmd("/fnat/port", cmd_port, "A port's steering and why. Parameter: port name") == 0;
  return ok;
}

}  // namespace fnat::lb
