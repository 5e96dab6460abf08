// SPDX-License-Identifier: BSD-3-Clause
// RSS key and redirection table (RETA) programming with read-back [DPVS: __netif_update_rss_reta].
//
// RSS-aware steering needs to know exactly what the NIC computes: the key (Toeplitz hash input
// weights) and the RETA (hash -> queue). This file writes both and reads them back:
//  - the key through rte_eth_dev_rss_hash_update: keep the device's, the Microsoft key most NICs ship,
//    the symmetric 0x6d5a key (reta.hpp: both directions of a connection hash alike), or your own;
//  - the table, computed by the pure functions of reta.hpp, through
//    rte_eth_dev_rss_reta_update in groups of RTE_ETH_RETA_GROUP_SIZE (64) entries, each group with a
//    mask of the entries it carries; then rte_eth_dev_rss_reta_query and an entry-by-entry compare,
//    because a PMD that silently truncates or ignores part of an update would break every
//    RSS-affinity promise made from the computed table.
// The default layout is periodic (reta.hpp, "Periodic"): the table repeats every 2^m entries, m the
// smallest that keeps every queue within 1/16 of the mean share (or splits exactly), so that an
// RSS-aware lcore (rss_ports.hpp) needs at most 2^m sa_pool buckets: 128 for 6 queues instead of the
// 512 that round robin over a 512-entry table costs (~22 MiB per LIP instead of ~88). With a
// power-of-two queue count it is round robin's table exactly. reta_fill::round_robin keeps DPVS's
// layout (round robin, or weighted, over the whole table) for whoever wants the last percent of
// balance and does not use RSS-aware ports.
// A port without a RETA (reta_size 0: net_ring, net_af_packet, ...) or whose PMD answers -ENOTSUP gets
// errc::not_supported with a sentence saying what to use instead, never a crash: DPDK's own checks
// reject reta_size 0 with -EINVAL, which would read as a caller mistake.
// Note: ethdev refuses RETA updates (-ENOTSUP) on a port configured without RTE_ETH_MQ_RX_RSS in
// rxmode.mq_mode; configure the port with it and with rx_adv_conf.rss_conf.rss_hf set.
//
// Configuration time only: allocates, returns fnat::result. Not thread safe for one port.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fnat/core/error.hpp"
#include "fnat/core/reta.hpp"
#include "fnat/core/toeplitz.hpp"
#include "fnat/dpdk/ethdev_ops.hpp"

namespace fnat::dpdk {

/// Which key program_rss writes.
enum class rss_key_choice : std::uint8_t {
  keep,       ///< leave the device's key alone
  microsoft,  ///< fnat::rss_key_microsoft (40 bytes; the default of most NICs)
  symmetric,  ///< 0x6d5a repeated at the device's key length (reta.hpp)
  custom,     ///< rss_config::custom_key
};

/// What program_rss sets up. Designated initializers; every field has a default.
struct rss_config {
  /// The key to write.
  rss_key_choice key = rss_key_choice::keep;
  /// The key for rss_key_choice::custom; its length must be the device's hash_key_size.
  std::vector<std::uint8_t> custom_key{};
  /// Hash types (RTE_ETH_RSS_*) written with the key; 0 keeps the device's current ones.
  std::uint64_t rss_hf = 0;
  /// Rx queues to spread over; empty: every configured rx queue, 0 .. nb_rx_queues - 1.
  std::vector<std::uint16_t> queues{};
  /// One weight per queue (reta_periodic_weighted, or reta_weighted with reta_fill::round_robin);
  /// empty: equal shares.
  std::vector<std::uint32_t> weights{};
  /// Table layout: periodic (reta_periodic / reta_periodic_weighted; few RSS-aware buckets) or
  /// round_robin over the whole table (reta_round_robin / reta_weighted, DPVS's layout). See the file
  /// comment for the trade.
  reta_fill fill = reta_fill::periodic;
  /// The period of reta_fill::periodic: chosen from the balance target by default (reta.hpp).
  reta_periodic_config periodic{};
  /// Read the key and table back and compare.
  bool verify = true;
};

/// What a port's RSS is after program_rss: the key and types written (or kept) and the table.
struct rss_state {
  std::vector<std::uint8_t> key;
  std::uint64_t rss_hf = 0;
  std::vector<std::uint16_t> reta;
  /// Shortest power-of-two period of `reta` (reta_period): the most sa_pool buckets an RSS-aware
  /// lcore needs for it. Worth logging beside the table.
  std::size_t reta_period = 0;
};

namespace detail {

inline std::string rss_port(std::uint16_t port, const rte_eth_dev_info& info) {
  return "port " + std::to_string(port) + " (" + (info.driver_name ? info.driver_name : "driver unknown") + ")";
}

template <ethdev_ops Ops>
result<rte_eth_dev_info> rss_dev_info(Ops& ops, std::uint16_t port) {
  rte_eth_dev_info info{};
  if (const int rc = ops.dev_info(port, &info); rc != 0)
    return error(errc::invalid_argument, "port " + std::to_string(port) + ": rte_eth_dev_info_get failed: " +
                                             errno_text(rc) + "; is the port id valid?");
  return info;
}

inline result<void> need_reta(std::uint16_t port, const rte_eth_dev_info& info) {
  if (info.reta_size == 0)
    return error(errc::not_supported, rss_port(port, info) +
                                          ": the PMD reports no RSS redirection table (reta_size 0); RSS-aware "
                                          "port selection cannot be used here, steer with flow rules or software "
                                          "redirect instead");
  return {};
}

inline error rss_call_error(std::uint16_t port, const rte_eth_dev_info& info, const char* call, int rc) {
  if (is_not_supported_errno(rc))
    return error(errc::not_supported, rss_port(port, info) + ": " + call + ": " + errno_text(rc) +
                                          " (the PMD lacks it, or the port was configured without "
                                          "RTE_ETH_MQ_RX_RSS); steer with flow rules or software redirect instead");
  return error(errc::device_error, rss_port(port, info) + ": " + call + " failed: " + errno_text(rc));
}

}  // namespace detail

/// Reads the whole RETA (reta_size entries) of a port.
/// Errors: errc::not_supported for reta_size 0 or a PMD without reta_query; errc::device_error for
/// another failure; errc::invalid_argument for a port that does not answer.
template <ethdev_ops Ops>
[[nodiscard]] result<std::vector<std::uint16_t>> query_reta(Ops ops, std::uint16_t port) {
  auto info = detail::rss_dev_info(ops, port);
  if (!info) return info.err();
  if (auto ok = detail::need_reta(port, *info); !ok) return ok.err();
  const std::size_t size = info->reta_size;
  std::vector<rte_eth_rss_reta_entry64> conf((size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
  for (std::size_t i = 0; i < size; ++i)
    conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
  if (const int rc = ops.rss_reta_query(port, conf.data(), info->reta_size); rc != 0)
    return detail::rss_call_error(port, *info, "rte_eth_dev_rss_reta_query", rc);
  std::vector<std::uint16_t> t(size);
  for (std::size_t i = 0; i < size; ++i) t[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
  return t;
}

/// Writes a whole RETA (table.size() must be the port's reta_size), then, when `verify`, reads it back
/// and compares every entry.
/// Errors: errc::not_supported (reta_size 0, -ENOTSUP); errc::invalid_argument for a table of the
/// wrong size or naming a queue the port has not configured; errc::device_error for a PMD failure or
/// a read-back that differs (the message names the first differing entry).
template <ethdev_ops Ops>
[[nodiscard]] result<void> program_reta(Ops ops, std::uint16_t port, std::span<const std::uint16_t> table,
                                        bool verify = true) {
  auto info = detail::rss_dev_info(ops, port);
  if (!info) return info.err();
  if (auto ok = detail::need_reta(port, *info); !ok) return ok;
  const std::string where = detail::rss_port(port, *info);
  if (table.size() != info->reta_size)
    return error(errc::invalid_argument, where + ": RETA of " + std::to_string(table.size()) +
                                             " entries, the port's has " + std::to_string(info->reta_size));
  for (std::size_t i = 0; i < table.size(); ++i)
    if (table[i] >= info->nb_rx_queues)
      return error(errc::invalid_argument, where + ": RETA entry " + std::to_string(i) + " names rx queue " +
                                               std::to_string(table[i]) + " but the port has " +
                                               std::to_string(info->nb_rx_queues) + " configured");
  std::vector<rte_eth_rss_reta_entry64> conf((table.size() + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
  for (std::size_t i = 0; i < table.size(); ++i) {
    conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
    conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = table[i];
  }
  if (const int rc = ops.rss_reta_update(port, conf.data(), info->reta_size); rc != 0)
    return detail::rss_call_error(port, *info, "rte_eth_dev_rss_reta_update", rc);
  if (!verify) return {};
  auto back = query_reta(ops, port);
  if (!back) return back.err();
  for (std::size_t i = 0; i < table.size(); ++i)
    if ((*back)[i] != table[i])
      return error(errc::device_error, where + ": RETA entry " + std::to_string(i) + " reads back queue " +
                                           std::to_string((*back)[i]) + " after writing " + std::to_string(table[i]) +
                                           "; the PMD did not apply the update as given");
  return {};
}

/// Reads the key and hash types. The key has hash_key_size bytes, or the length the PMD reports, or
/// 40 (rte_eth_rss_conf's documented size) when the PMD says neither (net_null). rss_hf 0 means the
/// PMD reported no types (net_null does not fill them in).
/// Errors: errc::not_supported when the PMD cannot report them; errc::device_error otherwise.
template <ethdev_ops Ops>
[[nodiscard]] result<rss_state> query_rss_hash(Ops ops, std::uint16_t port) {
  auto info = detail::rss_dev_info(ops, port);
  if (!info) return info.err();
  // Room for the longest key rss_key_len can describe: a PMD that ignores the length cannot overrun.
  std::vector<std::uint8_t> key(255);
  rte_eth_rss_conf conf{};
  conf.rss_key = key.data();
  conf.rss_key_len = static_cast<std::uint8_t>(key.size());
  if (const int rc = ops.rss_hash_conf_get(port, &conf); rc != 0)
    return detail::rss_call_error(port, *info, "rte_eth_dev_rss_hash_conf_get", rc);
  std::size_t len = 40;
  if (info->hash_key_size != 0)
    len = info->hash_key_size;
  else if (conf.rss_key_len != 0 && conf.rss_key_len < key.size())
    len = conf.rss_key_len;
  key.resize(len);
  return rss_state{std::move(key), conf.rss_hf, {}};
}

/// Writes an RSS key and hash types. The key must be hash_key_size bytes when the device reports a
/// size. With `verify`, reads them back when the PMD can report them (a PMD without
/// rss_hash_conf_get is trusted, and so are the types of one that reports none).
/// Errors: errc::invalid_argument for a key of the wrong length or types the device does not offer
/// (flow_type_rss_offloads); errc::not_supported for a PMD that offers no RSS type or has no
/// rss_hash_update; errc::device_error
/// for a failure or a read-back that differs.
template <ethdev_ops Ops>
[[nodiscard]] result<void> set_rss_hash(Ops ops, std::uint16_t port, std::span<const std::uint8_t> key,
                                        std::uint64_t rss_hf, bool verify = true) {
  auto info = detail::rss_dev_info(ops, port);
  if (!info) return info.err();
  const std::string where = detail::rss_port(port, *info);
  if (info->flow_type_rss_offloads == 0)
    return error(errc::not_supported, where +
                                          ": the PMD offers no RSS hash type (flow_type_rss_offloads 0); "
                                          "RSS cannot be programmed here, steer with flow rules or software "
                                          "redirect instead");
  if (info->hash_key_size != 0 && key.size() != info->hash_key_size)
    return error(errc::invalid_argument, where + ": RSS key of " + std::to_string(key.size()) +
                                             " bytes, the device takes " + std::to_string(info->hash_key_size));
  if (key.size() > 255) return error(errc::invalid_argument, where + ": RSS key longer than 255 bytes");
  if ((rss_hf & ~info->flow_type_rss_offloads) != 0)
    return error(errc::invalid_argument,
                 where + ": RSS types " + fnat::detail::hex(rss_hf & ~info->flow_type_rss_offloads) +
                     " are not offered by the device (flow_type_rss_offloads " +
                     fnat::detail::hex(info->flow_type_rss_offloads) + ")");
  std::vector<std::uint8_t> k(key.begin(), key.end());
  rte_eth_rss_conf conf{};
  conf.rss_key = k.data();
  conf.rss_key_len = static_cast<std::uint8_t>(k.size());
  conf.rss_hf = rss_hf;
  if (const int rc = ops.rss_hash_update(port, &conf); rc != 0)
    return detail::rss_call_error(port, *info, "rte_eth_dev_rss_hash_update", rc);
  if (!verify) return {};
  auto back = query_rss_hash(ops, port);
  if (!back) {
    if (back.err().code() == errc::not_supported) return {};
    return back.err();
  }
  if (back->key != k)
    return error(errc::device_error, where + ": the RSS key reads back different from the key written");
  if (back->rss_hf != 0 && back->rss_hf != rss_hf)  // 0: the PMD does not report types
    return error(errc::device_error, where + ": RSS types read back as " + fnat::detail::hex(back->rss_hf) +
                                         " after writing " + fnat::detail::hex(rss_hf));
  return {};
}

/// The whole RSS setup of a port: the key (rss_config::key), then a RETA computed from the queue list
/// (periodic by default, round robin over the whole table on request; weighted when weights are
/// given), written and verified.
/// Errors: those of set_rss_hash and program_reta, and errc::invalid_argument for a key choice the
/// device cannot take (the 40-byte Microsoft key on a 52-byte device), a missing custom key, rss_hf 0
/// with a PMD that cannot report its current types, a bad queue/weight list or period (reta.hpp).
template <ethdev_ops Ops>
[[nodiscard]] result<rss_state> program_rss(Ops ops, std::uint16_t port, const rss_config& cfg = {}) {
  auto info = detail::rss_dev_info(ops, port);
  if (!info) return info.err();
  if (auto ok = detail::need_reta(port, *info); !ok) return ok.err();
  const std::string where = detail::rss_port(port, *info);
  rss_state st;
  if (cfg.key != rss_key_choice::keep) {
    switch (cfg.key) {
      case rss_key_choice::microsoft:
        st.key.assign(rss_key_microsoft.begin(), rss_key_microsoft.end());
        break;
      case rss_key_choice::symmetric:
        st.key = make_symmetric_rss_key(info->hash_key_size != 0 ? info->hash_key_size : rss_key_symmetric.size());
        break;
      case rss_key_choice::custom:
        if (cfg.custom_key.empty())
          return error(errc::invalid_argument, where + ": rss_key_choice::custom without custom_key");
        st.key = cfg.custom_key;
        break;
      case rss_key_choice::keep:
        break;
    }
    st.rss_hf = cfg.rss_hf;
    if (st.rss_hf == 0) {
      auto cur = query_rss_hash(ops, port);
      if (!cur)
        return error(cur.err().code(), cur.err().message() +
                                           "; rss_hf 0 means \"keep the current types\", which cannot be read here: "
                                           "give rss_config::rss_hf");
      // Writing 0 would switch RSS off: never guess.
      if (cur->rss_hf == 0)
        return error(errc::invalid_argument, where +
                                                 ": the PMD reports no current RSS types, so rss_hf 0 (\"keep "
                                                 "them\") cannot be honoured; give rss_config::rss_hf");
      st.rss_hf = cur->rss_hf;
    }
    if (auto ok = set_rss_hash(ops, port, st.key, st.rss_hf, cfg.verify); !ok) return ok.err();
  } else if (auto cur = query_rss_hash(ops, port)) {
    st.key = std::move(cur->key);
    st.rss_hf = cur->rss_hf;
  }
  std::vector<std::uint16_t> queues = cfg.queues;
  if (queues.empty())
    for (std::uint16_t q = 0; q < info->nb_rx_queues; ++q) queues.push_back(q);
  if (queues.empty())
    return error(errc::invalid_argument, where + ": no rx queue is configured; configure the port first");
  const bool weighted = !cfg.weights.empty();
  auto table = cfg.fill == reta_fill::periodic
                   ? (weighted ? reta_periodic_weighted(queues, cfg.weights, info->reta_size, cfg.periodic)
                               : reta_periodic(queues, info->reta_size, cfg.periodic))
                   : (weighted ? reta_weighted(queues, cfg.weights, info->reta_size)
                               : reta_round_robin(queues, info->reta_size));
  if (!table) return error(table.err().code(), where + ": " + table.err().message());
  if (auto ok = program_reta(ops, port, *table, cfg.verify); !ok) return ok.err();
  st.reta = std::move(*table);
  st.reta_period = reta_period(st.reta);
  return st;
}

}  // namespace fnat::dpdk
