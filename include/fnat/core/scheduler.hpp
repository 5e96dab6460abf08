// SPDX-License-Identifier: BSD-3-Clause
// Real-server schedulers: round robin, smooth weighted round robin and Maglev consistent hashing.
//
// ## The interface
// A scheduler is built (configuration time, allocates) from a span of `sched_backend`s, one per
// real server, and afterwards answers `pick(flow_hash)` with an index into that span (fast path:
// noexcept, no allocation). A backend of weight 0 is drained: it is never picked. When no backend is
// usable, pick() answers errc::not_found and the caller drops the new connection. Adding, removing
// or re-weighting a backend is a rebuild: make() again and swap the object in. All three take the
// flow hash so that a balancer can hold any of them behind one call (`any_scheduler`); round robin
// and weighted round robin ignore it.
//
// Round robin and WRR keep a cursor, so each lcore owns its own copy (they are cheap to copy: a
// short vector); pass each lcore a different `start` so that the lcores do not all begin with the
// same backend. Maglev is immutable after make() and pick() is const: one table may be read by every
// lcore at once, and copies share it (shared_ptr to a const table).
//
// ## Weighted round robin: nginx's smooth WRR (not IPVS's gcd WRR)
// Every backend i has a weight w_i and a counter c_i (start 0), W = sum w_i. A pick adds w_i to every
// c_i, chooses the largest c_i (the first in backend order on a tie) and subtracts W from it. Since
// c_i = t*w_i - W*picks_i(t) after t picks and the counters always sum to 0, backend i is picked
// exactly w_i/g times in every period of W/g picks (g = gcd of the weights), and the picks of a
// heavy backend are spread through the period instead of coming in a burst: weights {5,1,1} give
// a a b a c a a, where IPVS's gcd WRR gives a a a b c a a (its runs are as long as the weight gap).
// The test pins the nginx example and checks on random weights that no backend drifts a whole pick
// from its ideal share, t*w_i/W, at any point of the sequence.
// A live pick is O(n). When one period is short (period <= max_schedule and period*n <=
// max_build_steps), make() runs the live algorithm once over the period and records it, and pick()
// becomes one table read, O(1); the sequence is the same either way (the test compares both).
//
// ## Maglev (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
// NSDI 2016, section 3.4)
// A lookup table of M entries (M prime, default 65537) maps a flow hash to a backend:
// entry[hash mod M]. Each backend i derives from its identity `id` (a 64-bit value that names the
// real server independently of its position, e.g. `backend_id(endpoint)`) two hashes:
//     offset_i = h1(id) mod M,   skip_i = h2(id) mod (M - 1) + 1,
// and its preference list, permutation_i[j] = (offset_i + j * skip_i) mod M, which visits every
// entry once because M is prime and 0 < skip_i < M. The table is filled by turns: backends take
// turns in their given order, and on its turn a backend claims the first entry of its preference
// list not yet claimed, until all M entries belong to somebody. Each backend ends up with M/N
// entries (+-1 per backend in the unweighted case) and, because each one's preference list does not
// depend on the others, removing a backend mostly hands its own entries to the others: the rest of
// the table moves little (the paper measures this; the test checks that removing one of N backends
// moves at most a little more than the removed backend's 1/N of the entries).
// Weights (the paper's "relative frequency of turns"): in pass r = 1, 2, ... over the backends,
// backend i takes a turn iff floor(r * w_i / w_max) grew since its last turn, so after r passes it
// has had floor(r * w_i / w_max) turns and its share of the table approaches w_i / W; the heaviest
// backends take a turn every pass.
// Building is O(M log M) expected (the paper's bound; the last entries are found by backends walking
// past claimed ones), O(M) memory. The same backends in the same order give the same table, so every
// lcore (or every balancer) that builds from the same configuration agrees; the order is part of the
// input, as in the paper.
// The lookup folds a 64-bit hash to 32 bits (h ^ h >> 32; a 32-bit hash passes unchanged) and takes
// it mod M with Lemire's multiply-only remainder (no division on the fast path).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"

namespace fnat {

/// One real server as the schedulers see it. Build with designated initializers:
/// `{.id = backend_id(rs), .weight = 3}`.
struct sched_backend {
  /// Identity of the backend for Maglev (a hash of what names it, e.g. its endpoint), independent of
  /// its position in the span so that removing another backend does not rename it. Ignored by round
  /// robin and WRR. Default 0: give each backend its own value when you use Maglev.
  std::uint64_t id = 0;
  /// Relative weight, 0..sched_max_weight; 0 means drained (never picked). Round robin treats every
  /// non-zero weight alike. Default 1.
  std::uint32_t weight = 1;
};

/// Largest weight a scheduler accepts (what an operator's configuration allows: IPVS-like 16 bits).
inline constexpr std::uint32_t sched_max_weight = 65535;
/// Most backends one scheduler takes.
inline constexpr std::size_t sched_max_backends = 65536;

/// What pick() answers: rc == errc::ok and `index` into the span the scheduler was built from, or
/// rc == errc::not_found when no backend has a non-zero weight.
struct pick_result {
  errc rc = errc::ok;
  std::uint32_t index = 0;
  explicit constexpr operator bool() const noexcept { return rc == errc::ok; }
};

namespace detail {
/// splitmix64's finaliser: a bijective 64-bit mix whose every output bit depends on every input bit.
[[nodiscard]] constexpr std::uint64_t sched_mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline result<void> sched_check_backends(std::string_view who, std::span<const sched_backend> backends) {
  if (backends.size() > sched_max_backends)
    return error(errc::invalid_argument, std::string(who) + ": " + std::to_string(backends.size()) +
                                             " backends, at most " + std::to_string(sched_max_backends) +
                                             " are supported");
  for (std::size_t i = 0; i < backends.size(); ++i)
    if (backends[i].weight > sched_max_weight)
      return error(errc::invalid_argument, std::string(who) + ": backend " + std::to_string(i) + " has weight " +
                                               std::to_string(backends[i].weight) + ", above the maximum " +
                                               std::to_string(sched_max_weight));
  return {};
}
}  // namespace detail

/// A 64-bit identity for a real server's endpoint (address and port), for `sched_backend::id`.
/// Deterministic across processes and builds. noexcept, O(1).
[[nodiscard]] inline std::uint64_t backend_id(const endpoint& ep) noexcept {
  std::uint64_t lo, hi;
  std::memcpy(&lo, ep.addr.raw().data(), 8);
  std::memcpy(&hi, ep.addr.raw().data() + 8, 8);
  return detail::sched_mix64(lo ^ detail::sched_mix64(hi ^ (std::uint64_t{ep.port} << 48) ^ 0x6a09e667f3bcc909ULL));
}

/// True when n is prime. Trial division, O(sqrt n); configuration time.
[[nodiscard]] constexpr bool is_prime(std::uint64_t n) noexcept {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (std::uint64_t d = 3; d * d <= n; d += 2)
    if (n % d == 0) return false;
  return true;
}

/// The smallest prime >= n. O(gap * sqrt n); configuration time.
[[nodiscard]] constexpr std::uint64_t next_prime(std::uint64_t n) noexcept {
  while (!is_prime(n)) ++n;
  return n;
}

// ---- round robin --------------------------------------------------------------------------------

/// Plain round robin over the backends whose weight is not 0, in span order.
/// Not thread-safe: each lcore owns a copy (pick() advances a cursor).
class round_robin {
 public:
  /// An empty scheduler: pick() answers errc::not_found.
  round_robin() = default;

  /// Builds the rotation. `start` is the position of the first pick (taken mod the number of usable
  /// backends): give lcore i the value i so that lcores do not all begin with the same backend.
  /// Errors: errc::invalid_argument for more than sched_max_backends backends or a weight above
  /// sched_max_weight. No usable backend is not an error (pick() answers not_found).
  /// Complexity: O(n). Allocates.
  [[nodiscard]] static result<round_robin> make(std::span<const sched_backend> backends, std::uint32_t start = 0) {
    if (auto r = detail::sched_check_backends("round robin", backends); !r) return r.err();
    round_robin s;
    for (std::size_t i = 0; i < backends.size(); ++i)
      if (backends[i].weight != 0) s.order_.push_back(static_cast<std::uint32_t>(i));
    if (!s.order_.empty()) s.next_ = start % static_cast<std::uint32_t>(s.order_.size());
    return s;
  }

  /// The next usable backend in turn. O(1), noexcept, no allocation. The hash is ignored.
  [[nodiscard]] pick_result pick(std::uint64_t /*flow_hash*/ = 0) noexcept {
    if (order_.empty()) return {errc::not_found, 0};
    const std::uint32_t index = order_[next_];
    next_ = next_ + 1 == order_.size() ? 0 : next_ + 1;
    return {errc::ok, index};
  }

  /// Number of backends with a non-zero weight.
  [[nodiscard]] std::size_t usable() const noexcept { return order_.size(); }

 private:
  std::vector<std::uint32_t> order_;  // usable backend indices, in span order
  std::uint32_t next_ = 0;
};

// ---- smooth weighted round robin ----------------------------------------------------------------

/// How a weighted round robin is built.
struct wrr_config {
  /// Position in the sequence of the first pick (mod the period): give lcore i a different value so
  /// that lcores do not pick in lockstep. Default 0.
  std::uint32_t start = 0;
  /// Longest period (sum of weights / gcd) recorded as a table for O(1) picks; longer periods are
  /// computed live, O(n) per pick. Default 65536 entries (256 KiB).
  std::size_t max_schedule = std::size_t{1} << 16;
  /// Most steps (period * usable backends) make() spends recording a period. Default 2^24.
  std::size_t max_build_steps = std::size_t{1} << 24;
};

/// nginx's smooth weighted round robin (see the file comment). Not thread-safe: each lcore owns a
/// copy (pick() advances state).
class weighted_round_robin {
 public:
  /// An empty scheduler: pick() answers errc::not_found.
  weighted_round_robin() = default;

  /// Builds the scheduler. Errors: as round_robin::make. Complexity: O(n + period * n) when the
  /// period is recorded (see wrr_config), O(n) otherwise. Allocates.
  [[nodiscard]] static result<weighted_round_robin> make(std::span<const sched_backend> backends,
                                                         const wrr_config& cfg = {}) {
    if (auto r = detail::sched_check_backends("weighted round robin", backends); !r) return r.err();
    weighted_round_robin s;
    std::uint32_t g = 0;
    for (std::size_t i = 0; i < backends.size(); ++i)
      if (backends[i].weight != 0) {
        s.index_.push_back(static_cast<std::uint32_t>(i));
        s.weight_.push_back(backends[i].weight);
        g = std::gcd(g, backends[i].weight);
      }
    if (s.index_.empty()) return s;
    for (auto& w : s.weight_) {
      w /= g;
      s.total_ += w;
    }
    s.current_.assign(s.index_.size(), 0);
    const auto period = static_cast<std::uint64_t>(s.total_);
    const std::uint64_t steps = period * s.index_.size();
    if (period <= cfg.max_schedule && steps <= cfg.max_build_steps) {
      s.schedule_.reserve(static_cast<std::size_t>(period));
      for (std::uint64_t t = 0; t < period; ++t) s.schedule_.push_back(s.live_pick());
      // After a whole period every counter is back at 0 (c_i = period*w_i - W*w_i), so the recorded
      // sequence repeats exactly.
      s.next_ = static_cast<std::uint32_t>(cfg.start % period);
    } else {
      for (std::uint64_t t = 0; t < cfg.start % period; ++t) (void)s.live_pick();
    }
    return s;
  }

  /// The next backend of the smooth sequence. O(1) when the period is recorded, else O(n); noexcept,
  /// no allocation. The hash is ignored.
  [[nodiscard]] pick_result pick(std::uint64_t /*flow_hash*/ = 0) noexcept {
    if (index_.empty()) return {errc::not_found, 0};
    if (!schedule_.empty()) {
      const std::uint32_t index = schedule_[next_];
      next_ = next_ + 1 == schedule_.size() ? 0 : next_ + 1;
      return {errc::ok, index};
    }
    return {errc::ok, live_pick()};
  }

  /// Number of backends with a non-zero weight.
  [[nodiscard]] std::size_t usable() const noexcept { return index_.size(); }
  /// Picks after which the sequence repeats: sum of weights / gcd of weights (0 when none usable).
  [[nodiscard]] std::uint64_t period() const noexcept { return static_cast<std::uint64_t>(total_); }
  /// True when pick() reads a recorded period (O(1)) rather than computing it live (O(n)).
  [[nodiscard]] bool recorded() const noexcept { return !schedule_.empty(); }

 private:
  std::uint32_t live_pick() noexcept {
    // The running maximum stays in a register: comparing against current_[best] would reload it
    // from memory on every step (the stores to current_ may alias it).
    std::int64_t* const cur = current_.data();
    const std::uint32_t* const w = weight_.data();
    const std::size_t n = current_.size();
    std::size_t best = 0;
    std::int64_t best_value = INT64_MIN;
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t c = cur[i] + w[i];
      cur[i] = c;
      if (c > best_value) {
        best_value = c;
        best = i;
      }
    }
    cur[best] = best_value - total_;
    return index_[best];
  }

  std::vector<std::uint32_t> index_;   // usable backend indices, in span order
  std::vector<std::uint32_t> weight_;  // their weights divided by the gcd
  std::vector<std::int64_t> current_;  // the smooth counters c_i
  std::int64_t total_ = 0;             // W / g
  std::vector<std::uint32_t> schedule_;
  std::uint32_t next_ = 0;
};

// ---- Maglev -------------------------------------------------------------------------------------

/// How a Maglev table is built.
struct maglev_config {
  /// Lookup table size M: a prime larger than the number of usable backends. The paper's advice is
  /// M >= 100 * N for shares within about 1% of each other. Default 65537.
  std::uint32_t table_size = 65537;
};

/// Maglev consistent hashing (see the file comment). Immutable after make(): pick() is const and may
/// run on many lcores at once; copies share the table.
class maglev {
 public:
  static constexpr std::uint32_t default_table_size = 65537;
  /// Largest table size make() accepts (a table of 4-byte entries, 64 MiB).
  static constexpr std::uint32_t max_table_size = std::uint32_t{1} << 24;
  /// Table value of an entry no backend owns (only while building).
  static constexpr std::uint32_t empty = UINT32_MAX;

  /// An empty scheduler: pick() answers errc::not_found.
  maglev() = default;

  /// Builds the lookup table. Errors (errc::invalid_argument): table_size not prime, below 2 or above
  /// max_table_size; the usable backends not fewer than table_size; two usable backends with the same
  /// id (they would share a preference list); the checks of round_robin::make. No usable backend is
  /// not an error (pick() answers not_found). Complexity: O(M log M) expected, O(M + n) memory.
  /// Allocates.
  [[nodiscard]] static result<maglev> make(std::span<const sched_backend> backends, const maglev_config& cfg = {}) {
    if (auto r = detail::sched_check_backends("maglev", backends); !r) return r.err();
    const std::uint32_t m = cfg.table_size;
    if (m < 2 || m > max_table_size || !is_prime(m))
      return error(errc::invalid_argument, "maglev: table size " + std::to_string(m) + " is not a prime in 2.." +
                                               std::to_string(max_table_size) + "; try " +
                                               std::to_string(next_prime(std::max<std::uint32_t>(m, 2))) +
                                               " (the default is 65537)");
    struct state {
      std::uint32_t index, weight, skip, next, turns;
      std::uint64_t id;
    };
    std::vector<state> bs;
    std::uint32_t wmax = 0;
    for (std::size_t i = 0; i < backends.size(); ++i) {
      const auto& b = backends[i];
      if (b.weight == 0) continue;
      const std::uint32_t offset = static_cast<std::uint32_t>(detail::sched_mix64(b.id ^ 0x243f6a8885a308d3ULL) % m);
      const std::uint32_t skip =
          static_cast<std::uint32_t>(detail::sched_mix64(b.id ^ 0x13198a2e03707344ULL) % (m - 1)) + 1;
      bs.push_back({static_cast<std::uint32_t>(i), b.weight, skip, offset, 0, b.id});
      wmax = std::max(wmax, b.weight);
    }
    maglev s;
    s.size_ = m;
    s.fastmod_c_ = ~std::uint64_t{0} / m + 1;
    if (bs.empty()) return s;
    if (bs.size() >= m)
      return error(errc::invalid_argument, "maglev: " + std::to_string(bs.size()) +
                                               " usable backends need a table larger than " + std::to_string(m) +
                                               " entries (aim for 100 times the backend count)");
    {
      std::vector<std::pair<std::uint64_t, std::uint32_t>> ids;
      for (const auto& b : bs) ids.emplace_back(b.id, b.index);
      std::sort(ids.begin(), ids.end());
      for (std::size_t i = 1; i < ids.size(); ++i)
        if (ids[i].first == ids[i - 1].first)
          return error(errc::invalid_argument,
                       "maglev: backends " + std::to_string(std::min(ids[i - 1].second, ids[i].second)) + " and " +
                           std::to_string(std::max(ids[i - 1].second, ids[i].second)) +
                           " have the same id; give each backend its own (backend_id(endpoint))");
    }
    auto table = std::make_shared<std::vector<std::uint32_t>>(m, empty);
    auto& t = *table;
    std::uint32_t filled = 0;
    for (std::uint64_t pass = 1; filled < m; ++pass) {
      for (auto& b : bs) {
        // Turns owed after `pass` passes: floor(pass * w / wmax); at most one more than last pass.
        if (pass * b.weight / wmax <= b.turns) continue;
        ++b.turns;
        std::uint32_t c = b.next;
        while (t[c] != empty) c = c + b.skip >= m ? c + b.skip - m : c + b.skip;
        t[c] = b.index;
        b.next = c + b.skip >= m ? c + b.skip - m : c + b.skip;
        if (++filled == m) break;
      }
    }
    s.usable_ = static_cast<std::uint32_t>(bs.size());
    s.entries_ = t.data();
    s.table_ = std::move(table);
    return s;
  }

  /// The backend for a flow: entry[fold32(flow_hash) mod M]. A 32-bit hash may be passed as is.
  /// O(1), noexcept, no allocation, const (safe on many lcores at once).
  [[nodiscard]] pick_result pick(std::uint64_t flow_hash) const noexcept {
    if (entries_ == nullptr) return {errc::not_found, 0};
    return {errc::ok, entries_[slot_of(flow_hash)]};
  }

  /// The table entry a hash selects: fold32(flow_hash) mod M. noexcept.
  [[nodiscard]] std::uint32_t slot_of(std::uint64_t flow_hash) const noexcept {
    const auto a = static_cast<std::uint32_t>(flow_hash ^ (flow_hash >> 32));
    // Lemire, Kaser, Kurz, "Faster Remainder by Direct Computation" (2019): for 32-bit a and d,
    // a mod d = ((c * a mod 2^64) * d) >> 64 with c = floor((2^64 - 1) / d) + 1.
    const std::uint64_t low = fastmod_c_ * a;
    return static_cast<std::uint32_t>((static_cast<unsigned __int128>(low) * size_) >> 64);
  }

  /// M.
  [[nodiscard]] std::uint32_t table_size() const noexcept { return size_; }
  /// Number of backends with a non-zero weight (those that own entries).
  [[nodiscard]] std::size_t usable() const noexcept { return usable_; }
  /// The whole table, backend index per entry (empty span when no backend is usable): for tests and
  /// for telemetry (each backend's share).
  [[nodiscard]] std::span<const std::uint32_t> table() const noexcept {
    return entries_ ? std::span<const std::uint32_t>(entries_, size_) : std::span<const std::uint32_t>{};
  }

 private:
  std::shared_ptr<const std::vector<std::uint32_t>> table_;
  const std::uint32_t* entries_ = nullptr;
  std::uint64_t fastmod_c_ = 0;
  std::uint32_t size_ = 0;
  std::uint32_t usable_ = 0;
};

// ---- any of them --------------------------------------------------------------------------------

/// The schedulers a balancer configuration names.
enum class scheduler_kind : std::uint8_t { rr, wrr, maglev };

/// "rr", "wrr", "maglev": the words the balancer's configuration uses.
[[nodiscard]] constexpr std::string_view to_string(scheduler_kind k) noexcept {
  switch (k) {
    case scheduler_kind::rr:
      return "rr";
    case scheduler_kind::wrr:
      return "wrr";
    case scheduler_kind::maglev:
      return "maglev";
  }
  return "unknown";
}

/// How an any_scheduler is built. Designated initializers:
/// `{.kind = scheduler_kind::maglev, .maglev = {.table_size = 65537}}`.
struct scheduler_config {
  /// Which algorithm. Default wrr (equal weights make it plain round robin).
  scheduler_kind kind = scheduler_kind::wrr;
  /// First position for rr / wrr (see round_robin::make). Default 0.
  std::uint32_t start = 0;
  /// wrr's tuning; its `start` is replaced by the field above. Default: wrr_config{}.
  wrr_config wrr = {};
  /// maglev's table. Default: maglev_config{}.
  maglev_config maglev = {};
};

/// Any one of the three behind one pick(), chosen at configuration time.
/// Thread safety: that of the held scheduler (rr/wrr: one owner lcore; maglev: shared reads).
class any_scheduler {
 public:
  /// An empty round robin: pick() answers errc::not_found.
  any_scheduler() = default;

  /// Builds the scheduler `cfg.kind` names. Errors: those of its make(). Allocates.
  [[nodiscard]] static result<any_scheduler> make(std::span<const sched_backend> backends,
                                                  const scheduler_config& cfg = {}) {
    switch (cfg.kind) {
      case scheduler_kind::rr: {
        auto s = round_robin::make(backends, cfg.start);
        if (!s) return s.err();
        return any_scheduler(std::move(*s));
      }
      case scheduler_kind::wrr: {
        wrr_config w = cfg.wrr;
        w.start = cfg.start;
        auto s = weighted_round_robin::make(backends, w);
        if (!s) return s.err();
        return any_scheduler(std::move(*s));
      }
      case scheduler_kind::maglev: {
        auto s = maglev::make(backends, cfg.maglev);
        if (!s) return s.err();
        return any_scheduler(std::move(*s));
      }
    }
    return error(errc::invalid_argument, "scheduler: unknown kind");
  }

  /// The held scheduler's pick. O(1) (wrr: see weighted_round_robin::pick), noexcept, no allocation.
  [[nodiscard]] pick_result pick(std::uint64_t flow_hash) noexcept {
    switch (v_.index()) {
      case 0:
        return std::get_if<0>(&v_)->pick(flow_hash);
      case 1:
        return std::get_if<1>(&v_)->pick(flow_hash);
      default:
        return std::get_if<2>(&v_)->pick(flow_hash);
    }
  }

  [[nodiscard]] scheduler_kind kind() const noexcept { return static_cast<scheduler_kind>(v_.index()); }
  /// Number of backends with a non-zero weight.
  [[nodiscard]] std::size_t usable() const noexcept {
    return std::visit([](const auto& s) { return s.usable(); }, v_);
  }
  /// The held scheduler, or nullptr when it is of another kind.
  template <class S>
  [[nodiscard]] const S* get() const noexcept {
    return std::get_if<S>(&v_);
  }

 private:
  template <class S>
  explicit any_scheduler(S&& s) : v_(std::forward<S>(s)) {}

  // Alternative order matches scheduler_kind.
  std::variant<round_robin, weighted_round_robin, maglev> v_;
};

/// What the balancer's code may hold as a scheduler: pick(flow hash) -> pick_result, noexcept.
template <class S>
concept backend_scheduler = requires(S& s, std::uint64_t h) {
  { s.pick(h) }
  noexcept->std::same_as<pick_result>;
  { std::as_const(s).usable() } -> std::convertible_to<std::size_t>;
};

static_assert(backend_scheduler<round_robin>);
static_assert(backend_scheduler<weighted_round_robin>);
static_assert(backend_scheduler<maglev>);
static_assert(backend_scheduler<any_scheduler>);

}  // namespace fnat
