// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's live configuration: snapshots with stable real-server slots, and the reload check
// (live.hpp).
#include "fnat_lb/live.hpp"

#include <algorithm>

namespace fnat::lb {

result<std::unique_ptr<const lb_live>> build_live(const lb_config& cfg, const lb_live* prev, std::size_t workers) {
  auto live = std::make_unique<lb_live>();
  live->version = prev != nullptr ? prev->version + 1 : 1;
  live->services.resize(cfg.services.size());
  live->sched.resize(workers);
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    const service_config& sc = cfg.services[si];
    lb_live_service& ls = live->services[si];
    if (prev != nullptr && si < prev->services.size()) {
      ls.slots = prev->services[si].slots;
      for (lb_slot& s : ls.slots) s.configured = false;
    }
    std::vector<sched_backend> backends;
    for (const real_server& rs : sc.rss) {
      auto it = std::find_if(ls.slots.begin(), ls.slots.end(), [&](const lb_slot& s) { return s.addr == rs.addr; });
      if (it == ls.slots.end()) {
        if (ls.slots.size() >= lb_max_slots)
          return error(errc::exhausted, cfg.source + ":" + std::to_string(rs.line) + ": service " + sc.name + ": rs " +
                                            rs.addr.to_string() + " would be the " + std::to_string(lb_max_slots + 1) +
                                            "th distinct real server since start; restart fnat_lb to renumber them");
        const next_hop nh = cfg.routes.lookup(rs.addr.addr);
        if (!nh)
          return error(errc::invalid_argument, cfg.source + ":" + std::to_string(rs.line) + ": service " + sc.name +
                                                   ": no route to " + rs.addr.to_string());
        ls.slots.push_back(lb_slot{rs.addr, nh.port, nh.addr, true});
        it = ls.slots.end() - 1;
      }
      it->configured = true;
      ls.slot_of.push_back(static_cast<std::uint32_t>(it - ls.slots.begin()));
      ls.weight_of.push_back(rs.weight);
      backends.push_back({.id = backend_id(rs.addr), .weight = rs.weight});
    }
    for (std::size_t w = 0; w < workers; ++w) {
      // Workers start their round robins apart; Maglev copies share the first worker's table.
      if (w > 0 && sc.scheduler == scheduler_kind::maglev) {
        live->sched[w].push_back(live->sched[0][si]);
        continue;
      }
      auto sch = any_scheduler::make(backends, sc.scheduler_cfg(static_cast<std::uint32_t>(w)));
      if (!sch)
        return error(sch.err().code(), cfg.source + ":" + std::to_string(sc.line) + ": service " + sc.name + ": " +
                                           sch.err().message());
      live->sched[w].push_back(std::move(*sch));
    }
  }
  return std::unique_ptr<const lb_live>(std::move(live));
}

namespace {

bool service_section(const ini_section& s) { return s.name.rfind("service ", 0) == 0; }
bool reloadable_key(const std::string& k) { return k == "rs" || k == "scheduler" || k == "maglev_table_size"; }

std::vector<const ini_entry*> fixed_entries(const ini_section& s) {
  std::vector<const ini_entry*> e;
  for (const auto& x : s.entries)
    if (!service_section(s) || !reloadable_key(x.key)) e.push_back(&x);
  return e;
}

}  // namespace

result<void> check_reloadable(const ini_file& running, const ini_file& next) {
  const std::string restart = " (a reload changes only rs, scheduler and maglev_table_size of existing services); "
                              "restart fnat_lb to apply it";
  const std::size_t n = std::max(running.sections.size(), next.sections.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (i >= next.sections.size())
      return error(errc::not_supported, next.path + ": section [" + running.sections[i].name +
                                            "] was removed: needs a restart" + restart);
    const ini_section& ns = next.sections[i];
    if (i >= running.sections.size() || running.sections[i].name != ns.name)
      return error(errc::not_supported, next.path + ":" + std::to_string(ns.line) + ": section [" + ns.name +
                                            "] is new or moved: needs a restart" + restart);
    const auto a = fixed_entries(running.sections[i]);
    const auto b = fixed_entries(ns);
    for (std::size_t k = 0; k < std::max(a.size(), b.size()); ++k) {
      if (k < a.size() && k < b.size() && a[k]->key == b[k]->key && a[k]->value == b[k]->value) continue;
      if (k < b.size())
        return error(errc::not_supported, next.path + ":" + std::to_string(b[k]->line) + ": [" + ns.name + "] " +
                                              b[k]->key + " = " + b[k]->value + " differs from the running file: needs a restart" +
                                              restart);
      return error(errc::not_supported, next.path + ":" + std::to_string(ns.line) + ": [" + ns.name + "] " + a[k]->key +
                                            " = " + a[k]->value + " was removed: needs a restart" + restart);
    }
  }
  return {};
}

std::string describe_reload(const lb_config& running, const lb_config& next) {
  std::string out;
  for (std::size_t si = 0; si < next.services.size() && si < running.services.size(); ++si) {
    const auto& a = running.services[si].rss;
    const auto& b = next.services[si].rss;
    std::string d;
    for (const auto& r : b) {
      auto it = std::find_if(a.begin(), a.end(), [&](const real_server& x) { return x.addr == r.addr; });
      if (it == a.end())
        d += " +" + r.addr.to_string() + "*" + std::to_string(r.weight);
      else if (it->weight != r.weight)
        d += " " + r.addr.to_string() + "*" + std::to_string(it->weight) + "->" + std::to_string(r.weight) +
             (r.weight == 0 ? " (drained)" : "");
    }
    for (const auto& r : a)
      if (std::none_of(b.begin(), b.end(), [&](const real_server& x) { return x.addr == r.addr; }))
        d += " -" + r.addr.to_string();
    if (running.services[si].scheduler != next.services[si].scheduler)
      d += " scheduler " + std::string(to_string(next.services[si].scheduler));
    if (!d.empty()) out += "service " + next.services[si].name + ":" + d + "\n";
  }
  return out.empty() ? "no change in real servers\n" : out;
}

}  // namespace fnat::lb
