// SPDX-License-Identifier: BSD-3-Clause
// Fixed-capacity object pool: the memory of every connection an lcore may hold, taken once.
//
// ## Layout
// One array of `capacity` slots, each big enough and aligned enough for a T (and at least for a
// pointer). A free slot holds nothing but the address of the next free slot, so the free list costs
// no memory beside the objects (a LIFO "free list threaded through the free objects", the scheme of
// DPDK's mempool cache and of every slab allocator):
//
//   slots:  [ T ][next]-->[next]-->[ T ][next]--> null        free_ -> first free slot
//
// allocate() pops the head and constructs a T in place; deallocate() destroys it and pushes the slot
// back. Both are O(1), touch only the slot itself and the pool header, never call malloc, and never
// fail except by running out (allocate returns nullptr and counts it). LIFO reuse hands back the
// slot freed last, whose cache lines are the likeliest to be warm. The initial free list runs in
// address order, so a fresh pool fills front to back.
//
// Objects never move: a T* stays valid from allocate() to deallocate(), which is what intrusive
// containers (conn_table, timer_wheel) referencing the object need.
//
// ## Memory
// The slot array comes from the Allocator (rebound to the slot type), so a pool lives in hugepage
// memory on the right NUMA socket with fnat::dpdk::rte_allocator; or from memory the caller already
// has (adopt()), which the pool then does not free.
//
// ## Checked mode
// With FNAT_CHECKED defined, the pool keeps one bit per slot and deallocate() reports a pointer
// that is not one of its slots (errc::foreign) or a slot that is already free (errc::not_in_use,
// a double free) instead of corrupting the free list. Without it these are undefined behaviour and
// deallocate() always returns errc::ok; owns() (an address range check) works in both modes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fnat/core/checked.hpp"
#include "fnat/core/error.hpp"

namespace fnat {

/// Counters of an object_pool. All monotonic except in_use.
struct object_pool_stats {
  std::size_t capacity = 0;          ///< objects the pool was built for
  std::size_t in_use = 0;            ///< objects handed out and not returned
  std::uint64_t allocations = 0;     ///< successful allocate() calls
  std::uint64_t deallocations = 0;   ///< successful deallocate() calls
  std::uint64_t failures = 0;        ///< allocate() calls that found the pool empty
  std::uint64_t misuses = 0;         ///< checked mode: foreign pointers and double frees refused
};

/// A fixed-capacity pool of T (see the file comment).
///
/// Thread safety: none; one pool per lcore, like the tables whose conns it holds.
template <class T, class Allocator = std::allocator<T>>
class object_pool {
  static_assert(!std::is_array_v<T> && std::is_object_v<T>, "object_pool holds complete object types");

  struct free_node {
    free_node* next;
  };
  static constexpr std::size_t slot_align = std::max(alignof(T), alignof(free_node));
  struct alignas(slot_align) slot {
    std::byte bytes[std::max(sizeof(T), sizeof(free_node))];
  };
  using slot_alloc = typename std::allocator_traits<Allocator>::template rebind_alloc<slot>;
  using slot_traits = std::allocator_traits<slot_alloc>;

 public:
  using value_type = T;
  using allocator_type = Allocator;

  /// Bytes one object occupies in the pool (sizeof(T) rounded up to its slot alignment).
  static constexpr std::size_t slot_size = sizeof(slot);
  /// Alignment adopt() requires of its memory.
  static constexpr std::size_t slot_alignment = alignof(slot);

  /// Builds a pool of `capacity` objects with memory from `alloc`. Configuration time.
  /// Errors: errc::invalid_argument if capacity is 0 or too large to address; errc::no_memory if the
  /// allocator fails (the message gives the size asked for).
  /// Complexity: O(capacity) (threads the free list; constructs no T).
  [[nodiscard]] static result<object_pool> make(std::size_t capacity, const Allocator& alloc = Allocator()) {
    if (capacity == 0) return error(errc::invalid_argument, "object pool: capacity 0; give the number of objects to hold");
    if (capacity > max_capacity())
      return error(errc::invalid_argument, "object pool: capacity " + std::to_string(capacity) + " exceeds the maximum " +
                                               std::to_string(max_capacity()));
    object_pool p(alloc);
    try {
      p.slots_ = slot_traits::allocate(p.alloc_, capacity);
    } catch (const std::bad_alloc&) {
      return error(errc::no_memory, "object pool: cannot allocate " + std::to_string(capacity) + " objects of " +
                                        std::to_string(slot_size) + " bytes (" +
                                        std::to_string(capacity * slot_size >> 20) +
                                        " MiB); lower the capacity or give the allocator more memory");
    }
    p.owns_memory_ = true;
    p.init(capacity);
    return p;
  }

  /// Builds a pool over memory the caller owns and keeps alive longer than the pool (e.g. from
  /// rte_zmalloc_socket); capacity = bytes / slot_size. The pool never frees it. Configuration time.
  /// Errors: errc::invalid_argument if memory is null or not aligned to slot_alignment, or holds no
  /// object. Complexity: O(capacity).
  [[nodiscard]] static result<object_pool> adopt(void* memory, std::size_t bytes) {
    if (memory == nullptr) return error(errc::invalid_argument, "object pool: adopt() was given no memory");
    if (reinterpret_cast<std::uintptr_t>(memory) % slot_alignment != 0)
      return error(errc::invalid_argument, "object pool: adopted memory must be aligned to " +
                                               std::to_string(slot_alignment) + " bytes");
    const std::size_t capacity = std::min(bytes / slot_size, max_capacity());
    if (capacity == 0)
      return error(errc::invalid_argument, "object pool: " + std::to_string(bytes) +
                                               " bytes hold no object of " + std::to_string(slot_size) + " bytes");
    object_pool p{Allocator()};
    p.slots_ = static_cast<slot*>(memory);
    p.owns_memory_ = false;
    p.init(capacity);
    return p;
  }

  /// Bytes a pool of `capacity` objects needs (for adopt()).
  [[nodiscard]] static constexpr std::size_t bytes_for(std::size_t capacity) noexcept { return capacity * slot_size; }
  [[nodiscard]] static constexpr std::size_t max_capacity() noexcept {
    return std::min<std::size_t>(PTRDIFF_MAX / slot_size, std::size_t{1} << 40);
  }

  object_pool(object_pool&& o) noexcept
      : alloc_(std::move(o.alloc_)),
        slots_(std::exchange(o.slots_, nullptr)),
        free_(std::exchange(o.free_, nullptr)),
        capacity_(std::exchange(o.capacity_, 0)),
        stats_(std::exchange(o.stats_, {})),
        owns_memory_(o.owns_memory_),
        live_bits_(std::move(o.live_bits_)) {}
  object_pool& operator=(object_pool&& o) noexcept {
    if (this != &o) {
      release();
      alloc_ = std::move(o.alloc_);
      slots_ = std::exchange(o.slots_, nullptr);
      free_ = std::exchange(o.free_, nullptr);
      capacity_ = std::exchange(o.capacity_, 0);
      stats_ = std::exchange(o.stats_, {});
      owns_memory_ = o.owns_memory_;
      live_bits_ = std::move(o.live_bits_);
    }
    return *this;
  }
  object_pool(const object_pool&) = delete;
  object_pool& operator=(const object_pool&) = delete;

  /// Destroys the objects still in use (their destructors run, so auto-unlink hooks detach) and
  /// frees the memory if the pool allocated it. Destroy containers that still link pool objects
  /// (conn_table) first, or erase the objects from them. Complexity: O(capacity) if objects are in
  /// use and T has a destructor, else O(1).
  ~object_pool() { release(); }

  /// Takes a free slot and constructs T(args...) in it (T{args...} for an aggregate). The
  /// construction must not throw.
  /// Returns: the object, or nullptr when all `capacity()` objects are in use (counted in
  /// stats().failures). Complexity: O(1), no allocation. Invalidates nothing.
  template <class... Args>
    requires std::is_nothrow_constructible_v<T, Args...> || (std::is_aggregate_v<T> && sizeof...(Args) > 0)
  [[nodiscard]] T* allocate(Args&&... args) noexcept {
    free_node* n = free_;
    if (n == nullptr) [[unlikely]] {
      ++stats_.failures;
      return nullptr;
    }
    free_ = n->next;
    std::destroy_at(n);
    FNAT_ASAN_UNPOISON(n, slot_size);
#if defined(FNAT_CHECKED)
    mark(index_of_slot(reinterpret_cast<slot*>(n)), true);
#endif
    ++stats_.allocations;
    ++stats_.in_use;
    if constexpr (std::is_aggregate_v<T>) return ::new (static_cast<void*>(n)) T{std::forward<Args>(args)...};
    else return ::new (static_cast<void*>(n)) T(std::forward<Args>(args)...);
  }

  /// Destroys *p and returns its slot to the pool.
  /// Requires: p came from this pool's allocate() and was not deallocated since.
  /// Returns: errc::ok; in checked mode errc::foreign for a pointer that is not one of this pool's
  /// objects and errc::not_in_use for one already free (nothing is changed, stats().misuses counts
  /// it). A null p is errc::invalid_argument in both modes. Complexity: O(1).
  errc deallocate(T* p) noexcept {
    if (p == nullptr) return errc::invalid_argument;
#if defined(FNAT_CHECKED)
    if (!owns(p)) {
      ++stats_.misuses;
      return errc::foreign;
    }
    const std::size_t i = index_of(p);
    if (!live(i)) {
      ++stats_.misuses;
      return errc::not_in_use;
    }
    mark(i, false);
#endif
    std::destroy_at(p);
    free_ = ::new (static_cast<void*>(p)) free_node{free_};
    poison_free_slot(free_);
    ++stats_.deallocations;
    --stats_.in_use;
    return errc::ok;
  }

  /// True if p points at one of this pool's slots (live or free). O(1).
  [[nodiscard]] bool owns(const T* p) const noexcept {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    const auto base = reinterpret_cast<std::uintptr_t>(slots_);
    return a >= base && a < base + capacity_ * slot_size && (a - base) % slot_size == 0;
  }
  /// Index of an object in the pool, in [0, capacity()): a dense id for tables indexed by conn.
  /// Requires: owns(p). O(1).
  [[nodiscard]] std::size_t index_of(const T* p) const noexcept {
    return static_cast<std::size_t>(reinterpret_cast<const slot*>(p) - slots_);
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t in_use() const noexcept { return stats_.in_use; }
  /// Objects allocate() can still hand out; in_use() + available() == capacity() always.
  [[nodiscard]] std::size_t available() const noexcept { return capacity_ - stats_.in_use; }
  [[nodiscard]] bool full() const noexcept { return free_ == nullptr; }
  [[nodiscard]] const object_pool_stats& stats() const noexcept { return stats_; }
  [[nodiscard]] allocator_type get_allocator() const { return allocator_type(alloc_); }

  /// Counts the free list by walking it: O(available()). For tests and audits; equals available()
  /// unless the free list was corrupted (e.g. an unchecked double free).
  [[nodiscard]] std::size_t count_free() const noexcept {
    std::size_t n = 0;
    for (const free_node* f = free_; f != nullptr && n <= capacity_; f = f->next) ++n;
    return n;
  }

 private:
  explicit object_pool(const Allocator& a) : alloc_(a) {}

  void init(std::size_t capacity) {
    capacity_ = capacity;
    stats_.capacity = capacity;
    free_node* next = nullptr;
    for (std::size_t i = capacity; i-- > 0;) {
      next = ::new (static_cast<void*>(&slots_[i])) free_node{next};
      poison_free_slot(next);
    }
    free_ = next;
#if defined(FNAT_CHECKED)
    live_bits_.assign((capacity + 63) / 64, 0);
#endif
  }

  [[nodiscard]] std::size_t index_of_slot(const slot* s) const noexcept { return static_cast<std::size_t>(s - slots_); }
  [[nodiscard]] bool live(std::size_t i) const noexcept { return (live_bits_[i / 64] >> (i % 64)) & 1u; }
  void mark(std::size_t i, bool on) noexcept {
    if (on) live_bits_[i / 64] |= std::uint64_t{1} << (i % 64);
    else live_bits_[i / 64] &= ~(std::uint64_t{1} << (i % 64));
  }

  void destroy_live() noexcept {
    if constexpr (!std::is_trivially_destructible_v<T>) {
      if (stats_.in_use == 0) return;
      std::vector<std::uint64_t> free_bits;
      try {
        free_bits.assign((capacity_ + 63) / 64, 0);
      } catch (const std::bad_alloc&) {
        return;  // cannot tell live from free: leave the objects undestroyed rather than guess
      }
      for (const free_node* f = free_; f != nullptr; f = f->next) {
        const std::size_t i = index_of_slot(reinterpret_cast<const slot*>(f));
        free_bits[i / 64] |= std::uint64_t{1} << (i % 64);
      }
      for (std::size_t i = 0; i < capacity_; ++i)
        if (!((free_bits[i / 64] >> (i % 64)) & 1u)) std::destroy_at(reinterpret_cast<T*>(&slots_[i]));
    }
  }

  // A free slot keeps its free-list link readable; the rest of it is poisoned under ASan, so that
  // touching a deallocated object is reported.
  static void poison_free_slot([[maybe_unused]] free_node* n) noexcept {
    if constexpr (slot_size > sizeof(free_node))
      FNAT_ASAN_POISON(reinterpret_cast<std::byte*>(n) + sizeof(free_node), slot_size - sizeof(free_node));
  }

  void release() noexcept {
    if (slots_ == nullptr) return;
    destroy_live();
    FNAT_ASAN_UNPOISON(slots_, capacity_ * slot_size);  // the memory goes back to its owner clean
    if (owns_memory_) slot_traits::deallocate(alloc_, slots_, capacity_);
    slots_ = nullptr;
    free_ = nullptr;
    capacity_ = 0;
    stats_ = {};
  }

  [[no_unique_address]] slot_alloc alloc_;
  slot* slots_ = nullptr;
  free_node* free_ = nullptr;
  std::size_t capacity_ = 0;
  object_pool_stats stats_{};
  bool owns_memory_ = false;
  std::vector<std::uint64_t> live_bits_;  ///< checked mode only: one bit per slot, set while in use
};

}  // namespace fnat
