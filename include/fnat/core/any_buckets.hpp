// SPDX-License-Identifier: BSD-3-Clause
// An sa_pool policy chosen at run time: hashed_buckets or rss_buckets, behind one type.
//
// ## Why
// Which policy an lcore's pool needs depends on how the NIC steers replies to the LIP's port, and
// that is known only at start: flow rules and redirect match the port plan's classes
// (hashed_buckets), RSS-aware steering needs the ports whose reply hash lands on the lcore's queue
// (rss_buckets). A worker that serves LIPs on ports of both kinds files all its sessions in one
// session_table, whose port groups share one policy type, so the type must hold either. This is
// any_scheduler's shape for the same reason (one object per configured choice, chosen once).
//
// ## Cost
// The pool calls its policy on fetch (bucket_of) and release (admits, dense_index): one switch on
// a variant index that never changes, well predicted; the port rings themselves are the pool's.
// Building a pool keeps the held policy's shortcuts (sa_pool_policy.hpp: uniform buckets are built
// once and copied, a verified contract is not checked port by port outside checked mode), through
// the run-time hooks has_uniform_buckets() and has_verified_contract(), so a pool of hashed_buckets
// costs the same to build through any_buckets as directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <variant>

#include "fnat/core/addr.hpp"
#include "fnat/core/rss_ports.hpp"
#include "fnat/core/sa_pool_policy.hpp"

namespace fnat {

/// hashed_buckets or rss_buckets (concept sa_pool_policy), chosen when it is built. Copies share
/// the held policy's tables as that policy's copies do. Immutable: any thread may read it.
class any_buckets {
 public:
  /// Holds `p`. noexcept (moves a shared_ptr).
  explicit any_buckets(hashed_buckets p) noexcept : p_(std::move(p)) {}
  /// Holds `p` (for a pool, the copy bound to its LIP: rss_buckets::bound_to).
  explicit any_buckets(rss_buckets p) noexcept : p_(std::move(p)) {}

  /// True when it holds hashed_buckets.
  [[nodiscard]] bool is_hashed() const noexcept { return p_.index() == 0; }
  /// The held policy, or nullptr when it holds the other one.
  [[nodiscard]] const hashed_buckets* hashed() const noexcept { return std::get_if<hashed_buckets>(&p_); }
  [[nodiscard]] const rss_buckets* rss() const noexcept { return std::get_if<rss_buckets>(&p_); }

  // ---- sa_pool_policy, forwarded; each O(1) except for_each_port (construction) ----
  [[nodiscard]] std::size_t bucket_count() const noexcept {
    return std::visit([](const auto& p) { return p.bucket_count(); }, p_);
  }
  [[nodiscard]] std::size_t bucket_of(const inet_addr& lip, const endpoint& dest) const noexcept {
    return std::visit([&](const auto& p) { return p.bucket_of(lip, dest); }, p_);
  }
  [[nodiscard]] bool admits(std::size_t b, std::uint16_t port) const noexcept {
    return std::visit([&](const auto& p) { return p.admits(b, port); }, p_);
  }
  [[nodiscard]] std::uint32_t dense_size() const noexcept {
    return std::visit([](const auto& p) { return p.dense_size(); }, p_);
  }
  [[nodiscard]] std::uint32_t dense_index(std::uint16_t port) const noexcept {
    return std::visit([&](const auto& p) { return p.dense_index(port); }, p_);
  }
  template <class F>
  void for_each_port(std::size_t b, F&& f) const {
    std::visit([&](const auto& p) { p.for_each_port(b, f); }, p_);
  }
  [[nodiscard]] std::uint32_t port_count(std::size_t b) const noexcept {
    return std::visit([&](const auto& p) -> std::uint32_t {
      if constexpr (detail::policy_with_port_count<std::decay_t<decltype(p)>>) {
        return p.port_count(b);
      } else {
        std::uint32_t n = 0;
        p.for_each_port(b, [&n](std::uint16_t) { ++n; });
        return n;
      }
    }, p_);
  }
  /// The held policy's uniform_buckets (sa_pool_policy.hpp's run-time hook).
  [[nodiscard]] bool has_uniform_buckets() const noexcept {
    return std::visit([](const auto& p) { return detail::policy_uniform_buckets<std::decay_t<decltype(p)>>(); }, p_);
  }
  /// The held policy's verified_contract (sa_pool_policy.hpp's run-time hook).
  [[nodiscard]] bool has_verified_contract() const noexcept {
    return std::visit([](const auto& p) { return detail::policy_verified_contract<std::decay_t<decltype(p)>>(); }, p_);
  }

 private:
  std::variant<hashed_buckets, rss_buckets> p_;
};
static_assert(sa_pool_policy<any_buckets>);

}  // namespace fnat
