// SPDX-License-Identifier: BSD-3-Clause
// Reply steering: one object per port that makes every reply RS -> LIP:lport reach the lcore whose
// sa_pool handed out lport, by whatever the NIC can do, and that says which lcore that is.
//
// ## The invariant (DESIGN.md)
// For every lcore L and every local port p that L's pools hand out on a LIP of this port, the reply to
// (LIP, p) from any real server is delivered to L: by the NIC straight to queue(L), or, failing
// that, to some lcore that computes owner_of(reply) == L and hands it over (redirect.hpp). owner_of
// is answered in every mode from the reply alone (no connection state), O(1).
//
// ## The four modes, in the order they are tried (unless reply_steering_config::modes says otherwise)
//  1. flow: masked-port rte_flow rules, "dst = LIP, dst port & mask = class -> QUEUE queue(L)", one
//     per (LIP, protocol, class cube) (flow_rules.hpp, DPVS's sa_flows). Exact, no software on the
//     fast path, ports split by the port plan's classes. Needs a PMD that masks L4 ports (ice, mlx5;
//     not i40e, whose FDIR turns a partial mask into an exact match, nor ixgbe for IPv6).
//  2. lip_per_lcore: each lcore gets its own LIP(s), and one rule per LIP "dst = LIP -> QUEUE" with
//     no L4 item. Every NIC with any flow director matches a destination address; this is what DPVS
//     users fall back to on i40e/ixgbe. Each lcore then hands out ALL ports of its own LIPs (a
//     one-lcore plan: 64511 ports per LIP instead of 1/n of them), and may use no other LIP. Needs at
//     least as many LIPs on the port as lcores; LIP j goes to lcore j mod n. ICMP errors and
//     fragments to a LIP land on its lcore as well (no L4 item to miss).
//  3. rss: the RSS key and a RETA over the lcores' queues are programmed and read back (rss.hpp), and
//     each lcore hands out only ports whose reply hashes to its own queue (rss_ports.hpp). Needs a
//     RETA and a readable key; costs sa_pool buckets (one per RETA class that matters).
//  4. redirect: nothing on the NIC. Replies land where RSS puts them, and the lcore that receives one
//     it does not own hands it to owner_of(reply) over a ring (redirect.hpp). Always available; costs
//     a ring crossing for (n-1)/n of the replies.
// Why this order: each mode asks more of the operator or of the fast path than the one before it
// (flow: nothing; lip_per_lcore: n LIPs instead of one; rss: more sa_pool buckets, ports that depend
// on the key; redirect: a ring hop for (n-1)/n of the replies), and each works on more NICs. A mode that fails leaves nothing
// behind: the installer rolls its rules back (flow_rules.hpp), RSS is restored to the key and RETA
// read before programming, and the next mode is tried. The reason for each skipped mode, with the
// PMD's own message, is kept (skipped()) and summarised in describe().
//
// ## Class bits (port_plan.hpp, choose_class_bits)
// With n lcores not a power of two, the plan's classes split unevenly: on the fewest bits, 3 lcores
// get 2:1:1 of 4 classes and the smallest holds 3/4 of a fair share, capping that worker's share of new
// connections. Unless the caller fixes class_bits, the object takes more bits, as long as the flow
// rules fit `rule_budget`: each class is one rule per (LIP, protocol) when n is not a power of two,
// so the budget allows rule_budget / (LIPs x protocols) classes (no limit when flow is not among the
// modes to try: redirect and rss make no rule per class, lip_per_lcore does not use classes). It stops at the fewest bits that give
// every lcore >= min_share (0.9) of a fair share. Figures (full range, no budget; fewest bits in []):
//     n=3: 4 bits, 0.938 [0.750]   n=5: 4 bits, 0.938 [0.625]   n=6: 5 bits, 0.938 [0.750]
//     n=7: 6 bits, 0.984 [0.875]   n=12: 6 bits, 0.938 [0.750]  n=33: 8 bits, 0.902 [0.516]
// Powers of two are exact on the fewest bits (1.0) and their rules merge to one per lcore anyway.
// The whole table for 1..64 is in port_plan.hpp and pinned by tests/unit/test_port_plan.cpp.
//
// ## Who owns what
// reply_steering<Ops> owns the flow rules it created (installed_flows: destroyed with the object,
// newest first) and keeps the ops handle, so the device behind it must outlive it. Move-only.
// reply_owner (owner()) is a small copyable value for the fast path, shared read-only by every lcore:
// a copy per worker costs a shared_ptr.
// Everything except owner_of runs at configuration time, allocates and returns fnat::result.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/port_plan.hpp"
#include "fnat/core/reta.hpp"
#include "fnat/core/rss_ports.hpp"
#include "fnat/core/sa_pool_policy.hpp"
#include "fnat/core/toeplitz.hpp"
#include "fnat/dpdk/ethdev_ops.hpp"
#include "fnat/dpdk/flow_rules.hpp"
#include "fnat/dpdk/rss.hpp"

namespace fnat::dpdk {

/// How replies reach their owner on one port (file comment).
enum class reply_steering_mode : std::uint8_t {
  flow,           ///< masked-port flow rules per (LIP, protocol, class)
  lip_per_lcore,  ///< one LIP per lcore, rules on the destination address alone
  rss,            ///< RSS key and RETA programmed, RSS-aware local ports
  redirect,       ///< software hand-off to owner_of(reply)
};
inline constexpr std::size_t reply_steering_mode_count = 4;
/// The default order: cheapest on the fast path first.
inline constexpr std::array<reply_steering_mode, reply_steering_mode_count> all_reply_steering_modes = {
    reply_steering_mode::flow, reply_steering_mode::lip_per_lcore, reply_steering_mode::rss,
    reply_steering_mode::redirect};

/// "flow", "lip_per_lcore", "rss", "redirect".
[[nodiscard]] constexpr std::string_view to_string(reply_steering_mode m) noexcept {
  switch (m) {
    case reply_steering_mode::flow:
      return "flow";
    case reply_steering_mode::lip_per_lcore:
      return "lip_per_lcore";
    case reply_steering_mode::rss:
      return "rss";
    case reply_steering_mode::redirect:
      return "redirect";
  }
  return "unknown";
}

/// The inverse of to_string. Errors: errc::invalid_argument naming the accepted words.
[[nodiscard]] inline result<reply_steering_mode> parse_reply_steering_mode(std::string_view s) {
  for (reply_steering_mode m : all_reply_steering_modes)
    if (to_string(m) == s) return m;
  return error(errc::invalid_argument, "reply steering: unknown mode \"" + std::string(s) +
                                           "\"; use flow, lip_per_lcore, rss or redirect");
}

/// Which sa_pool policy an lcore's pools take in the chosen mode (make_pool_policy builds it).
enum class reply_pool_kind : std::uint8_t {
  class_buckets,  ///< hashed_buckets over the port plan's classes of the lcore (flow, redirect)
  all_ports,      ///< hashed_buckets over every port of the lcore's own LIPs (lip_per_lcore)
  rss_aware,      ///< rss_buckets for the lcore's queue, bound to the LIP (rss)
};
[[nodiscard]] constexpr std::string_view to_string(reply_pool_kind k) noexcept {
  return k == reply_pool_kind::class_buckets ? "class_buckets"
         : k == reply_pool_kind::all_ports   ? "all_ports"
                                             : "rss_aware";
}

/// A mode that was tried and not taken: the code (not_supported: the NIC lacks it; device_error: the
/// PMD refused; invalid_argument: the configuration rules it out) and the reason, PMD message included.
struct reply_steering_skip {
  reply_steering_mode mode = reply_steering_mode::flow;
  errc code = errc::not_supported;
  std::string reason;
};

/// What a reply_steering is made from. Designated initializers; every field but lcores and lips has a
/// default: `{.port = 0, .plan = {.lcores = {{1, 0}, {2, 1}}}, .lips = {lip0, lip1}}`.
struct reply_steering_config {
  /// The port (a bond: rules go to its members, flow_rules.hpp).
  std::uint16_t port = 0;
  /// The lcores with the rx queue each really polls on this port, and the local port range.
  /// class_bits 0: chosen by choose_class_bits within rule_budget (file comment).
  port_plan_config plan{};
  /// The LIPs replies come back to on this port, either family, each once.
  std::vector<inet_addr> lips{};
  /// Modes to try, in order; the first that works is taken. One entry forces that mode (make()
  /// fails with its reason if it cannot be had). Empty means all_reply_steering_modes.
  std::vector<reply_steering_mode> modes{all_reply_steering_modes.begin(), all_reply_steering_modes.end()};
  /// Steer TCP replies / UDP replies (flow mode builds rules per protocol).
  bool tcp = true;
  bool udp = true;
  /// Most flow rules this port may take (flow mode is skipped above it; it also caps class bits).
  std::size_t rule_budget = 1024;
  /// Smallest share of a fair share of ports every lcore should get (choose_class_bits).
  double min_share = 0.9;
  /// How rules are installed: quirk table, variants (flow_rules.hpp).
  flow_install_options install{};
  /// RSS mode: the key written (keep: the device's), hash types, RETA layout (rss.hpp).
  rss_key_choice rss_key = rss_key_choice::keep;
  std::uint64_t rss_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
  reta_fill rss_fill = reta_fill::periodic;
  /// RSS mode: most sa_pool buckets an lcore's RSS-aware policy may need (rss_buckets_config).
  std::size_t rss_max_buckets = 4096;
};

/// The fast-path half of a reply_steering: which lcore (index in the plan) owns a reply. A copyable,
/// immutable value; copies share their tables. Any thread may call it concurrently. A
/// default-constructed owner answers nothing: get one from reply_steering::owner() or by_plan().
class reply_owner {
 public:
  /// Returned for a reply no lcore owns (lip_per_lcore: a destination that is none of the LIPs;
  /// rss: a RETA entry naming a queue no lcore polls).
  static constexpr std::size_t npos = port_plan::npos;

  /// The owner of a reply given as its five-tuple as received: saddr = RS, daddr = LIP, sport = rport,
  /// dport = lport, ports in network order (what parse gives).
  /// Requires: daddr is a LIP of this port (flow, rss and redirect do not check it).
  /// Complexity: flow / redirect: one table load; lip_per_lcore: a scan of the port's LIPs (a few
  /// compares); rss: one Toeplitz hash and two loads. noexcept, no allocation.
  [[nodiscard]] std::size_t owner_of(const inet_tuple& reply) const noexcept {
    switch (mode_) {
      case reply_steering_mode::flow:
      case reply_steering_mode::redirect:
        return class_owner_[ntoh16(reply.dport) & mask_];
      case reply_steering_mode::lip_per_lcore:
        return owner_of_lip(reply.daddr);
      case reply_steering_mode::rss: {
        const std::uint32_t h = s_->hasher->hash(reply);
        return s_->queue_index[s_->reta[h & s_->reta_mask]];
      }
    }
    return npos;
  }
  /// The same from parts: the LIP, the local port (host order) and the remote endpoint (RS, host-order
  /// port). Complexity and requirements: as owner_of(tuple).
  [[nodiscard]] std::size_t owner_of(const inet_addr& lip, std::uint16_t lport, const endpoint& remote) const noexcept {
    if (mode_ != reply_steering_mode::rss) return owner_of_lport(lip, lport);
    inet_tuple t{};
    t.saddr = remote.addr;
    t.daddr = lip;
    t.sport = hton16(remote.port);
    t.dport = hton16(lport);
    return owner_of(t);
  }
  /// The owner when (LIP, lport) alone decide: every mode but rss, where the remote end is needed
  /// and npos is returned. O(1) (lip_per_lcore: a scan of the LIPs). noexcept.
  [[nodiscard]] std::size_t owner_of_lport(const inet_addr& lip, std::uint16_t lport) const noexcept {
    switch (mode_) {
      case reply_steering_mode::flow:
      case reply_steering_mode::redirect:
        return class_owner_[lport & mask_];
      case reply_steering_mode::lip_per_lcore:
        return owner_of_lip(lip);
      case reply_steering_mode::rss:
        return npos;
    }
    return npos;
  }
  /// lip_per_lcore: the lcore a LIP belongs to; npos for an address that is not one of the port's
  /// LIPs, or in any other mode. O(LIPs). noexcept.
  [[nodiscard]] std::size_t owner_of_lip(const inet_addr& lip) const noexcept {
    if (mode_ != reply_steering_mode::lip_per_lcore) return npos;
    for (const auto& [addr, index] : s_->lip_owner)
      if (addr == lip) return index;
    return npos;
  }

  [[nodiscard]] reply_steering_mode mode() const noexcept { return mode_; }
  /// Lcores (the plan's size).
  [[nodiscard]] std::size_t size() const noexcept { return s_ ? s_->lcores : 0; }

  /// The owner function of redirect mode over `plan` alone (class owner of the lport), for a port
  /// served without a steering object (a port with no LIP, or an application that only redirects).
  /// O(classes); allocates the shared table.
  [[nodiscard]] static reply_owner by_plan(const port_plan& plan) {
    auto s = std::make_shared<state>();
    s->lcores = plan.size();
    s->class_owner.resize(plan.class_count());
    for (std::size_t c = 0; c < plan.class_count(); ++c)
      s->class_owner[c] = static_cast<std::uint16_t>(plan.class_owner(static_cast<std::uint16_t>(c)));
    reply_owner o;
    o.mode_ = reply_steering_mode::redirect;
    o.mask_ = plan.mask();
    o.class_owner_ = s->class_owner.data();
    o.s_ = std::move(s);
    return o;
  }

 private:
  template <ethdev_ops>
  friend class reply_steering;

  struct state {
    std::size_t lcores = 0;
    std::vector<std::uint16_t> class_owner;                          // class -> index (flow, redirect)
    std::vector<std::pair<inet_addr, std::size_t>> lip_owner;        // lip_per_lcore
    std::shared_ptr<const toeplitz> hasher;                          // rss
    std::vector<std::uint16_t> reta;                                 // rss: as programmed
    std::uint32_t reta_mask = 0;
    std::vector<std::size_t> queue_index;                            // rx queue -> index or npos (rss)
  };

  reply_steering_mode mode_ = reply_steering_mode::redirect;
  std::uint16_t mask_ = 0;
  const std::uint16_t* class_owner_ = nullptr;  // into s_->class_owner
  std::shared_ptr<const state> s_;
};

namespace detail {
// The plan of a steering configuration: class bits chosen within the rule budget unless given (the
// budget binds only when masked-port flow rules are among the modes: no other mode makes a rule per
// class).
inline result<port_plan> steering_plan(const reply_steering_config& cfg, class_bits_choice& bits) {
  port_plan_config pc = cfg.plan;
  if (pc.class_bits == 0) {
    const std::size_t protos = (cfg.tcp ? 1 : 0) + (cfg.udp ? 1 : 0);
    const std::size_t per = std::max<std::size_t>(1, cfg.lips.size() * std::max<std::size_t>(1, protos));
    const bool flow = cfg.modes.empty() || std::find(cfg.modes.begin(), cfg.modes.end(), reply_steering_mode::flow) !=
                                               cfg.modes.end();
    const std::size_t max_classes = flow ? std::max<std::size_t>(1, cfg.rule_budget / per) : port_plan::max_lcores;
    auto choice = choose_class_bits(pc, max_classes, cfg.min_share);
    if (!choice) return error(choice.err().code(), "reply steering: " + choice.err().message());
    pc.class_bits = choice->bits;
    bits = *choice;
  }
  auto plan = port_plan::make(pc);
  if (!plan) return error(plan.err().code(), "reply steering: " + plan.err().message());
  if (cfg.plan.class_bits != 0)
    bits = {plan->shift(), plan->class_count(), plan->min_share(), plan->min_share() >= cfg.min_share};
  return plan;
}
}  // namespace detail

/// One port's reply steering (file comment). Ops: the device seam (rte_ethdev_ops, nic_model_ops, a
/// fake). Move-only; owns the flow rules it installed.
template <ethdev_ops Ops = rte_ethdev_ops>
class reply_steering {
 public:
  using pool_policy = std::variant<hashed_buckets, rss_buckets>;
  static constexpr std::size_t npos = port_plan::npos;

  /// Chooses class bits (unless given), builds the plan, then tries cfg.modes in order and keeps the
  /// first that works (file comment). A mode that fails leaves nothing on the device.
  /// Errors: errc::invalid_argument for a bad plan (port_plan::make's message), no LIP, a LIP listed
  /// twice or unspecified, an empty or repeated mode list, no protocol; when no listed mode could be
  /// had, the code of the last one tried and every mode's reason (a forced mode: its own reason).
  /// Complexity: O(rules + lcores x (RSS tables)) device calls and work; configuration time.
  [[nodiscard]] static result<reply_steering> make(Ops ops, const reply_steering_config& cfg) {
    if (cfg.lips.empty())
      return error(errc::invalid_argument, "reply steering: port " + std::to_string(cfg.port) +
                                               " has no LIP; give the local addresses replies come back to");
    for (std::size_t i = 0; i < cfg.lips.size(); ++i) {
      if (cfg.lips[i].is_unspecified())
        return error(errc::invalid_argument, "reply steering: LIP " + std::to_string(i) + " is unspecified");
      for (std::size_t j = 0; j < i; ++j)
        if (cfg.lips[j] == cfg.lips[i])
          return error(errc::invalid_argument, "reply steering: LIP " + cfg.lips[i].to_string() + " is listed twice");
    }
    if (!cfg.tcp && !cfg.udp)
      return error(errc::invalid_argument, "reply steering: neither TCP nor UDP selected; nothing to steer");
    std::vector<reply_steering_mode> modes = cfg.modes;
    if (modes.empty()) modes.assign(all_reply_steering_modes.begin(), all_reply_steering_modes.end());
    for (std::size_t i = 0; i < modes.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (modes[i] == modes[j])
          return error(errc::invalid_argument,
                       "reply steering: mode " + std::string(to_string(modes[i])) + " is listed twice");

    reply_steering s(ops);
    s.cfg_ = cfg;
    s.cfg_.modes = modes;
    auto plan = detail::steering_plan(cfg, s.bits_);
    if (!plan) return plan.err();
    s.plan_.emplace(std::move(*plan));

    for (std::size_t k = 0; k < modes.size(); ++k) {
      const reply_steering_mode m = modes[k];
      result<void> r = s.try_mode(m);
      if (r) {
        s.mode_ = m;
        s.finish_owner();
        return s;
      }
      s.skipped_.push_back({m, r.err().code(), r.err().message()});
    }
    std::string why;
    for (const auto& sk : s.skipped_)
      why += (why.empty() ? "" : "; ") + std::string(to_string(sk.mode)) + ": " + sk.reason;
    const errc code = s.skipped_.back().code;
    if (modes.size() == 1)
      return error(code, "reply steering: port " + std::to_string(cfg.port) + ": steering = " +
                             std::string(to_string(modes[0])) + " was asked for, but " + why);
    return error(code, "reply steering: port " + std::to_string(cfg.port) + ": no mode could be had (" + why +
                           "); add redirect to the mode list, which always works");
  }

  reply_steering(reply_steering&&) noexcept = default;
  reply_steering& operator=(reply_steering&&) noexcept = default;
  reply_steering(const reply_steering&) = delete;
  reply_steering& operator=(const reply_steering&) = delete;
  /// Destroys the flow rules it installed (errors dropped; call remove() to see them).
  ~reply_steering() = default;

  // ---- what was chosen ----------------------------------------------------------------------------

  [[nodiscard]] reply_steering_mode mode() const noexcept { return mode_; }
  /// The modes tried before the chosen one, each with its reason (PMD messages included).
  [[nodiscard]] std::span<const reply_steering_skip> skipped() const noexcept { return skipped_; }
  /// What the chosen mode installed, in a sentence ("48 flow rules ...", "RSS: 128-entry RETA ...").
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }
  /// One paragraph for logs: mode, detail, class bits and shares, and why each earlier mode was skipped.
  [[nodiscard]] std::string describe() const {
    std::string s = "port " + std::to_string(cfg_.port) + ": reply steering " + std::string(to_string(mode_)) + ": " +
                    detail_ + "; class bits " + std::to_string(plan_->shift()) + " (smallest lcore share " +
                    share_text(plan_->min_share()) + " of fair" +
                    (bits_.target_met || plan_->size() == 1 ? "" : ", below the target: the rule budget stops it") +
                    ")";
    for (const auto& sk : skipped_)
      s += "\n  skipped " + std::string(to_string(sk.mode)) + " (" + std::string(fnat::to_string(sk.code)) +
           "): " + sk.reason;
    return s;
  }
  /// The class bits chosen and the share they give (also when given by the caller).
  [[nodiscard]] const class_bits_choice& class_bits() const noexcept { return bits_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return cfg_.port; }
  [[nodiscard]] const port_plan& plan() const noexcept { return *plan_; }
  [[nodiscard]] std::span<const inet_addr> lips() const noexcept { return cfg_.lips; }
  /// The flow rules held (flow and lip_per_lcore modes; empty otherwise).
  [[nodiscard]] const installed_flows<Ops>& flows() const noexcept { return flows_; }
  /// The RSS state programmed (rss mode); nullptr otherwise.
  [[nodiscard]] const rss_state* rss() const noexcept { return rss_ ? &*rss_ : nullptr; }

  // ---- who owns a reply ------------------------------------------------------------------------

  /// The fast-path owner function (copy it into each worker).
  [[nodiscard]] const reply_owner& owner() const noexcept { return owner_; }
  /// owner().owner_of(reply). See reply_owner.
  [[nodiscard]] std::size_t owner_of(const inet_tuple& reply) const noexcept { return owner_.owner_of(reply); }
  [[nodiscard]] std::size_t owner_of(const inet_addr& lip, std::uint16_t lport, const endpoint& remote) const noexcept {
    return owner_.owner_of(lip, lport, remote);
  }

  // ---- what each lcore may use -----------------------------------------------------------------

  /// The LIPs lcore `index` (plan order) may hand out ports on: every LIP of the port, except in
  /// lip_per_lcore mode, where only its own (LIP j for j mod n == index). Empty for an index outside
  /// the plan. O(LIPs); allocates the result.
  [[nodiscard]] std::vector<inet_addr> lips_of(std::size_t index) const {
    std::vector<inet_addr> out;
    if (index >= plan_->size()) return out;
    for (std::size_t j = 0; j < cfg_.lips.size(); ++j)
      if (mode_ != reply_steering_mode::lip_per_lcore || j % plan_->size() == index) out.push_back(cfg_.lips[j]);
    return out;
  }
  /// True when lcore `index` may hand out ports on `lip`. O(LIPs).
  [[nodiscard]] bool may_use(std::size_t index, const inet_addr& lip) const noexcept {
    if (index >= plan_->size()) return false;
    for (std::size_t j = 0; j < cfg_.lips.size(); ++j)
      if (cfg_.lips[j] == lip) return mode_ != reply_steering_mode::lip_per_lcore || j % plan_->size() == index;
    return false;
  }
  /// The kind of sa_pool policy that matches the mode.
  [[nodiscard]] reply_pool_kind pool_kind() const noexcept {
    switch (mode_) {
      case reply_steering_mode::lip_per_lcore:
        return reply_pool_kind::all_ports;
      case reply_steering_mode::rss:
        return reply_pool_kind::rss_aware;
      default:
        return reply_pool_kind::class_buckets;
    }
  }
  /// The plan whose lcore `index` the class policies of this lcore follow, and the lcore's index in
  /// it: the port plan (flow, redirect, rss) or a one-lcore plan over the whole range (lip_per_lcore).
  /// Requires: index < plan().size().
  [[nodiscard]] std::pair<const port_plan*, std::size_t> pool_plan(std::size_t index) const noexcept {
    if (mode_ == reply_steering_mode::lip_per_lcore) return {&solo_plans_[index], 0};
    return {&*plan_, index};
  }
  /// The sa_pool policy for lcore `index`'s pool of `lip`: hashed_buckets over its classes (flow,
  /// redirect), over all ports (lip_per_lcore, own LIPs only), or rss_buckets bound to the LIP (rss).
  /// `buckets` configures hashed_buckets (rss decides its own bucket count).
  /// Errors: errc::invalid_argument for an index outside the plan, a LIP not on this port, or (in
  /// lip_per_lcore mode) a LIP of another lcore, with which lcore it belongs to.
  /// Complexity: O(classes); allocates (hashed_buckets' table; rss_buckets shares its own).
  [[nodiscard]] result<pool_policy> make_pool_policy(std::size_t index, const inet_addr& lip,
                                                     const hashed_buckets_config& buckets = {}) const {
    if (index >= plan_->size())
      return error(errc::invalid_argument, "reply steering: lcore index " + std::to_string(index) +
                                               " is outside the plan (" + std::to_string(plan_->size()) + " lcores)");
    if (!may_use(index, lip)) {
      const auto it = std::find(cfg_.lips.begin(), cfg_.lips.end(), lip);
      if (it == cfg_.lips.end())
        return error(errc::invalid_argument, "reply steering: " + lip.to_string() + " is not a LIP of port " +
                                                 std::to_string(cfg_.port));
      const auto j = static_cast<std::size_t>(it - cfg_.lips.begin());
      return error(errc::invalid_argument,
                   "reply steering: in lip_per_lcore mode LIP " + lip.to_string() + " belongs to lcore " +
                       std::to_string(plan_->lcore(j % plan_->size()).lcore_id) + ", not lcore " +
                       std::to_string(plan_->lcore(index).lcore_id) + "; build pools only over lips_of(index)");
    }
    if (mode_ == reply_steering_mode::rss) {
      const auto& pols = lip.is_v4() ? rss_v4_ : rss_v6_;
      return pool_policy(pols[index].bound_to(lip));
    }
    const auto [p, i] = pool_plan(index);
    auto h = hashed_buckets::make(*p, i, buckets);
    if (!h) return h.err();
    return pool_policy(std::move(*h));
  }

  /// Destroys the installed rules now (the destructor does it too, silently). Afterwards owner_of
  /// keeps answering, but replies are no longer steered by the NIC.
  /// Errors: those of installed_flows::destroy.
  [[nodiscard]] result<void> remove() { return flows_.destroy(); }

 private:
  explicit reply_steering(Ops ops) : ops_(ops), flows_(ops) {}

  static std::string share_text(double x) {
    const int permille = static_cast<int>(x * 1000 + 0.5);
    return std::to_string(permille / 1000) + "." + std::string(permille % 1000 < 100 ? "0" : "") +
           std::string(permille % 1000 < 10 ? "0" : "") + std::to_string(permille % 1000);
  }

  bool has_family(ip_family f) const noexcept {
    return std::any_of(cfg_.lips.begin(), cfg_.lips.end(), [f](const inet_addr& a) { return a.family() == f; });
  }

  result<void> try_mode(reply_steering_mode m) {
    switch (m) {
      case reply_steering_mode::flow:
        return try_flow();
      case reply_steering_mode::lip_per_lcore:
        return try_lip_per_lcore();
      case reply_steering_mode::rss:
        return try_rss();
      case reply_steering_mode::redirect:
        detail_ = skipped_.empty() ? "configured: replies are handed to their owner in software"
                                   : "replies are handed to their owner in software (" +
                                         std::to_string(skipped_.size()) + " mode(s) skipped)";
        return {};
    }
    return error(errc::invalid_argument, "reply steering: unknown mode");
  }

  result<void> try_flow() {
    const port_plan& plan = *plan_;
    auto cap = probe_flow_capability(ops_, cfg_.port,
                                     {.ipv4 = has_family(ip_family::v4),
                                      .ipv6 = has_family(ip_family::v6),
                                      .tcp = cfg_.tcp,
                                      .udp = cfg_.udp,
                                      .port_mask = plan.mask(),
                                      .queue = plan.lcore(0).rx_queue,
                                      .install = cfg_.install});
    if (!cap) return cap.err();
    if (!cap->supported()) return error(cap->status, cap->reason);
    auto rules = build_flow_rules(plan, cfg_.lips, {.tcp = cfg_.tcp, .udp = cfg_.udp});
    if (!rules) return rules.err();
    if (rules->size() > cfg_.rule_budget)
      return error(errc::invalid_argument,
                   std::to_string(rules->size()) + " masked-port rules (" + std::to_string(cfg_.lips.size()) +
                       " LIPs, " + std::to_string(plan.class_count()) + " classes) exceed rule_budget " +
                       std::to_string(cfg_.rule_budget) + "; raise the budget, use fewer class bits or LIPs");
    auto installed = install_flow_rules(ops_, cfg_.port, *rules, cfg_.install);
    if (!installed) return installed.err();
    flows_ = std::move(*installed);
    detail_ = std::to_string(flows_.size()) + " masked-port flow rules (" + std::to_string(cfg_.lips.size()) +
              " LIPs, mask " + fnat::detail::hex(plan.mask(), 4) + ", driver " + cap->driver +
              (flows_.variants().empty() ? std::string()
                                         : ", " + to_string(flows_.variants().front().variant)) +
              ")";
    return {};
  }

  result<void> try_lip_per_lcore() {
    const port_plan& plan = *plan_;
    const std::size_t n = plan.size();
    if (cfg_.lips.size() < n)
      return error(errc::invalid_argument, "one LIP per lcore needs at least " + std::to_string(n) +
                                               " LIPs on port " + std::to_string(cfg_.port) + ", it has " +
                                               std::to_string(cfg_.lips.size()) + "; add " +
                                               std::to_string(n - cfg_.lips.size()) + " LIP(s)");
    std::vector<flow_rule> rules;
    for (std::size_t j = 0; j < cfg_.lips.size(); ++j) {
      auto r = flow_rule::make({.dst = cfg_.lips[j], .proto = flow_any_proto, .queue = plan.lcore(j % n).rx_queue});
      if (!r) return r.err();
      rules.push_back(std::move(*r));
    }
    if (rules.size() > cfg_.rule_budget)
      return error(errc::invalid_argument, std::to_string(rules.size()) + " address rules exceed rule_budget " +
                                               std::to_string(cfg_.rule_budget));
    auto installed = install_flow_rules(ops_, cfg_.port, rules, cfg_.install);
    if (!installed) return installed.err();
    solo_plans_.clear();
    for (std::size_t i = 0; i < n; ++i) {
      auto solo = port_plan::make({.lcores = {plan.lcore(i)}, .port_low = plan.port_low(), .port_high = plan.port_high()});
      if (!solo) return solo.err();  // cannot fail: the range made the full plan
      solo_plans_.push_back(std::move(*solo));
    }
    flows_ = std::move(*installed);
    detail_ = std::to_string(flows_.size()) + " address-only flow rules, one per LIP (" +
              std::to_string(cfg_.lips.size()) + " LIPs over " + std::to_string(n) +
              " lcores; each lcore uses every port of its own LIPs)";
    return {};
  }

  result<void> try_rss() {
    const port_plan& plan = *plan_;
    // What to restore should programming fail part way: the key and the table as they are now.
    auto old_table = query_reta(ops_, cfg_.port);
    if (!old_table) return old_table.err();
    auto old_hash = query_rss_hash(ops_, cfg_.port);
    if (!old_hash) return old_hash.err();
    rss_config rc{.key = cfg_.rss_key, .rss_hf = cfg_.rss_hf, .fill = cfg_.rss_fill};
    for (const lcore_queue& lq : plan.lcores()) rc.queues.push_back(lq.rx_queue);
    auto restore = [&](const error& e) -> result<void> {
      std::string undo;
      if (cfg_.rss_key != rss_key_choice::keep)
        if (auto u = set_rss_hash(ops_, cfg_.port, old_hash->key, old_hash->rss_hf, false); !u)
          undo += "; restoring the RSS key failed: " + u.err().message();
      if (auto u = program_reta(ops_, cfg_.port, *old_table, false); !u)
        undo += "; restoring the RETA failed: " + u.err().message();
      return error(e.code(), e.message() + undo);
    };
    auto st = program_rss(ops_, cfg_.port, rc);
    if (!st) return restore(st.err());
    auto tz = toeplitz::make(st->key, rss_input_v6_len);
    if (!tz) return restore(tz.err());
    std::vector<rss_buckets> v4, v6;
    for (ip_family f : {ip_family::v4, ip_family::v6}) {
      if (!has_family(f)) continue;
      for (std::size_t i = 0; i < plan.size(); ++i) {
        auto p = rss_buckets::make({.family = f,
                                    .key = st->key,
                                    .reta = st->reta,
                                    .queue = plan.lcore(i).rx_queue,
                                    .port_low = plan.port_low(),
                                    .port_high = plan.port_high(),
                                    .max_buckets = cfg_.rss_max_buckets});
        if (!p)
          return restore(error(p.err().code(), "RSS-aware ports for lcore " + std::to_string(plan.lcore(i).lcore_id) +
                                                   ": " + p.err().message()));
        (f == ip_family::v4 ? v4 : v6).push_back(std::move(*p));
      }
    }
    rss_v4_ = std::move(v4);
    rss_v6_ = std::move(v6);
    hasher_ = std::make_shared<const toeplitz>(std::move(*tz));
    detail_ = "RSS-aware local ports over a " + std::to_string(st->reta.size()) + "-entry RETA (period " +
              std::to_string(st->reta_period) + ", " + std::to_string(st->key.size()) + "-byte key " +
              (cfg_.rss_key == rss_key_choice::keep ? "kept" : "written") + ", read back)";
    rss_.emplace(std::move(*st));
    return {};
  }

  void finish_owner() {
    const port_plan& plan = *plan_;
    reply_owner base = reply_owner::by_plan(plan);
    auto s = std::make_shared<reply_owner::state>(*base.s_);
    for (std::size_t j = 0; j < cfg_.lips.size(); ++j) s->lip_owner.emplace_back(cfg_.lips[j], j % plan.size());
    if (rss_) {
      s->hasher = hasher_;
      s->reta = rss_->reta;
      s->reta_mask = static_cast<std::uint32_t>(rss_->reta.size() - 1);
      std::uint16_t top = 0;
      for (std::uint16_t q : s->reta) top = std::max(top, q);
      s->queue_index.assign(std::size_t{top} + 1, npos);
      for (std::size_t i = 0; i < plan.size(); ++i)
        if (plan.lcore(i).rx_queue <= top) s->queue_index[plan.lcore(i).rx_queue] = i;
    }
    owner_.mode_ = mode_;
    owner_.mask_ = plan.mask();
    owner_.class_owner_ = s->class_owner.data();
    owner_.s_ = std::move(s);
  }

  Ops ops_;
  reply_steering_config cfg_{};
  std::optional<port_plan> plan_;
  std::vector<port_plan> solo_plans_;  // lip_per_lcore: one one-lcore plan per lcore
  class_bits_choice bits_{};
  reply_steering_mode mode_ = reply_steering_mode::redirect;
  std::vector<reply_steering_skip> skipped_;
  std::string detail_;
  std::optional<rss_state> rss_;
  std::shared_ptr<const toeplitz> hasher_;
  std::vector<rss_buckets> rss_v4_, rss_v6_;  // per lcore index (rss mode)
  reply_owner owner_;
  installed_flows<Ops> flows_;  // last: destroyed first
};

// ---- probe: what would be chosen, without installing anything -----------------------------------

/// What a port answers to each steering mode, asked without creating a rule or changing RSS
/// (probe_reply_steering). For an operator: nic_probe prints it.
struct reply_steering_probe {
  /// One mode's answer: accepted or not, and why (the PMD's message for a rejected rule variant).
  struct answer {
    reply_steering_mode mode = reply_steering_mode::redirect;
    bool accepted = false;
    errc code = errc::ok;
    std::string detail;
  };
  std::uint16_t port = 0;
  std::string driver;
  /// In the order of reply_steering_config::modes.
  std::vector<answer> modes;
  /// RSS: RETA entries (0: none), key bytes, and whether each can be read and written back.
  std::uint16_t reta_size = 0;
  std::size_t key_size = 0;
  bool reta_readable = false, reta_programmable = false, key_readable = false, key_programmable = false;
  std::string rss_detail;
  /// The class bits the plan would take, and the first accepted mode: what make() would choose.
  class_bits_choice class_bits{};
  reply_steering_mode would_choose = reply_steering_mode::redirect;

  /// Several lines for an operator: one per mode, then RSS, then the choice.
  [[nodiscard]] std::string describe() const {
    std::string s = "port " + std::to_string(port) + " (" + (driver.empty() ? std::string("driver unknown") : driver) + ")\n";
    for (const answer& a : modes)
      s += "  " + std::string(to_string(a.mode)) + ": " + (a.accepted ? "accepted" : "rejected") +
           (a.detail.empty() ? "" : " - " + a.detail) + "\n";
    s += "  RSS: RETA " + std::to_string(reta_size) + " entries (" + (reta_readable ? "readable" : "not readable") +
         ", " + (reta_programmable ? "programmable" : "not programmable") + "), key " + std::to_string(key_size) +
         " bytes (" + (key_readable ? "readable" : "not readable") + ", " +
         (key_programmable ? "programmable" : "not programmable") + ")" +
         (rss_detail.empty() ? "" : " - " + rss_detail) + "\n";
    s += "  class bits: " + std::to_string(class_bits.bits) + " (" + std::to_string(class_bits.classes) + " classes)\n";
    s += "  would choose: " + std::string(to_string(would_choose)) + "\n";
    return s;
  }
};

namespace detail {
// Validates address-only rules (one per family present) under each variant; "" when accepted.
template <ethdev_ops Ops>
std::pair<errc, std::string> probe_address_rules(Ops& ops, std::uint16_t port, const reply_steering_config& cfg,
                                                 std::uint16_t queue) {
  std::vector<flow_rule> samples;
  bool v4 = false, v6 = false;
  for (const inet_addr& a : cfg.lips) {
    if ((a.is_v4() && v4) || (!a.is_v4() && v6)) continue;
    (a.is_v4() ? v4 : v6) = true;
    samples.push_back(*flow_rule::make({.dst = a, .proto = flow_any_proto, .queue = queue}));
  }
  const std::string drv = driver_name(ops, port);
  const std::string where = port_label(port, drv);
  const driver_quirk* q = find_quirk(cfg.install.quirks, drv);
  if (auto why = quirk_refusal(q, samples); !why.empty()) return {errc::not_supported, where + ": " + why};
  std::vector<attempt> tried;
  std::vector<std::vector<flow_rule>> seen;
  bool all_unsupported = true;
  for (flow_variant v : variants_to_try(q ? q->start_with : flow_variant::as_built, cfg.install.try_variants)) {
    std::vector<flow_rule> set = apply_variant(samples, v);
    if (std::find(seen.begin(), seen.end(), set) != seen.end()) continue;  // same rules as an earlier try
    seen.push_back(set);
    bool ok = true;
    for (std::size_t i = 0; i < set.size() && ok; ++i) {
      const flow_rule_view fv = set[i].view();
      rte_flow_error err{};
      if (const int rc = ops.flow_validate(port, fv.attr(), fv.pattern(), fv.actions(), &err); rc != 0) {
        tried.push_back({v, i, set[i].to_testpmd(port, "validate"), "rte_flow_validate", rc, flow_error_text(rc, err)});
        ok = false;
      }
    }
    if (ok) return {errc::ok, tried.empty() ? std::string() : where + ": accepted as " + to_string(v) + " after " +
                                                                  describe_attempts(tried, set.size())};
    all_unsupported = all_unsupported && is_not_supported_errno(tried.back().rc);
    if (tried.back().rc == -ENOSYS) break;
  }
  return {all_unsupported ? errc::not_supported : errc::device_error, where + ": " + describe_attempts(tried, samples.size())};
}
}  // namespace detail

/// Asks `cfg.port` what each mode of cfg.modes would get, without installing anything: flow rules and
/// address-only rules are validated (rte_flow_validate), the RETA and the key are read and written
/// back unchanged (a PMD that cannot write them says so). would_choose is the first accepted mode,
/// taking the LIP count into account for lip_per_lcore; make() may still end elsewhere when a
/// create-time limit (table size) refuses what validated.
/// Errors: those of the plan (reply_steering::make), a port that does not answer rte_eth_dev_info_get.
template <ethdev_ops Ops>
[[nodiscard]] result<reply_steering_probe> probe_reply_steering(Ops ops, const reply_steering_config& cfg) {
  if (cfg.lips.empty())
    return error(errc::invalid_argument, "reply steering probe: give at least one LIP (any address of each family "
                                         "to probe, e.g. 198.18.0.1 and 2001:2::1)");
  reply_steering_probe p;
  p.port = cfg.port;
  auto plan = detail::steering_plan(cfg, p.class_bits);
  if (!plan) return plan.err();
  rte_eth_dev_info info{};
  if (const int rc = ops.dev_info(cfg.port, &info); rc != 0)
    return error(errc::invalid_argument, "port " + std::to_string(cfg.port) + ": rte_eth_dev_info_get failed: " +
                                             errno_text(rc) + "; is the port id valid?");
  p.driver = info.driver_name != nullptr ? info.driver_name : "";
  p.reta_size = info.reta_size;

  // RSS: read, then write back what was read.
  std::string rss_why;
  if (auto table = query_reta(ops, cfg.port)) {
    p.reta_readable = true;
    if (auto w = program_reta(ops, cfg.port, *table, true))
      p.reta_programmable = true;
    else
      rss_why = w.err().message();
  } else {
    rss_why = table.err().message();
  }
  if (auto h = query_rss_hash(ops, cfg.port)) {
    p.key_readable = true;
    p.key_size = h->key.size();
    if (h->rss_hf == 0) {
      p.rss_detail = "the PMD reports no current hash types, so the key was not written back";
    } else if (auto w = set_rss_hash(ops, cfg.port, h->key, h->rss_hf, true)) {
      p.key_programmable = true;
    } else {
      p.rss_detail = w.err().message();
    }
  } else {
    p.key_size = info.hash_key_size;
    p.rss_detail = h.err().message();
  }
  if (!rss_why.empty()) p.rss_detail += (p.rss_detail.empty() ? "" : "; ") + rss_why;

  std::vector<reply_steering_mode> modes = cfg.modes;
  if (modes.empty()) modes.assign(all_reply_steering_modes.begin(), all_reply_steering_modes.end());
  bool chosen = false;
  for (reply_steering_mode m : modes) {
    reply_steering_probe::answer a{m, false, errc::ok, {}};
    switch (m) {
      case reply_steering_mode::flow: {
        bool v4 = false, v6 = false;
        for (const inet_addr& l : cfg.lips) (l.is_v4() ? v4 : v6) = true;
        auto cap = probe_flow_capability(ops, cfg.port,
                                         {.ipv4 = v4, .ipv6 = v6, .tcp = cfg.tcp, .udp = cfg.udp,
                                          .port_mask = plan->mask(), .queue = plan->lcore(0).rx_queue,
                                          .install = cfg.install});
        if (!cap) {
          a.code = cap.err().code();
          a.detail = cap.err().message();
        } else {
          a.accepted = cap->supported();
          a.code = cap->status;
          a.detail = cap->reason;
        }
        break;
      }
      case reply_steering_mode::lip_per_lcore: {
        auto [code, why] = detail::probe_address_rules(ops, cfg.port, cfg, plan->lcore(0).rx_queue);
        a.code = code;
        a.accepted = code == errc::ok;
        a.detail = why;
        if (a.accepted && cfg.lips.size() < plan->size()) {
          a.accepted = false;
          a.code = errc::invalid_argument;
          a.detail = "the NIC accepts address-only rules, but " + std::to_string(plan->size()) +
                     " lcores need as many LIPs and " + std::to_string(cfg.lips.size()) + " are given";
        }
        break;
      }
      case reply_steering_mode::rss:
        a.accepted = p.reta_programmable && p.key_readable &&
                     (cfg.rss_key == rss_key_choice::keep || p.key_programmable);
        a.code = a.accepted ? errc::ok : errc::not_supported;
        a.detail = a.accepted ? "RETA of " + std::to_string(p.reta_size) + " entries, " + std::to_string(p.key_size) +
                                    "-byte key"
                              : p.rss_detail;
        break;
      case reply_steering_mode::redirect:
        a.accepted = true;
        a.detail = "software, always available";
        break;
    }
    if (a.accepted && !chosen) {
      p.would_choose = m;
      chosen = true;
    }
    p.modes.push_back(std::move(a));
  }
  return p;
}

}  // namespace fnat::dpdk
