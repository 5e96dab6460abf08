// SPDX-License-Identifier: BSD-3-Clause
// object_pool: fixed capacity, no object lost, LIFO reuse, misuse caught in checked mode.
#include <fnat/core/object_pool.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <vector>

using fnat::errc;

namespace {

struct alignas(64) counted {
  static inline int live = 0;
  std::uint64_t value;
  explicit counted(std::uint64_t v) noexcept : value(v) { ++live; }
  ~counted() { --live; }
};

struct tiny {
  std::uint8_t b = 0;
};

struct pair_agg {
  int a;
  long b;
};

}  // namespace

TEST_CASE("a pool hands out exactly its capacity, then nullptr, and counts the refusals", "[object_pool]") {
  auto r = fnat::object_pool<counted>::make(100);
  REQUIRE(r);
  auto& pool = *r;
  REQUIRE(pool.capacity() == 100);
  REQUIRE(pool.available() == 100);
  std::vector<counted*> got;
  std::set<std::uintptr_t> addresses;
  for (std::uint64_t i = 0; i < 100; ++i) {
    counted* c = pool.allocate(i);
    REQUIRE(c != nullptr);
    REQUIRE(c->value == i);
    REQUIRE(reinterpret_cast<std::uintptr_t>(c) % 64 == 0);
    REQUIRE(pool.owns(c));
    REQUIRE(pool.index_of(c) == i);  // a fresh pool fills front to back
    REQUIRE(addresses.insert(reinterpret_cast<std::uintptr_t>(c)).second);
    REQUIRE(pool.in_use() + pool.available() == pool.capacity());
    got.push_back(c);
  }
  REQUIRE(counted::live == 100);
  REQUIRE(pool.full());
  REQUIRE(pool.allocate(7u) == nullptr);
  REQUIRE(pool.allocate(8u) == nullptr);
  REQUIRE(pool.stats().failures == 2);
  REQUIRE(counted::live == 100);
  // LIFO: the slot freed last is handed out first.
  REQUIRE(pool.deallocate(got[40]) == errc::ok);
  REQUIRE(pool.deallocate(got[3]) == errc::ok);
  REQUIRE(counted::live == 98);
  REQUIRE(pool.allocate(1000u) == got[3]);
  REQUIRE(pool.allocate(1001u) == got[40]);
  for (counted* c : got) REQUIRE(pool.deallocate(c) == errc::ok);
  REQUIRE(counted::live == 0);
  REQUIRE(pool.in_use() == 0);
  REQUIRE(pool.count_free() == 100);
  const auto s = pool.stats();
  CHECK(s.capacity == 100);
  CHECK(s.allocations == 102);
  CHECK(s.deallocations == 102);
  REQUIRE(pool.deallocate(nullptr) == errc::invalid_argument);
}

TEST_CASE("random allocate/deallocate never loses an object", "[object_pool]") {
  auto pool = std::move(*fnat::object_pool<counted>::make(257));
  std::mt19937_64 rng(3);
  std::vector<counted*> live;
  for (int op = 0; op < 100000; ++op) {
    if (rng() % 2 == 0) {
      counted* c = pool.allocate(static_cast<std::uint64_t>(op));
      if (live.size() == pool.capacity()) {
        REQUIRE(c == nullptr);
      } else {
        REQUIRE(c != nullptr);
        live.push_back(c);
      }
    } else if (!live.empty()) {
      const std::size_t i = rng() % live.size();
      REQUIRE(pool.deallocate(live[i]) == errc::ok);
      live[i] = live.back();
      live.pop_back();
    }
    REQUIRE(pool.in_use() == live.size());
    REQUIRE(pool.in_use() + pool.available() == pool.capacity());
    REQUIRE(counted::live == static_cast<int>(live.size()));
  }
  REQUIRE(pool.count_free() == pool.available());
  std::set<counted*> distinct(live.begin(), live.end());
  REQUIRE(distinct.size() == live.size());
}

TEST_CASE("destroying a pool destroys the objects still in use", "[object_pool]") {
  {
    auto pool = std::move(*fnat::object_pool<counted>::make(10));
    for (std::uint64_t i = 0; i < 6; ++i) REQUIRE(pool.allocate(i) != nullptr);
    counted* c = pool.allocate(6u);
    REQUIRE(pool.deallocate(c) == errc::ok);
    REQUIRE(counted::live == 6);
  }
  REQUIRE(counted::live == 0);
}

TEST_CASE("a moved pool keeps its objects, the source is empty", "[object_pool]") {
  auto a = std::move(*fnat::object_pool<counted>::make(4));
  counted* c = a.allocate(1u);
  auto b = std::move(a);
  REQUIRE(a.capacity() == 0);
  REQUIRE(a.allocate(2u) == nullptr);
  REQUIRE(b.owns(c));
  REQUIRE(b.in_use() == 1);
  REQUIRE(b.deallocate(c) == errc::ok);
  auto d = std::move(*fnat::object_pool<counted>::make(2));
  d = std::move(b);
  REQUIRE(d.capacity() == 4);
}

TEST_CASE("a pool over the caller's memory", "[object_pool]") {
  using pool_t = fnat::object_pool<counted>;
  static_assert(pool_t::slot_size == 64);
  alignas(64) static std::byte memory[64 * 10 + 30];
  auto r = pool_t::adopt(memory, sizeof memory);
  REQUIRE(r);
  REQUIRE(r->capacity() == 10);
  counted* c = r->allocate(5u);
  REQUIRE(static_cast<void*>(c) == static_cast<void*>(memory));
  REQUIRE(r->deallocate(c) == errc::ok);

  auto misaligned = pool_t::adopt(memory + 8, 640);
  REQUIRE_FALSE(misaligned);
  CHECK(misaligned.err().code() == errc::invalid_argument);
  CHECK_THAT(misaligned.err().message(), Catch::Contains("aligned to 64"));
  REQUIRE_FALSE(pool_t::adopt(nullptr, 640));
  REQUIRE_FALSE(pool_t::adopt(memory, 63));
  REQUIRE(pool_t::bytes_for(10) == 640);
}

TEST_CASE("slots are at least a pointer, and a zero capacity is refused", "[object_pool]") {
  using pool_t = fnat::object_pool<tiny>;
  static_assert(pool_t::slot_size == sizeof(void*));
  auto zero = pool_t::make(0);
  REQUIRE_FALSE(zero);
  CHECK(zero.err().code() == errc::invalid_argument);
  auto p = std::move(*pool_t::make(3));
  tiny* a = p.allocate();
  tiny* b = p.allocate();
  REQUIRE(reinterpret_cast<std::byte*>(b) - reinterpret_cast<std::byte*>(a) == sizeof(void*));
  auto too_big = pool_t::make(pool_t::max_capacity() + 1);
  REQUIRE_FALSE(too_big);
  // Aggregates are built with braces.
  auto q = std::move(*fnat::object_pool<pair_agg>::make(2));
  pair_agg* x = q.allocate(3, 4L);
  REQUIRE(x->a == 3);
  REQUIRE(x->b == 4);
}

namespace {
template <class T>
struct no_memory {
  using value_type = T;
  no_memory() = default;
  template <class U>
  no_memory(const no_memory<U>&) noexcept {}
  T* allocate(std::size_t) { throw std::bad_alloc(); }
  void deallocate(T*, std::size_t) noexcept {}
  template <class U>
  friend bool operator==(const no_memory&, const no_memory<U>&) noexcept {
    return true;
  }
};
}  // namespace

TEST_CASE("allocator failure becomes errc::no_memory with the size asked for", "[object_pool]") {
  auto r = fnat::object_pool<counted, no_memory<counted>>::make(1 << 20);
  REQUIRE_FALSE(r);
  CHECK(r.err().code() == errc::no_memory);
  CHECK_THAT(r.err().message(), Catch::Contains("64 MiB"));
}

#if defined(FNAT_CHECKED)
TEST_CASE("checked mode refuses double frees and foreign pointers without corrupting the pool",
          "[object_pool][checked]") {
  auto pool = std::move(*fnat::object_pool<counted>::make(8));
  auto other = std::move(*fnat::object_pool<counted>::make(8));
  counted* a = pool.allocate(1u);
  counted* b = pool.allocate(2u);
  counted* x = other.allocate(3u);
  REQUIRE(pool.deallocate(a) == errc::ok);
  REQUIRE(pool.deallocate(a) == errc::not_in_use);  // double free
  REQUIRE(pool.deallocate(x) == errc::foreign);     // another pool's object
  counted stack_object(4);
  REQUIRE(pool.deallocate(&stack_object) == errc::foreign);
  REQUIRE(pool.stats().misuses == 3);
  REQUIRE(pool.in_use() == 1);
  REQUIRE(pool.count_free() == pool.available());
  // The free list still hands out each slot once.
  std::set<counted*> seen{b};
  for (int i = 0; i < 7; ++i) REQUIRE(seen.insert(pool.allocate(9u)).second);
  REQUIRE(pool.allocate(9u) == nullptr);
  REQUIRE(other.deallocate(x) == errc::ok);
}
#endif

TEST_CASE("under AddressSanitizer a free slot is poisoned past its free-list link", "[object_pool]") {
#if defined(FNAT_ASAN)
  struct big {
    long words[8];
  };
  auto pool = fnat::object_pool<big>::make(4);
  REQUIRE(pool);
  big* b = pool->allocate();
  REQUIRE(b != nullptr);
  REQUIRE_FALSE(__asan_address_is_poisoned(&b->words[7]));
  REQUIRE(pool->deallocate(b) == fnat::errc::ok);
  REQUIRE(__asan_address_is_poisoned(&b->words[7]));   // a use after deallocate() is reported
  REQUIRE_FALSE(__asan_address_is_poisoned(&b->words[0]));  // the free-list link stays readable
  big* again = pool->allocate();
  REQUIRE(again == b);
  REQUIRE_FALSE(__asan_address_is_poisoned(&again->words[7]));
#else
  SUCCEED("not an AddressSanitizer build");
#endif
}
