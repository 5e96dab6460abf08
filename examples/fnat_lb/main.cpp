// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb: the reference FullNAT load balancer.
//
//   fnat_lb [EAL arguments] -- --config FILE [--check] [--stats-interval SECONDS]
//
// EAL arguments come first (lcores, devices, memory); after "--", the balancer's own. --check loads
// and checks the configuration, prints it and exits. SIGINT or SIGTERM stop the workers; the
// balancer then prints a summary, expires every conn, checks that every port pool is whole and no
// conn object is left (the leak check), and exits 0 (3 when the leak check fails). SIGHUP re-reads
// FILE and applies what changed in the real servers of its services (docs/OPERATIONS.md, "Reload");
// a file with an error, or a change that needs a restart, is reported with its line and changes
// nothing.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "fnat_lb/balancer.hpp"
#include "fnat_lb/telemetry.hpp"

namespace {

std::atomic<bool> quit{false};

void on_signal(int) { quit.store(true); }

std::atomic<bool> hangup{false};

void on_hangup(int) { hangup.store(true); }

void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s [EAL arguments] -- --config FILE [--check] [--stats-interval SECONDS]\n"
               "  --config FILE            the balancer's INI file (see lb.ini.sample)\n"
               "  --check                  load and check FILE, print it, exit\n"
               "  --stats-interval SECONDS print the totals every SECONDS (0: never; default 0)\n",
               prog);
}

}  // namespace

int main(int argc, char** argv) {
  // --check needs no EAL: look for it before rte_eal_init so a config can be checked anywhere.
  std::string config_path;
  bool check_only = false;
  unsigned stats_interval = 0;
  int app_start = argc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      app_start = i + 1;
      break;
    }
  for (int i = app_start; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--check") {
      check_only = true;
    } else if (a == "--stats-interval" && i + 1 < argc) {
      stats_interval = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      usage(argv[0]);
      return 2;
    }
  }
  if (config_path.empty()) {
    usage(argv[0]);
    return 2;
  }
  auto cfg = fnat::lb::load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "fnat_lb: %s\n", cfg.err().message().c_str());
    return 1;
  }
  if (check_only) {
    std::printf("%s", cfg->describe().c_str());
    return 0;
  }

  const int eal_args = rte_eal_init(app_start == argc ? argc : app_start - 1, argv);
  if (eal_args < 0) {
    std::fprintf(stderr, "fnat_lb: rte_eal_init: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  rte_log_set_level(fnat::lb::log_type(), static_cast<std::uint32_t>(cfg->global.log));
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_hangup);

  int rc = 0;
  {
    auto bal = fnat::lb::balancer::make(*cfg, fnat::dpdk::rte_ethdev_ops{});
    if (!bal) {
      std::fprintf(stderr, "fnat_lb: %s\n", bal.err().message().c_str());
      rte_eal_cleanup();
      return 1;
    }
    fnat::lb::balancer& b = **bal;
    FNAT_LB_LOG(INFO, "%s", b.config().describe().c_str());
    FNAT_LB_LOG(INFO, "%s", b.shared().plan->describe().c_str());
    for (const auto& p : b.shared().ports)
      FNAT_LB_LOG(INFO, "port %s (id %u): steering %s: %s\n", p.name.c_str(), p.port_id,
                  std::string(fnat::lb::to_string(p.steering)).c_str(), p.steering_reason.c_str());
    if (cfg->global.telemetry && !fnat::lb::register_telemetry(&b))
      FNAT_LB_LOG(WARNING, "telemetry commands not registered\n");
    if (auto r = b.launch(); !r) {
      std::fprintf(stderr, "fnat_lb: %s\n", r.err().message().c_str());
      rte_eal_cleanup();
      return 1;
    }
    std::printf("fnat_lb: ready: %zu workers, %zu services\n", b.workers().size(), b.shared().services.size());
    std::fflush(stdout);
    auto next_stats = std::chrono::steady_clock::now() + std::chrono::seconds(stats_interval);
    while (!quit.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      b.reclaim();
      if (hangup.exchange(false)) {
        auto r = b.reload(config_path);
        if (r) {
          FNAT_LB_LOG(NOTICE, "reload %s: applied (version %llu): %s", config_path.c_str(),
                      static_cast<unsigned long long>(b.live_version()), r->c_str());
          std::printf("fnat_lb: reload applied (version %llu)\n%s", static_cast<unsigned long long>(b.live_version()),
                      r->c_str());
        } else {
          FNAT_LB_LOG(ERR, "reload refused, running configuration kept: %s\n", r.err().message().c_str());
          std::printf("fnat_lb: reload refused, running configuration kept: %s\n", r.err().message().c_str());
        }
        std::fflush(stdout);
      }
      if (stats_interval != 0 && std::chrono::steady_clock::now() >= next_stats) {
        std::printf("%s", b.summary().c_str());
        std::fflush(stdout);
        next_stats += std::chrono::seconds(stats_interval);
      }
    }
    b.stop();
    std::printf("%s", b.summary().c_str());
    std::printf("fnat_lb: summary %s\n", b.summary_json().c_str());
    const std::string leaks = b.drain_and_check();
    if (leaks.empty()) {
      std::printf("fnat_lb: leak check: every sa_pool whole, no conn object in use\n");
    } else {
      std::printf("fnat_lb: leak check FAILED:\n%s", leaks.c_str());
      rc = 3;
    }
    std::fflush(stdout);
    fnat::lb::register_telemetry(nullptr);
  }
  rte_eal_cleanup();
  return rc;
}
