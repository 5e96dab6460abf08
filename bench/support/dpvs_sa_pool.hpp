// SPDX-License-Identifier: BSD-3-Clause
// DPVS's sa_pool (its per-(LIP, lcore) local-port allocator), re-implemented here from its
// description for the benchmarks' DPVS-shaped baselines (sa_pool_bench, session_bench): per bucket
// an array of 40-byte sa_entry {list links, 16-byte address, port, flags} indexed by port >> shift,
// doubly linked free and used lists; fetch = first free entry moved to the used tail; release =
// entry by index, check the used flag, move to the free tail; bucket = (low 16 address bits + port)
// % buckets; build = loop over low..high testing the class mask, once per bucket. Memory from
// rte_malloc, one block, as in DPVS.
#pragma once

#include <rte_malloc.h>

#include <fnat/core/port_plan.hpp>
#include <fnat/core/sa_pool.hpp>

#include <cstddef>
#include <cstdint>
#include <new>

namespace fnat::bench::dpvs {

using fnat::endpoint;
using fnat::errc;
using fnat::port_plan;
using fnat::sa_fetch_result;

struct list_head {
  list_head* next;
  list_head* prev;
};
inline void list_init(list_head* h) noexcept { h->next = h->prev = h; }
inline void list_del(list_head* e) noexcept {
  e->prev->next = e->next;
  e->next->prev = e->prev;
}
inline void list_add_tail(list_head* e, list_head* h) noexcept {
  e->prev = h->prev;
  e->next = h;
  h->prev->next = e;
  h->prev = e;
}
inline void list_move_tail(list_head* e, list_head* h) noexcept {
  list_del(e);
  list_add_tail(e, h);
}

constexpr std::uint16_t sa_f_used = 0x1;

struct sa_entry {  // the list hook first, as in DPVS, so list_entry is a cast
  list_head list;
  fnat::inet_addr addr;  // DPVS: union inet_addr, 16 bytes
  std::uint16_t port;    // network order
  std::uint16_t flags;
};
static_assert(sizeof(sa_entry) == 40);

struct sa_entry_pool {
  sa_entry* sa_entries;
  list_head used_entries;
  list_head free_entries;
  std::uint16_t used_cnt;
  std::uint16_t free_cnt;
  std::uint32_t miss_cnt;
  std::uint8_t shift;
};

struct sa_flow {  // what sa_pool_init computes per lcore
  std::uint16_t mask;
  std::uint16_t port_base;
  std::uint8_t shift;
};

/// One (LIP, lcore) pool: pool headers and entry arrays in one rte_malloc block, as in DPVS.
class sa_pool {
 public:
  sa_pool(const fnat::inet_addr& lip, std::uint16_t low, std::uint16_t high, std::size_t hash_sz, const sa_flow& flow)
      : lip_(lip), low_(low), high_(high), hash_sz_(hash_sz) {
    const std::uint32_t entry_num = 65536u >> flow.shift;
    bytes_ = sizeof(sa_entry_pool) * hash_sz + sizeof(sa_entry) * entry_num * hash_sz;
    pool_hash_ = static_cast<sa_entry_pool*>(rte_malloc(nullptr, bytes_, 64));
    if (pool_hash_ == nullptr) throw std::bad_alloc();
    auto* sep = reinterpret_cast<sa_entry*>(&pool_hash_[hash_sz]);
    // The big loop: every port of the range, every bucket, testing the class mask.
    for (std::size_t hash = 0; hash < hash_sz; ++hash) {
      sa_entry_pool* pool = &pool_hash_[hash];
      list_init(&pool->used_entries);
      list_init(&pool->free_entries);
      pool->used_cnt = 0;
      pool->free_cnt = 0;
      pool->miss_cnt = 0;
      pool->shift = flow.shift;
      pool->sa_entries = &sep[std::size_t{entry_num} * hash];
      for (std::uint32_t port = low_; port <= high_; ++port) {
        if (flow.mask && (static_cast<std::uint16_t>(port) & flow.mask) != flow.port_base) continue;
        sa_entry* sa = &pool->sa_entries[static_cast<std::uint16_t>(port) >> pool->shift];
        sa->addr = lip_;
        sa->port = fnat::hton16(static_cast<std::uint16_t>(port));
        sa->flags = 0;  // DPVS leaves it as rte_malloc returns it; we start clean
        list_add_tail(&sa->list, &pool->free_entries);
        pool->free_cnt++;
      }
    }
  }
  sa_pool(const sa_pool&) = delete;
  sa_pool& operator=(const sa_pool&) = delete;
  ~sa_pool() { rte_free(pool_hash_); }

  /// sa_pool_hash for IPv4: (low 16 address bits + port) % hash_sz.
  sa_entry_pool* hash(const endpoint& d) noexcept {
    const std::uint32_t v0 = d.addr.v4().host() & 0xffff;
    return &pool_hash_[(v0 + d.port) % hash_sz_];
  }

  /// sa_pool_fetch: the first free entry moves to the used tail.
  sa_fetch_result fetch(const endpoint& d) noexcept {
    sa_entry_pool* pool = hash(d);
    if (pool->free_entries.next == &pool->free_entries) {
      pool->miss_cnt++;
      return {errc::exhausted, 0};
    }
    auto* ent = reinterpret_cast<sa_entry*>(pool->free_entries.next);
    out_addr_ = ent->addr;  // the caller's sockaddr gets address and port
    const std::uint16_t port = ent->port;
    ent->flags |= sa_f_used;
    list_move_tail(&ent->list, &pool->used_entries);
    pool->used_cnt++;
    pool->free_cnt--;
    return {errc::ok, fnat::ntoh16(port)};
  }

  /// sa_pool_release: the entry by index (port >> shift); refused unless marked used; to the free tail.
  errc release(const endpoint& d, std::uint16_t port) noexcept {
    sa_entry_pool* pool = hash(d);
    sa_entry* ent = &pool->sa_entries[port >> pool->shift];
    if (!(ent->flags & sa_f_used)) return errc::not_in_use;
    ent->flags &= static_cast<std::uint16_t>(~sa_f_used);
    list_move_tail(&ent->list, &pool->free_entries);
    pool->used_cnt--;
    pool->free_cnt++;
    return errc::ok;
  }

  std::uint32_t free_count(const endpoint& d) noexcept { return hash(d)->free_cnt; }
  std::size_t memory_bytes() const noexcept { return bytes_ + sizeof(*this); }

 private:
  fnat::inet_addr lip_;
  fnat::inet_addr out_addr_;
  std::uint16_t low_, high_;
  std::size_t hash_sz_;
  sa_entry_pool* pool_hash_ = nullptr;
  std::size_t bytes_ = 0;
};

/// sa_pool_init's flow for lcore index i of a power-of-two plan: mask = 2^shift - 1, port_base = i.
inline sa_flow flow_of(const port_plan& plan, std::size_t index) {
  return sa_flow{static_cast<std::uint16_t>(plan.shift() == 0 ? 0 : plan.mask()), static_cast<std::uint16_t>(index),
                 static_cast<std::uint8_t>(plan.shift())};
}

}  // namespace fnat::bench::dpvs
