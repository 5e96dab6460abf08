// SPDX-License-Identifier: BSD-3-Clause
#include "support/bench_eal.hpp"

#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_version.h>
#include <unistd.h>

#include <algorithm>
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

namespace {
// "48K", "1024K", "32M" as sysfs writes them.
std::size_t parse_size(const std::string& s) {
  std::size_t i = 0, v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') v = v * 10 + static_cast<std::size_t>(s[i++] - '0');
  if (i < s.size() && (s[i] == 'K' || s[i] == 'k')) v <<= 10;
  if (i < s.size() && (s[i] == 'M' || s[i] == 'm')) v <<= 20;
  if (i < s.size() && (s[i] == 'G' || s[i] == 'g')) v <<= 30;
  return v;
}
std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}
}  // namespace

cache_sizes caches() noexcept {
  cache_sizes c;
  try {
    for (int i = 0; i < 8; ++i) {
      const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
      const std::string level = read_line(dir + "level");
      if (level.empty()) continue;
      const std::string type = read_line(dir + "type");
      const std::size_t size = parse_size(read_line(dir + "size"));
      if (level == "1" && type == "Data") c.l1d = size;
      if (level == "2") c.l2 = size;
      if (level == "3") c.l3 = size;
    }
  } catch (...) {
  }
  auto conf = [](int name) {
    const long v = ::sysconf(name);
    return v > 0 ? static_cast<std::size_t>(v) : std::size_t{0};
  };
  if (c.l1d == 0) c.l1d = conf(_SC_LEVEL1_DCACHE_SIZE);
  if (c.l2 == 0) c.l2 = conf(_SC_LEVEL2_CACHE_SIZE);
  if (c.l3 == 0) c.l3 = conf(_SC_LEVEL3_CACHE_SIZE);
  return c;
}

std::size_t eal_memory_bytes() noexcept {
  // The same choice as main() makes (benchmarks register before main runs).
  const long pages = free_hugepages();
  return pages >= 256 && std::getenv("FNAT_BENCH_NO_HUGE") == nullptr ? static_cast<std::size_t>(pages) << 21
                                                                     : std::size_t{6144} << 20;
}

std::uint32_t conns_inside_l3(std::size_t per_conn) noexcept {
  const std::size_t l3 = caches().l3 != 0 ? caches().l3 : std::size_t{32} << 20;
  std::uint32_t n = 1u << 10;
  while (std::size_t{n} * 2 * per_conn <= l3 / 4 && n < (1u << 30)) n *= 2;
  return n;
}

std::uint32_t conns_beyond_l3(std::size_t per_conn, std::uint32_t cap) noexcept {
  const std::size_t l3 = caches().l3 != 0 ? caches().l3 : std::size_t{32} << 20;
  std::uint32_t n = 1u << 10;
  while (std::size_t{n} * per_conn < 4 * l3 && n < cap) n *= 2;
  return std::min(n, cap);
}
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
  const fnat::bench::cache_sizes cs = fnat::bench::caches();
  benchmark::AddCustomContext("fnat_cache_l1d", std::to_string(cs.l1d));
  benchmark::AddCustomContext("fnat_cache_l2", std::to_string(cs.l2));
  benchmark::AddCustomContext("fnat_cache_l3", std::to_string(cs.l3));
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
