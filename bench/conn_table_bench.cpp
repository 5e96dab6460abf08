// SPDX-License-Identifier: BSD-3-Clause
// Connection table benchmarks: fnat::conn_table against DPDK's rte_hash and std::unordered_map, and
// fnat::timer_wheel against rte_timer. Every impl holds the same conns under the same 2N keys
// (each conn reachable by its inbound and its outbound tuple) and is asked the same keys in the same
// random order.
//
//   conn_lookup_throughput/<impl>/conns:<N>/{hit,miss}
//                                                   one key per iteration (fnat::find,
//                                                   rte_hash_lookup_data, unordered_map::find), the
//                                                   keys independent: the CPU overlaps the misses of
//                                                   consecutive lookups (throughput)
//   conn_lookup_latency/<impl>/conns:<N>/{hit,miss} the same lookups, each key chosen by the result
//                                                   of the previous one (its index moves by a value
//                                                   computed from the returned conn pointer or status,
//                                                   always 0 but unknown to the compiler), so no
//                                                   lookup starts before the last one ended: the
//                                                   latency of one lookup
//   conn_lookup_bulk/<impl>/conns:<N>/{hit,miss}   32 keys per iteration (find_bulk,
//                                                   rte_hash_lookup_bulk_data); items = keys
//   conn_insert_erase/<impl>/conns:<N>             replace the oldest conn: erase both tuples, insert
//                                                   two fresh ones; the table stays at N conns
//   conn_expire/<impl>/conns:<N>                   arm N timers (random memory order, deadlines in
//                                                   arrival order), run until all fired; items = conns
//   conn_lookup_attack/<impl>/fill:{random,attack}/n:<N>/lookup:{legit,crafted}
//                                                   hash flooding (issue 14): N legitimate conns plus N
//                                                   SYN-flood conns (spoofed sources, one VIP:443), the
//                                                   flood's sources random or crafted; one lookup per
//                                                   iteration of a legitimate key or of a flood key
//
// Fairness: every lookup returns the conn and its direction (rte_hash and unordered_map store the
// conn pointer with the direction in its low bit); no impl dereferences the conn afterwards. fnat's
// bucket array and conns come from rte_allocator, so they sit in the same kind of memory as
// rte_hash's tables (hugepages when the bench main found them, else --no-huge 4 KiB pages; the JSON
// context says which). fnat hashes with its keyed default (fnat::tuple_hash: AES rounds under a
// per-process random key, hash.hpp), rte_hash with rte_hash_crc and the map with CRC32C
// (fnat::crc32c_key); the attack suite adds `fnat_crc32c`, fnat's table with the old CRC32C hash.
// Sizes (issue 21, cache regimes): 64K, 1M and 4M conns, plus two chosen at run time from the L3 of
// the machine at hand (support/bench_eal: sysfs, else sysconf): the largest power of two whose fnat
// table (128-byte conn + 4 buckets of 8 bytes) fits in a quarter of the L3, and the smallest whose
// table is 4x the L3, capped by the DPDK memory there is (~350 bytes per conn for the three tables
// of one size, held at once). Every case has the counters table_bytes (fnat's footprint) and l3_bytes.
// Loads: fnat at max_load_factor 0.5 (its default: 2N nodes, 4N buckets); rte_hash with 4N entries
// (2N keys fill half its slots); unordered_map reserved for 2N (load <= 1).
#include <fnat/core/conn_table.hpp>
#include <fnat/core/object_pool.hpp>
#include <fnat/core/timer_wheel.hpp>
#include <fnat/dpdk/memory.hpp>

#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_timer.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "support/bench_eal.hpp"
#include "support/crc_flood.hpp"

namespace {

using fnat::tuple4;

// A lean but realistic conn: the two tuple nodes first (one cache line), then the timer and the
// fields a FullNAT balancer keeps. 128 bytes.
struct alignas(64) bench_conn : fnat::conn_hooks<tuple4>, fnat::timer_entry {
  std::uint32_t id = 0;
  std::uint8_t state = 0;
  std::uint8_t flags = 0;
  std::uint16_t lport = 0;
  std::uint32_t rs = 0;
  std::uint32_t lip = 0;
  std::uint64_t packets[2] = {0, 0};
  explicit bench_conn(std::uint32_t i) noexcept : id(i) {}
};
static_assert(sizeof(bench_conn) == 128);

using conn_alloc = fnat::dpdk::rte_allocator<bench_conn>;
using byte_alloc = fnat::dpdk::rte_allocator<std::byte>;
using fnat_table = fnat::conn_table<bench_conn, fnat::conn_hooks_base<bench_conn>, fnat::tuple_hash, byte_alloc>;
using conn_pool = fnat::object_pool<bench_conn, conn_alloc>;

constexpr std::size_t burst = 32;

// ---- keys ---------------------------------------------------------------------------------------

// A bijection on 32 bits (an odd multiply and xor-shifts), so distinct conns get distinct clients.
std::uint32_t mix32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Conn i, generation g. Inbound: client (unique per i) -> one of 16 VIPs. Outbound: one of 64 real
// servers -> LIP:lport with (LIP, lport) unique per i; g varies the ports so that each generation's
// tuples are new keys.
tuple4 in_key(std::uint32_t i, std::uint32_t g) {
  return fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(mix32(i)), static_cast<std::uint16_t>(1024 + g),
                          fnat::ipv4_addr::from_host(0xc6120100u + (i & 15)), 443);
}
tuple4 out_key(std::uint32_t i, std::uint32_t g) {
  return fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(0xc6130000u + (i % 64)),
                          static_cast<std::uint16_t>(8080 + g), fnat::ipv4_addr::from_host(0xc6128000u + i / 64000),
                          static_cast<std::uint16_t>(1025 + i % 64000));
}
// UDP: never in the tables.
tuple4 miss_key(std::mt19937_64& rng) {
  const auto r = rng();
  return fnat::make_tuple(fnat::ipproto::udp, fnat::ipv4_addr::from_host(static_cast<std::uint32_t>(r)),
                          static_cast<std::uint16_t>(r >> 32), fnat::ipv4_addr::from_host(0xc6120100u), 53);
}

void* tag(bench_conn* c, fnat::direction d) {
  return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(c) | static_cast<std::uintptr_t>(d));
}

struct crc_hash {
  std::size_t operator()(const tuple4& k) const noexcept { return fnat::crc32c_key(k); }
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "conn_table_bench: %s\n", what.c_str());
  std::exit(1);
}

// ---- the conns of one size, and each impl's table over them -------------------------------------

struct rte_hash_deleter {
  void operator()(rte_hash* h) const noexcept { rte_hash_free(h); }
};

// insert_erase changes an impl's keys: conn i has generation `generation + 1` if i < cursor, else
// `generation`. A lookup benchmark rebuilds a table whose keys were changed (dirty).
struct key_state {
  std::uint32_t generation = 0;
  std::uint32_t cursor = 0;
  bool dirty = false;
  std::uint32_t gen_of(std::uint32_t i) const { return i < cursor ? generation + 1 : generation; }
  void advance(std::uint32_t n) {
    if (++cursor == n) {
      cursor = 0;
      ++generation;
    }
  }
};

struct world {
  std::uint32_t n = 0;
  std::optional<conn_pool> pool;
  std::vector<bench_conn*> conns;
  std::vector<tuple4> hit_keys;   // all 2N keys, shuffled: the random access order
  std::vector<tuple4> miss_keys;  // 2^20 keys in no table

  std::optional<fnat_table> fnat;
  std::unique_ptr<rte_hash, rte_hash_deleter> rh;
  std::unique_ptr<std::unordered_map<tuple4, void*, crc_hash>> map;
  key_state fnat_keys, rh_keys, map_keys;

  explicit world(std::uint32_t conns) : n(conns) {
    const int socket = static_cast<int>(rte_socket_id());
    auto p = conn_pool::make(n, conn_alloc(socket, "bench_conns"));
    if (!p) die(p.err().what());
    pool.emplace(std::move(*p));
    this->conns.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) this->conns.push_back(pool->allocate(i));
    std::mt19937_64 rng(n);
    hit_keys.reserve(2 * std::size_t{n});
    for (std::uint32_t i = 0; i < n; ++i) {
      hit_keys.push_back(in_key(i, 0));
      hit_keys.push_back(out_key(i, 0));
    }
    std::shuffle(hit_keys.begin(), hit_keys.end(), rng);
    miss_keys.resize(std::size_t{1} << 20);
    for (auto& k : miss_keys) k = miss_key(rng);
  }
  ~world() {
    fnat.reset();  // unlink the conns before the pool goes
    rh.reset();
    map.reset();
  }

  // `fresh`: the caller needs generation-0 keys (lookups); insert_erase takes the table as it is.
  fnat_table& fnat_tbl(bool fresh) {
    if (fnat && !(fresh && fnat_keys.dirty)) return *fnat;
    fnat.reset();
    auto t = fnat_table::make({.capacity = n}, {}, byte_alloc(static_cast<int>(rte_socket_id()), "bench_fnat"));
    if (!t) die(t.err().what());
    fnat.emplace(std::move(*t));
    for (std::uint32_t i = 0; i < n; ++i)
      if (fnat->insert(*conns[i], in_key(i, 0), out_key(i, 0)) != fnat::errc::ok) die("fnat insert failed");
    fnat_keys = {};
    return *fnat;
  }

  rte_hash* rte(bool fresh) {
    if (rh && !(fresh && rh_keys.dirty)) return rh.get();
    rh.reset();
    static int instance = 0;
    const std::string name = "bench_rh_" + std::to_string(instance++);
    rte_hash_parameters p{};
    p.name = name.c_str();
    p.entries = 4 * n;  // 2N keys in half the slots
    p.key_len = sizeof(tuple4);
    p.hash_func = rte_hash_crc;
    p.hash_func_init_val = 0;
    p.socket_id = static_cast<int>(rte_socket_id());
    rh.reset(rte_hash_create(&p));
    if (!rh) die(std::string("rte_hash_create: ") + rte_strerror(rte_errno));
    for (std::uint32_t i = 0; i < n; ++i) {
      const tuple4 in = in_key(i, 0), out = out_key(i, 0);
      if (rte_hash_add_key_data(rh.get(), &in, tag(conns[i], fnat::direction::inbound)) ||
          rte_hash_add_key_data(rh.get(), &out, tag(conns[i], fnat::direction::outbound)))
        die("rte_hash_add_key_data failed");
    }
    rh_keys = {};
    return rh.get();
  }

  std::unordered_map<tuple4, void*, crc_hash>& umap(bool fresh) {
    if (map && !(fresh && map_keys.dirty)) return *map;
    map.reset();
    map = std::make_unique<std::unordered_map<tuple4, void*, crc_hash>>();
    map->reserve(2 * std::size_t{n});
    for (std::uint32_t i = 0; i < n; ++i) {
      map->emplace(in_key(i, 0), tag(conns[i], fnat::direction::inbound));
      map->emplace(out_key(i, 0), tag(conns[i], fnat::direction::outbound));
    }
    map_keys = {};
    return *map;
  }
};

// Never destroyed at exit: the shared main has run rte_eal_cleanup() by then, so the last world's
// DPDK memory goes back with the process.
world* current = nullptr;

world& world_of(std::uint32_t n) {
  if (current == nullptr || current->n != n) {
    delete current;  // free the previous size first: 4M conns take gigabytes
    current = nullptr;
    current = new world(n);
  }
  return *current;
}

// ---- lookups --------------------------------------------------------------------------------------

enum class which { hit, miss };

const std::vector<tuple4>& keys_for(world& w, which k) { return k == which::hit ? w.hit_keys : w.miss_keys; }

void lookup_fnat(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  fnat_table& t = w.fnat_tbl(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto h = t.find(keys[i++ & mask]);
    benchmark::DoNotOptimize(std::as_const(h));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void lookup_rte_hash(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  rte_hash* h = w.rte(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    void* data = nullptr;
    const int rc = rte_hash_lookup_data(h, &keys[i++ & mask], &data);
    benchmark::DoNotOptimize(std::as_const(rc));
    benchmark::DoNotOptimize(std::as_const(data));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void lookup_map(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  auto& m = w.umap(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto it = m.find(keys[i++ & mask]);
    void* data = it == m.end() ? nullptr : it->second;
    benchmark::DoNotOptimize(std::as_const(data));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// Latency: the next key's index depends on the previous lookup's result. `dep` is always 0 (no
// pointer has bit 63 set; a status's sign is folded the same way), but the compiler cannot know it,
// so the address of the next key waits for the previous result.
void latency_fnat(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  fnat_table& t = w.fnat_tbl(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto h = t.find(keys[i & mask]);
    const std::uintptr_t dep = reinterpret_cast<std::uintptr_t>(h.conn) >> 63;
    i += 1 + dep;
  }
  benchmark::DoNotOptimize(std::as_const(i));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void latency_rte_hash(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  rte_hash* h = w.rte(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    void* data = nullptr;
    const int rc = rte_hash_lookup_data(h, &keys[i & mask], &data);
    // rc < 0 on a miss, data unwritten then: both folded to a 0 the compiler cannot predict.
    const std::uintptr_t dep =
        (reinterpret_cast<std::uintptr_t>(data) >> 63) + (static_cast<std::uint32_t>(rc + ENOENT) >> 31);
    i += 1 + dep;
  }
  benchmark::DoNotOptimize(std::as_const(i));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void latency_map(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  auto& m = w.umap(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto it = m.find(keys[i & mask]);
    void* data = it == m.end() ? nullptr : it->second;
    i += 1 + (reinterpret_cast<std::uintptr_t>(data) >> 63);
  }
  benchmark::DoNotOptimize(std::as_const(i));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void bulk_fnat(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  fnat_table& t = w.fnat_tbl(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;  // a multiple of the burst
  std::size_t i = 0;
  fnat::conn_hit<bench_conn> out[burst];
  for (auto _ : state) {
    const std::uint64_t hits = t.find_bulk(std::span<const tuple4>(&keys[i & mask], burst), out);
    i += burst;
    benchmark::DoNotOptimize(std::as_const(hits));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

void bulk_rte_hash(benchmark::State& state, std::uint32_t n, which k) {
  world& w = world_of(n);
  rte_hash* h = w.rte(true);
  const auto& keys = keys_for(w, k);
  const std::size_t mask = keys.size() - 1;
  std::size_t i = 0;
  const void* ptrs[burst];
  void* data[burst];
  for (auto _ : state) {
    const tuple4* base = &keys[i & mask];
    for (std::size_t j = 0; j < burst; ++j) ptrs[j] = base + j;
    std::uint64_t hits = 0;
    rte_hash_lookup_bulk_data(h, ptrs, burst, &hits, data);
    i += burst;
    benchmark::DoNotOptimize(std::as_const(hits));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * burst));
}

// ---- insert + erase -------------------------------------------------------------------------------
// Each iteration replaces conn `cursor` (the oldest): its two current tuples are erased and two new
// ones (next generation) inserted; the conn object is reused, so no impl allocates a conn.

void insert_erase_fnat(benchmark::State& state, std::uint32_t n) {
  world& w = world_of(n);
  fnat_table& t = w.fnat_tbl(false);
  key_state& ks = w.fnat_keys;
  ks.dirty = true;
  for (auto _ : state) {
    const std::uint32_t i = ks.cursor;
    bench_conn& c = *w.conns[i];
    if (t.erase(c) != fnat::errc::ok) state.SkipWithError("erase failed");
    const std::uint32_t g = ks.generation + 1;
    if (t.insert(c, in_key(i, g), out_key(i, g)) != fnat::errc::ok) state.SkipWithError("insert failed");
    ks.advance(n);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void insert_erase_rte_hash(benchmark::State& state, std::uint32_t n) {
  world& w = world_of(n);
  rte_hash* h = w.rte(false);
  key_state& ks = w.rh_keys;
  ks.dirty = true;
  for (auto _ : state) {
    const std::uint32_t i = ks.cursor;
    const std::uint32_t g = ks.generation;
    const tuple4 old_in = in_key(i, g), old_out = out_key(i, g);
    const tuple4 new_in = in_key(i, g + 1), new_out = out_key(i, g + 1);
    if (rte_hash_del_key(h, &old_in) < 0 || rte_hash_del_key(h, &old_out) < 0) state.SkipWithError("del failed");
    if (rte_hash_add_key_data(h, &new_in, tag(w.conns[i], fnat::direction::inbound)) ||
        rte_hash_add_key_data(h, &new_out, tag(w.conns[i], fnat::direction::outbound)))
      state.SkipWithError("add failed");
    ks.advance(n);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void insert_erase_map(benchmark::State& state, std::uint32_t n) {
  world& w = world_of(n);
  auto& m = w.umap(false);
  key_state& ks = w.map_keys;
  ks.dirty = true;
  for (auto _ : state) {
    const std::uint32_t i = ks.cursor;
    const std::uint32_t g = ks.generation;
    if (m.erase(in_key(i, g)) + m.erase(out_key(i, g)) != 2) state.SkipWithError("erase failed");
    m.emplace(in_key(i, g + 1), tag(w.conns[i], fnat::direction::inbound));
    m.emplace(out_key(i, g + 1), tag(w.conns[i], fnat::direction::outbound));
    ks.advance(n);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// ---- expiry -------------------------------------------------------------------------------------
// Both impls arm the same N conns in the same random memory order (pool objects are reused LIFO, so
// arrival order is not address order), with deadlines that grow with arrival as real ones do
// (arrival time + timeout), then run time forward until all have fired; per conn: one arm and one
// expiry. fnat: a 4096-slot wheel, deadlines spread over 8192 ticks (two revolutions, as a 90 s
// timeout at 10 ms ticks would be), advanced tick by tick. rte_timer: its skip list on this lcore,
// each timer due one TSC cycle after it is armed, so arming order is deadline order and all are
// due when arming ends; rte_timer_manage() then fires them without the benchmark waiting on the
// clock.

constexpr std::uint64_t spread = 8192;

std::vector<std::uint32_t> arm_order(std::uint32_t n) {
  std::vector<std::uint32_t> order(n);
  for (std::uint32_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(n + 1);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

void expire_fnat(benchmark::State& state, std::uint32_t n) {
  world& w = world_of(n);
  auto wheel_r = fnat::timer_wheel<bench_conn>::make({.slots = 4096, .tick = std::chrono::nanoseconds(1)});
  if (!wheel_r) die(wheel_r.err().what());
  auto& wheel = *wheel_r;
  const std::vector<std::uint32_t> order = arm_order(n);
  std::size_t fired = 0;
  for (auto _ : state) {
    for (std::uint32_t k = 0; k < n; ++k) (void)wheel.arm(*w.conns[order[k]], 1 + std::uint64_t{k} * spread / n);
    const std::uint64_t end = wheel.now_tick() + spread;
    for (std::uint64_t t = wheel.now_tick() + 1; t <= end; ++t)
      fired += wheel.advance_to(t, [](bench_conn& c) { benchmark::DoNotOptimize(std::as_const(c.id)); });
  }
  if (fired != static_cast<std::size_t>(state.iterations()) * n) state.SkipWithError("not every timer fired");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

std::size_t rte_fired = 0;
void rte_timer_fired(rte_timer* t, void*) {
  benchmark::DoNotOptimize(std::as_const(t));
  ++rte_fired;
}

void expire_rte_timer(benchmark::State& state, std::uint32_t n) {
  static const bool init = [] {
    const int rc = rte_timer_subsystem_init();
    return rc == 0 || rc == -EALREADY;
  }();
  if (!init) die("rte_timer_subsystem_init failed");
  std::vector<rte_timer> timers(n);
  for (auto& t : timers) rte_timer_init(&t);
  const std::vector<std::uint32_t> order = arm_order(n);
  const unsigned lcore = rte_lcore_id();
  rte_fired = 0;
  for (auto _ : state) {
    const std::size_t target = rte_fired + n;
    for (std::uint32_t k = 0; k < n; ++k) rte_timer_reset(&timers[order[k]], 1, SINGLE, lcore, rte_timer_fired, nullptr);
    while (rte_fired < target) rte_timer_manage();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// ---- hash flooding ----------------------------------------------------------------------------------
// The attacker knows fnat's code but not its key. Their best move against a CRC32C-indexed table is
// algebra (support/crc_flood.hpp): SYNs whose CRC32C agrees in the bits the table indexes with, all
// in ONE bucket: the low 19 bits for fnat's table (2N conns at load 0.5: 2^19 buckets), all 32 for
// rte_hash (the same 32-bit hash means the same primary bucket, signature and secondary bucket).
// Against the keyed hash they can do no better than send the same crafted set.
//   fill:random  N legitimate conns + N flood conns from random spoofed sources (a plain SYN flood)
//   fill:attack  N legitimate conns + N flood conns from the crafted sources
//   lookup:legit    the 2N tuples of the legitimate conns, random order (hits)
//   lookup:crafted  the N flood conns' inbound tuples, random order (hits where the table took them)
// fnat_crc32c runs unbounded (max_chain 0), as the table was before the chain bound, to show what
// the linear hash costs; with the default bound it would refuse all but 32 of the crafted SYNs.
// Counters: refused = flood inserts the table refused; longest = the longest chain (fnat impls).

enum class attack_impl { fnat, fnat_crc32c, rte_hash };
enum class fill_kind { random, attack };

using crc_table = fnat::conn_table<bench_conn, fnat::conn_hooks_base<bench_conn>, fnat::crc32c_tuple_hash, byte_alloc>;

struct attack_world {
  attack_impl impl;
  fill_kind fill;
  std::uint32_t n;
  std::optional<conn_pool> pool;
  std::vector<bench_conn*> conns;
  std::vector<tuple4> legit_keys, flood_keys;  // lookup orders
  std::optional<fnat_table> keyed;
  std::optional<crc_table> crc;
  std::unique_ptr<rte_hash, rte_hash_deleter> rh;
  std::size_t refused = 0, longest = 0;

  attack_world(attack_impl i, fill_kind f, std::uint32_t conns_n) : impl(i), fill(f), n(conns_n) {
    const int socket = static_cast<int>(rte_socket_id());
    auto p = conn_pool::make(2 * n, conn_alloc(socket, "attack_conns"));
    if (!p) die(p.err().what());
    pool.emplace(std::move(*p));
    for (std::uint32_t k = 0; k < 2 * n; ++k) conns.push_back(pool->allocate(k));
    const auto vip = fnat::ipv4_addr::from_host(0xc6120100u);
    std::vector<tuple4> flood;
    if (f == fill_kind::attack) {
      flood = fnat_flood::crc_colliding_syns(vip, 443, impl == attack_impl::rte_hash ? 32 : 19, n);
      if (flood.size() != n) die("crc_colliding_syns: not enough crafted tuples");
    } else {
      std::mt19937_64 rng(n + 7);
      for (std::uint32_t k = 0; k < n; ++k) {
        const auto r = rng();
        flood.push_back(fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(static_cast<std::uint32_t>(r)),
                                         static_cast<std::uint16_t>(r >> 32), vip, 443));
      }
    }
    // Legitimate conns 0..n-1 (in_key/out_key), flood conns n..2n-1 (their outbound tuple is the
    // balancer's choice, out_key of a fresh index).
    auto insert = [&](std::uint32_t k, const tuple4& in, const tuple4& out, bool is_flood) {
      bool ok = false;
      if (impl == attack_impl::fnat) {
        ok = keyed->insert(*conns[k], in, out) == fnat::errc::ok;
      } else if (impl == attack_impl::fnat_crc32c) {
        ok = crc->insert(*conns[k], in, out) == fnat::errc::ok;
      } else {
        ok = rte_hash_add_key_data(rh.get(), &in, tag(conns[k], fnat::direction::inbound)) == 0;
        if (ok && rte_hash_add_key_data(rh.get(), &out, tag(conns[k], fnat::direction::outbound)) != 0) {
          (void)rte_hash_del_key(rh.get(), &in);
          ok = false;
        }
      }
      if (!ok && !is_flood) die("a legitimate conn was refused");
      refused += ok ? 0 : 1;
    };
    const byte_alloc alloc(socket, "attack_table");
    if (impl == attack_impl::fnat) {
      auto t = fnat_table::make({.capacity = 2 * std::size_t{n}}, {}, alloc);
      if (!t) die(t.err().what());
      keyed.emplace(std::move(*t));
    } else if (impl == attack_impl::fnat_crc32c) {
      auto t = crc_table::make({.capacity = 2 * std::size_t{n}, .max_chain = 0}, {}, alloc);
      if (!t) die(t.err().what());
      crc.emplace(std::move(*t));
    } else {
      static int instance = 0;
      const std::string name = "attack_rh_" + std::to_string(instance++);
      rte_hash_parameters hp{};
      hp.name = name.c_str();
      hp.entries = 8 * n;  // 4N keys in half the slots, as conn_lookup
      hp.key_len = sizeof(tuple4);
      hp.hash_func = rte_hash_crc;
      hp.hash_func_init_val = 0;
      hp.socket_id = socket;
      rh.reset(rte_hash_create(&hp));
      if (!rh) die(std::string("rte_hash_create: ") + rte_strerror(rte_errno));
    }
    for (std::uint32_t k = 0; k < n; ++k) insert(k, in_key(k, 0), out_key(k, 0), false);
    for (std::uint32_t k = 0; k < n; ++k) insert(n + k, flood[k], out_key(n + k, 0), true);
    if (keyed || crc) {
      const std::size_t buckets = keyed ? keyed->bucket_count() : crc->bucket_count();
      for (std::size_t b = 0; b < buckets; ++b)
        longest = std::max(longest, keyed ? keyed->bucket_size(b) : crc->bucket_size(b));
    }
    std::mt19937_64 rng(n + 11);
    for (std::uint32_t k = 0; k < n; ++k) {
      legit_keys.push_back(in_key(k, 0));
      legit_keys.push_back(out_key(k, 0));
    }
    std::shuffle(legit_keys.begin(), legit_keys.end(), rng);
    flood_keys = flood;
    std::shuffle(flood_keys.begin(), flood_keys.end(), rng);
  }
  ~attack_world() {
    keyed.reset();  // unlink the conns before the pool goes
    crc.reset();
    rh.reset();
  }
};

attack_world* current_attack = nullptr;

attack_world& attack_world_of(attack_impl i, fill_kind f, std::uint32_t n) {
  if (current_attack == nullptr || current_attack->impl != i || current_attack->fill != f || current_attack->n != n) {
    delete current_attack;
    current_attack = nullptr;
    delete current;  // the other suites' conns: free them first
    current = nullptr;
    current_attack = new attack_world(i, f, n);
  }
  return *current_attack;
}

void lookup_attack(benchmark::State& state, attack_impl impl, fill_kind fill, std::uint32_t n, bool crafted) {
  attack_world& w = attack_world_of(impl, fill, n);
  const auto& keys = crafted ? w.flood_keys : w.legit_keys;
  const std::size_t size = keys.size();
  std::size_t i = 0;
  auto next = [&]() -> const tuple4& {
    const tuple4& k = keys[i];
    i = i + 1 == size ? 0 : i + 1;
    return k;
  };
  if (impl == attack_impl::fnat) {
    for (auto _ : state) {
      const auto h = w.keyed->find(next());
      benchmark::DoNotOptimize(std::as_const(h));
    }
  } else if (impl == attack_impl::fnat_crc32c) {
    for (auto _ : state) {
      const auto h = w.crc->find(next());
      benchmark::DoNotOptimize(std::as_const(h));
    }
  } else {
    for (auto _ : state) {
      void* data = nullptr;
      const int rc = rte_hash_lookup_data(w.rh.get(), &next(), &data);
      benchmark::DoNotOptimize(std::as_const(rc));
      benchmark::DoNotOptimize(std::as_const(data));
    }
  }
  state.counters["refused"] = static_cast<double>(w.refused);
  state.counters["longest"] = static_cast<double>(w.longest);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// ---- registration -------------------------------------------------------------------------------

struct size_case {
  std::uint32_t n;
  const char* name;
};
constexpr size_case fixed_sizes[] = {{1u << 16, "64K"}, {1u << 20, "1M"}, {1u << 22, "4M"}};
// fnat's table per conn (the conn and its 4 buckets of 8 bytes), for the cache regimes; and what one
// size's world holds in DPDK memory per conn (conns, fnat's buckets, rte_hash's 4 entries).
constexpr std::size_t fnat_bytes_per_conn = sizeof(bench_conn) + 4 * 8;
constexpr std::size_t world_bytes_per_conn = 350;

std::string size_name(std::uint32_t n) {
  return n >= (1u << 20) && n % (1u << 20) == 0 ? std::to_string(n >> 20) + "M" : std::to_string(n >> 10) + "K";
}

// The fixed sizes plus the two of the L3 regimes, in increasing order, without repeats.
std::vector<std::uint32_t> sizes() {
  std::vector<std::uint32_t> v;
  for (const auto& s : fixed_sizes) v.push_back(s.n);
  const auto cap = static_cast<std::uint32_t>(
      std::min<std::size_t>(std::size_t{1} << 24, fnat::bench::eal_memory_bytes() / 10 * 7 / world_bytes_per_conn));
  std::uint32_t cap2 = 1u << 10;
  while (cap2 * 2 <= cap) cap2 *= 2;
  v.push_back(fnat::bench::conns_inside_l3(fnat_bytes_per_conn));
  v.push_back(fnat::bench::conns_beyond_l3(fnat_bytes_per_conn, cap2));
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Every benchmark of a table size says how its table compares with the L3.
void cache_counters(benchmark::State& s, std::uint32_t n) {
  s.counters["table_bytes"] = static_cast<double>(std::size_t{n} * fnat_bytes_per_conn);
  s.counters["l3_bytes"] = static_cast<double>(fnat::bench::caches().l3);
}

template <class F, class... Args>
void add(const std::string& name, F f, Args... args) {
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { f(s, args...); })->Unit(benchmark::kNanosecond);
}
template <class F>
void add_sized(const std::string& name, F f, std::uint32_t n, which k) {
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) {
    f(s, n, k);
    cache_counters(s, n);
  })->Unit(benchmark::kNanosecond);
}

[[maybe_unused]] const bool registered = [] {
  for (const std::uint32_t n : sizes()) {
    const struct {
      std::uint32_t n;
      std::string name;
    } s{n, size_name(n)};
    const std::string c = std::string("/conns:") + s.name;
    for (which k : {which::hit, which::miss}) {
      const std::string kind = k == which::hit ? "/hit" : "/miss";
      add_sized("conn_lookup_throughput/fnat" + c + kind, lookup_fnat, s.n, k);
      add_sized("conn_lookup_throughput/rte_hash" + c + kind, lookup_rte_hash, s.n, k);
      add_sized("conn_lookup_throughput/std_unordered_map" + c + kind, lookup_map, s.n, k);
      add_sized("conn_lookup_latency/fnat" + c + kind, latency_fnat, s.n, k);
      add_sized("conn_lookup_latency/rte_hash" + c + kind, latency_rte_hash, s.n, k);
      add_sized("conn_lookup_latency/std_unordered_map" + c + kind, latency_map, s.n, k);
    }
    for (which k : {which::hit, which::miss}) {
      const std::string kind = k == which::hit ? "/hit" : "/miss";
      add_sized("conn_lookup_bulk/fnat" + c + kind, bulk_fnat, s.n, k);
      add_sized("conn_lookup_bulk/rte_hash" + c + kind, bulk_rte_hash, s.n, k);
    }
    add("conn_insert_erase/fnat" + c, insert_erase_fnat, s.n);
    add("conn_insert_erase/rte_hash" + c, insert_erase_rte_hash, s.n);
    add("conn_insert_erase/std_unordered_map" + c, insert_erase_map, s.n);
    if (s.n <= (1u << 20)) {
      add("conn_expire/fnat" + c, expire_fnat, s.n);
      add("conn_expire/rte_timer" + c, expire_rte_timer, s.n);
    }
  }
  constexpr std::uint32_t attack_n = 1u << 16;
  for (const auto& [impl, iname] : {std::pair{attack_impl::fnat, "fnat"}, std::pair{attack_impl::fnat_crc32c, "fnat_crc32c"},
                                    std::pair{attack_impl::rte_hash, "rte_hash"}})
    for (const auto& [fill, fname] : {std::pair{fill_kind::random, "random"}, std::pair{fill_kind::attack, "attack"}})
      for (const bool crafted : {false, true})
        add(std::string("conn_lookup_attack/") + iname + "/fill:" + fname + "/n:" + std::to_string(attack_n) +
                (crafted ? "/lookup:crafted" : "/lookup:legit"),
            lookup_attack, impl, fill, attack_n, crafted);
  return true;
}();

}  // namespace
