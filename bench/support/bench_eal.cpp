// SPDX-License-Identifier: BSD-3-Clause
#include "support/bench_eal.hpp"

#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_version.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fnat::bench {
namespace {
const char* memory_kind = "none";

long free_hugepages() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  long value = 0;
  while (in >> key >> value) {
    if (key == "HugePages_Free:") return value;
    in.ignore(256, '\n');
  }
  return 0;
}
}  // namespace

const char* eal_memory_kind() noexcept { return memory_kind; }
}  // namespace fnat::bench

int main(int argc, char** argv) {
  // 256 free 2 MiB pages (512 MiB) is the least worth using; below that, large tables would spill.
  const bool huge = fnat::bench::free_hugepages() >= 256 && std::getenv("FNAT_BENCH_NO_HUGE") == nullptr;
  std::vector<std::string> args = {"fnat-bench", "--no-shconf", "--no-pci", "-l", "0",
                                   "--file-prefix", "fnat-bench-" + std::to_string(::getpid()),
                                   "--log-level", "lib.eal:error"};
  if (huge) {
    args.insert(args.end(), {"--in-memory"});
  } else {
    args.insert(args.end(), {"--no-huge", "-m", "6144"});
  }
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  fnat::bench::memory_kind = huge ? "hugepages" : "no-huge";
  benchmark::AddCustomContext("fnat_eal_memory", fnat::bench::memory_kind);
  benchmark::AddCustomContext("dpdk_version", rte_version());
#if defined(__VERSION__)
  benchmark::AddCustomContext("compiler", __VERSION__);
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);  // the per-prefix directory EAL made in /var/run/dpdk
  return 0;
}
