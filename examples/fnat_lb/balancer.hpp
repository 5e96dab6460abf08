// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's start-up and shut-down: from a checked configuration to running workers, and back.
//
// make() runs on the main lcore, after rte_eal_init:
//   1. resolve the configured ports by name; one mbuf pool;
//   2. configure every port with one rx and one tx queue per worker (worker i: queue i), RSS over
//      them when the device has it, and the tx checksum offloads the device offers;
//   3. choose each port's steering (DESIGN.md): a port that holds LIPs tries, in the order the
//      configured mode allows, flow rules (validated first through a capability probe, then
//      installed, all or nothing), RSS-aware ports (key and RETA programmed and read back), and
//      software redirect. The choice and the reason are logged and shown by telemetry;
//   4. build the shared tables (services, LIPs, routes of the real servers) and one worker per lcore.
// Device calls for rte_flow and RSS go through an ethdev_ops policy (fnat/dpdk/ethdev_ops.hpp): the
// real one in production, a software NIC model in the in-process tests.
#pragma once

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fnat/dpdk/ethdev_ops.hpp>
#include <fnat/dpdk/flow_rules.hpp>
#include <fnat/dpdk/rss.hpp>

#include "fnat_lb/config.hpp"
#include "fnat_lb/dataplane.hpp"

namespace fnat::lb {

/// The balancer's rte_log type ("fnat.lb").
int log_type() noexcept;

#define FNAT_LB_LOG(level, ...) \
  rte_log(RTE_LOG_##level, ::fnat::lb::log_type(), "fnat_lb: " __VA_ARGS__)

/// Start-up options that are not in the configuration file.
struct balancer_options {
  /// rx and tx descriptors per queue (adjusted to what the device accepts). Default 1024.
  std::uint16_t rx_desc = 1024;
  std::uint16_t tx_desc = 1024;
  /// mbufs in the pool; 0 sizes it from ports, queues and rings.
  unsigned mbufs = 0;
  /// Packets per rx burst (at most 64). Default 32.
  std::uint16_t burst = 32;
  /// The tx function (default: rte_eth_tx_burst) and its context.
  tx_function tx = nullptr;
  void* tx_ctx = nullptr;
  /// Unique prefix of the rings and pools this balancer creates (several balancers in one process).
  std::string name = "fnat_lb";
};

/// The running balancer (see the file comment).
class balancer {
 public:
  /// Builds everything on the main lcore (see the file comment). `cfg` is copied. Errors: a port
  /// that does not exist or cannot be configured with a queue per worker, a steering mode that was
  /// asked for and is not available (with the device's reason), resources that cannot be had.
  template <dpdk::ethdev_ops Ops>
  [[nodiscard]] static result<std::unique_ptr<balancer>> make(const lb_config& cfg, Ops ops,
                                                              const balancer_options& opt = {});
  ~balancer();
  balancer(const balancer&) = delete;
  balancer& operator=(const balancer&) = delete;

  /// Starts every worker on its lcore. Errors: a worker lcore that is not an enabled EAL worker.
  [[nodiscard]] result<void> launch();
  /// Asks the workers to stop and waits for them. Idempotent.
  void stop();
  /// Expires every conn and empties every cache (after stop()); then every pool is whole. Returns
  /// what leaked: empty when nothing did.
  [[nodiscard]] std::string drain_and_check();

  [[nodiscard]] lb_shared& shared() noexcept { return *sh_; }
  [[nodiscard]] const lb_config& config() const noexcept { return cfg_; }
  [[nodiscard]] std::span<const std::unique_ptr<worker>> workers() const noexcept { return workers_; }
  [[nodiscard]] bool running() const noexcept { return running_; }

  /// Totals, per-worker lines and drops by reason, for logs and the final summary.
  [[nodiscard]] std::string summary() const;
  /// The same as one JSON object (scripts parse it).
  [[nodiscard]] std::string summary_json() const;

 private:
  balancer() = default;
  [[nodiscard]] result<void> setup_ports(const balancer_options& opt);
  [[nodiscard]] result<void> build_shared();
  [[nodiscard]] result<void> build_workers();
  template <dpdk::ethdev_ops Ops>
  [[nodiscard]] result<void> choose_steering(Ops ops);

  lb_config cfg_;
  std::unique_ptr<lb_shared> sh_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::shared_ptr<void>> keep_;  // installed flows (their destructors remove the rules)
  std::vector<std::uint16_t> started_ports_;
  std::string name_;
  bool running_ = false;
};

// ---- templates ------------------------------------------------------------------------------------

template <dpdk::ethdev_ops Ops>
result<std::unique_ptr<balancer>> balancer::make(const lb_config& cfg, Ops ops, const balancer_options& opt) {
  std::unique_ptr<balancer> b(new balancer());
  b->cfg_ = cfg;
  b->name_ = opt.name;
  b->sh_ = std::make_unique<lb_shared>();
  b->sh_->cfg = &b->cfg_;
  b->sh_->burst = std::min<std::uint16_t>(opt.burst, 64);
  if (auto r = resolve_ports(b->cfg_, ethdev_directory{}); !r) return r.err();
  auto plan = port_plan::make(b->cfg_.plan_config());
  if (!plan) return plan.err();
  b->sh_->plan.emplace(std::move(*plan));
  if (auto r = b->setup_ports(opt); !r) return r.err();
  if (auto r = b->choose_steering(ops); !r) return r.err();
  if (auto r = b->build_shared(); !r) return r.err();
  if (auto r = b->build_workers(); !r) return r.err();
  return b;
}

template <dpdk::ethdev_ops Ops>
result<void> balancer::choose_steering(Ops ops) {
  const steering_mode mode = cfg_.global.steering;
  const port_plan& plan = *sh_->plan;
  const auto nq = static_cast<std::uint16_t>(plan.size());
  for (std::size_t pi = 0; pi < cfg_.ports.size(); ++pi) {
    lb_port& port = sh_->ports[pi];
    std::vector<inet_addr> lips;
    for (const auto& svc : cfg_.services)
      for (const auto& lip : svc.lips) {
        const next_hop nh = cfg_.routes.lookup(lip);
        if (nh && nh.port == pi && std::find(lips.begin(), lips.end(), lip) == lips.end()) lips.push_back(lip);
      }
    if (lips.empty()) {
      port.steering = port_steering::none;
      port.steering_reason = "no LIP on this port";
      continue;
    }
    std::string why_not;
    if (mode == steering_mode::automatic || mode == steering_mode::flow) {
      auto rules = dpdk::build_flow_rules(plan, lips);
      if (!rules) return rules.err();
      auto cap = dpdk::probe_flow_capability(ops, port.port_id,
                                             {.port_mask = plan.mask(), .queue = 0});
      if (cap && cap->supported()) {
        auto installed = dpdk::install_flow_rules(ops, port.port_id, *rules);
        if (installed) {
          port.steering = port_steering::flow;
          port.steering_reason = std::to_string(rules->size()) + " flow rules installed (" + cap->driver + ")";
          keep_.push_back(std::make_shared<dpdk::installed_flows<Ops>>(std::move(*installed)));
          continue;
        }
        why_not = "flow rules: " + installed.err().message();
      } else {
        why_not = "flow rules: " + (cap ? cap->reason : cap.err().message());
      }
      if (mode == steering_mode::flow)
        return error(errc::not_supported, "port " + port.name + ": steering = flow, but " + why_not);
    }
    if (mode == steering_mode::automatic || mode == steering_mode::rss) {
      dpdk::rss_config rc{.key = dpdk::rss_key_choice::keep,
                          .rss_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP};
      for (std::uint16_t q = 0; q < nq; ++q) rc.queues.push_back(q);
      auto state = dpdk::program_rss(ops, port.port_id, rc);
      if (state) {
        auto tz = toeplitz::make(state->key);
        if (!tz) return tz.err();
        port.rss_hash = std::make_shared<const toeplitz>(std::move(*tz));
        port.reta = state->reta;
        port.steering = port_steering::rss;
        port.steering_reason = "RSS-aware local ports over a " + std::to_string(port.reta.size()) + "-entry RETA" +
                               (why_not.empty() ? "" : " (" + why_not + ")");
        continue;
      }
      why_not += std::string(why_not.empty() ? "" : "; ") + "RSS: " + state.err().message();
      if (mode == steering_mode::rss)
        return error(errc::not_supported, "port " + port.name + ": steering = rss, but " + why_not);
    }
    port.steering = port_steering::redirect;
    port.steering_reason = mode == steering_mode::redirect ? "configured" : why_not;
  }
  return {};
}

}  // namespace fnat::lb
