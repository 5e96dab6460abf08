// SPDX-License-Identifier: BSD-3-Clause
// Test-only pieces around the software NIC model and the steering tests: Ethernet frames built from a
// five-tuple; a "wire" that delivers mbufs to the rx ring of a net_ring port that the model chooses, so
// the whole affinity path runs through real rte_ethdev rx bursts; hot-plugged virtual devices
// (net_null, net_af_packet) and a private network namespace to open net_af_packet in.
#pragma once

#include <fnat/core/addr.hpp>
#include <fnat/dpdk/nic_model.hpp>

#include <fcntl.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sched.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/eal.hpp"

namespace fnat::test {

/// What make_frame builds (a bare frame for steering tests; packet_frames.hpp builds full ones): Ethernet / IPv4 or IPv6 (by the family of src) / TCP or UDP, ports host order.
struct tuple_frame_spec {
  std::uint8_t proto = ipproto::tcp;
  inet_addr src{};
  std::uint16_t sport = 0;
  inet_addr dst{};
  std::uint16_t dport = 0;
  bool fragment = false;  ///< IPv4: set MF (a first fragment); IPv6: a fragment header instead of L4
};

/// The frame's bytes (no payload, checksums zero: the model does not check them).
inline std::vector<std::uint8_t> make_frame(const tuple_frame_spec& s) {
  const bool v4 = s.src.is_v4();
  const std::size_t l3 = v4 ? 20 : 40;
  const std::size_t l4 = s.proto == ipproto::tcp ? 20 : 8;
  // Sized once and written in place: growing a vector of bytes by insert() trips g++ 12's bogus
  // -Warray-bounds at -O3 (GCC bug 107852).
  std::vector<std::uint8_t> f(14 + l3 + l4, 0);
  f[0] = 0x02;  // locally administered destination and source MACs
  f[6] = 0x02;
  f[11] = 1;
  f[12] = v4 ? 0x08 : 0x86;
  f[13] = v4 ? 0x00 : 0xdd;
  std::uint8_t* ip = f.data() + 14;
  if (v4) {
    const std::size_t total = l3 + l4;
    ip[0] = 0x45;
    ip[2] = static_cast<std::uint8_t>(total >> 8);
    ip[3] = static_cast<std::uint8_t>(total);
    ip[5] = 1;
    if (s.fragment) ip[6] = 0x20;  // MF
    ip[8] = 64;
    ip[9] = s.proto;
    std::memcpy(ip + 12, s.src.raw().data() + 12, 4);
    std::memcpy(ip + 16, s.dst.raw().data() + 12, 4);
  } else {
    ip[0] = 0x60;
    ip[5] = static_cast<std::uint8_t>(l4);
    ip[6] = s.fragment ? std::uint8_t{44} : s.proto;
    ip[7] = 64;
    std::memcpy(ip + 8, s.src.raw().data(), 16);
    std::memcpy(ip + 24, s.dst.raw().data(), 16);
  }
  std::uint8_t* l4h = ip + l3;
  l4h[0] = static_cast<std::uint8_t>(s.sport >> 8);
  l4h[1] = static_cast<std::uint8_t>(s.sport);
  l4h[2] = static_cast<std::uint8_t>(s.dport >> 8);
  l4h[3] = static_cast<std::uint8_t>(s.dport);
  if (s.proto == ipproto::tcp)
    l4h[12] = 0x50;
  else
    l4h[5] = static_cast<std::uint8_t>(l4);
  return f;
}

/// Offset of the L4 header in a frame from make_frame.
[[nodiscard]] inline std::size_t l4_offset(const std::vector<std::uint8_t>& f) { return f[12] == 0x08 ? 34 : 54; }

/// Rewrites the destination port of a frame from make_frame in place.
inline void set_dport(std::vector<std::uint8_t>& f, std::uint16_t port) {
  const std::size_t o = l4_offset(f);
  f[o + 2] = static_cast<std::uint8_t>(port >> 8);
  f[o + 3] = static_cast<std::uint8_t>(port);
}

/// Destination port of a frame in an mbuf (host order).
[[nodiscard]] inline std::uint16_t mbuf_dport(const rte_mbuf* m) {
  const auto* p = rte_pktmbuf_mtod(m, const std::uint8_t*);
  const std::size_t o = p[12] == 0x08 ? 34 : 54;
  return static_cast<std::uint16_t>((p[o + 2] << 8) | p[o + 3]);
}

/// An mbuf holding the frame, from the test pool.
[[nodiscard]] inline rte_mbuf* make_mbuf(const std::vector<std::uint8_t>& frame) {
  rte_mbuf* m = rte_pktmbuf_alloc(mbuf_pool());
  if (m == nullptr) throw std::runtime_error("make_mbuf: the test mbuf pool is empty");
  char* p = rte_pktmbuf_append(m, static_cast<std::uint16_t>(frame.size()));
  if (p == nullptr) throw std::runtime_error("make_mbuf: frame does not fit one mbuf");
  std::memcpy(p, frame.data(), frame.size());
  return m;
}

/// What a wire delivery did.
struct wire_stats {
  std::size_t delivered = 0;  ///< enqueued on the chosen queue's rx ring
  std::size_t dropped = 0;    ///< a DROP rule matched (mbuf freed)
  std::size_t ring_full = 0;  ///< the chosen ring was full (mbuf freed)
};

/// Puts each mbuf on the rx ring of the queue the model chooses for it, as the NIC would; the port's
/// rte_eth_rx_burst on that queue then returns it. Takes ownership of the mbufs.
inline wire_stats wire_deliver(const dpdk::nic_model& model, const ring_port& port, rte_mbuf* const* pkts,
                               std::size_t n) {
  wire_stats st;
  for (std::size_t i = 0; i < n; ++i) {
    const dpdk::nic_steering s = model.steer(pkts[i]);
    if (s.drop || s.queue >= port.queues()) {
      rte_pktmbuf_free(pkts[i]);
      ++st.dropped;
      continue;
    }
    if (rte_ring_enqueue(port.rx_ring(s.queue), pkts[i]) != 0) {
      rte_pktmbuf_free(pkts[i]);
      ++st.ring_full;
      continue;
    }
    ++st.delivered;
  }
  return st;
}

/// A virtual device hot-plugged with rte_dev_probe ("net_null_x0", "net_af_packet_x0,iface=lo"), removed
/// by the destructor. `ok()` is false (and `why()` says why) when the probe failed.
class vdev_port {
 public:
  vdev_port(const std::string& name, const std::string& args = "") : name_(name) {
    require_eal();
    const std::string devargs = args.empty() ? name : name + "," + args;
    if (const int rc = rte_dev_probe(devargs.c_str()); rc != 0) {
      why_ = "rte_dev_probe(" + devargs + "): " + rte_strerror(-rc);
      return;
    }
    std::uint16_t id = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) {
      why_ = "no ethdev port named " + name;
      return;
    }
    port_ = id;
  }
  /// Configures `queues` rx/tx queues, with RSS requested (rxmode.mq_mode = RSS, IP types).
  [[nodiscard]] int configure(std::uint16_t queues) {
    rte_eth_conf conf{};
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    rte_eth_dev_info info{};
    if (const int rc = rte_eth_dev_info_get(*port_, &info); rc != 0) return rc;
    conf.rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_IP & info.flow_type_rss_offloads;
    return rte_eth_dev_configure(*port_, queues, queues, &conf);
  }
  ~vdev_port() {
    if (!port_) return;
    rte_eth_dev_info info{};
    const bool have = rte_eth_dev_info_get(*port_, &info) == 0 && info.device != nullptr;
    rte_eth_dev_close(*port_);
    if (have) rte_dev_remove(info.device);
  }
  vdev_port(const vdev_port&) = delete;
  vdev_port& operator=(const vdev_port&) = delete;

  [[nodiscard]] bool ok() const noexcept { return port_.has_value(); }
  [[nodiscard]] const std::string& why() const noexcept { return why_; }
  [[nodiscard]] std::uint16_t port_id() const { return port_.value(); }

 private:
  std::string name_, why_;
  std::optional<std::uint16_t> port_;
};

/// Moves the calling thread into a new, empty network namespace (only its "lo", down) for the scope,
/// so a net_af_packet port can be opened without touching the host's interfaces. `ok()` is false
/// without the privilege (CAP_SYS_ADMIN).
class private_netns {
 public:
  private_netns() {
    saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ok_ = saved_ >= 0 && ::unshare(CLONE_NEWNET) == 0;
  }
  ~private_netns() {
    if (ok_) (void)::setns(saved_, CLONE_NEWNET);
    if (saved_ >= 0) ::close(saved_);
  }
  private_netns(const private_netns&) = delete;
  private_netns& operator=(const private_netns&) = delete;
  [[nodiscard]] bool ok() const noexcept { return ok_; }

 private:
  int saved_ = -1;
  bool ok_ = false;
};

}  // namespace fnat::test
