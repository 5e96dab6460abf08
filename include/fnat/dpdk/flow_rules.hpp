// SPDX-License-Identifier: BSD-3-Clause
// rte_flow rules that steer each lcore's replies to its rx queue [DPVS: netif_sapool_flow_add].
//
// ## The rules
// A port plan (port_plan.hpp) gives each lcore a set of port classes: port p belongs to class
// p & mask. A reply RS -> LIP:lport must reach the rx queue of the lcore that owns lport's class, so
// for every LIP, protocol and class (or cube of classes, below) one ingress rule says
//   pattern  ETH / IPV4 dst = LIP, mask /32 (or IPV6 dst = LIP, mask /128)
//            / TCP or UDP dst port = base, mask = class mask / END
//   actions  QUEUE index = rx queue of the lcore / END
// Classes an lcore owns that form an aligned cube are merged into one rule whose mask leaves the free
// bits out (class_cover.hpp): with n a power of two that is one rule per (LIP, protocol), DPVS's rule
// exactly, however many class bits the plan takes; other lcore counts need one rule per class.
//
// ## Rules are values first
// `flow_rule` owns its specs, masks and action configuration in fixed storage inside the object, so it
// copies, compares and prints like any value. The rte_flow_item / rte_flow_action arrays DPDK wants
// are built on demand by `view()`; they point into the rule, never into a copy. A rule prints in
// dpdk-testpmd `flow create` syntax, so an operator can paste exactly what fnat installed (the tests
// feed the printed rules to the real testpmd parser). The spec is always ANDed with the mask: mlx5
// accepts a spec with bits outside the mask and then never matches it (DPVS issue #627).
//
// ## Installing, and real NICs
// install_flow_rules validates every rule (rte_flow_validate) before creating any (rte_flow_create),
// and keeps the created flows in an RAII `installed_flows` that destroys them. Real PMDs differ, and
// DPVS users met each difference; the installer handles them on purpose:
//  - a table of known driver quirks (`known_driver_quirks`, extendable by the caller) is consulted
//    first: ice rejects priority != 0 (DPVS #824), ixgbe's FDIR keeps one input mask per port and its
//    perfect mode cannot match IPv6 (DPVS #507), i40e's FDIR has no per-rule L4 port mask and turns a
//    partial mask into an exact match, so rules validate and then steer nothing right (DPVS #433):
//    fnat never reports flow steering on i40e for a partial mask;
//  - on rejection (validate or create) the documented variants are retried, fewest changes first:
//    priority 0, no ETH item, one port mask for all rules on the port (cubes split into classes of the
//    widest mask). Every rule on a port uses the same variant: masks are per port on some NICs;
//  - a failure part way rolls back every flow this call created, on every port (DPVS leaves them);
//  - bonded ports: the rules go to each member port, as DPVS does for bond masters, rather than
//    through the bond PMD's own rte_flow: members may be different NICs that need different variants,
//    and the result then says which rule went to which port; all members or none.
// Errors name the port, its driver, the rule in testpmd syntax and the PMD's rte_flow_error message,
// and list each variant tried. errc::not_supported means the capability is missing (no rte_flow, or a
// quirk rules it out): the caller falls back to RSS-aware ports or software redirect.
//
// probe_flow_capability answers the same question without creating anything: does the port accept a
// masked-port QUEUE rule, with which variant, and if not, why.
//
// Everything here runs at configuration time: it allocates, returns fnat::result, never throws.
#pragma once

#include <algorithm>
#include <bit>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fnat/core/addr.hpp"
#include "fnat/core/class_cover.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/port_plan.hpp"
#include "fnat/dpdk/ethdev_ops.hpp"

namespace fnat::dpdk {

// ---- one rule ---------------------------------------------------------------------------------

/// What a steering rule matches and where it sends it: the rule in words. Build with designated
/// initializers; every field has a default.
struct flow_rule_desc {
  /// rte_flow group; 0 is the root table every ingress packet meets.
  std::uint32_t group = 0;
  /// Priority within the group, 0 = highest.
  std::uint32_t priority = 0;
  /// Start the pattern with an empty ETH item (any Ethernet frame), as DPVS does.
  bool eth_item = true;
  /// Destination address (the LIP), matched with a full mask. Must not be unspecified.
  inet_addr dst{};
  /// ipproto::tcp or ipproto::udp; or flow_any_proto (0): no L4 item, the rule matches every packet
  /// to `dst` (the address-only rules of one LIP per lcore, reply_steering.hpp), and port_mask must be 0.
  std::uint8_t proto = ipproto::tcp;
  /// Destination port value, host order; only the bits in port_mask count (the rule keeps base & mask).
  std::uint16_t port_base = 0;
  /// Destination port mask, host order; 0 matches every port (no L4 spec), 0xffff one port.
  std::uint16_t port_mask = 0;
  /// Rx queue the matching packets go to.
  std::uint16_t queue = 0;

  friend constexpr bool operator==(const flow_rule_desc&, const flow_rule_desc&) noexcept = default;
};

class flow_rule;

/// flow_rule_desc::proto of an address-only rule: no L4 item (TCP, UDP, ICMP and fragments alike).
inline constexpr std::uint8_t flow_any_proto = 0;

/// The rte_flow arrays of one rule, ready for rte_flow_validate / rte_flow_create. They point into the
/// rule they were made from: valid while that rule lives and is not assigned to. Copyable.
class flow_rule_view {
 public:
  [[nodiscard]] const rte_flow_attr* attr() const noexcept { return attr_; }
  /// ETH? / IPV4|IPV6 / TCP|UDP / END.
  [[nodiscard]] const rte_flow_item* pattern() const noexcept { return items_; }
  /// QUEUE / END.
  [[nodiscard]] const rte_flow_action* actions() const noexcept { return actions_; }
  /// Items including the END item.
  [[nodiscard]] std::size_t pattern_size() const noexcept { return n_items_; }

 private:
  friend class flow_rule;
  flow_rule_view() = default;
  const rte_flow_attr* attr_ = nullptr;
  rte_flow_item items_[4] = {};
  rte_flow_action actions_[2] = {};
  std::size_t n_items_ = 0;
};

/// A steering rule as an owning value: the description plus the rte_flow specs, masks and action
/// configuration it implies, stored inside the object (no heap, no pointer to anything else).
/// Copy, compare (by description), print; `view()` gives the arrays DPDK takes.
class flow_rule {
 public:
  /// Builds a rule. The port spec is stored ANDed with the mask (port_base & port_mask), so desc()
  /// returns the normalised description.
  /// Errors (errc::invalid_argument): an unspecified destination, a protocol other than TCP, UDP or
  /// flow_any_proto, a port mask on an address-only rule.
  /// Complexity: O(1).
  [[nodiscard]] static result<flow_rule> make(const flow_rule_desc& d) {
    if (d.dst.is_unspecified())
      return error(errc::invalid_argument, "flow rule: the destination address is unspecified; give the LIP");
    if (d.proto != ipproto::tcp && d.proto != ipproto::udp && d.proto != flow_any_proto)
      return error(errc::invalid_argument, "flow rule: protocol " + std::to_string(d.proto) +
                                               " is neither TCP (6), UDP (17) nor any (0, address only)");
    if (d.proto == flow_any_proto && d.port_mask != 0)
      return error(errc::invalid_argument,
                   "flow rule: an address-only rule (proto 0) cannot match a port; give TCP or UDP with the mask");
    return flow_rule(d);
  }

  /// The normalised description (port_base has no bit outside port_mask).
  [[nodiscard]] const flow_rule_desc& desc() const noexcept { return desc_; }
  [[nodiscard]] ip_family family() const noexcept { return desc_.dst.family(); }

  /// The rte_flow arrays (see flow_rule_view for their lifetime). O(1), noexcept.
  [[nodiscard]] flow_rule_view view() const noexcept {
    flow_rule_view v;
    v.attr_ = &attr_;
    std::size_t n = 0;
    if (desc_.eth_item) v.items_[n++] = item(RTE_FLOW_ITEM_TYPE_ETH, nullptr, nullptr);
    if (family() == ip_family::v4)
      v.items_[n++] = item(RTE_FLOW_ITEM_TYPE_IPV4, &ip4_spec_, &ip4_mask_);
    else
      v.items_[n++] = item(RTE_FLOW_ITEM_TYPE_IPV6, &ip6_spec_, &ip6_mask_);
    const bool any_port = desc_.port_mask == 0;
    if (desc_.proto == ipproto::tcp)
      v.items_[n++] = item(RTE_FLOW_ITEM_TYPE_TCP, any_port ? nullptr : &tcp_spec_, any_port ? nullptr : &tcp_mask_);
    else if (desc_.proto == ipproto::udp)
      v.items_[n++] = item(RTE_FLOW_ITEM_TYPE_UDP, any_port ? nullptr : &udp_spec_, any_port ? nullptr : &udp_mask_);
    v.items_[n++] = item(RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr);
    v.n_items_ = n;
    v.actions_[0].type = RTE_FLOW_ACTION_TYPE_QUEUE;
    v.actions_[0].conf = &queue_;
    v.actions_[1].type = RTE_FLOW_ACTION_TYPE_END;
    v.actions_[1].conf = nullptr;
    return v;
  }

  /// The rule as a dpdk-testpmd command, e.g.
  /// `flow create 0 group 0 priority 0 ingress pattern eth / ipv4 dst is 198.18.0.1 / tcp dst spec 3
  /// dst mask 0x0007 / end actions queue index 3 / end`. `command` is "create" or "validate".
  /// A full port mask prints as `dst is N`, a zero mask as a bare `tcp` item.
  [[nodiscard]] std::string to_testpmd(std::uint16_t port, std::string_view command = "create") const {
    std::string s = "flow " + std::string(command) + " " + std::to_string(port) + " group " +
                    std::to_string(desc_.group) + " priority " + std::to_string(desc_.priority) + " ingress pattern ";
    if (desc_.eth_item) s += "eth / ";
    s += family() == ip_family::v4 ? "ipv4 dst is " : "ipv6 dst is ";
    s += desc_.dst.to_string();
    if (desc_.proto != flow_any_proto) s += desc_.proto == ipproto::tcp ? " / tcp" : " / udp";
    if (desc_.port_mask == 0xffff)
      s += " dst is " + std::to_string(desc_.port_base);
    else if (desc_.port_mask != 0)
      s += " dst spec " + std::to_string(desc_.port_base) + " dst mask " + fnat::detail::hex(desc_.port_mask, 4);
    s += " / end actions queue index " + std::to_string(desc_.queue) + " / end";
    return s;
  }

  /// Short human form: "tcp 198.18.0.1 dport&0x0007=0x0003 -> queue 3".
  [[nodiscard]] std::string describe() const {
    std::string s = desc_.proto == ipproto::tcp ? "tcp " : desc_.proto == ipproto::udp ? "udp " : "any ";
    s += desc_.dst.to_string();
    if (desc_.port_mask != 0)
      s += " dport&" + fnat::detail::hex(desc_.port_mask, 4) + "=" + fnat::detail::hex(desc_.port_base, 4);
    return s + " -> queue " + std::to_string(desc_.queue);
  }

  /// Equal when the descriptions are: the stored rte_flow structures follow from them.
  friend bool operator==(const flow_rule& a, const flow_rule& b) noexcept { return a.desc_ == b.desc_; }

 private:
  explicit flow_rule(const flow_rule_desc& d) : desc_(d) {
    desc_.port_base = static_cast<std::uint16_t>(d.port_base & d.port_mask);  // spec AND mask, always
    attr_.group = desc_.group;
    attr_.priority = desc_.priority;
    attr_.ingress = 1;
    if (family() == ip_family::v4) {
      ip4_spec_.hdr.dst_addr = desc_.dst.v4().be;
      ip4_mask_.hdr.dst_addr = 0xffffffffu;
    } else {
      const auto& b = desc_.dst.raw();
      for (std::size_t i = 0; i < 16; ++i) {
        ip6_spec_.hdr.dst_addr[i] = b[i];
        ip6_mask_.hdr.dst_addr[i] = 0xff;
      }
    }
    tcp_spec_.hdr.dst_port = udp_spec_.hdr.dst_port = hton16(desc_.port_base);
    tcp_mask_.hdr.dst_port = udp_mask_.hdr.dst_port = hton16(desc_.port_mask);
    queue_.index = desc_.queue;
  }
  static rte_flow_item item(rte_flow_item_type t, const void* spec, const void* mask) noexcept {
    rte_flow_item it{};
    it.type = t;
    it.spec = spec;
    it.last = nullptr;
    it.mask = mask;
    return it;
  }

  flow_rule_desc desc_;
  rte_flow_attr attr_{};
  rte_flow_item_ipv4 ip4_spec_{}, ip4_mask_{};
  rte_flow_item_ipv6 ip6_spec_{}, ip6_mask_{};
  rte_flow_item_tcp tcp_spec_{}, tcp_mask_{};
  rte_flow_item_udp udp_spec_{}, udp_mask_{};
  rte_flow_action_queue queue_{};
};

// ---- building from a port plan ----------------------------------------------------------------

/// How rules are built from a plan. Designated initializers; every field has a default.
struct flow_build_options {
  /// rte_flow group. 0, the root table: a rule elsewhere is reached only through a JUMP rule.
  std::uint32_t group = 0;
  /// Priority within the group. 0 (highest): these are the most specific ingress rules, and ice
  /// accepts no other value (DPVS #824).
  std::uint32_t priority = 0;
  /// Start each pattern with an empty ETH item, as DPVS does (the installer retries without it).
  bool eth_item = true;
  /// Build TCP rules.
  bool tcp = true;
  /// Build UDP rules.
  bool udp = true;
  /// Merge an lcore's classes into aligned cubes (class_cover.hpp); false: one rule per class.
  bool merge_classes = true;
};

/// The rules that steer lcore `index`'s replies (plan order, not lcore id) to its rx queue: for each
/// LIP, protocol and cube of its classes, in that order.
/// Errors (errc::invalid_argument): index out of range, no LIP, an unspecified or repeated LIP, no
/// protocol selected.
/// Complexity: O(lips * classes of the lcore). Allocates the result.
[[nodiscard]] inline result<std::vector<flow_rule>> build_lcore_flow_rules(const port_plan& plan, std::size_t index,
                                                                           std::span<const inet_addr> lips,
                                                                           const flow_build_options& opts = {}) {
  if (index >= plan.size())
    return error(errc::invalid_argument, "flow rules: lcore index " + std::to_string(index) + " is outside the plan (" +
                                             std::to_string(plan.size()) + " lcores)");
  if (lips.empty()) return error(errc::invalid_argument, "flow rules: no local address (LIP) given");
  if (!opts.tcp && !opts.udp)
    return error(errc::invalid_argument, "flow rules: neither TCP nor UDP selected; nothing to steer");
  for (std::size_t i = 0; i < lips.size(); ++i) {
    if (lips[i].is_unspecified())
      return error(errc::invalid_argument, "flow rules: LIP " + std::to_string(i) + " is unspecified (" +
                                               lips[i].to_string() + "); give the address replies are sent to");
    for (std::size_t j = 0; j < i; ++j)
      if (lips[j] == lips[i])
        return error(errc::invalid_argument, "flow rules: LIP " + lips[i].to_string() + " is listed twice");
  }
  std::vector<class_cube> cubes;
  if (opts.merge_classes) {
    auto c = cover_classes(plan.bases(index), plan.mask());
    if (!c) return c.err();
    cubes = std::move(*c);
  } else {
    for (std::uint16_t b : plan.bases(index)) cubes.push_back({b, plan.mask()});
  }
  std::vector<flow_rule> out;
  out.reserve(lips.size() * cubes.size() * 2);
  for (const inet_addr& lip : lips)
    for (std::uint8_t proto : {ipproto::tcp, ipproto::udp}) {
      if ((proto == ipproto::tcp && !opts.tcp) || (proto == ipproto::udp && !opts.udp)) continue;
      for (const class_cube& cube : cubes) {
        auto r = flow_rule::make({.group = opts.group,
                                  .priority = opts.priority,
                                  .eth_item = opts.eth_item,
                                  .dst = lip,
                                  .proto = proto,
                                  .port_base = cube.base,
                                  .port_mask = cube.mask,
                                  .queue = plan.lcore(index).rx_queue});
        if (!r) return r.err();
        out.push_back(std::move(*r));
      }
    }
  return out;
}

/// The rules of every lcore of the plan, lcore 0's first. Same errors as build_lcore_flow_rules.
[[nodiscard]] inline result<std::vector<flow_rule>> build_flow_rules(const port_plan& plan,
                                                                     std::span<const inet_addr> lips,
                                                                     const flow_build_options& opts = {}) {
  std::vector<flow_rule> all;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    auto r = build_lcore_flow_rules(plan, i, lips, opts);
    if (!r) return r.err();
    all.insert(all.end(), r->begin(), r->end());
  }
  return all;
}

// ---- variants and driver quirks ---------------------------------------------------------------

/// Relaxations of a rule set that some PMDs need, as a bit set. `as_built` is the empty set.
enum class flow_variant : std::uint8_t {
  as_built = 0,
  priority_zero = 1,  ///< every rule at priority 0 (ice)
  no_eth = 2,         ///< patterns start at the IP item
  uniform_mask = 4,   ///< every rule on the port uses the widest port mask (ixgbe FDIR: one mask per port)
};
[[nodiscard]] constexpr flow_variant operator|(flow_variant a, flow_variant b) noexcept {
  return static_cast<flow_variant>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
/// True when `set` includes every relaxation of `bits`.
[[nodiscard]] constexpr bool has(flow_variant set, flow_variant bits) noexcept {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(bits)) == static_cast<unsigned>(bits);
}
/// "as built", or the relaxations joined by " + ", e.g. "priority 0 + no eth item".
[[nodiscard]] inline std::string to_string(flow_variant v) {
  if (v == flow_variant::as_built) return "as built";
  std::string s;
  auto add = [&](flow_variant bit, const char* name) {
    if (!has(v, bit)) return;
    if (!s.empty()) s += " + ";
    s += name;
  };
  add(flow_variant::priority_zero, "priority 0");
  add(flow_variant::no_eth, "no eth item");
  add(flow_variant::uniform_mask, "one port mask per port");
  return s;
}

/// What fnat knows about a PMD's rte_flow before asking it. Designated initializers.
struct driver_quirk {
  /// rte_eth_dev_info::driver_name, e.g. "net_ice".
  std::string_view driver{};
  /// Relaxations to apply from the first attempt (saves a rejected round trip).
  flow_variant start_with = flow_variant::as_built;
  /// The PMD cannot match IPv6 destinations with masked ports: IPv6 rules are not supported.
  bool no_ipv6 = false;
  /// The PMD accepts a partial port mask but matches the full port (or nothing): rules with a mask
  /// other than 0 and 0xffff validate and then steer wrongly, so they are reported not supported.
  bool partial_port_mask_ignored = false;
  /// Why, with the public report it comes from; shown in errors and probe results.
  std::string_view note{};
};

/// The quirks fnat knows (DPVS issue numbers refer to github.com/iqiyi/dpvs).
inline constexpr driver_quirk known_driver_quirks[] = {
    {.driver = "net_ice",
     .start_with = flow_variant::priority_zero,
     .note = "ice rejects rte_flow priority other than 0 (\"Not support priority\", DPVS #824)"},
    {.driver = "net_ixgbe",
     .start_with = flow_variant::uniform_mask,
     .no_ipv6 = true,
     .note = "ixgbe flow director keeps one input mask per port, and its perfect-match mode cannot match "
             "IPv6 (DPVS #507)"},
    {.driver = "net_i40e",
     .partial_port_mask_ignored = true,
     .note = "i40e flow director has no per-rule L4 port mask: a partial dst-port mask is accepted but the "
             "full port is matched, so replies miss the rule and land on the wrong lcore (DPVS #433)"},
    {.driver = "net_mlx5",
     .note = "mlx5 accepts a spec with bits outside its mask and then never matches (DPVS #627); fnat always "
             "ANDs spec with mask"},
};

/// The quirk entry for a driver, or nullptr.
[[nodiscard]] inline const driver_quirk* find_quirk(std::span<const driver_quirk> table, std::string_view driver) {
  for (const auto& q : table)
    if (q.driver == driver) return &q;
  return nullptr;
}

/// The rules of `rules` rewritten by variant `v`. uniform_mask splits each rule whose port mask is
/// narrower than the widest mask M of the set into the 2^(bits of M not in its mask) rules of mask M
/// that cover the same ports (all masks of a cover are aligned sub-masks, so the split is exact).
/// Complexity: O(output). Allocates the result.
[[nodiscard]] inline std::vector<flow_rule> apply_variant(std::span<const flow_rule> rules, flow_variant v) {
  std::uint16_t widest = 0;
  for (const auto& r : rules) widest = static_cast<std::uint16_t>(widest | r.desc().port_mask);
  std::vector<flow_rule> out;
  out.reserve(rules.size());
  for (const auto& r : rules) {
    flow_rule_desc d = r.desc();
    if (has(v, flow_variant::priority_zero)) d.priority = 0;
    if (has(v, flow_variant::no_eth)) d.eth_item = false;
    if (!has(v, flow_variant::uniform_mask) || d.port_mask == widest) {
      out.push_back(*flow_rule::make(d));
      continue;
    }
    const std::uint16_t extra = static_cast<std::uint16_t>(widest & ~d.port_mask);
    std::uint16_t x = 0;  // every subset of `extra`
    do {
      flow_rule_desc s = d;
      s.port_base = static_cast<std::uint16_t>(d.port_base | x);
      s.port_mask = widest;
      out.push_back(*flow_rule::make(s));
      x = static_cast<std::uint16_t>((x - extra) & extra);
    } while (x != 0);
  }
  return out;
}

// ---- installed rules --------------------------------------------------------------------------

/// Flows created on one or more ports, destroyed when this object goes (RAII). Move-only.
/// Holds a copy of the ops handle: the device(s) behind it must outlive this object.
/// Not thread safe (rte_flow configuration is single-threaded).
template <ethdev_ops Ops = rte_ethdev_ops>
class installed_flows {
 public:
  /// One created flow: the port it lives on (a member port for a bond), the handle, the rule as
  /// installed (after any variant).
  struct entry {
    std::uint16_t port = 0;
    rte_flow* flow = nullptr;
    flow_rule rule;
  };
  /// The variant each port's rules were installed with.
  struct port_variant {
    std::uint16_t port = 0;
    flow_variant variant = flow_variant::as_built;
  };

  installed_flows() requires std::default_initializable<Ops>
  = default;
  explicit installed_flows(Ops ops) : ops_(std::move(ops)) {}
  installed_flows(const installed_flows&) = delete;
  installed_flows& operator=(const installed_flows&) = delete;
  installed_flows(installed_flows&& o) noexcept
      : ops_(o.ops_), entries_(std::exchange(o.entries_, {})), variants_(std::exchange(o.variants_, {})) {}
  installed_flows& operator=(installed_flows&& o) noexcept {
    if (this != &o) {
      (void)destroy();
      ops_ = o.ops_;
      entries_ = std::exchange(o.entries_, {});
      variants_ = std::exchange(o.variants_, {});
    }
    return *this;
  }
  /// Destroys every flow still held (errors are dropped here; call destroy() to see them).
  ~installed_flows() { (void)destroy(); }

  [[nodiscard]] std::span<const entry> entries() const noexcept { return entries_; }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] std::span<const port_variant> variants() const noexcept { return variants_; }
  /// The variant used on `port`; as_built for a port this object holds nothing for.
  [[nodiscard]] flow_variant variant(std::uint16_t port) const noexcept {
    for (const auto& pv : variants_)
      if (pv.port == port) return pv.variant;
    return flow_variant::as_built;
  }

  /// Destroys every held flow, newest first. All are attempted even after a failure; afterwards the
  /// object is empty either way.
  /// Errors: errc::device_error naming the first flow that could not be destroyed (port, rule, PMD
  /// message) and how many failed.
  [[nodiscard]] result<void> destroy() { return rollback_to(0); }

  /// Forgets the flows without destroying them: they stay on the device (e.g. for rte_flow_flush
  /// later). noexcept.
  void release() noexcept {
    entries_.clear();
    variants_.clear();
  }

  // For the installer: append, and undo back to a size.
  void add(std::uint16_t port, rte_flow* flow, const flow_rule& rule) { entries_.push_back({port, flow, rule}); }
  void set_variant(std::uint16_t port, flow_variant v) { variants_.push_back({port, v}); }
  [[nodiscard]] result<void> rollback_to(std::size_t n) {
    std::size_t failed = 0;
    std::string first;
    while (entries_.size() > n) {
      entry& e = entries_.back();
      rte_flow_error err{};
      const int rc = ops_.flow_destroy(e.port, e.flow, &err);
      if (rc != 0) {
        if (failed++ == 0)
          first = "port " + std::to_string(e.port) + ": rte_flow_destroy of `" + e.rule.to_testpmd(e.port) +
                  "` failed: " + flow_error_text(rc, err);
      }
      entries_.pop_back();
    }
    std::erase_if(variants_, [&](const port_variant& pv) {
      return std::none_of(entries_.begin(), entries_.end(), [&](const entry& e) { return e.port == pv.port; });
    });
    if (failed == 0) return {};
    return error(errc::device_error, first + (failed > 1 ? " (and " + std::to_string(failed - 1) + " more)" : ""));
  }

 private:
  Ops ops_{};
  std::vector<entry> entries_;
  std::vector<port_variant> variants_;
};

/// How install_flow_rules and probe_flow_capability treat PMD differences. Designated initializers.
struct flow_install_options {
  /// Known driver quirks, consulted before the first attempt. Default: fnat's table.
  std::span<const driver_quirk> quirks = known_driver_quirks;
  /// On rejection, retry the variants (priority 0, no ETH item, one mask per port) before giving up.
  bool try_variants = true;
};

namespace detail {

// Ports the rules go to: the members of a bond, else the port itself.
template <ethdev_ops Ops>
result<std::vector<std::uint16_t>> target_ports(Ops& ops, std::uint16_t port, bool& is_bond) {
  std::vector<std::uint16_t> members(RTE_MAX_ETHPORTS);
  const int n = ops.bond_members(port, members.data(), static_cast<std::uint16_t>(members.size()));
  is_bond = n >= 0;
  if (n < 0) return std::vector<std::uint16_t>{port};
  if (n == 0)
    return error(errc::invalid_argument,
                 "bond port " + std::to_string(port) + " has no member port; add members before installing flow rules");
  members.resize(static_cast<std::size_t>(n));
  return members;
}

// The variants to try, fewest relaxations first, each a superset of `start`; only those that change
// the rule set are kept (priority 0 when every rule already has it is no new attempt).
inline std::vector<flow_variant> variants_to_try(flow_variant start, bool try_more) {
  std::vector<flow_variant> out{start};
  if (!try_more) return out;
  std::vector<flow_variant> all;
  for (unsigned bits = 0; bits < 8; ++bits) {
    const auto v = static_cast<flow_variant>(bits);
    if (has(v, start) && v != start) all.push_back(v);
  }
  std::stable_sort(all.begin(), all.end(), [](flow_variant a, flow_variant b) {
    return std::popcount(static_cast<unsigned>(a)) < std::popcount(static_cast<unsigned>(b));
  });
  out.insert(out.end(), all.begin(), all.end());
  return out;
}

struct attempt {
  flow_variant variant;
  std::size_t rule;       // index in the variant's rule list
  std::string rule_text;  // testpmd syntax
  const char* call;       // "rte_flow_validate" / "rte_flow_create"
  int rc;
  std::string message;
};

inline std::string port_label(std::uint16_t port, const std::string& driver) {
  return "port " + std::to_string(port) + " (" + (driver.empty() ? std::string("driver unknown") : driver) + ")";
}

inline std::string describe_attempts(const std::vector<attempt>& tried, std::size_t rules) {
  std::string s;
  for (std::size_t i = 0; i < tried.size(); ++i) {
    const attempt& a = tried[i];
    s += i == 0 ? "" : "; then ";
    s += to_string(a.variant) + ": rule " + std::to_string(a.rule + 1) + " of " + std::to_string(rules) + " `" +
         a.rule_text + "` failed in " + a.call + ": " + a.message;
  }
  return s;
}

// Quirks that rule a rule set out before any attempt; empty when none applies.
inline std::string quirk_refusal(const driver_quirk* q, std::span<const flow_rule> rules) {
  if (q == nullptr) return {};
  for (const auto& r : rules) {
    if (q->no_ipv6 && r.family() == ip_family::v6)
      return "IPv6 rules (" + r.describe() + ") are not supported: " + std::string(q->note);
    const auto m = r.desc().port_mask;
    if (q->partial_port_mask_ignored && m != 0 && m != 0xffff)
      return "masked-port rules (" + r.describe() + ") would validate but not steer: " + std::string(q->note);
  }
  return {};
}

// Installs `rules` on one (non-bond) port, appending to `out`. On failure nothing of this call is left.
template <ethdev_ops Ops>
result<void> install_on_port(Ops& ops, std::uint16_t port, std::span<const flow_rule> rules,
                             const flow_install_options& opts, installed_flows<Ops>& out) {
  rte_eth_dev_info info{};
  if (const int rc = ops.dev_info(port, &info); rc != 0)
    return error(errc::invalid_argument, "port " + std::to_string(port) + ": rte_eth_dev_info_get failed: " +
                                             errno_text(rc) + "; is the port id valid?");
  const std::string driver = info.driver_name != nullptr ? info.driver_name : "";
  const std::string where = port_label(port, driver);
  const driver_quirk* q = find_quirk(opts.quirks, driver);
  if (auto why = quirk_refusal(q, rules); !why.empty())
    return error(errc::not_supported, where + ": " + why + "; steer these with RSS-aware ports or software redirect");

  std::vector<attempt> tried;
  std::vector<std::vector<flow_rule>> seen;
  bool all_unsupported = true;
  for (flow_variant v : variants_to_try(q ? q->start_with : flow_variant::as_built, opts.try_variants)) {
    std::vector<flow_rule> set = apply_variant(rules, v);
    if (std::find(seen.begin(), seen.end(), set) != seen.end()) continue;  // same rules as an earlier try
    seen.push_back(set);
    bool failed = false;
    for (std::size_t i = 0; i < set.size() && !failed; ++i) {
      const flow_rule_view fv = set[i].view();
      rte_flow_error err{};
      if (const int rc = ops.flow_validate(port, fv.attr(), fv.pattern(), fv.actions(), &err); rc != 0) {
        tried.push_back({v, i, set[i].to_testpmd(port), "rte_flow_validate", rc, flow_error_text(rc, err)});
        failed = true;
      }
    }
    const std::size_t mark = out.size();
    for (std::size_t i = 0; i < set.size() && !failed; ++i) {
      const flow_rule_view fv = set[i].view();
      rte_flow_error err{};
      rte_flow* flow = nullptr;
      if (const int rc = ops.flow_create(port, fv.attr(), fv.pattern(), fv.actions(), &flow, &err); rc != 0) {
        tried.push_back({v, i, set[i].to_testpmd(port), "rte_flow_create", rc, flow_error_text(rc, err)});
        failed = true;
        if (auto undo = out.rollback_to(mark); !undo)
          return error(errc::device_error, where + ": " + describe_attempts(tried, set.size()) +
                                               "; rolling back then failed: " + undo.err().message() +
                                               "; flows may be left on the port (rte_flow_flush removes them)");
      } else {
        out.add(port, flow, set[i]);
      }
    }
    if (!failed) {
      out.set_variant(port, v);
      return {};
    }
    all_unsupported = all_unsupported && is_not_supported_errno(tried.back().rc);
    if (tried.back().rc == -ENOSYS) break;  // no rte_flow at all: no variant can help
  }
  const errc code = all_unsupported ? errc::not_supported : errc::device_error;
  std::string msg = where + ": cannot install " + std::to_string(rules.size()) + " flow rule(s); " +
                    describe_attempts(tried, rules.size()) + "; nothing was left installed";
  if (code == errc::not_supported) msg += "; steer with RSS-aware ports or software redirect instead";
  return error(code, std::move(msg));
}

}  // namespace detail

/// Installs `rules` on `port` (on each member port when `port` is a bond): validates every rule, then
/// creates them; on rejection retries the variants (flow_install_options), one variant per port.
/// Returns the created flows in an RAII object. On failure every flow this call created, on every
/// port, has been destroyed again.
/// Errors: errc::not_supported when the PMD has no rte_flow or a known quirk rules the rules out;
/// errc::device_error when the PMD rejected every variant (or a rollback failed); errc::invalid_argument
/// for a port that does not answer or a bond without members. Messages name the port, the driver, the
/// failing rule in testpmd syntax and the PMD's message, for every variant tried.
/// Complexity: O(rules * variants) PMD calls. Not thread safe for one port.
template <ethdev_ops Ops>
[[nodiscard]] result<installed_flows<Ops>> install_flow_rules(Ops ops, std::uint16_t port,
                                                              std::span<const flow_rule> rules,
                                                              const flow_install_options& opts = {}) {
  installed_flows<Ops> out(ops);
  if (rules.empty()) return out;
  bool is_bond = false;
  auto targets = detail::target_ports(ops, port, is_bond);
  if (!targets) return targets.err();
  for (std::uint16_t member : *targets) {
    if (auto r = detail::install_on_port(ops, member, rules, opts, out); !r) {
      std::string undo;
      if (auto u = out.destroy(); !u) undo = "; rolling back the other members failed: " + u.err().message();
      return error(r.err().code(), (is_bond ? "bond port " + std::to_string(port) + ", member " : std::string()) +
                                       r.err().message() + undo);
    }
  }
  return out;
}

// ---- capability probe -------------------------------------------------------------------------

/// What probe_flow_capability asks the port. Designated initializers.
struct flow_probe_options {
  bool ipv4 = true;  ///< probe IPv4 destinations
  bool ipv6 = true;  ///< probe IPv6 destinations
  bool tcp = true;   ///< probe TCP
  bool udp = true;   ///< probe UDP
  /// The port mask of the probe rule: a partial mask, as a plan's class mask (8 classes by default).
  std::uint16_t port_mask = 0x0007;
  /// Queue of the probe rule; must exist on the port.
  std::uint16_t queue = 0;
  std::uint32_t group = 0;     ///< as flow_build_options::group
  std::uint32_t priority = 0;  ///< as flow_build_options::priority
  bool eth_item = true;        ///< as flow_build_options::eth_item
  flow_install_options install{};
};

/// The answer of a probe.
struct flow_capability {
  /// ok: masked-port QUEUE rules validate; not_supported: no rte_flow, a quirk, or every variant
  /// rejected with ENOTSUP/ENOSYS; device_error: rejected otherwise.
  errc status = errc::ok;
  /// The relaxations that made the rules validate (when supported); for a bond, those of all members.
  flow_variant variant = flow_variant::as_built;
  /// The driver name (for a bond: "net_bonding" and its members').
  std::string driver;
  /// Why not, in the PMD's words and fnat's (empty when supported without remark).
  std::string reason;
  [[nodiscard]] bool supported() const noexcept { return status == errc::ok; }
};

namespace detail {
template <ethdev_ops Ops>
flow_capability probe_port(Ops& ops, std::uint16_t port, const flow_probe_options& opts) {
  flow_capability cap;
  cap.driver = driver_name(ops, port);
  const std::string where = port_label(port, cap.driver);
  std::vector<flow_rule> samples;
  const inet_addr v4 = *inet_addr::parse("198.18.0.1"), v6 = *inet_addr::parse("2001:2::1");
  for (const inet_addr* a : {&v4, &v6}) {
    if ((a == &v4 && !opts.ipv4) || (a == &v6 && !opts.ipv6)) continue;
    for (std::uint8_t proto : {ipproto::tcp, ipproto::udp}) {
      if ((proto == ipproto::tcp && !opts.tcp) || (proto == ipproto::udp && !opts.udp)) continue;
      samples.push_back(*flow_rule::make({.group = opts.group,
                                          .priority = opts.priority,
                                          .eth_item = opts.eth_item,
                                          .dst = *a,
                                          .proto = proto,
                                          .port_base = static_cast<std::uint16_t>(1u & opts.port_mask),
                                          .port_mask = opts.port_mask,
                                          .queue = opts.queue}));
    }
  }
  if (samples.empty()) {
    cap.status = errc::invalid_argument;
    cap.reason = "probe: no family or protocol selected";
    return cap;
  }
  const driver_quirk* q = find_quirk(opts.install.quirks, cap.driver);
  if (auto why = quirk_refusal(q, samples); !why.empty()) {
    cap.status = errc::not_supported;
    cap.reason = where + ": " + why;
    return cap;
  }
  std::vector<attempt> tried;
  bool all_unsupported = true;
  std::vector<std::vector<flow_rule>> seen;
  for (flow_variant v : variants_to_try(q ? q->start_with : flow_variant::as_built, opts.install.try_variants)) {
    std::vector<flow_rule> set = apply_variant(samples, v);
    if (std::find(seen.begin(), seen.end(), set) != seen.end()) continue;
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
    if (ok) {
      cap.variant = v;
      if (!tried.empty())
        cap.reason = where + ": accepted as " + to_string(v) + " after " + describe_attempts(tried, set.size());
      else if (q != nullptr)
        cap.reason = where + ": " + std::string(q->note);
      return cap;
    }
    all_unsupported = all_unsupported && is_not_supported_errno(tried.back().rc);
    if (tried.back().rc == -ENOSYS) break;
  }
  cap.status = all_unsupported ? errc::not_supported : errc::device_error;
  cap.reason = where + ": " + describe_attempts(tried, samples.size());
  return cap;
}
}  // namespace detail

/// Asks a port, without creating anything, whether masked-port QUEUE rules (the rules
/// build_lcore_flow_rules makes) are accepted: validates one sample rule per selected family and
/// protocol under each variant. For a bond every member is asked; the bond is supported when all are.
/// Validation cannot see create-time limits (table size, ixgbe's per-port mask conflicts), which
/// install_flow_rules still handles.
/// Errors: errc::invalid_argument when the port does not answer rte_eth_dev_info_get or is a bond
/// without members. A missing capability is not an error: it is the answer (status, reason).
template <ethdev_ops Ops>
[[nodiscard]] result<flow_capability> probe_flow_capability(Ops ops, std::uint16_t port,
                                                            const flow_probe_options& opts = {}) {
  rte_eth_dev_info info{};
  if (const int rc = ops.dev_info(port, &info); rc != 0)
    return error(errc::invalid_argument, "port " + std::to_string(port) + ": rte_eth_dev_info_get failed: " +
                                             errno_text(rc) + "; is the port id valid?");
  bool is_bond = false;
  auto targets = detail::target_ports(ops, port, is_bond);
  if (!targets) return targets.err();
  if (!is_bond) return detail::probe_port(ops, port, opts);
  flow_capability all;
  all.driver = info.driver_name != nullptr ? info.driver_name : "";
  all.driver += " (members:";
  for (std::uint16_t m : *targets) {
    flow_capability c = detail::probe_port(ops, m, opts);
    all.driver += " " + std::to_string(m) + " " + c.driver;
    all.variant = all.variant | c.variant;
    if (!c.reason.empty()) all.reason += (all.reason.empty() ? "" : "; ") + c.reason;
    if (c.status != errc::ok && all.status == errc::ok) all.status = c.status;
  }
  all.driver += ")";
  return all;
}

}  // namespace fnat::dpdk
