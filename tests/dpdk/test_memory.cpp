// SPDX-License-Identifier: BSD-3-Clause
// rte_allocator: fnat's tables and pools in DPDK heap memory, under EAL; and the heap seam without it.
#include <fnat/core/conn_table.hpp>
#include <fnat/core/object_pool.hpp>
#include <fnat/dpdk/memory.hpp>

#include <rte_lcore.h>
#include <rte_malloc.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>
#include <vector>

#include "support/eal.hpp"

using fnat::errc;
using fnat::dpdk::rte_allocator;

namespace {

struct alignas(64) lb_conn : fnat::conn_hooks<fnat::tuple4> {
  std::uint32_t id = 0;
  explicit lb_conn(std::uint32_t i) noexcept : id(i) {}
};

template <class A>
using table_in = fnat::conn_table<lb_conn, fnat::conn_hooks_base<lb_conn>, fnat::tuple_hash, A>;

std::size_t heap_bytes(int socket) {
  rte_malloc_socket_stats s{};
  REQUIRE(rte_malloc_get_socket_stats(socket, &s) == 0);
  return s.heap_allocsz_bytes;
}

fnat::tuple4 key(std::uint32_t i, std::uint16_t port) {
  return fnat::make_tuple(fnat::ipproto::tcp, fnat::ipv4_addr::from_host(0xc6120000u + i), port,
                          fnat::ipv4_addr::from_host(0xc6130001u), 80);
}

// A heap policy that counts calls and hands out aligned host memory, or nothing.
struct fake_heap {
  static inline int allocations = 0, frees = 0;
  static inline unsigned last_align = 0;
  static inline int last_socket = -2;
  static inline bool fail = false;
  static void* allocate(const char*, std::size_t size, unsigned align, int socket) noexcept {
    last_align = align;
    last_socket = socket;
    if (fail) return nullptr;
    ++allocations;
    return std::aligned_alloc(align, (size + align - 1) / align * align);
  }
  static void deallocate(void* p) noexcept {
    ++frees;
    std::free(p);
  }
};

}  // namespace

TEST_CASE("rte_allocator gives cache-line aligned DPDK heap memory on the asked socket", "[memory][eal]") {
  fnat::test::require_eal();
  const int socket = static_cast<int>(rte_socket_id());
  auto alloc = rte_allocator<int>::for_lcore(rte_lcore_id());
  REQUIRE(alloc.socket() == static_cast<int>(rte_lcore_to_socket_id(rte_lcore_id())));
  const std::size_t before = heap_bytes(socket);
  {
    std::vector<int, rte_allocator<int>> v(alloc);
    v.resize(100000, 7);
    REQUIRE(reinterpret_cast<std::uintptr_t>(v.data()) % RTE_CACHE_LINE_SIZE == 0);
    std::size_t size = 0;
    REQUIRE(rte_malloc_validate(v.data(), &size) == 0);  // a block of the DPDK heap
    REQUIRE(size >= 100000 * sizeof(int));
    REQUIRE(heap_bytes(socket) >= before + 100000 * sizeof(int));
  }
  REQUIRE(heap_bytes(socket) == before);
}

TEST_CASE("a conn table and its pool live in DPDK heap memory and work there", "[memory][eal]") {
  fnat::test::require_eal();
  using alloc_t = rte_allocator<std::byte>;
  const int socket = static_cast<int>(rte_socket_id());
  const std::size_t before = heap_bytes(socket);
  {
    auto pool_r = fnat::object_pool<lb_conn, rte_allocator<lb_conn>>::make(20000, rte_allocator<lb_conn>(socket, "fnat_conns"));
    REQUIRE(pool_r);
    auto& pool = *pool_r;
    auto table_r = table_in<alloc_t>::make({.capacity = 20000}, {}, alloc_t(socket, "fnat_conn_table"));
    REQUIRE(table_r);
    auto& table = *table_r;
    REQUIRE(table.get_allocator().socket() == socket);
    REQUIRE(heap_bytes(socket) >= before + table.bucket_bytes() + pool.capacity() * sizeof(lb_conn));
    for (std::uint32_t i = 0; i < 20000; ++i) {
      lb_conn* c = pool.allocate(i);
      REQUIRE(c != nullptr);
      REQUIRE(table.insert(*c, key(i, 1000), key(i, 2000)) == errc::ok);
    }
    for (std::uint32_t i = 0; i < 20000; i += 7) {
      REQUIRE(table.find(key(i, 1000)).conn->id == i);
      REQUIRE(table.find(key(i, 2000)).dir == fnat::direction::outbound);
    }
    table.clear_and_dispose([&](lb_conn& c) { REQUIRE(pool.deallocate(&c) == errc::ok); });
    REQUIRE(pool.in_use() == 0);
  }
  REQUIRE(heap_bytes(socket) == before);
}

TEST_CASE("an allocation the DPDK heap cannot satisfy becomes errc::no_memory", "[memory][eal]") {
  fnat::test::require_eal();
  using alloc_t = rte_allocator<std::byte>;
  // 2^31 conns: 2^33 buckets, 64 GiB: more than the test's EAL memory.
  auto t = table_in<alloc_t>::make({.capacity = table_in<alloc_t>::max_capacity}, {}, alloc_t());
  REQUIRE_FALSE(t);
  CHECK(t.err().code() == errc::no_memory);
  CHECK_THAT(t.err().message(), Catch::Contains("65536 MiB"));
  auto p = fnat::object_pool<lb_conn, rte_allocator<lb_conn>>::make(std::size_t{1} << 30);
  REQUIRE_FALSE(p);
  CHECK(p.err().code() == errc::no_memory);
  rte_allocator<int> a;
  CHECK_THROWS_AS(a.allocate(std::size_t{1} << 62), std::bad_array_new_length);
}

TEST_CASE("the heap seam: every allocation is freed, aligned and on the socket asked for", "[memory]") {
  using alloc_t = rte_allocator<std::byte, fake_heap>;
  fake_heap::allocations = fake_heap::frees = 0;
  {
    auto t = table_in<alloc_t>::make({.capacity = 100}, {}, alloc_t(3));
    REQUIRE(t);
    CHECK(fake_heap::last_socket == 3);
    CHECK(fake_heap::last_align == RTE_CACHE_LINE_SIZE);
    auto pool = fnat::object_pool<lb_conn, rte_allocator<lb_conn, fake_heap>>::make(10, rte_allocator<lb_conn, fake_heap>(1));
    REQUIRE(pool);
    CHECK(fake_heap::last_socket == 1);
    CHECK(fake_heap::allocations == 2);
    lb_conn* c = pool->allocate(1u);
    REQUIRE(t->insert(*c, key(1, 1), key(1, 2)) == errc::ok);
    REQUIRE(t->erase(*c) == errc::ok);
  }
  CHECK(fake_heap::frees == 2);
  fake_heap::fail = true;
  auto t = table_in<alloc_t>::make({.capacity = 100}, {}, alloc_t());
  fake_heap::fail = false;
  REQUIRE_FALSE(t);
  CHECK(t.err().code() == errc::no_memory);
  // Allocators compare equal whatever their socket: any can free what another allocated.
  CHECK(alloc_t(0) == rte_allocator<int, fake_heap>(1));
  static_assert(rte_allocator<char>::alignment == RTE_CACHE_LINE_SIZE);
  static_assert(alignof(std::max_align_t) <= rte_allocator<long double>::alignment);
}
