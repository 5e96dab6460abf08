// SPDX-License-Identifier: BSD-3-Clause
// Safe publication for the fast path: a control thread replaces what workers read while they run.
//
// ## The problem
// Workers read a configuration object (services, their schedulers, the real-server sets) for every
// new connection. An operator changes it live (SIGHUP, a control socket). A lock costs every packet
// a shared cache line; a reference count costs two atomic read-modify-writes on a shared line per
// burst. Both are what a fast path cannot pay. What it can pay is one load.
//
// ## The scheme (read-copy-update with quiescent-state-based reclamation)
// The configuration is an immutable snapshot `T`. Readers hold no lock and change no shared line:
//   loop:  const T* s = cell.read();        one acquire load per burst
//          ... use *s for the whole burst (pointers into it stay valid) ...
//          cell.quiescent(id);               "I hold no pointer into any snapshot"
// The writer builds a new snapshot beside the old (allocation, validation, a Maglev table: all off
// the fast path), then publishes it with one release store of the pointer. Readers that loaded the
// old pointer may still be using it, so the old snapshot is retired, not freed: it is freed once every
// reader has reported a quiescent state after the store, because a reader that has been quiescent
// since cannot hold the old pointer any more (its next read() sees the new one or a later one).
//
// DPDK's rte_rcu_qsbr (librte_rcu, part of libdpdk) is the bookkeeping: each reader owns a counter on
// its own cache line; quiescent() copies the global token into it (one load, one store, no
// read-modify-write); the writer increments the token when it retires something (rte_rcu_qsbr_start)
// and a retired object with token t may be freed when every online reader's counter is >= t
// (rte_rcu_qsbr_check). Readers that are offline (an idle worker asleep in epoll, a worker parked
// between bursts) are skipped by the check, so a sleeping worker never blocks a reload: a worker calls
// offline() before it sleeps and online() when it wakes, and reads nothing in between.
//
// ## Why not the defer queue (rte_rcu_qsbr_dq)
// The defer queue is an rte_ring of fixed-size elements in hugepage memory (it needs EAL) and frees
// through a C callback. Here retirements are rare (one per configuration change), so the writer keeps
// them in a vector it reserved at make() with their tokens and frees in order; no EAL is needed, which
// also lets plain std::threads be readers in tests.
//
// ## Cost
// Reader: read() is one acquire load (a plain mov on x86); quiescent() is a load of the token and a
// release store into the reader's own line (no locked instruction). Writer: publish() is a store, an
// atomic increment of the token and a non-blocking check; synchronize() spins until every online
// reader has been quiescent once.
//
// ## Bounds
// At most `max_retired` old snapshots wait for readers. A reader that stays online without calling
// quiescent() (a stuck worker) would make them pile up; publish() then refuses with errc::exhausted
// and the running snapshot stays, rather than growing without bound or blocking the control thread.
//
// ## Thread model
// - make(), register_reader(), unregister_reader(): configuration time, any thread, not concurrently
//   with publish() for the same reader.
// - read(), quiescent(), online(), offline(): the reader thread `id` only; noexcept, no allocation.
// - publish(), reclaim(), synchronize(), retired(), version(): the writer; calls are serialised by an
//   internal mutex, so several control threads may publish (each snapshot is then whole, never mixed).
//   The writer may read() without being a reader (to build the next snapshot from the current one):
//   only the writer frees snapshots, so the current one cannot go away under it.
// - A reader must not call synchronize() while online (it would wait for itself).
#pragma once

#include "fnat/core/checked.hpp"
#include "fnat/core/error.hpp"
#include "fnat/dpdk/detail/dpdk_includes.hpp"

FNAT_DPDK_INCLUDES_BEGIN
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_rcu_qsbr.h>
FNAT_DPDK_INCLUDES_END

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace fnat::dpdk {

/// Sizes of an rcu_cell. Designated initializers: `rcu_config{.max_readers = 64}`.
struct rcu_config {
  /// Reader ids are 0 .. max_readers-1 (use rte_lcore_id() for lcores). Each costs one cache line
  /// (rte_rcu_qsbr's per-thread counter). Default 128 (RTE_MAX_LCORE of Debian's DPDK).
  std::uint32_t max_readers = 128;
  /// Most retired snapshots waiting for readers; publish() refuses beyond (see "Bounds"). Default 64.
  std::uint32_t max_retired = 64;
};

/// One published immutable snapshot of T, replaced by a writer while readers use it (see the file
/// comment). Owns the current snapshot and every retired one; movable, not copyable. The destructor
/// frees them all: Requires no reader is between read() and its next quiescent() any more (stop the
/// workers first).
template <class T>
class rcu_cell {
  struct state;

 public:
  /// Builds the cell holding `initial` (version 1). Errors: errc::invalid_argument for a null
  /// `initial`, max_readers of 0 or above 1 << 20, max_retired of 0; errc::no_memory.
  /// Complexity: O(max_readers) memory and time. Allocates.
  [[nodiscard]] static result<rcu_cell> make(std::unique_ptr<const T> initial, const rcu_config& cfg = {}) {
    if (!initial) return error(errc::invalid_argument, "rcu_cell: the initial snapshot is null; pass a built T");
    if (cfg.max_readers == 0 || cfg.max_readers > (1u << 20))
      return error(errc::invalid_argument, "rcu_cell: max_readers = " + std::to_string(cfg.max_readers) +
                                               " is outside 1..1048576; give the number of worker ids");
    if (cfg.max_retired == 0)
      return error(errc::invalid_argument, "rcu_cell: max_retired must be at least 1 (one old snapshot)");
    const std::size_t size = rte_rcu_qsbr_get_memsize(cfg.max_readers);
    if (size == 0) return error(errc::invalid_argument, "rcu_cell: rte_rcu_qsbr_get_memsize refused max_readers");
    auto s = std::unique_ptr<state>(new (std::nothrow) state);
    if (!s) return error(errc::no_memory, "rcu_cell: no memory for the cell");
    s->qsbr = static_cast<rte_rcu_qsbr*>(::operator new(size, std::align_val_t{RTE_CACHE_LINE_SIZE}, std::nothrow));
    if (s->qsbr == nullptr)
      return error(errc::no_memory, "rcu_cell: no memory for " + std::to_string(size) + " bytes of reader counters");
    if (rte_rcu_qsbr_init(s->qsbr, cfg.max_readers) != 0)
      return error(errc::invalid_argument, "rcu_cell: rte_rcu_qsbr_init failed (rte_errno " + std::to_string(rte_errno) + ")");
    s->max_readers = cfg.max_readers;
    s->retired.reserve(cfg.max_retired);
    s->max_retired = cfg.max_retired;
    s->current.store(initial.release(), std::memory_order_release);
    return rcu_cell(std::move(s));
  }

  rcu_cell(rcu_cell&&) noexcept = default;
  rcu_cell& operator=(rcu_cell&&) noexcept = default;
  rcu_cell(const rcu_cell&) = delete;
  rcu_cell& operator=(const rcu_cell&) = delete;
  ~rcu_cell() = default;

  // ---- readers ------------------------------------------------------------------------------------

  /// Registers reader `id` (offline: it blocks nothing until it calls online()). Errors:
  /// errc::invalid_argument for id >= max_readers (the message says the bound). Registering twice is
  /// harmless. Configuration time, any thread.
  [[nodiscard]] result<void> register_reader(unsigned id) {
    if (id >= s_->max_readers)
      return error(errc::invalid_argument, "rcu_cell: reader id " + std::to_string(id) + " is not below max_readers = " +
                                               std::to_string(s_->max_readers) + "; raise rcu_config::max_readers");
    if (rte_rcu_qsbr_thread_register(s_->qsbr, id) != 0)
      return error(errc::invalid_argument, "rcu_cell: rte_rcu_qsbr_thread_register(" + std::to_string(id) + ") failed");
    return {};
  }

  /// Unregisters reader `id`: it no longer blocks reclamation. Requires: offline. noexcept.
  void unregister_reader(unsigned id) noexcept {
    if (id < s_->max_readers) (void)rte_rcu_qsbr_thread_unregister(s_->qsbr, id);
  }

  /// Reader `id` starts reading: from now on reclamation waits for its quiescent states. Call before
  /// the first read() and after every offline(). Reader thread only; O(1), noexcept.
  void online(unsigned id) noexcept {
    FNAT_EXPECT("rcu_cell", id < s_->max_readers, "online(): reader id out of range; register it first");
    rte_rcu_qsbr_thread_online(s_->qsbr, id);
  }

  /// Reader `id` stops reading (about to sleep): reclamation stops waiting for it. It must hold no
  /// pointer from read() afterwards. Reader thread only; O(1), noexcept.
  void offline(unsigned id) noexcept {
    FNAT_EXPECT("rcu_cell", id < s_->max_readers, "offline(): reader id out of range");
    rte_rcu_qsbr_thread_offline(s_->qsbr, id);
  }

  /// The current snapshot: one acquire load. Requires: the calling reader is online. The pointer is
  /// valid until the caller's next quiescent() or offline(); never null. O(1), noexcept.
  [[nodiscard]] FNAT_ALWAYS_INLINE const T* read() const noexcept { return s_->current.load(std::memory_order_acquire); }

  /// Reader `id` holds no pointer from read() any more (call once per loop, after the burst). Reader
  /// thread only; O(1), noexcept, no read-modify-write.
  FNAT_ALWAYS_INLINE void quiescent(unsigned id) noexcept {
    FNAT_EXPECT("rcu_cell", id < s_->max_readers, "quiescent(): reader id out of range");
    rte_rcu_qsbr_quiescent(s_->qsbr, id);
  }

  // ---- the writer ---------------------------------------------------------------------------------

  /// Makes `next` the current snapshot (one release store; readers see it at their next read()) and
  /// retires the old one, freed by a later publish(), reclaim() or synchronize() once every online
  /// reader has been quiescent. Frees what is already safe first. Errors, the current snapshot
  /// unchanged and `next` destroyed: errc::invalid_argument for null; errc::exhausted when
  /// max_retired snapshots still wait for a reader that is online but never quiescent. Never blocks
  /// on readers. Complexity: O(readers + retired).
  [[nodiscard]] result<void> publish(std::unique_ptr<const T> next) {
    if (!next) return error(errc::invalid_argument, "rcu_cell::publish: the snapshot is null");
    std::lock_guard<std::mutex> g(s_->writer);
    reclaim_locked();
    if (s_->retired.size() >= s_->max_retired)
      return error(errc::exhausted, "rcu_cell::publish: " + std::to_string(s_->retired.size()) +
                                        " old snapshots still wait for a reader that is online but has not called "
                                        "quiescent(); is a worker stuck, or asleep without offline()?");
    const T* old = s_->current.exchange(next.release(), std::memory_order_acq_rel);
    // The token is taken after the store: a reader quiescent at or after it has read the new pointer.
    s_->retired.push_back({rte_rcu_qsbr_start(s_->qsbr), std::unique_ptr<const T>(old)});
    ++s_->version;
    reclaim_locked();
    return {};
  }

  /// Frees the retired snapshots every online reader has passed. Non-blocking; returns how many it
  /// freed. Writer; O(readers + retired).
  std::size_t reclaim() {
    std::lock_guard<std::mutex> g(s_->writer);
    return reclaim_locked();
  }

  /// Waits until every online reader has been quiescent once, then frees every retired snapshot.
  /// Requires: not called by an online reader. Blocks (spins with rte_pause) while a reader is online
  /// and not quiescent. Returns how many it freed.
  std::size_t synchronize() {
    std::lock_guard<std::mutex> g(s_->writer);
    if (s_->retired.empty()) return 0;
    (void)rte_rcu_qsbr_check(s_->qsbr, s_->retired.back().token, true);
    const std::size_t n = s_->retired.size();
    s_->retired.clear();
    return n;
  }

  /// Retired snapshots not yet freed. Writer.
  [[nodiscard]] std::size_t retired() const {
    std::lock_guard<std::mutex> g(s_->writer);
    return s_->retired.size();
  }

  /// 1 for the initial snapshot, +1 per successful publish(). Writer.
  [[nodiscard]] std::uint64_t version() const {
    std::lock_guard<std::mutex> g(s_->writer);
    return s_->version;
  }

  /// The reader-id bound this cell was built with.
  [[nodiscard]] std::uint32_t max_readers() const noexcept { return s_->max_readers; }

 private:
  struct retired_snapshot {
    std::uint64_t token;
    std::unique_ptr<const T> snapshot;
  };
  struct state {
    // The pointer readers load sits on its own line, away from the writer's bookkeeping.
    alignas(64) std::atomic<const T*> current{nullptr};
    alignas(64) rte_rcu_qsbr* qsbr = nullptr;
    std::uint32_t max_readers = 0;
    std::uint32_t max_retired = 0;
    std::uint64_t version = 1;
    mutable std::mutex writer;
    std::vector<retired_snapshot> retired;  // in token order

    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      delete current.load(std::memory_order_relaxed);
      retired.clear();
      if (qsbr != nullptr) ::operator delete(qsbr, std::align_val_t{RTE_CACHE_LINE_SIZE});
    }
  };

  explicit rcu_cell(std::unique_ptr<state> s) noexcept : s_(std::move(s)) {}

  std::size_t reclaim_locked() {
    // Tokens grow with position, so the first one not yet passed ends the freeable prefix.
    std::size_t n = 0;
    while (n < s_->retired.size() && rte_rcu_qsbr_check(s_->qsbr, s_->retired[n].token, false) == 1) ++n;
    s_->retired.erase(s_->retired.begin(), s_->retired.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }

  std::unique_ptr<state> s_;
};

}  // namespace fnat::dpdk
