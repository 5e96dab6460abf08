// SPDX-License-Identifier: BSD-3-Clause
// The seam between fnat and a port's rte_flow / RSS calls.
//
// Everything in flow_rules.hpp and rss.hpp that touches a device does it through an `ethdev_ops`
// policy: a small, cheaply copyable object with one member per DPDK call, the same arguments and the
// same return convention (0 or a negative errno). `rte_ethdev_ops` forwards to DPDK; tests substitute
// fakes that emulate quirky PMDs, and nic_model.hpp provides `nic_model_ops`, a software device, so the
// same installer code can be run against hardware, a model or a fake.
//
// Two departures from the raw API, both to make errors unambiguous:
//  - flow_create returns an int (0 or -errno) and hands the flow out through a pointer, because
//    rte_flow_create reports the code only in rte_errno, a global a fake would have to imitate;
//  - bond_members answers "is this a bond and who are its members" in one call: >= 0 members for a
//    bonded port, < 0 for any other port (rte_eth_bond_slaves_get logs an error for a non-bond port,
//    so the real implementation asks for the driver name first).
//
// Ops objects are handles: copies refer to the same device(s); they carry no per-call state.
#pragma once

#include "fnat/dpdk/detail/dpdk_includes.hpp"

FNAT_DPDK_INCLUDES_BEGIN
#include <rte_errno.h>
#include <rte_eth_bond.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_mbuf.h>
FNAT_DPDK_INCLUDES_END

#include <cerrno>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace fnat::dpdk {

/// The device calls fnat makes. Every member returns 0 (or a count) on success and a negative errno
/// on failure, like the DPDK call it stands for; flow calls also fill the rte_flow_error.
template <class T>
concept ethdev_ops = std::copy_constructible<T> &&
    requires(T& ops, std::uint16_t port, rte_eth_dev_info* info, const rte_flow_attr* attr,
             const rte_flow_item* pattern, const rte_flow_action* actions, rte_flow_error* err, rte_flow** out,
             rte_flow* flow, rte_eth_rss_conf* rss, rte_eth_rss_reta_entry64* reta, std::uint16_t reta_size,
             std::uint16_t* members, std::uint16_t len) {
  /// rte_eth_dev_info_get.
  { ops.dev_info(port, info) } -> std::same_as<int>;
  /// rte_flow_validate.
  { ops.flow_validate(port, attr, pattern, actions, err) } -> std::same_as<int>;
  /// rte_flow_create; *out is set on success.
  { ops.flow_create(port, attr, pattern, actions, out, err) } -> std::same_as<int>;
  /// rte_flow_destroy.
  { ops.flow_destroy(port, flow, err) } -> std::same_as<int>;
  /// rte_eth_dev_rss_hash_update.
  { ops.rss_hash_update(port, rss) } -> std::same_as<int>;
  /// rte_eth_dev_rss_hash_conf_get.
  { ops.rss_hash_conf_get(port, rss) } -> std::same_as<int>;
  /// rte_eth_dev_rss_reta_update.
  { ops.rss_reta_update(port, reta, reta_size) } -> std::same_as<int>;
  /// rte_eth_dev_rss_reta_query.
  { ops.rss_reta_query(port, reta, reta_size) } -> std::same_as<int>;
  /// Members of a bonded port (count, at most len written) or < 0 when `port` is not a bond.
  { ops.bond_members(port, members, len) } -> std::same_as<int>;
};

/// The real thing: each member calls the DPDK function of the same name. Stateless; thread safety is
/// DPDK's (rte_flow calls on one port are not thread safe unless the PMD says so; configuration code
/// runs them from one thread).
struct rte_ethdev_ops {
  int dev_info(std::uint16_t port, rte_eth_dev_info* info) const { return rte_eth_dev_info_get(port, info); }
  int flow_validate(std::uint16_t port, const rte_flow_attr* attr, const rte_flow_item* pattern,
                    const rte_flow_action* actions, rte_flow_error* err) const {
    return rte_flow_validate(port, attr, pattern, actions, err);
  }
  int flow_create(std::uint16_t port, const rte_flow_attr* attr, const rte_flow_item* pattern,
                  const rte_flow_action* actions, rte_flow** out, rte_flow_error* err) const {
    *out = rte_flow_create(port, attr, pattern, actions, err);
    if (*out != nullptr) return 0;
    return rte_errno > 0 ? -rte_errno : -EIO;
  }
  int flow_destroy(std::uint16_t port, rte_flow* flow, rte_flow_error* err) const {
    return rte_flow_destroy(port, flow, err);
  }
  int rss_hash_update(std::uint16_t port, rte_eth_rss_conf* conf) const {
    return rte_eth_dev_rss_hash_update(port, conf);
  }
  int rss_hash_conf_get(std::uint16_t port, rte_eth_rss_conf* conf) const {
    return rte_eth_dev_rss_hash_conf_get(port, conf);
  }
  int rss_reta_update(std::uint16_t port, rte_eth_rss_reta_entry64* reta, std::uint16_t size) const {
    return rte_eth_dev_rss_reta_update(port, reta, size);
  }
  int rss_reta_query(std::uint16_t port, rte_eth_rss_reta_entry64* reta, std::uint16_t size) const {
    return rte_eth_dev_rss_reta_query(port, reta, size);
  }
  int bond_members(std::uint16_t port, std::uint16_t* members, std::uint16_t len) const {
    rte_eth_dev_info info{};
    if (const int rc = rte_eth_dev_info_get(port, &info); rc != 0) return rc;
    if (info.driver_name == nullptr || std::strcmp(info.driver_name, "net_bonding") != 0) return -ENOTSUP;
    return rte_eth_bond_slaves_get(port, members, len);
  }
};
static_assert(ethdev_ops<rte_ethdev_ops>);

/// True for the codes a PMD or ethdev returns when it lacks a capability altogether.
[[nodiscard]] constexpr bool is_not_supported_errno(int rc) noexcept {
  return rc == -ENOTSUP || rc == -ENOSYS || rc == -EOPNOTSUPP;
}

/// Text of a negative errno as DPDK spells it ("Function not implemented").
[[nodiscard]] inline std::string errno_text(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

/// Short name of what an rte_flow_error blames ("priority", "pattern item", ...).
[[nodiscard]] constexpr std::string_view to_string(rte_flow_error_type t) noexcept {
  switch (t) {
    case RTE_FLOW_ERROR_TYPE_NONE:
      return "none";
    case RTE_FLOW_ERROR_TYPE_UNSPECIFIED:
      return "cause unspecified";
    case RTE_FLOW_ERROR_TYPE_HANDLE:
      return "flow handle";
    case RTE_FLOW_ERROR_TYPE_ATTR_GROUP:
      return "group";
    case RTE_FLOW_ERROR_TYPE_ATTR_PRIORITY:
      return "priority";
    case RTE_FLOW_ERROR_TYPE_ATTR_INGRESS:
      return "ingress";
    case RTE_FLOW_ERROR_TYPE_ATTR_EGRESS:
      return "egress";
    case RTE_FLOW_ERROR_TYPE_ATTR_TRANSFER:
      return "transfer";
    case RTE_FLOW_ERROR_TYPE_ATTR:
      return "attributes";
    case RTE_FLOW_ERROR_TYPE_ITEM_NUM:
      return "pattern length";
    case RTE_FLOW_ERROR_TYPE_ITEM_SPEC:
      return "item spec";
    case RTE_FLOW_ERROR_TYPE_ITEM_LAST:
      return "item last";
    case RTE_FLOW_ERROR_TYPE_ITEM_MASK:
      return "item mask";
    case RTE_FLOW_ERROR_TYPE_ITEM:
      return "pattern item";
    case RTE_FLOW_ERROR_TYPE_ACTION_NUM:
      return "action count";
    case RTE_FLOW_ERROR_TYPE_ACTION_CONF:
      return "action configuration";
    case RTE_FLOW_ERROR_TYPE_ACTION:
      return "action";
    case RTE_FLOW_ERROR_TYPE_STATE:
      return "device state";
  }
  return "unknown cause";
}

/// "<PMD message> (<errno text>; blames <cause>)", the PMD's own words first. An empty or missing
/// message is reported as such rather than guessed.
[[nodiscard]] inline std::string flow_error_text(int rc, const rte_flow_error& err) {
  std::string s = (err.message != nullptr && err.message[0] != '\0') ? std::string(err.message)
                                                                     : std::string("no message from the PMD");
  s += " (" + errno_text(rc);
  if (err.type != RTE_FLOW_ERROR_TYPE_NONE) s += "; blames " + std::string(to_string(err.type));
  return s + ")";
}

/// The driver name of a port ("net_ice"), or an empty string when the port does not answer.
template <ethdev_ops Ops>
[[nodiscard]] std::string driver_name(Ops& ops, std::uint16_t port) {
  rte_eth_dev_info info{};
  if (ops.dev_info(port, &info) != 0 || info.driver_name == nullptr) return {};
  return info.driver_name;
}

}  // namespace fnat::dpdk
