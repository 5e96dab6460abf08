// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's start-up and shut-down: from a checked configuration to running workers, and back.
//
// make() runs on the main lcore, after rte_eal_init:
//   1. resolve the configured ports by name; one mbuf pool;
//   2. configure every port with one rx and one tx queue per worker (worker i: queue i), RSS over
//      them when the device has it, and the tx checksum offloads the device offers;
//   3. choose each port's steering (DESIGN.md): a port that holds LIPs gets a
//      fnat::dpdk::reply_steering (masked-port flow rules, one LIP per lcore, RSS-aware ports or
//      software redirect, in the order the configured mode allows), which the balancer owns; its
//      owner function answers, per port, which worker a reply belongs to. The class bits of the plan
//      are chosen for balance within a flow-rule budget unless configured (choose_class_bits). The
//      choice and the reason are logged and shown by telemetry;
//   4. build the shared tables (services, LIPs, routes of the real servers) and one worker per lcore.
// Device calls for rte_flow and RSS go through an ethdev_ops policy (fnat/dpdk/ethdev_ops.hpp): the
// real one in production, a software NIC model in the in-process tests.
#pragma once

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fnat/dpdk/ethdev_ops.hpp>
#include <fnat/dpdk/flow_rules.hpp>
#include <fnat/dpdk/reply_steering.hpp>
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

  /// SIGHUP: re-reads `path` (normally config().source), checks it whole, and publishes the new real
  /// servers, weights and schedulers of the existing services to the running workers (live.hpp).
  /// Established conns keep their server; new conns follow the new weights; weight 0 drains. Returns
  /// what changed, one line per service. Errors, the running configuration unchanged: the file's
  /// own ("FILE:LINE: ..."), a change that needs a restart (errc::not_supported, with the line),
  /// too many distinct real servers, workers that have not passed a quiescent state for max_retired
  /// reloads. Control thread only (not concurrent with itself). Allocates.
  [[nodiscard]] result<std::string> reload(const std::string& path);
  /// Frees the configurations the workers no longer read (call now and then from the control thread).
  void reclaim();
  /// The version of the live configuration: 1 at start, +1 per applied reload.
  [[nodiscard]] std::uint64_t live_version() const { return sh_->live->version(); }
  /// The configuration the workers run now (the start-up one until a reload changed it).
  [[nodiscard]] const lb_config& live_config() const noexcept { return live_cfg_; }

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
  // The LIPs of the services routed out of port index `pi`, each once, in configuration order.
  [[nodiscard]] std::vector<inet_addr> port_lips(std::size_t pi) const;
  // The configured modes as reply_steering tries them.
  [[nodiscard]] std::vector<dpdk::reply_steering_mode> steering_modes() const;

  // A port's reply_steering, whatever its Ops: the balancer owns it (its destructor removes the rules).
  struct steering_holder {
    virtual ~steering_holder() = default;
  };
  template <class Ops>
  struct steering_box final : steering_holder {
    explicit steering_box(dpdk::reply_steering<Ops>&& s) : steering(std::move(s)) {}
    dpdk::reply_steering<Ops> steering;
  };

  lb_config cfg_;
  lb_config live_cfg_;                   // what reload() last applied (cfg_ stays: workers read it)
  std::optional<ini_file> running_ini_;  // the file live_cfg_ came from, to tell what a reload changes
  std::unique_ptr<lb_shared> sh_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::unique_ptr<steering_holder>> steering_;  // one per port with LIPs
  std::vector<std::uint16_t> started_ports_;
  std::string name_;
  bool running_ = false;
};

// ---- templates ------------------------------------------------------------------------------------

template <dpdk::ethdev_ops Ops>
result<std::unique_ptr<balancer>> balancer::make(const lb_config& cfg, Ops ops, const balancer_options& opt) {
  std::unique_ptr<balancer> b(new balancer());
  b->cfg_ = cfg;
  b->live_cfg_ = cfg;
  if (!cfg.source.empty())
    if (auto ini = read_ini(cfg.source)) b->running_ini_.emplace(std::move(*ini));
  b->name_ = opt.name;
  b->sh_ = std::make_unique<lb_shared>();
  b->sh_->cfg = &b->cfg_;
  b->sh_->burst = std::min<std::uint16_t>(opt.burst, 64);
  if (auto r = resolve_ports(b->cfg_, ethdev_directory{}); !r) return r.err();
  port_plan_config pc = b->cfg_.plan_config();
  if (pc.class_bits == 0) {
    // Balance within the rule budget of the port with the most LIPs (reply_steering.hpp), when flow
    // rules may be tried; every port's steering then takes these bits.
    std::size_t lips = 1;
    for (std::size_t pi = 0; pi < b->cfg_.ports.size(); ++pi) lips = std::max(lips, b->port_lips(pi).size());
    const auto modes = b->steering_modes();
    const bool flow = std::find(modes.begin(), modes.end(), dpdk::reply_steering_mode::flow) != modes.end();
    const dpdk::reply_steering_config defaults{};
    auto bits = choose_class_bits(pc, flow ? std::max<std::size_t>(1, defaults.rule_budget / (2 * lips)) : port_plan::max_lcores,
                                  defaults.min_share);
    if (!bits) return bits.err();
    pc.class_bits = bits->bits;
  }
  auto plan = port_plan::make(pc);
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
  const port_plan& plan = *sh_->plan;
  for (std::size_t pi = 0; pi < cfg_.ports.size(); ++pi) {
    lb_port& port = sh_->ports[pi];
    port.owner = dpdk::reply_owner::by_plan(plan);
    std::vector<inet_addr> lips = port_lips(pi);
    if (lips.empty()) {
      port.steering = port_steering::none;
      port.steering_reason = "no LIP on this port";
      continue;
    }
    dpdk::reply_steering_config sc;
    sc.port = port.port_id;
    sc.plan.lcores.assign(plan.lcores().begin(), plan.lcores().end());
    sc.plan.port_low = plan.port_low();
    sc.plan.port_high = plan.port_high();
    sc.plan.class_bits = plan.shift();  // the balancer's plan: pools and steering agree
    sc.modes = steering_modes();
    // One LIP per lcore: LIP j of the port (configuration order) belongs to worker j mod n, and a
    // worker uses only its own; a service with LIPs here needs one for every worker, or that worker
    // could open none of its connections. auto then does not try the mode; a forced one fails.
    std::string lip_note;
    const bool lip_mode = std::find(sc.modes.begin(), sc.modes.end(), dpdk::reply_steering_mode::lip_per_lcore) !=
                          sc.modes.end();
    for (const auto& svc : cfg_.services) {
      if (!lip_mode) break;
      std::vector<bool> has(plan.size(), false);
      bool here = false;
      for (const inet_addr& lip : svc.lips)
        if (const auto it = std::find(lips.begin(), lips.end(), lip); it != lips.end())
          has[static_cast<std::size_t>(it - lips.begin()) % plan.size()] = here = true;
      for (std::size_t i = 0; here && i < has.size() && lip_note.empty(); ++i)
        if (!has[i])
          lip_note = "service " + svc.name + " would leave worker lcore " + std::to_string(plan.lcore(i).lcore_id) +
                     " without a LIP of its own; list one LIP per worker for it (LIP j of the port, in "
                     "configuration order, belongs to worker j mod " + std::to_string(plan.size()) + ")";
    }
    if (!lip_note.empty()) {
      if (cfg_.global.steering == steering_mode::lip_per_lcore)
        return error(errc::invalid_argument, "port " + port.name + ": steering = lip_per_lcore, but " + lip_note);
      std::erase(sc.modes, dpdk::reply_steering_mode::lip_per_lcore);
      lip_note = "; lip_per_lcore not tried: " + lip_note;
    }
    sc.lips = std::move(lips);
    auto s = dpdk::reply_steering<Ops>::make(ops, sc);
    if (!s) return error(s.err().code(), "port " + port.name + ": " + s.err().message());
    switch (s->mode()) {
      case dpdk::reply_steering_mode::flow:
        port.steering = port_steering::flow;
        break;
      case dpdk::reply_steering_mode::lip_per_lcore:
        port.steering = port_steering::lip_per_lcore;
        break;
      case dpdk::reply_steering_mode::rss:
        port.steering = port_steering::rss;
        break;
      case dpdk::reply_steering_mode::redirect:
        port.steering = port_steering::redirect;
        break;
    }
    port.steering_reason = s->detail();
    for (const auto& sk : s->skipped())
      port.steering_reason += "; " + std::string(to_string(sk.mode)) + " skipped: " + sk.reason;
    port.steering_reason += lip_note;
    if (const dpdk::rss_state* rss = s->rss()) {
      auto tz = toeplitz::make(rss->key);
      if (!tz) return tz.err();
      port.rss_hash = std::make_shared<const toeplitz>(std::move(*tz));
      port.reta = rss->reta;
    }
    port.owner = s->owner();
    steering_.push_back(std::make_unique<steering_box<Ops>>(std::move(*s)));
  }
  return {};
}

inline std::vector<inet_addr> balancer::port_lips(std::size_t pi) const {
  std::vector<inet_addr> lips;
  for (const auto& svc : cfg_.services)
    for (const auto& lip : svc.lips) {
      const next_hop nh = cfg_.routes.lookup(lip);
      if (nh && nh.port == pi && std::find(lips.begin(), lips.end(), lip) == lips.end()) lips.push_back(lip);
    }
  return lips;
}

inline std::vector<dpdk::reply_steering_mode> balancer::steering_modes() const {
  using m = dpdk::reply_steering_mode;
  switch (cfg_.global.steering) {
    case steering_mode::automatic:
      return {dpdk::all_reply_steering_modes.begin(), dpdk::all_reply_steering_modes.end()};
    case steering_mode::flow:
      return {m::flow};
    case steering_mode::rss:
      return {m::rss};
    case steering_mode::redirect:
      return {m::redirect};
    case steering_mode::lip_per_lcore:
      return {m::lip_per_lcore};
  }
  return {m::redirect};
}

}  // namespace fnat::lb
