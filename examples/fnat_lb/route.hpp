// SPDX-License-Identifier: BSD-3-Clause
// The balancer's routes: connected networks of its ports, then one default gateway per family.
//
// fnat_lb is no router. It sends to three kinds of next hop: a client (replies from the VIP), a real
// server (from the LIP) and a gateway in front of either. So its table is what the configuration
// says and nothing more: every interface address "198.18.0.1/24" of a port makes its network
// connected on that port, and a port may name a gateway per family, used for every destination no
// connected network holds. Lookup is longest prefix over the connected networks, then the gateway
// of the destination's family:
//     lookup(d) = (port p, next hop d)   for the longest connected network N of p with d in N,
//               = (port g, next hop gw)  else, when port g has a gateway gw of d's family,
//               = not_found              else.
// The configuration loader makes sure that connected networks of different ports do not overlap,
// that a gateway is inside a connected network of its own port and that each family has at most
// one gateway, so the answer never depends on the order of entries.
//
// Layout: one entry per connected network, sorted by prefix length (longest first), each holding
// its network and mask as two 64-bit words over the 16-byte `inet_addr` form (IPv4 is IPv4-mapped,
// so an IPv4 /24 is a /120 there) and its family, compared first so that no short IPv6 prefix
// matches an IPv4-mapped destination. A lookup walks the entries and stops at the first match:
// O(entries), a few dozen instructions for the handful of networks a balancer has, noexcept and
// allocation-free. The dataplane calls it when it creates a connection and keeps the answer in the
// connection, not per packet.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fnat/core/addr.hpp>
#include <fnat/core/error.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fnat::lb {

/// An address with a prefix length: an interface address ("198.18.0.1/24") or a network.
struct inet_prefix {
  inet_addr addr;
  /// Prefix length in the address's own family: 0..32 for IPv4, 0..128 for IPv6.
  std::uint8_t len = 0;

  /// "198.18.0.1/24", "2001:2:0:1::1/64"; nullopt without "/len", with a length beyond the family's
  /// width or with anything else wrong.
  [[nodiscard]] static std::optional<inet_prefix> parse(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto a = inet_addr::parse(text.substr(0, slash));
    if (!a) return std::nullopt;
    const auto digits = text.substr(slash + 1);
    unsigned len = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), len);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    if (len > width(a->family())) return std::nullopt;
    return inet_prefix{*a, static_cast<std::uint8_t>(len)};
  }

  [[nodiscard]] static constexpr unsigned width(ip_family f) noexcept { return f == ip_family::v4 ? 32 : 128; }
  [[nodiscard]] ip_family family() const noexcept { return addr.family(); }
  /// Length over the 16-byte inet_addr form (IPv4 prefixes gain the 96 bits of the mapped prefix).
  [[nodiscard]] unsigned raw_len() const noexcept { return addr.is_v4() ? 96u + len : len; }

  /// True when `a` is of this prefix's family and its first `len` bits equal the prefix's.
  [[nodiscard]] bool contains(const inet_addr& a) const noexcept {
    if (a.family() != family()) return false;
    const unsigned bits = raw_len();
    const auto& x = addr.raw();
    const auto& y = a.raw();
    for (unsigned i = 0; i < 16; ++i) {
      const unsigned have = bits > 8 * i ? std::min(8u, bits - 8 * i) : 0u;
      const auto m = static_cast<std::uint8_t>(have == 0 ? 0 : 0xff << (8 - have));
      if ((x[i] & m) != (y[i] & m)) return false;
    }
    return true;
  }
  /// The network: host bits cleared.
  [[nodiscard]] inet_prefix network() const noexcept {
    auto b = addr.raw();
    const unsigned bits = raw_len();
    for (unsigned i = 0; i < 16; ++i) {
      const unsigned have = bits > 8 * i ? std::min(8u, bits - 8 * i) : 0u;
      b[i] &= static_cast<std::uint8_t>(have == 0 ? 0 : 0xff << (8 - have));
    }
    ipv6_addr raw;
    raw.bytes = b;
    return {inet_addr(raw), len};  // an IPv4-mapped form stays IPv4
  }
  /// True when the two share an address (one contains the other's network).
  [[nodiscard]] bool overlaps(const inet_prefix& o) const noexcept {
    return len <= o.len ? contains(o.addr) : o.contains(addr);
  }
  /// "198.18.0.1/24".
  [[nodiscard]] std::string to_string() const { return addr.to_string() + "/" + std::to_string(len); }

  friend bool operator==(const inet_prefix&, const inet_prefix&) noexcept = default;
};

/// Where to send a packet for a destination.
struct next_hop {
  /// errc::ok, or errc::not_found when no connected network holds the destination and its family
  /// has no gateway.
  errc rc = errc::not_found;
  /// Index of the port (in lb_config::ports order) to send on.
  std::uint16_t port = 0;
  /// The neighbour to resolve: the destination itself when it is on a connected network, else the
  /// gateway.
  inet_addr addr{};
  /// True when the destination is on a connected network of `port`.
  bool connected = false;
  explicit operator bool() const noexcept { return rc == errc::ok; }
};

/// A connected network on a port (what route_table::connected() lists).
struct connected_route {
  inet_prefix network;
  std::uint16_t port = 0;
};

/// The route table (see the file comment). Built at configuration time, then read-only: lookup() is
/// const and safe on every lcore at once.
class route_table {
 public:
  /// Adds the network of an interface address on `port`. Configuration time; O(entries). Allocates.
  /// The caller (the configuration loader) keeps networks of different ports apart.
  void add_connected(const inet_prefix& iface, std::uint16_t port) {
    const inet_prefix net = iface.network();
    for (const auto& e : entries_)
      if (e.route.network == net && e.route.port == port) return;  // a second address in one network
    entry e{};
    e.route = {net, port};
    e.v4 = net.addr.is_v4();
    const unsigned bits = net.raw_len();
    std::array<std::uint8_t, 16> mask{};
    for (unsigned i = 0; i < 16; ++i) {
      const unsigned have = bits > 8 * i ? std::min(8u, bits - 8 * i) : 0u;
      mask[i] = static_cast<std::uint8_t>(have == 0 ? 0 : 0xff << (8 - have));
    }
    std::memcpy(e.mask, mask.data(), 16);
    std::memcpy(e.net, net.addr.raw().data(), 16);
    const auto pos = std::find_if(entries_.begin(), entries_.end(),
                                  [&](const entry& x) { return x.route.network.raw_len() < bits; });
    entries_.insert(pos, e);
  }
  /// Sets the gateway of `gw`'s family, reached through `port`. Configuration time. The loader makes
  /// sure there is one per family and that it is on a connected network of `port`.
  void set_gateway(const inet_addr& gw, std::uint16_t port) { (gw.is_v4() ? gw4_ : gw6_) = gateway{gw, port, true}; }

  /// Longest connected prefix, then the family's gateway. O(entries), noexcept, no allocation.
  [[nodiscard]] next_hop lookup(const inet_addr& dst) const noexcept {
    std::uint64_t d[2];
    std::memcpy(d, dst.raw().data(), 16);
    const bool v4 = dst.is_v4();
    for (const auto& e : entries_)
      if (e.v4 == v4 && ((d[0] & e.mask[0]) == e.net[0]) && ((d[1] & e.mask[1]) == e.net[1]))
        return {errc::ok, e.route.port, dst, true};
    const gateway& g = dst.is_v4() ? gw4_ : gw6_;
    if (g.set) return {errc::ok, g.port, g.addr, false};
    return {};
  }

  /// Connected networks, longest prefix first.
  [[nodiscard]] std::vector<connected_route> connected() const {
    std::vector<connected_route> v;
    for (const auto& e : entries_) v.push_back(e.route);
    return v;
  }
  /// The gateway of a family and its port, if configured.
  [[nodiscard]] std::optional<connected_route> gateway_of(ip_family f) const {
    const gateway& g = f == ip_family::v4 ? gw4_ : gw6_;
    if (!g.set) return std::nullopt;
    return connected_route{{g.addr, static_cast<std::uint8_t>(inet_prefix::width(f))}, g.port};
  }

 private:
  struct entry {
    std::uint64_t net[2];   // network, 16-byte inet_addr form
    std::uint64_t mask[2];  // prefix mask over the same bytes
    connected_route route;
    bool v4 = false;  // a short IPv6 prefix must not match IPv4-mapped destinations
  };
  struct gateway {
    inet_addr addr{};
    std::uint16_t port = 0;
    bool set = false;
  };
  std::vector<entry> entries_;  // longest prefix first
  gateway gw4_, gw6_;
};

}  // namespace fnat::lb
