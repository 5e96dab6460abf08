// SPDX-License-Identifier: BSD-3-Clause
// A standard Allocator over DPDK's heap (rte_malloc_socket / rte_free), bound to a NUMA socket.
//
// fnat's containers take their memory through an Allocator at configuration time: the conn
// table's bucket array, the object pool's slots. With rte_allocator that memory comes from EAL's
// heap: hugepages when EAL runs on them (fewer TLB misses on tables of hundreds of megabytes), on
// the socket of the lcore that will use it, and in the same kind of memory rte_hash takes, so the
// two compare fairly. Every block is aligned to at least a cache line (RTE_CACHE_LINE_SIZE), so a
// table or pool starts on a line boundary.
//
//   auto alloc = fnat::dpdk::rte_allocator<std::byte>::for_lcore(lcore_id);
//   auto table = fnat::conn_table<my_conn, fnat::conn_hooks_base<my_conn>, fnat::tuple_hash,
//                                 decltype(alloc)>::make({.capacity = 1 << 20}, {}, alloc);
//
// Failure: allocate() throws std::bad_alloc, as the Allocator requirements say; fnat's make()
// functions catch it and return errc::no_memory with the size they asked for. It is called only at
// configuration time, never on the fast path.
//
// The two rte calls sit behind the Heap policy (rte_heap by default) so that tests can count or
// fail allocations without EAL.
//
// Thread safety: the DPDK heap is thread-safe; an allocator object is a value (socket + heap).
#pragma once

#include "fnat/dpdk/detail/dpdk_includes.hpp"

FNAT_DPDK_INCLUDES_BEGIN
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>
FNAT_DPDK_INCLUDES_END

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

namespace fnat::dpdk {

/// The DPDK heap calls an rte_allocator makes; replace it in tests.
struct rte_heap {
  /// rte_malloc_socket: `size` bytes aligned to `align` (a power of two) on `socket`
  /// (SOCKET_ID_ANY: any). Returns null on failure.
  [[nodiscard]] static void* allocate(const char* type, std::size_t size, unsigned align, int socket) noexcept {
    return rte_malloc_socket(type, size, align, socket);
  }
  /// rte_free.
  static void deallocate(void* p) noexcept { rte_free(p); }
};

/// A heap policy: static allocate(type, size, align, socket) -> void* (null on failure) and
/// deallocate(void*).
template <class H>
concept heap_policy = requires(const char* type, std::size_t n, unsigned align, int socket, void* p) {
  { H::allocate(type, n, align, socket) } noexcept -> std::same_as<void*>;
  { H::deallocate(p) } noexcept;
};

/// A standard Allocator (C++20 [allocator.requirements]) over the DPDK heap of one socket.
template <class T, heap_policy Heap = rte_heap>
class rte_allocator {
 public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  /// Any instance can free what any other allocated (rte_free finds the heap itself).
  using is_always_equal = std::true_type;

  template <class U>
  struct rebind {
    using other = rte_allocator<U, Heap>;
  };

  /// Alignment of every block: T's, at least a cache line.
  static constexpr std::size_t alignment = std::max<std::size_t>(alignof(T), RTE_CACHE_LINE_SIZE);

  /// Allocates on `socket` (SOCKET_ID_ANY: wherever EAL finds room). `type` is the name the DPDK
  /// heap dumps show; it must outlive the allocator (a string literal).
  explicit rte_allocator(int socket = SOCKET_ID_ANY, const char* type = "fnat") noexcept
      : socket_(socket), type_(type) {}
  template <class U>
  rte_allocator(const rte_allocator<U, Heap>& o) noexcept  // NOLINT: converting, as allocators are
      : socket_(o.socket()), type_(o.type()) {}

  /// An allocator on the socket of `lcore_id` (rte_lcore_to_socket_id). Requires: EAL started.
  [[nodiscard]] static rte_allocator for_lcore(unsigned lcore_id, const char* type = "fnat") noexcept {
    return rte_allocator(static_cast<int>(rte_lcore_to_socket_id(lcore_id)), type);
  }

  /// Memory for n objects of T, uninitialised, aligned to `alignment`.
  /// Throws: std::bad_array_new_length if n x sizeof(T) overflows, std::bad_alloc if the heap has
  /// no room (configuration time only). Complexity: the DPDK heap's.
  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    void* p = Heap::allocate(type_, std::max<std::size_t>(n * sizeof(T), 1), static_cast<unsigned>(alignment), socket_);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }

  /// Frees memory from allocate(). noexcept.
  void deallocate(T* p, std::size_t) noexcept { Heap::deallocate(p); }

  [[nodiscard]] int socket() const noexcept { return socket_; }
  [[nodiscard]] const char* type() const noexcept { return type_; }

  template <class U>
  friend bool operator==(const rte_allocator&, const rte_allocator<U, Heap>&) noexcept {
    return true;
  }

 private:
  int socket_;
  const char* type_;
};

}  // namespace fnat::dpdk
