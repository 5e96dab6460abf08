// SPDX-License-Identifier: BSD-3-Clause
// Redirect: hand a packet that arrived on the wrong lcore to the lcore that owns its connection.
//
// ## When
// Flow rules need a NIC that matches a masked L4 port; RSS-aware ports (rss_ports.hpp) need a key and
// RETA we know. Without either, the reply RS:rport -> LIP:lport arrives on whatever queue the NIC
// picks. Its owner follows from the reply alone, by an owner function the caller passes to
// dispatch_to_owner: with a port plan, owner = plan.class_owner(lport), one table load (port_plan.hpp);
// in any steering mode, reply_owner::owner_of (reply_steering.hpp), which also covers RSS-aware ports
// (a stray reply there, e.g. an ICMP error or a packet the NIC hashed otherwise, belongs to the lcore
// whose queue the RETA names) and one LIP per lcore. No connection state either way. DPVS's redirect keeps a global hash table from every
// connection's tuples to its owner cid, written at each new connection and looked up by every lcore
// for every packet; here nothing is shared but the rings.
//
// ## How
// Each lcore of the plan has one rte_ring, multi-producer / single-consumer, of exactly `capacity`
// packets (RING_F_SC_DEQ | RING_F_EXACT_SZ), on the owner's NUMA socket. An lcore that receives a
// packet it does not own enqueues it on the owner's ring (a compare-and-swap on the producer head per
// burst); the owner drains its ring in its loop (single-consumer dequeue, no atomic read-modify-write)
// and handles those packets as if it had received them.
//   dispatch_to_owner(me, pkts, n, owner_of)
//                                    keeps me's packets at the front of the burst, in arrival order,
//                                    and stages the others per owner (preallocated, `stage` packets
//                                    per owner): one enqueue per owner per burst, flushed early when a
//                                    stage fills. A connection's packets keep their order: they
//                                    arrive on one queue and cross one ring.
//   dispatch(me, pkts, n, lport_of)  the same with the plan's owner of the packet's lport (a redirect
//                                    made from a port plan).
//   handoff(from, to, pkts, n)       enqueues what fits; the rest are freed (rte_pktmbuf_free_bulk)
//                                    and counted as drops of `from`. Never blocks, never retries.
//   try_handoff(from, to, pkts, n)   enqueues what fits and leaves the rest to the caller, uncounted.
//   drain(me, out, n)                up to n packets handed to me.
//
// ## Counters
// Per lcore, each written only by its lcore (a relaxed load and store, no locked instruction; any
// thread may read them, and sees a recent value): redirected_out (packets it put on other lcores'
// rings), redirected_in (packets it drained from its ring), dropped (packets it could not put on a
// full ring). Over all lcores: sum(out) = sum(in) + packets still in rings. Each lcore's counters and
// staging sit on their own cache lines.
//
// ## Memory
// Per lcore: a ring of capacity pointers (8 B each, plus a 384 B header) and a stage of
// (lcores x stage) pointers; 4096 x 8 B = 32 KiB and 16 x 32 x 8 B = 4 KiB for 16 lcores by default.
//
// Every rte_* call goes through the Ops policy (redirect_ring_ops), so tests substitute rings.
#pragma once

#include "fnat/dpdk/detail/dpdk_includes.hpp"

FNAT_DPDK_INCLUDES_BEGIN
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
FNAT_DPDK_INCLUDES_END

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fnat/core/checked.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/port_plan.hpp"

#define FNAT_REDIRECT_EXPECT(cond, msg) FNAT_EXPECT("redirect", cond, msg)

namespace fnat::dpdk {

/// The seam between redirect and DPDK: rings and mbuf freeing. All static, all inline.
template <class Ops>
concept redirect_ring_ops = requires(typename Ops::ring_type* r, const typename Ops::ring_type* cr, rte_mbuf** m,
                                     rte_mbuf* const* cm, unsigned n, const char* name, int socket, unsigned lcore) {
  { Ops::create(name, n, socket) } -> std::same_as<typename Ops::ring_type*>;
  { Ops::destroy(r) } noexcept;
  { Ops::enqueue(r, cm, n) } noexcept -> std::same_as<unsigned>;
  { Ops::dequeue(r, m, n) } noexcept -> std::same_as<unsigned>;
  { Ops::count(cr) } noexcept -> std::convertible_to<unsigned>;
  { Ops::free_mbufs(cm, n) } noexcept;
  { Ops::socket_of(lcore) } noexcept -> std::convertible_to<int>;
  { Ops::last_error() } -> std::convertible_to<std::string>;
};

/// The DPDK implementation: MP/SC rte_ring of exact size, rte_pktmbuf_free_bulk.
struct rte_redirect_ops {
  using ring_type = rte_ring;
  /// Longest ring name DPDK takes (without the terminating NUL).
  static constexpr std::size_t max_name = RTE_RING_NAMESIZE - 1;

  static rte_ring* create(const char* name, unsigned capacity, int socket) noexcept {
    return rte_ring_create(name, capacity, socket, RING_F_SC_DEQ | RING_F_EXACT_SZ);
  }
  static void destroy(rte_ring* r) noexcept { rte_ring_free(r); }
  static unsigned enqueue(rte_ring* r, rte_mbuf* const* pkts, unsigned n) noexcept {
    return rte_ring_mp_enqueue_burst(r, reinterpret_cast<void* const*>(pkts), n, nullptr);
  }
  static unsigned dequeue(rte_ring* r, rte_mbuf** pkts, unsigned n) noexcept {
    return rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(pkts), n, nullptr);
  }
  static unsigned count(const rte_ring* r) noexcept { return rte_ring_count(r); }
  static void free_mbufs(rte_mbuf* const* pkts, unsigned n) noexcept {
    rte_pktmbuf_free_bulk(const_cast<rte_mbuf**>(pkts), n);
  }
  /// The NUMA socket of an EAL lcore; SOCKET_ID_ANY for an id EAL does not run.
  static int socket_of(unsigned lcore_id) noexcept {
    if (lcore_id >= RTE_MAX_LCORE || !rte_lcore_is_enabled(lcore_id)) return SOCKET_ID_ANY;
    return static_cast<int>(rte_lcore_to_socket_id(lcore_id));
  }
  static std::string last_error() { return rte_strerror(rte_errno); }
};

static_assert(redirect_ring_ops<rte_redirect_ops>);

/// What a redirect is made from. Build with designated initializers: `{.name = "lb0_redir"}`.
struct redirect_config {
  /// Ring name prefix; ring i is "<name>_<i>". Ring names are global to the EAL instance: give each
  /// redirect (each port served) its own prefix.
  std::string name = "fnat_redirect";
  /// Packets each lcore's ring holds. A burst that finds the owner's ring full loses what does not fit
  /// (counted), so size it for the owner's worst stall: 4096 covers ~40 us at 100 Mpps of strays.
  unsigned capacity = 4096;
  /// Packets dispatch() stages per owner before it enqueues them (one ring operation per stage).
  unsigned stage = 32;
  /// NUMA socket of the rings; -1: each ring on its owner lcore's socket.
  int socket_id = -1;
};

/// A snapshot of one lcore's counters (or of all lcores summed).
struct redirect_counters {
  std::uint64_t redirected_out = 0;  ///< packets this lcore put on another lcore's ring
  std::uint64_t redirected_in = 0;   ///< packets this lcore drained from its own ring
  std::uint64_t dropped = 0;         ///< packets this lcore could not hand off: the owner's ring was full
};

/// Per-lcore rings and counters for the redirect fallback (file comment). Move-only: it owns its rings
/// and the packets in them (freed by the destructor).
template <redirect_ring_ops Ops = rte_redirect_ops>
class basic_redirect {
 public:
  using ops_type = Ops;

  /// Builds one ring per lcore of `plan` (the plan is copied: owner_of and dispatch need it).
  /// Errors: those of make(lcores, cfg).
  [[nodiscard]] static result<basic_redirect> make(const port_plan& plan, const redirect_config& cfg = {}) {
    auto r = make(plan.lcores(), cfg);
    if (!r) return r.err();
    r->plan_.emplace(plan);
    return r;
  }

  /// Builds one ring per lcore, index i for lcores[i] (its lcore id picks the ring's socket; the rx
  /// queue is not used). Owners then come from the owner function given to dispatch_to_owner.
  /// Errors: errc::invalid_argument for no lcore, capacity 0 or above 2^31 - 1, stage 0 or above
  /// 1024, a name that makes ring names longer than DPDK takes; errc::device_error when a ring cannot
  /// be created (the message carries DPDK's reason: a name in use, no memory, EAL not started), with
  /// the rings made so far freed. Complexity: O(lcores) ring creations. Allocates.
  [[nodiscard]] static result<basic_redirect> make(std::span<const lcore_queue> lcores, const redirect_config& cfg = {}) {
    if (lcores.empty() || lcores.size() > 0xffff)
      return error(errc::invalid_argument, "redirect: " + std::to_string(lcores.size()) +
                                               " lcores; give 1 to 65535 (one ring each)");
    if (cfg.capacity == 0 || cfg.capacity > 0x7fffffffu)
      return error(errc::invalid_argument, "redirect: ring capacity " + std::to_string(cfg.capacity) +
                                               " is outside 1 .. 2^31 - 1; 4096 is a good start");
    if (cfg.stage == 0 || cfg.stage > 1024)
      return error(errc::invalid_argument, "redirect: stage " + std::to_string(cfg.stage) +
                                               " is outside 1 .. 1024; use the rx burst size (32)");
    const std::string longest = cfg.name + "_" + std::to_string(lcores.size() - 1);
    if constexpr (requires { Ops::max_name; }) {
      if (longest.size() > Ops::max_name)
        return error(errc::invalid_argument, "redirect: ring name \"" + longest + "\" is longer than the " +
                                                 std::to_string(Ops::max_name) +
                                                 " characters DPDK takes; use a shorter name prefix");
    }
    basic_redirect r(lcores.size(), cfg.stage);
    for (std::size_t i = 0; i < r.n_; ++i) {
      const std::string ring_name = cfg.name + "_" + std::to_string(i);
      const int socket = cfg.socket_id >= 0 ? cfg.socket_id : Ops::socket_of(lcores[i].lcore_id);
      r.lanes_[i].ring = Ops::create(ring_name.c_str(), cfg.capacity, socket);
      if (r.lanes_[i].ring == nullptr)
        return error(errc::device_error, "redirect: cannot create ring " + ring_name + " of " +
                                             std::to_string(cfg.capacity) + " packets for lcore " +
                                             std::to_string(lcores[i].lcore_id) + ": " + Ops::last_error() +
                                             " (is the name taken by another redirect? is EAL started?)");
      r.lanes_[i].stage.assign(r.n_ * cfg.stage, nullptr);
      r.lanes_[i].staged.assign(r.n_, 0);
      r.lanes_[i].touched.reserve(r.n_);
    }
    r.capacity_ = cfg.capacity;
    return r;
  }

  basic_redirect(basic_redirect&& o) noexcept
      : plan_(std::move(o.plan_)),
        lanes_(std::move(o.lanes_)),
        n_(std::exchange(o.n_, 0)),
        stage_(o.stage_),
        capacity_(o.capacity_) {}
  basic_redirect& operator=(basic_redirect&& o) noexcept {
    if (this != &o) {
      release();
      plan_ = std::move(o.plan_);
      lanes_ = std::move(o.lanes_);
      n_ = std::exchange(o.n_, 0);
      stage_ = o.stage_;
      capacity_ = o.capacity_;
    }
    return *this;
  }
  basic_redirect(const basic_redirect&) = delete;
  basic_redirect& operator=(const basic_redirect&) = delete;
  /// Frees the packets still in the rings, then the rings. Requires: no lcore uses the redirect.
  ~basic_redirect() { release(); }

  // ---- fast path ------------------------------------------------------------------------------

  /// Index (in the plan) of the lcore a reply to local port `lport` (host order) belongs to.
  /// Requires: made from a port plan (has_plan()). O(1): one table load. noexcept.
  [[nodiscard]] std::size_t owner_of(std::uint16_t lport) const noexcept {
    FNAT_REDIRECT_EXPECT(plan_.has_value(), "owner_of(lport) of a redirect made without a port plan; use your owner function");
    return plan_->class_owner(lport);
  }

  /// Hands `n` packets to lcore `to`; takes ownership of all of them. Those the ring cannot take are
  /// freed and counted as drops of `from`. Returns the number enqueued.
  /// Requires: called on lcore `from` only; from, to < size(). Complexity: one ring enqueue (O(n)
  /// copies, one CAS), plus one bulk free when full. noexcept, never blocks, no allocation.
  unsigned handoff(std::size_t from, std::size_t to, rte_mbuf* const* pkts, unsigned n) noexcept {
    const unsigned sent = try_handoff(from, to, pkts, n);
    if (sent < n) [[unlikely]] {
      Ops::free_mbufs(pkts + sent, n - sent);
      bump(lanes_[from].dropped, n - sent);
    }
    return sent;
  }

  /// Like handoff, but the packets the ring cannot take stay the caller's (pkts[ret .. n)) and are
  /// not counted as drops. Requires: as handoff. noexcept.
  unsigned try_handoff(std::size_t from, std::size_t to, rte_mbuf* const* pkts, unsigned n) noexcept {
    FNAT_REDIRECT_EXPECT(from < n_ && to < n_, "lcore index outside the plan (use port_plan::index_of)");
    const unsigned sent = Ops::enqueue(lanes_[to].ring, pkts, n);
    bump(lanes_[from].out, sent);
    return sent;
  }

  /// Takes up to n packets handed to lcore `me`; they are the caller's. Returns how many.
  /// Requires: called on lcore `me` only (single consumer). O(returned). noexcept.
  unsigned drain(std::size_t me, rte_mbuf** out, unsigned n) noexcept {
    FNAT_REDIRECT_EXPECT(me < n_, "lcore index outside the plan (use port_plan::index_of)");
    const unsigned got = Ops::dequeue(lanes_[me].ring, out, n);
    bump(lanes_[me].in, got);
    return got;
  }

  /// Splits a received burst: packets whose lport (`lport_of(pkt)`, host order; nullopt for a
  /// packet that is not a reply to a local port, which stays here) belongs to `me` by the plan are
  /// kept, the others handed to their owners: dispatch_to_owner with the plan's class owner.
  /// Requires: made from a port plan; called on lcore `me` only. noexcept if lport_of is.
  template <class LportOf>
    requires std::invocable<LportOf&, rte_mbuf*> &&
             std::convertible_to<std::invoke_result_t<LportOf&, rte_mbuf*>, std::optional<std::uint16_t>>
  unsigned dispatch(std::size_t me, rte_mbuf** pkts, unsigned n, LportOf&& lport_of) noexcept(
      std::is_nothrow_invocable_v<LportOf&, rte_mbuf*>) {
    FNAT_REDIRECT_EXPECT(plan_.has_value(), "dispatch(lport_of) of a redirect made without a port plan; use dispatch_to_owner");
    const port_plan& plan = *plan_;
    return dispatch_to_owner(me, pkts, n, [&](rte_mbuf* m) -> std::size_t {
      const std::optional<std::uint16_t> lport = lport_of(m);
      return lport ? plan.class_owner(*lport) : me;
    });
  }

  /// Splits a received burst by owner: packets for which `owner_of(pkt)` is `me`, or an index
  /// outside the redirect (reply_owner::npos: not a reply, or nobody's), are moved to the front of
  /// pkts in arrival order; the others are staged per owner and handed over with one enqueue per
  /// owner per burst (handoff semantics: counted drops when a ring is full). Returns the number kept,
  /// pkts[0 .. ret). Works in every steering mode: pass reply_owner's owner_of on the parsed reply.
  /// Requires: called on lcore `me` only. Complexity: O(n) plus one enqueue per owner per `stage`
  /// packets. noexcept if owner_of is; no allocation.
  template <class OwnerOf>
    requires std::invocable<OwnerOf&, rte_mbuf*> &&
             std::convertible_to<std::invoke_result_t<OwnerOf&, rte_mbuf*>, std::size_t>
  unsigned dispatch_to_owner(std::size_t me, rte_mbuf** pkts, unsigned n, OwnerOf&& owner_of) noexcept(
      std::is_nothrow_invocable_v<OwnerOf&, rte_mbuf*>) {
    FNAT_REDIRECT_EXPECT(me < n_, "lcore index outside the plan (use port_plan::index_of)");
    lane& l = lanes_[me];
    unsigned kept = 0;
    for (unsigned i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      const std::size_t owner = owner_of(m);
      if (owner == me || owner >= n_) {
        pkts[kept++] = m;
        continue;
      }
      unsigned& k = l.staged[owner];
      if (k == 0) l.touched.push_back(static_cast<std::uint16_t>(owner));
      l.stage[owner * stage_ + k] = m;
      if (++k == stage_) {
        handoff(me, owner, &l.stage[owner * stage_], k);
        k = 0;
        std::erase(l.touched, static_cast<std::uint16_t>(owner));
      }
    }
    for (std::uint16_t owner : l.touched) {
      handoff(me, owner, &l.stage[owner * stage_], l.staged[owner]);
      l.staged[owner] = 0;
    }
    l.touched.clear();
    return kept;
  }

  // ---- inspection -----------------------------------------------------------------------------

  /// Number of lcores (rings).
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Packets each ring holds.
  [[nodiscard]] unsigned capacity() const noexcept { return capacity_; }
  /// True when made from a port plan (owner_of(lport) and dispatch(lport_of) work).
  [[nodiscard]] bool has_plan() const noexcept { return plan_.has_value(); }
  /// The plan owner_of follows. Requires: has_plan().
  [[nodiscard]] const port_plan& plan() const noexcept { return *plan_; }
  /// Packets waiting in lcore `index`'s ring. Any thread; a snapshot. Requires: index < size().
  [[nodiscard]] unsigned pending(std::size_t index) const noexcept { return Ops::count(lanes_[index].ring); }
  /// Counters of lcore `index`. Any thread; each value is recent, the three are not one instant.
  [[nodiscard]] redirect_counters counters(std::size_t index) const noexcept {
    const lane& l = lanes_[index];
    return {l.out.load(std::memory_order_relaxed), l.in.load(std::memory_order_relaxed),
            l.dropped.load(std::memory_order_relaxed)};
  }
  /// Counters summed over all lcores. O(lcores).
  [[nodiscard]] redirect_counters total() const noexcept {
    redirect_counters t;
    for (std::size_t i = 0; i < n_; ++i) {
      const redirect_counters c = counters(i);
      t.redirected_out += c.redirected_out;
      t.redirected_in += c.redirected_in;
      t.dropped += c.dropped;
    }
    return t;
  }

 private:
  struct alignas(64) lane {
    typename Ops::ring_type* ring = nullptr;
    std::atomic<std::uint64_t> out{0};
    std::atomic<std::uint64_t> in{0};
    std::atomic<std::uint64_t> dropped{0};
    std::vector<rte_mbuf*> stage;        // owner * stage_ + k
    std::vector<unsigned> staged;        // owner -> packets staged
    std::vector<std::uint16_t> touched;  // owners with staged packets, in first-touch order
  };

  basic_redirect(std::size_t lcores, unsigned stage)
      : lanes_(std::make_unique<lane[]>(lcores)), n_(lcores), stage_(stage) {}

  // Single writer: a plain load and store, no locked instruction.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t k) noexcept {
    c.store(c.load(std::memory_order_relaxed) + k, std::memory_order_relaxed);
  }

  void release() noexcept {
    if (!lanes_) return;
    for (std::size_t i = 0; i < n_; ++i) {
      lane& l = lanes_[i];
      if (l.ring == nullptr) continue;
      rte_mbuf* burst[64];
      for (unsigned got; (got = Ops::dequeue(l.ring, burst, 64)) != 0;) Ops::free_mbufs(burst, got);
      Ops::destroy(l.ring);
      l.ring = nullptr;
    }
    lanes_.reset();
    n_ = 0;
  }

  std::optional<port_plan> plan_;  // when made from a plan
  std::unique_ptr<lane[]> lanes_;
  std::size_t n_ = 0;
  unsigned stage_ = 32;
  unsigned capacity_ = 0;
};

/// The redirect over DPDK rings.
using redirect = basic_redirect<>;

}  // namespace fnat::dpdk
