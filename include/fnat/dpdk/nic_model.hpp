// SPDX-License-Identifier: BSD-3-Clause
// A software model of a NIC's ingress steering: rte_flow rules, then RSS (Toeplitz + RETA).
//
// ## Why
// Flow affinity is a promise about hardware: "every reply to LIP:lport reaches the lcore that owns
// lport". Nobody can check that promise on a laptop or in CI, and on real NICs a wrong rule shows up as
// connection misses under load. The model evaluates the very rte_flow arrays fnat hands to
// rte_flow_create, the way the rte_flow specification says a NIC must, and answers "which rx queue
// does this frame land on". Tests (and users without hardware) run the whole affinity path through it;
// `nic_model_ports` even makes models look like ports to fnat's installer and RSS programmer.
//
// ## What is modelled
// Pattern items ETH, IPV4, IPV6, TCP, UDP (plus VOID and END), each with spec / mask / last:
//  - an item matches the header at its layer (L2: Ethernet; L3: IPv4 or IPv6; L4: TCP or UDP) when
//    the packet has that protocol there and, for every field, (packet & mask) == (spec & mask), or for
//    a range (last set, masked last != 0 and != masked spec) spec & mask <= packet & mask <= last & mask
//    compared as a big-endian number; a NULL spec matches any header of that protocol; a NULL mask
//    means the item's default mask (the rte_flow_item_*_mask values, hidden from C++ by DPDK 22.11);
//  - items are stacked lowest layer first, each layer at most once; a layer left out matches anything
//    (IPV4 / TCP matches TCP over IPv4 on any Ethernet frame);
//  - IPv4 fragments (MF set or offset != 0) and IPv6 packets whose next header is not TCP/UDP have no
//    L4 header for matching or hashing (NICs classify them as fragments or "other").
// Actions QUEUE, DROP, RSS (plus VOID and END); exactly one of the three fate actions per rule.
// Attributes: ingress in group 0 only (other groups are reached through JUMP, which is not modelled).
// Rules are evaluated by ascending priority, then in creation order (real PMDs leave the order among
// equal priorities undefined: do not rely on it); the first match decides.
//
// Anything else is refused loudly when the rule is validated or created (errc::not_supported, naming
// the item or action and why), never ignored: another item or action type, a second item at a layer,
// a mask on fields the model does not parse (VLAN presence, IPv6 extension header flags), mask or last
// without spec, egress/transfer/non-zero group, other hash functions or RSS types. A spec with bits
// outside its mask is refused too (by default, `refuse_unmasked_spec`): the rte_flow specification says
// the PMD ANDs them, but mlx5 accepts such a rule and then never matches it (DPVS #627), so a rule
// that relies on the AND is a rule that fails on real hardware.
//
// ## RSS
// A packet no rule matches is hashed with Toeplitz over the configured key and delivered to
// reta[hash & (reta_size - 1)]. The hash is fnat::toeplitz (table or GFNI path, toeplitz.hpp), built
// once per key: when the key is set, and for an RSS action with its own key when the rule is
// created; the tests pin it to toeplitz_hash_reference, the bit-serial definition. The input is, in
// wire order,
//   src addr, dst addr, src port, dst port   when the packet's L4 type is enabled in rss_hf
//                                             (NONFRAG_IPV4_TCP, NONFRAG_IPV4_UDP, and the IPv6 ones),
//   src addr, dst addr                        otherwise, when an IP type is enabled (IPV4 / IPV6, or
//                                             FRAG_* for fragments, NONFRAG_*_OTHER for other protocols),
// and a packet with no enabled type (or not IP) is not hashed and lands on queue 0, as on Intel NICs.
// The *_EX types count as their plain counterparts (the model never sees extension headers). An RSS
// action hashes the same way with its own key and types (0: the port's), and picks
// queue[(hash & (2^k - 1)) mod queue_num] with 2^k >= queue_num, the indirection table mlx5 builds.
//
// ## Costs
// steer() is noexcept, allocation free and reads at most 128 bytes of the frame: parsing, then a walk
// over the candidate rules of the packet's shape (rules are indexed by the L3/L4 protocols their items
// allow, so a UDP/IPv6 packet never looks at a TCP/IPv4 rule), each one or two masked 8-byte compares
// per item; RSS adds one Toeplitz hash (a table load per input byte, or a few GFNI instructions: a
// few ns where the bit-serial definition took ~10 ns per input byte). O(rules) per packet: a model,
// not a classifier. Setting a key and creating a rule with an RSS key allocate (configuration time;
// a hasher holds 36 KiB of tables on the table path). Not thread safe for writers; concurrent steer()
// calls on an unchanging model are fine.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fnat/core/addr.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/reta.hpp"
#include "fnat/core/toeplitz.hpp"
#include "fnat/dpdk/ethdev_ops.hpp"

namespace fnat::dpdk {

/// The RSS hash types the model understands (file comment).
inline constexpr std::uint64_t nic_model_rss_types = RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;

/// How a model port is set up. Designated initializers; every field has a default.
struct nic_model_config {
  /// Number of rx queues (QUEUE indices, RETA entries and RSS action queues must be below it).
  std::uint16_t rx_queues = 1;
  /// Redirection table entries; a power of two (128: ixgbe, net_null; 512: i40e, mlx5).
  std::uint16_t reta_size = 128;
  /// RSS key; at least 40 bytes (an IPv6 four-tuple needs 36 + 4). Default: Microsoft's.
  std::vector<std::uint8_t> rss_key{rss_key_microsoft.begin(), rss_key_microsoft.end()};
  /// Enabled RSS hash types (RTE_ETH_RSS_*), a subset of nic_model_rss_types; 0 disables RSS.
  std::uint64_t rss_hf = nic_model_rss_types;
  /// Initial RETA; empty: round robin over queues 0 .. rx_queues - 1.
  std::vector<std::uint16_t> reta{};
  /// Refuse rules whose spec has bits outside the mask (file comment).
  bool refuse_unmasked_spec = true;
};

/// Where the model sends a frame.
struct nic_steering {
  std::uint16_t queue = 0;  ///< rx queue (meaningless when drop)
  bool drop = false;        ///< a DROP rule matched
  std::uint32_t rule = 0;   ///< id of the deciding rule; 0 when RSS (or the no-hash default) decided
  bool hashed = false;      ///< a Toeplitz hash chose the queue
  std::uint32_t hash = 0;   ///< that hash
};

/// Why the model refuses a rule: the code, what rte_flow_error would blame, and a sentence.
struct nic_model_refusal {
  errc code = errc::not_supported;
  rte_flow_error_type type = RTE_FLOW_ERROR_TYPE_UNSPECIFIED;
  std::string message;
};

/// One port's ingress steering: rte_flow rules (deep copies, owned) over an RSS key and RETA.
/// A value type: copyable, and a copy steers the same. Rule ids stay valid until their rule is
/// destroyed; create/destroy re-index the rules (O(rules)). Not thread safe for writers; concurrent
/// steer() calls on an unchanging model are fine.
class nic_model {
 public:
  using rule_id = std::uint32_t;

  /// Builds a model port.
  /// Errors (errc::invalid_argument): no rx queue, reta_size not a power of two, a key shorter than 40
  /// bytes (or longer than 255), rss_hf outside nic_model_rss_types, a RETA of the wrong size or naming
  /// a queue that does not exist.
  [[nodiscard]] static result<nic_model> make(const nic_model_config& cfg) {
    if (cfg.rx_queues == 0) return error(errc::invalid_argument, "nic model: rx_queues is 0; give at least one");
    if (cfg.reta_size == 0 || !std::has_single_bit(cfg.reta_size))
      return error(errc::invalid_argument,
                   "nic model: reta_size " + std::to_string(cfg.reta_size) + " is not a power of two");
    nic_model m;
    m.cfg_ = cfg;
    m.cfg_.reta.clear();
    m.cfg_.rss_key.clear();
    if (auto r = m.set_rss(cfg.rss_key, cfg.rss_hf); !r) return r.err();
    if (cfg.reta.empty()) {
      m.reta_.resize(cfg.reta_size);
      for (std::size_t i = 0; i < m.reta_.size(); ++i) m.reta_[i] = static_cast<std::uint16_t>(i % cfg.rx_queues);
    } else if (auto r = m.set_reta(cfg.reta); !r) {
      return r.err();
    }
    return m;
  }

  [[nodiscard]] std::uint16_t rx_queues() const noexcept { return cfg_.rx_queues; }
  [[nodiscard]] std::span<const std::uint16_t> reta() const noexcept { return reta_; }
  [[nodiscard]] std::span<const std::uint8_t> rss_key() const noexcept { return key_; }
  [[nodiscard]] std::uint64_t rss_hf() const noexcept { return rss_hf_; }

  /// Replaces the RSS key and hash types. Errors (errc::invalid_argument): key shorter than 40 or
  /// longer than 255 bytes, rss_hf outside nic_model_rss_types.
  [[nodiscard]] result<void> set_rss(std::span<const std::uint8_t> key, std::uint64_t rss_hf) {
    if (key.size() < 40 || key.size() > 255)
      return error(errc::invalid_argument, "nic model: RSS key of " + std::to_string(key.size()) +
                                               " bytes; give 40 to 255 (an IPv6 four-tuple needs 40)");
    if ((rss_hf & ~nic_model_rss_types) != 0)
      return error(errc::invalid_argument, "nic model: RSS types 0x" + hex64(rss_hf & ~nic_model_rss_types) +
                                               " are not modelled; use IP, TCP and UDP types only");
    auto tz = toeplitz::make(key, rss_input_v6_len);  // the longest input hashed: an IPv6 four-tuple
    if (!tz) return tz.err();
    key_ = std::vector<std::uint8_t>(key.begin(), key.end());  // `key` may view key_ itself
    tz_.emplace(std::move(*tz));
    rss_hf_ = rss_hf;
    return {};
  }
  /// Replaces the RETA. Errors (errc::invalid_argument): size != reta_size, an entry >= rx_queues.
  [[nodiscard]] result<void> set_reta(std::span<const std::uint16_t> table) {
    if (table.size() != cfg_.reta_size)
      return error(errc::invalid_argument, "nic model: RETA of " + std::to_string(table.size()) +
                                               " entries, the port has " + std::to_string(cfg_.reta_size));
    for (std::size_t i = 0; i < table.size(); ++i)
      if (table[i] >= cfg_.rx_queues)
        return error(errc::invalid_argument, "nic model: RETA entry " + std::to_string(i) + " names queue " +
                                                 std::to_string(table[i]) + " of " + std::to_string(cfg_.rx_queues));
    reta_ = std::vector<std::uint16_t>(table.begin(), table.end());  // `table` may view reta_ itself
    return {};
  }

  /// Checks a rule as rte_flow_validate would, with the model's limits (file comment). nullopt when the
  /// model accepts it. Requires: pattern and actions END-terminated.
  [[nodiscard]] std::optional<nic_model_refusal> check(const rte_flow_attr* attr, const rte_flow_item* pattern,
                                                       const rte_flow_action* actions) const {
    compiled c;
    return compile(attr, pattern, actions, c);
  }
  /// check() as a result.
  [[nodiscard]] result<void> validate(const rte_flow_attr* attr, const rte_flow_item* pattern,
                                      const rte_flow_action* actions) const {
    if (auto r = check(attr, pattern, actions)) return error(r->code, r->message);
    return {};
  }
  /// Adds a rule (deep copy: the arrays may go away afterwards) and returns its id (never 0).
  /// Errors: those of check().
  [[nodiscard]] result<rule_id> create(const rte_flow_attr* attr, const rte_flow_item* pattern,
                                       const rte_flow_action* actions) {
    compiled c;
    if (auto r = compile(attr, pattern, actions, c)) return error(r->code, r->message);
    if (!c.rss_key.empty()) {
      auto tz = toeplitz::make(c.rss_key, rss_input_v6_len);  // compile() checked the length
      if (!tz) return tz.err();
      c.rss_tz.emplace(std::move(*tz));
    }
    c.id = next_id_++;
    c.seq = c.id;
    const auto pos = std::upper_bound(rules_.begin(), rules_.end(), c, [](const compiled& a, const compiled& b) {
      return a.priority != b.priority ? a.priority < b.priority : a.seq < b.seq;
    });
    const rule_id id = c.id;
    rules_.insert(pos, std::move(c));
    index_rules();
    return id;
  }
  /// Removes a rule. Errors: errc::not_found for an unknown id.
  [[nodiscard]] result<void> destroy(rule_id id) {
    const auto it = std::find_if(rules_.begin(), rules_.end(), [&](const compiled& c) { return c.id == id; });
    if (it == rules_.end()) return error(errc::not_found, "nic model: no rule " + std::to_string(id));
    rules_.erase(it);
    index_rules();
    return {};
  }
  /// Removes every rule.
  void flush() noexcept {
    rules_.clear();
    for (auto& v : by_shape_) v.clear();
  }
  [[nodiscard]] std::size_t rule_count() const noexcept { return rules_.size(); }

  /// The rx queue a frame (starting at the Ethernet header) lands on. noexcept, no allocation.
  [[nodiscard]] nic_steering steer(std::span<const std::uint8_t> frame) const noexcept {
    const parsed p = parse(frame);
    const std::span<const std::uint32_t> candidates =
        p.l2 == nullptr ? std::span<const std::uint32_t>()
                        : std::span<const std::uint32_t>(by_shape_[shape(p.l3_kind, p.l4_kind)]);
    for (std::uint32_t i : candidates) {
      const compiled& c = rules_[i];
      if (!matches(c, p)) continue;
      nic_steering s;
      s.rule = c.id;
      switch (c.fate) {
        case fate_kind::drop:
          s.drop = true;
          break;
        case fate_kind::queue:
          s.queue = c.queue;
          break;
        case fate_kind::rss: {
          const toeplitz& tz = c.rss_tz ? *c.rss_tz : *tz_;
          s.hashed = hash(p, tz, c.rss_types == 0 ? rss_hf_ : c.rss_types, s.hash);
          const std::size_t n = c.rss_queues.size();
          s.queue = s.hashed ? c.rss_queues[(s.hash & (std::bit_ceil(n) - 1)) % n] : c.rss_queues[0];
          break;
        }
      }
      return s;
    }
    nic_steering s;
    s.hashed = hash(p, *tz_, rss_hf_, s.hash);
    s.queue = s.hashed ? reta_[reta_index(s.hash, reta_.size())] : 0;
    return s;
  }
  /// The same for an mbuf (any segmentation; the first 128 bytes are read). noexcept, no allocation.
  [[nodiscard]] nic_steering steer(const rte_mbuf* m) const noexcept {
    std::array<std::uint8_t, 128> buf;
    const std::uint32_t len = std::min<std::uint32_t>(rte_pktmbuf_pkt_len(m), buf.size());
    const void* p = rte_pktmbuf_read(m, 0, len, buf.data());
    if (p == nullptr) return steer(std::span<const std::uint8_t>());
    return steer(std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(p), len));
  }

 private:
  enum class layer_kind : std::uint8_t { none, eth, ipv4, ipv6, tcp, udp };
  enum class fate_kind : std::uint8_t { queue, drop, rss };
  struct field {
    std::uint8_t off, width;
    const char* name;
  };
  // 8 header bytes at `off`, compared under a mask: one compare covers an IPv4 address and its
  // neighbours, two an IPv6 address. Offsets stay inside the header (the last word of a header
  // overlaps the one before), so a word never reads past what parse() found present.
  struct word_check {
    std::uint8_t off;
    std::uint64_t mask, value;
  };
  struct range_check {
    std::uint8_t off, width;
    std::array<std::uint8_t, 16> mask, lo, hi;
  };
  struct layer_match {
    layer_kind kind = layer_kind::none;
    std::uint8_t n = 0;
    std::array<word_check, 5> words{};
    std::vector<range_check> ranges;
  };
  struct compiled {
    rule_id id = 0;
    std::uint64_t seq = 0;
    std::uint32_t priority = 0;
    std::array<layer_match, 3> layers{};  // L2, L3, L4
    fate_kind fate = fate_kind::queue;
    std::uint16_t queue = 0;
    std::vector<std::uint16_t> rss_queues;
    std::vector<std::uint8_t> rss_key;
    std::optional<toeplitz> rss_tz;  // hasher of rss_key (created rules only)
    std::uint64_t rss_types = 0;
  };
  struct parsed {
    const std::uint8_t* l2 = nullptr;
    const std::uint8_t* l3 = nullptr;
    const std::uint8_t* l4 = nullptr;
    layer_kind l3_kind = layer_kind::none;
    layer_kind l4_kind = layer_kind::none;
    bool frag = false;
    std::uint8_t l4_proto = 0;  // IP protocol / next header, even when l4 is absent
  };

  nic_model() = default;

  static std::string hex64(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (int sh = 60; sh >= 0; sh -= 4) s += digits[(v >> sh) & 0xf];
    s.erase(0, std::min(s.find_first_not_of('0'), s.size() - 1));
    return s;
  }

  static std::span<const field> fields(layer_kind k) noexcept {
    static constexpr field eth[] = {{0, 6, "dst"}, {6, 6, "src"}, {12, 2, "type"}};
    static constexpr field ipv4[] = {
        {0, 1, "version_ihl"}, {1, 1, "tos"},   {2, 2, "total_length"},  {4, 2, "packet_id"}, {6, 2, "fragment_offset"},
        {8, 1, "ttl"},         {9, 1, "proto"}, {10, 2, "hdr_checksum"}, {12, 4, "src"},      {16, 4, "dst"}};
    static constexpr field ipv6[] = {{0, 4, "vtc_flow"},   {4, 2, "payload_len"}, {6, 1, "proto"},
                                     {7, 1, "hop_limits"}, {8, 16, "src"},        {24, 16, "dst"}};
    static constexpr field tcp[] = {{0, 2, "src"},      {2, 2, "dst"},       {4, 4, "sent_seq"},
                                    {8, 4, "recv_ack"}, {12, 1, "data_off"}, {13, 1, "tcp_flags"},
                                    {14, 2, "rx_win"},  {16, 2, "cksum"},    {18, 2, "tcp_urp"}};
    static constexpr field udp[] = {{0, 2, "src"}, {2, 2, "dst"}, {4, 2, "dgram_len"}, {6, 2, "dgram_cksum"}};
    switch (k) {
      case layer_kind::eth:
        return eth;
      case layer_kind::ipv4:
        return ipv4;
      case layer_kind::ipv6:
        return ipv6;
      case layer_kind::tcp:
        return tcp;
      case layer_kind::udp:
        return udp;
      case layer_kind::none:
        break;
    }
    return {};
  }
  static const char* name(layer_kind k) noexcept {
    switch (k) {
      case layer_kind::eth:
        return "eth";
      case layer_kind::ipv4:
        return "ipv4";
      case layer_kind::ipv6:
        return "ipv6";
      case layer_kind::tcp:
        return "tcp";
      case layer_kind::udp:
        return "udp";
      case layer_kind::none:
        break;
    }
    return "none";
  }
  static std::size_t layer_of(layer_kind k) noexcept {
    return k == layer_kind::eth ? 0 : (k == layer_kind::ipv4 || k == layer_kind::ipv6) ? 1 : 2;
  }

  // Header bytes of an item struct (the hdr member comes first in each rte_flow_item_* type), and
  // whether its mask sets any of the flag bits after the header (which the model does not parse).
  template <class Item>
  static const std::uint8_t* header_bytes(const void* p) noexcept {
    return reinterpret_cast<const std::uint8_t*>(&static_cast<const Item*>(p)->hdr);
  }

  // An item's header bytes: its spec, its mask (or the protocol's default mask, whose size is the
  // header's length) and its last.
  struct item_bytes {
    const std::uint8_t *spec = nullptr, *mask = nullptr, *last = nullptr;
    std::size_t len = 0;
  };
  template <class Item, std::size_t N>
  static item_bytes bytes_of(const rte_flow_item& it, const std::array<std::uint8_t, N>& default_mask) noexcept {
    return {header_bytes<Item>(it.spec), it.mask ? header_bytes<Item>(it.mask) : default_mask.data(),
            it.last ? header_bytes<Item>(it.last) : nullptr, N};
  }

  static std::optional<nic_model_refusal> refuse(errc code, rte_flow_error_type type, std::string msg) {
    return nic_model_refusal{code, type, "nic model: " + std::move(msg)};
  }

  std::optional<nic_model_refusal> compile_item(std::size_t index, const rte_flow_item& it, layer_kind kind,
                                                layer_match& out) const {
    // Default masks of rte_flow.h (rte_flow_item_*_mask), which DPDK 22.11 hides from C++.
    static constexpr std::uint8_t ff = 0xff;
    static constexpr std::array<std::uint8_t, 14> eth_default = {ff, ff, ff, ff, ff, ff, ff, ff, ff, ff, ff, ff, 0, 0};
    static constexpr std::array<std::uint8_t, 20> ipv4_default = {0, 0, 0,  0,  0,  0,  0,  0,  0,  0,
                                                                  0, 0, ff, ff, ff, ff, ff, ff, ff, ff};
    static constexpr std::array<std::uint8_t, 40> ipv6_default = [] {
      std::array<std::uint8_t, 40> m{};
      for (std::size_t i = 8; i < 40; ++i) m[i] = 0xff;
      return m;
    }();
    static constexpr std::array<std::uint8_t, 20> tcp_default = {ff, ff, ff, ff};
    static constexpr std::array<std::uint8_t, 8> udp_default = {ff, ff, ff, ff};

    const std::string where = "pattern item " + std::to_string(index) + " (" + name(kind) + ")";
    out.kind = kind;
    if (it.spec == nullptr) {
      if (it.mask != nullptr || it.last != nullptr)
        return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ITEM_SPEC,
                      where + ": mask or last without spec; PMDs disagree on its meaning, give a spec or neither");
      return std::nullopt;  // any header of this protocol
    }
    item_bytes bytes;
    switch (kind) {
      case layer_kind::eth: {
        bytes = bytes_of<rte_flow_item_eth>(it, eth_default);
        if (it.mask && static_cast<const rte_flow_item_eth*>(it.mask)->has_vlan)
          return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ITEM_MASK,
                        where + ": has_vlan is masked; VLAN is outside the model");
        break;
      }
      case layer_kind::ipv4:
        bytes = bytes_of<rte_flow_item_ipv4>(it, ipv4_default);
        break;
      case layer_kind::ipv6: {
        bytes = bytes_of<rte_flow_item_ipv6>(it, ipv6_default);
        if (it.mask) {
          const auto* m = static_cast<const rte_flow_item_ipv6*>(it.mask);
          if (m->has_hop_ext || m->has_route_ext || m->has_frag_ext || m->has_auth_ext || m->has_esp_ext ||
              m->has_dest_ext || m->has_mobil_ext || m->has_hip_ext || m->has_shim6_ext || m->reserved)
            return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ITEM_MASK,
                          where + ": extension header flags are masked; extension headers are outside the model");
        }
        break;
      }
      case layer_kind::tcp:
        bytes = bytes_of<rte_flow_item_tcp>(it, tcp_default);
        break;
      case layer_kind::udp:
        bytes = bytes_of<rte_flow_item_udp>(it, udp_default);
        break;
      case layer_kind::none:
        break;
    }
    const std::uint8_t *spec = bytes.spec, *mask = bytes.mask, *last = bytes.last;
    const std::size_t len = bytes.len;
    std::array<std::uint8_t, 40> mb{}, vb{};  // byte masks and masked spec of the exact-match fields
    for (const field& f : fields(kind)) {
      bool any_mask = false, unmasked_spec = false, ranged = false;
      std::array<std::uint8_t, 16> sm{}, lm{}, mm{};
      for (std::size_t b = 0; b < f.width; ++b) {
        const std::size_t o = f.off + b;
        mm[b] = mask[o];
        sm[b] = spec[o] & mask[o];
        lm[b] = last ? static_cast<std::uint8_t>(last[o] & mask[o]) : 0;
        any_mask = any_mask || mask[o] != 0;
        unmasked_spec = unmasked_spec || (spec[o] & ~mask[o]) != 0;
      }
      if (unmasked_spec && cfg_.refuse_unmasked_spec)
        return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ITEM_SPEC,
                      where + ": field '" + f.name +
                          "' has spec bits outside its mask; mlx5 accepts that and "
                          "never matches (DPVS #627): AND the spec with the mask");
      if (last != nullptr) {
        bool last_zero = true;
        for (std::size_t b = 0; b < f.width; ++b) last_zero = last_zero && lm[b] == 0;
        ranged = !last_zero && std::memcmp(lm.data(), sm.data(), f.width) != 0;
      }
      if (!any_mask) continue;
      if (ranged) {
        if (std::memcmp(lm.data(), sm.data(), f.width) < 0)
          return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ITEM_LAST,
                        where + ": field '" + f.name + "' has last below spec (an empty range)");
        out.ranges.push_back(range_check{f.off, f.width, mm, sm, lm});
        continue;
      }
      for (std::size_t b = 0; b < f.width; ++b) {
        mb[f.off + b] = mm[b];
        vb[f.off + b] = sm[b];
      }
    }
    for (std::size_t off = 0; off < len; off += 8) {
      const std::size_t o = off + 8 <= len ? off : len - 8;
      word_check w{static_cast<std::uint8_t>(o), 0, 0};
      std::memcpy(&w.mask, mb.data() + o, 8);
      std::memcpy(&w.value, vb.data() + o, 8);
      if (w.mask != 0) out.words[out.n++] = w;
    }
    return std::nullopt;
  }

  std::optional<nic_model_refusal> compile(const rte_flow_attr* attr, const rte_flow_item* pattern,
                                           const rte_flow_action* actions, compiled& c) const {
    if (attr == nullptr || pattern == nullptr || actions == nullptr)
      return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_UNSPECIFIED, "attr, pattern or actions is NULL");
    if (!attr->ingress || attr->egress || attr->transfer)
      return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ATTR,
                    "only ingress rules are modelled (egress and transfer are not)");
    if (attr->group != 0)
      return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ATTR_GROUP,
                    "group " + std::to_string(attr->group) +
                        ": only group 0 is modelled (other groups are reached through JUMP)");
    c.priority = attr->priority;
    std::size_t last_layer = 0;
    bool any_layer = false;
    for (std::size_t i = 0;; ++i) {
      if (i == 64) return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ITEM_NUM, "pattern has no END item");
      const rte_flow_item& it = pattern[i];
      if (it.type == RTE_FLOW_ITEM_TYPE_END) break;
      if (it.type == RTE_FLOW_ITEM_TYPE_VOID) continue;
      layer_kind k = layer_kind::none;
      switch (it.type) {
        case RTE_FLOW_ITEM_TYPE_ETH:
          k = layer_kind::eth;
          break;
        case RTE_FLOW_ITEM_TYPE_IPV4:
          k = layer_kind::ipv4;
          break;
        case RTE_FLOW_ITEM_TYPE_IPV6:
          k = layer_kind::ipv6;
          break;
        case RTE_FLOW_ITEM_TYPE_TCP:
          k = layer_kind::tcp;
          break;
        case RTE_FLOW_ITEM_TYPE_UDP:
          k = layer_kind::udp;
          break;
        default:
          return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ITEM,
                        "pattern item " + std::to_string(i) + " has type " + std::to_string(it.type) +
                            "; only ETH, IPV4, IPV6, TCP, UDP, VOID and END are modelled");
      }
      const std::size_t layer = layer_of(k);
      if (any_layer && layer <= last_layer)
        return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ITEM,
                      "pattern item " + std::to_string(i) + " (" + name(k) +
                          ") repeats or goes below an earlier layer; items must be stacked lowest layer first, "
                          "one per layer (tunnels are not modelled)");
      any_layer = true;
      last_layer = layer;
      if (auto r = compile_item(i, it, k, c.layers[layer])) return r;
    }
    bool fate = false;
    for (std::size_t i = 0;; ++i) {
      if (i == 64) return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ACTION_NUM, "actions have no END");
      const rte_flow_action& a = actions[i];
      if (a.type == RTE_FLOW_ACTION_TYPE_END) break;
      if (a.type == RTE_FLOW_ACTION_TYPE_VOID) continue;
      const std::string where = "action " + std::to_string(i);
      if (a.type != RTE_FLOW_ACTION_TYPE_QUEUE && a.type != RTE_FLOW_ACTION_TYPE_DROP &&
          a.type != RTE_FLOW_ACTION_TYPE_RSS)
        return refuse(
            errc::not_supported, RTE_FLOW_ERROR_TYPE_ACTION,
            where + " has type " + std::to_string(a.type) + "; only QUEUE, DROP, RSS, VOID and END are modelled");
      if (fate)
        return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ACTION,
                      where + " is a second fate action (QUEUE, DROP or RSS); a rule has one");
      fate = true;
      if (a.type == RTE_FLOW_ACTION_TYPE_DROP) {
        c.fate = fate_kind::drop;
        continue;
      }
      if (a.conf == nullptr)
        return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ACTION_CONF, where + " has no configuration");
      if (a.type == RTE_FLOW_ACTION_TYPE_QUEUE) {
        const auto* q = static_cast<const rte_flow_action_queue*>(a.conf);
        if (q->index >= cfg_.rx_queues)
          return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ACTION_CONF,
                        where + ": queue " + std::to_string(q->index) + " does not exist (the port has " +
                            std::to_string(cfg_.rx_queues) + " rx queues)");
        c.fate = fate_kind::queue;
        c.queue = q->index;
        continue;
      }
      const auto* r = static_cast<const rte_flow_action_rss*>(a.conf);
      if (r->func != RTE_ETH_HASH_FUNCTION_DEFAULT && r->func != RTE_ETH_HASH_FUNCTION_TOEPLITZ)
        return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ACTION_CONF,
                      where + ": RSS hash function " + std::to_string(r->func) + "; only Toeplitz is modelled");
      if (r->level > 1)
        return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ACTION_CONF,
                      where + ": RSS level " + std::to_string(r->level) + "; inner headers are not modelled");
      if ((r->types & ~nic_model_rss_types) != 0)
        return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ACTION_CONF,
                      where + ": RSS types 0x" + hex64(r->types & ~nic_model_rss_types) +
                          " are not modelled; use IP, TCP and UDP types only");
      if (r->queue_num == 0 || r->queue == nullptr)
        return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ACTION_CONF, where + ": RSS without queues");
      if (r->key_len != 0 && (r->key == nullptr || r->key_len < 40))
        return refuse(
            errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ACTION_CONF,
            where + ": RSS key of " + std::to_string(r->key_len) + " bytes; give 40 or more (or 0: the port's)");
      c.fate = fate_kind::rss;
      c.rss_queues.assign(r->queue, r->queue + r->queue_num);
      for (std::uint16_t q : c.rss_queues)
        if (q >= cfg_.rx_queues)
          return refuse(errc::invalid_argument, RTE_FLOW_ERROR_TYPE_ACTION_CONF,
                        where + ": RSS queue " + std::to_string(q) + " does not exist (the port has " +
                            std::to_string(cfg_.rx_queues) + " rx queues)");
      if (r->key_len != 0) c.rss_key.assign(r->key, r->key + r->key_len);
      c.rss_types = r->types;
    }
    if (!fate)
      return refuse(errc::not_supported, RTE_FLOW_ERROR_TYPE_ACTION_NUM,
                    "the rule has no fate action (QUEUE, DROP or RSS); a PMD's default for it is not modelled");
    return std::nullopt;
  }

  static parsed parse(std::span<const std::uint8_t> f) noexcept {
    parsed p;
    if (f.size() < 14) return p;
    p.l2 = f.data();
    const std::uint16_t type = static_cast<std::uint16_t>((f[12] << 8) | f[13]);
    const std::uint8_t* l3 = f.data() + 14;
    const std::size_t room = f.size() - 14;
    std::size_t l3_len = 0;
    if (type == 0x0800) {
      if (room < 20 || (l3[0] >> 4) != 4) return p;
      l3_len = static_cast<std::size_t>(l3[0] & 0x0f) * 4;
      if (l3_len < 20 || l3_len > room) return p;
      p.l3 = l3;
      p.l3_kind = layer_kind::ipv4;
      p.frag = (((l3[6] << 8) | l3[7]) & 0x3fff) != 0;
      p.l4_proto = l3[9];
    } else if (type == 0x86dd) {
      if (room < 40 || (l3[0] >> 4) != 6) return p;
      l3_len = 40;
      p.l3 = l3;
      p.l3_kind = layer_kind::ipv6;
      p.l4_proto = l3[6];
      p.frag = p.l4_proto == 44;
    } else {
      return p;
    }
    if (p.frag) return p;
    const std::size_t l4_room = room - l3_len;
    if (p.l4_proto == ipproto::tcp && l4_room >= 20)
      p.l4_kind = layer_kind::tcp;
    else if (p.l4_proto == ipproto::udp && l4_room >= 8)
      p.l4_kind = layer_kind::udp;
    if (p.l4_kind != layer_kind::none) p.l4 = l3 + l3_len;
    return p;
  }

  static std::size_t shape(layer_kind l3, layer_kind l4) noexcept {
    const std::size_t a = l3 == layer_kind::ipv4 ? 1 : l3 == layer_kind::ipv6 ? 2 : 0;
    const std::size_t b = l4 == layer_kind::tcp ? 1 : l4 == layer_kind::udp ? 2 : 0;
    return a * 3 + b;
  }
  void index_rules() {
    static constexpr layer_kind l3s[] = {layer_kind::none, layer_kind::ipv4, layer_kind::ipv6};
    static constexpr layer_kind l4s[] = {layer_kind::none, layer_kind::tcp, layer_kind::udp};
    for (auto& v : by_shape_) v.clear();
    for (std::uint32_t i = 0; i < rules_.size(); ++i) {
      const auto k3 = rules_[i].layers[1].kind, k4 = rules_[i].layers[2].kind;
      for (layer_kind l3 : l3s)
        for (layer_kind l4 : l4s)
          if ((k3 == layer_kind::none || k3 == l3) && (k4 == layer_kind::none || k4 == l4))
            by_shape_[shape(l3, l4)].push_back(i);
    }
  }
  static bool layer_matches(const layer_match& m, const std::uint8_t* hdr, layer_kind kind) noexcept {
    if (m.kind == layer_kind::none) return true;
    if (m.kind != kind || hdr == nullptr) return false;
    for (std::uint8_t i = 0; i < m.n; ++i) {
      std::uint64_t v;
      std::memcpy(&v, hdr + m.words[i].off, 8);
      if ((v & m.words[i].mask) != m.words[i].value) return false;
    }
    for (const range_check& r : m.ranges) {
      std::array<std::uint8_t, 16> v{};
      for (std::size_t b = 0; b < r.width; ++b) v[b] = hdr[r.off + b] & r.mask[b];
      if (std::memcmp(v.data(), r.lo.data(), r.width) < 0 || std::memcmp(v.data(), r.hi.data(), r.width) > 0)
        return false;
    }
    return true;
  }
  static bool matches(const compiled& c, const parsed& p) noexcept {
    if (p.l2 == nullptr) return false;
    return layer_matches(c.layers[0], p.l2, layer_kind::eth) && layer_matches(c.layers[1], p.l3, p.l3_kind) &&
           layer_matches(c.layers[2], p.l4, p.l4_kind);
  }

  // The RSS hash of a parsed packet under `types`; false when no enabled type applies.
  static bool hash(const parsed& p, const toeplitz& tz, std::uint64_t types, std::uint32_t& out) noexcept {
    std::array<std::uint8_t, 36> in;
    std::size_t n = 0;
    const bool v4 = p.l3_kind == layer_kind::ipv4;
    if (!v4 && p.l3_kind != layer_kind::ipv6) return false;
    const std::uint64_t tcp_bit =
        v4 ? RTE_ETH_RSS_NONFRAG_IPV4_TCP : (RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_IPV6_TCP_EX);
    const std::uint64_t udp_bit =
        v4 ? RTE_ETH_RSS_NONFRAG_IPV4_UDP : (RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_IPV6_UDP_EX);
    const std::uint64_t ip_bit = v4 ? RTE_ETH_RSS_IPV4 : (RTE_ETH_RSS_IPV6 | RTE_ETH_RSS_IPV6_EX);
    const std::uint64_t frag_bit = v4 ? RTE_ETH_RSS_FRAG_IPV4 : RTE_ETH_RSS_FRAG_IPV6;
    const std::uint64_t other_bit = v4 ? RTE_ETH_RSS_NONFRAG_IPV4_OTHER : RTE_ETH_RSS_NONFRAG_IPV6_OTHER;
    const bool l4 =
        (p.l4_kind == layer_kind::tcp && (types & tcp_bit)) || (p.l4_kind == layer_kind::udp && (types & udp_bit));
    const bool is_other = !p.frag && p.l4_proto != ipproto::tcp && p.l4_proto != ipproto::udp;
    const bool ip = (types & ip_bit) || (p.frag && (types & frag_bit)) || (is_other && (types & other_bit));
    if (!l4 && !ip) return false;
    const std::size_t alen = v4 ? 4 : 16;
    std::memcpy(in.data(), p.l3 + (v4 ? 12 : 8), 2 * alen);  // src, dst: adjacent in both headers
    n = 2 * alen;
    if (l4) {
      std::memcpy(in.data() + n, p.l4, 4);  // src port, dst port
      n += 4;
    }
    out = tz.hash(std::span<const std::uint8_t>(in.data(), n));
    return true;
  }

  nic_model_config cfg_;
  std::vector<std::uint8_t> key_;
  std::optional<toeplitz> tz_;  // hasher of key_; set by make() through set_rss()
  std::uint64_t rss_hf_ = 0;
  std::vector<std::uint16_t> reta_;
  std::vector<compiled> rules_;  // sorted by (priority, creation)
  // For each packet shape (L3 none/IPv4/IPv6 x L4 none/TCP/UDP), the rules whose items allow it, in
  // rules_ order: steer() never looks at a TCP/IPv4 rule for a UDP/IPv6 packet.
  std::array<std::vector<std::uint32_t>, 9> by_shape_;
  rule_id next_id_ = 1;
};

// ---- models as ports --------------------------------------------------------------------------

class nic_model_ops;

/// A set of nic_models served as DPDK-like ports (and bonds of them), for the ethdev_ops users:
/// install_flow_rules, probe_flow_capability, the RSS programmer. The models are referenced, not
/// owned: they must outlive this object. Not thread safe.
class nic_model_ports {
 public:
  nic_model_ports() = default;
  nic_model_ports(const nic_model_ports&) = delete;
  nic_model_ports& operator=(const nic_model_ports&) = delete;

  /// Serves `model` as `port`, reporting `driver` as its driver name (so driver quirk tables apply).
  /// Errors: errc::exists when the port id is taken.
  [[nodiscard]] result<void> attach(std::uint16_t port, nic_model& model, std::string driver = "fnat_nic_model") {
    if (devs_.count(port) != 0)
      return error(errc::exists, "nic model ports: port " + std::to_string(port) + " is taken");
    devs_.emplace(port, dev{&model, std::move(driver), {}, {}});
    return {};
  }
  /// Makes `port` a bond ("net_bonding") of already attached member ports.
  /// Errors: errc::exists when the port id is taken, errc::not_found for an unknown member.
  [[nodiscard]] result<void> attach_bond(std::uint16_t port, std::vector<std::uint16_t> members) {
    if (devs_.count(port) != 0)
      return error(errc::exists, "nic model ports: port " + std::to_string(port) + " is taken");
    for (std::uint16_t m : members)
      if (devs_.count(m) == 0 || devs_.at(m).model == nullptr)
        return error(errc::not_found, "nic model ports: bond member " + std::to_string(m) + " is not attached");
    devs_.emplace(port, dev{nullptr, "net_bonding", std::move(members), {}});
    return {};
  }
  /// The model behind a (non-bond) port, or nullptr.
  [[nodiscard]] nic_model* model(std::uint16_t port) noexcept {
    auto it = devs_.find(port);
    return it == devs_.end() ? nullptr : it->second.model;
  }
  /// Maps a flow handle back to its rule id in the port's model.
  [[nodiscard]] static nic_model::rule_id rule_of(const rte_flow* f) noexcept {
    return static_cast<nic_model::rule_id>(reinterpret_cast<std::uintptr_t>(f));
  }
  /// An ethdev_ops handle on these ports.
  [[nodiscard]] nic_model_ops ops() noexcept;

 private:
  friend class nic_model_ops;
  struct dev {
    nic_model* model;  // nullptr for a bond
    std::string driver;
    std::vector<std::uint16_t> members;
    std::string last_message;  // keeps rte_flow_error::message valid until the next call on the port
  };
  std::map<std::uint16_t, dev> devs_;  // node-based: driver.c_str() stays valid
};

/// ethdev_ops over nic_model_ports: a copyable handle; the ports object must outlive it.
/// Errors follow DPDK's: -ENODEV for an unknown port, -ENOTSUP for a model refusal (not_supported)
/// or a bond asked for rte_flow, -EINVAL for invalid arguments.
class nic_model_ops {
 public:
  explicit nic_model_ops(nic_model_ports* ports) noexcept : p_(ports) {}

  int dev_info(std::uint16_t port, rte_eth_dev_info* info) const {
    auto* d = find(port);
    if (d == nullptr) return -ENODEV;
    *info = rte_eth_dev_info{};
    info->driver_name = d->driver.c_str();
    if (d->model == nullptr) {  // a bond reports its first member's queues
      if (d->members.empty()) return 0;
      d = find(d->members.front());
    }
    const nic_model& m = *d->model;
    info->max_rx_queues = info->nb_rx_queues = m.rx_queues();
    info->max_tx_queues = info->nb_tx_queues = m.rx_queues();
    info->reta_size = static_cast<std::uint16_t>(m.reta().size());
    info->hash_key_size = static_cast<std::uint8_t>(m.rss_key().size());
    info->flow_type_rss_offloads = nic_model_rss_types;
    return 0;
  }
  int flow_validate(std::uint16_t port, const rte_flow_attr* attr, const rte_flow_item* pattern,
                    const rte_flow_action* actions, rte_flow_error* err) const {
    nic_model_ports::dev* d = nullptr;
    if (int rc = flow_dev(port, d, err); rc != 0) return rc;
    if (auto r = d->model->check(attr, pattern, actions)) return fail(*d, *r, err);
    return 0;
  }
  int flow_create(std::uint16_t port, const rte_flow_attr* attr, const rte_flow_item* pattern,
                  const rte_flow_action* actions, rte_flow** out, rte_flow_error* err) const {
    nic_model_ports::dev* d = nullptr;
    if (int rc = flow_dev(port, d, err); rc != 0) return rc;
    if (auto r = d->model->check(attr, pattern, actions)) return fail(*d, *r, err);
    auto id = d->model->create(attr, pattern, actions);
    if (!id) return fail(*d, {id.err().code(), RTE_FLOW_ERROR_TYPE_UNSPECIFIED, id.err().message()}, err);
    *out = reinterpret_cast<rte_flow*>(static_cast<std::uintptr_t>(*id));
    return 0;
  }
  int flow_destroy(std::uint16_t port, rte_flow* flow, rte_flow_error* err) const {
    nic_model_ports::dev* d = nullptr;
    if (int rc = flow_dev(port, d, err); rc != 0) return rc;
    if (auto r = d->model->destroy(nic_model_ports::rule_of(flow)); !r)
      return fail(*d, {errc::invalid_argument, RTE_FLOW_ERROR_TYPE_HANDLE, r.err().message()}, err);
    return 0;
  }
  int rss_hash_update(std::uint16_t port, rte_eth_rss_conf* conf) const {
    nic_model* m = model(port);
    if (m == nullptr) return -ENODEV;
    std::vector<std::uint8_t> key(m->rss_key().begin(), m->rss_key().end());
    if (conf->rss_key != nullptr) {
      if (conf->rss_key_len != key.size()) return -EINVAL;
      key.assign(conf->rss_key, conf->rss_key + conf->rss_key_len);
    }
    return m->set_rss(key, conf->rss_hf) ? 0 : -EINVAL;
  }
  int rss_hash_conf_get(std::uint16_t port, rte_eth_rss_conf* conf) const {
    nic_model* m = model(port);
    if (m == nullptr) return -ENODEV;
    if (conf->rss_key != nullptr) {
      if (conf->rss_key_len < m->rss_key().size()) return -EINVAL;
      std::memcpy(conf->rss_key, m->rss_key().data(), m->rss_key().size());
    }
    conf->rss_key_len = static_cast<std::uint8_t>(m->rss_key().size());
    conf->rss_hf = m->rss_hf();
    return 0;
  }
  int rss_reta_update(std::uint16_t port, rte_eth_rss_reta_entry64* reta, std::uint16_t size) const {
    nic_model* m = model(port);
    if (m == nullptr) return -ENODEV;
    if (size != m->reta().size()) return -EINVAL;
    std::vector<std::uint16_t> t(m->reta().begin(), m->reta().end());
    for (std::size_t i = 0; i < size; ++i) {
      const auto& g = reta[i / RTE_ETH_RETA_GROUP_SIZE];
      if ((g.mask >> (i % RTE_ETH_RETA_GROUP_SIZE)) & 1u) t[i] = g.reta[i % RTE_ETH_RETA_GROUP_SIZE];
    }
    return m->set_reta(t) ? 0 : -EINVAL;
  }
  int rss_reta_query(std::uint16_t port, rte_eth_rss_reta_entry64* reta, std::uint16_t size) const {
    nic_model* m = model(port);
    if (m == nullptr) return -ENODEV;
    if (size != m->reta().size()) return -EINVAL;
    for (std::size_t i = 0; i < size; ++i) {
      auto& g = reta[i / RTE_ETH_RETA_GROUP_SIZE];
      if ((g.mask >> (i % RTE_ETH_RETA_GROUP_SIZE)) & 1u) g.reta[i % RTE_ETH_RETA_GROUP_SIZE] = m->reta()[i];
    }
    return 0;
  }
  int bond_members(std::uint16_t port, std::uint16_t* members, std::uint16_t len) const {
    auto* d = find(port);
    if (d == nullptr) return -ENODEV;
    if (d->model != nullptr) return -ENOTSUP;
    if (d->members.size() > len) return -ENOSPC;
    std::copy(d->members.begin(), d->members.end(), members);
    return static_cast<int>(d->members.size());
  }

 private:
  nic_model_ports::dev* find(std::uint16_t port) const {
    auto it = p_->devs_.find(port);
    return it == p_->devs_.end() ? nullptr : &it->second;
  }
  nic_model* model(std::uint16_t port) const {
    auto* d = find(port);
    return d == nullptr ? nullptr : d->model;
  }
  static int set_error(rte_flow_error* err, rte_flow_error_type type, const char* msg) {
    if (err != nullptr) {
      err->type = type;
      err->cause = nullptr;
      err->message = msg;
    }
    return 0;
  }
  int flow_dev(std::uint16_t port, nic_model_ports::dev*& d, rte_flow_error* err) const {
    d = find(port);
    if (d == nullptr) {
      set_error(err, RTE_FLOW_ERROR_TYPE_UNSPECIFIED, "no such port");
      return -ENODEV;
    }
    if (d->model == nullptr) {
      set_error(err, RTE_FLOW_ERROR_TYPE_UNSPECIFIED, "the model keeps flow rules on a bond's member ports; use those");
      return -ENOTSUP;
    }
    return 0;
  }
  static int fail(nic_model_ports::dev& d, const nic_model_refusal& r, rte_flow_error* err) {
    d.last_message = r.message;
    set_error(err, r.type, d.last_message.c_str());
    return r.code == errc::not_supported ? -ENOTSUP : -EINVAL;
  }

  nic_model_ports* p_;
};
static_assert(ethdev_ops<nic_model_ops>);

inline nic_model_ops nic_model_ports::ops() noexcept { return nic_model_ops(this); }

}  // namespace fnat::dpdk
