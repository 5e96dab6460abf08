// SPDX-License-Identifier: BSD-3-Clause
// Connection direction, TCP and UDP state tracking, and the idle timeout of each state.
//
// ## Direction
// A FullNAT connection is seen under two tuples: the client's packets arrive on the inbound tuple
// (client -> VIP:vport) and the real server's replies on the outbound tuple (RS:rport -> LIP:lport).
// `direction` names which of the two a packet matched; the conn table returns it with every hit and
// the state machine below takes it as input. (Linux IPVS calls these INPUT and OUTPUT.)
//
// ## TCP states
// A load balancer sees both halves of the TCP conversation but is neither endpoint, so it cannot
// run RFC 793's machine; like Linux IPVS (net/netfilter/ipvs/ip_vs_proto_tcp.c) and DPVS it keeps
// a coarse state whose only purpose is to choose how long an idle connection may live. Each packet
// is reduced to one event by priority RST > SYN > FIN > ACK (a SYN+ACK counts as SYN, a FIN+ACK as
// FIN), and the next state depends on (state, direction, event):
//
//   inbound (client -> VIP)                        outbound (RS -> LIP)
//   SYN  ESTABLISHED, SYN_SENT -> ESTABLISHED      SYN  ESTABLISHED stays; SYN_RECV, SYNACK -> SYN_RECV;
//        anything else -> SYN_RECV (a new or            LISTEN stays; anything else -> SYN_SENT
//        reopened connection)
//   FIN  ESTABLISHED -> CLOSE_WAIT;                FIN  ESTABLISHED -> FIN_WAIT; NONE, SYN_RECV,
//        SYN_RECV, FIN_WAIT, SYNACK -> TIME_WAIT;       CLOSE_WAIT, SYNACK -> TIME_WAIT; others stay
//        NONE -> CLOSE; others stay
//   ACK  SYN_RECV, SYNACK -> ESTABLISHED;          ACK  NONE, SYN_RECV, LISTEN, SYNACK -> ESTABLISHED;
//        NONE, LAST_ACK -> CLOSE; others stay           others stay
//   RST  SYN_RECV, SYNACK -> SYN_RECV; LAST_ACK,   RST  SYN_SENT, TIME_WAIT stay; anything else
//        LISTEN stay; anything else -> CLOSE            -> CLOSE
//
// Read as a story: the client's SYN opens (SYN_RECV, short timeout, so a SYN flood ages out fast),
// the server's SYN+ACK leaves it there, the client's ACK establishes it (long timeout). Whichever
// side sends FIN first moves it to a half-closed state (CLOSE_WAIT when the client closed,
// FIN_WAIT when the server did) and the other side's FIN to TIME_WAIT. A RST closes, except that a
// client RST during the handshake is not trusted to end the connection early (it keeps the SYN_RECV
// timeout). A segment with none of SYN, FIN, ACK, RST is not valid TCP and closes the connection,
// as in IPVS. The function is written from those rules; it gives the same next state as IPVS's and
// DPVS's INPUT/OUTPUT tables for every (state, direction, event), which the tests check state by
// state.
//
// ## UDP
// UDP has no handshake. A conn is `oneway` until the real server answers (an outbound datagram),
// then `normal`, as in DPVS (which gives both 300 s by default, and so does IPVS's single UDP state).
//
// ## Timeouts
// `conn_timeouts` holds one idle timeout per state. Defaults are DPVS's (ip_vs_proto_tcp.c,
// ip_vs_proto_udp.c), which are much shorter than the kernel's because a DPDK balancer keeps
// millions of conns per lcore in bounded tables; `conn_timeouts::ipvs()` gives Linux IPVS's:
//
//   state        DPVS   IPVS        state        DPVS   IPVS
//   NONE          2 s    2 s        CLOSE         3 s   10 s
//   ESTABLISHED  90 s  900 s        CLOSE_WAIT    7 s   60 s
//   SYN_SENT      3 s  120 s        LAST_ACK      7 s   30 s
//   SYN_RECV     30 s   60 s        LISTEN      120 s  120 s
//   FIN_WAIT      7 s  120 s        SYNACK       30 s  120 s
//   TIME_WAIT     7 s  120 s        UDP         300 s  300 s
//
// The balancer applies them like this on every packet of a conn (timer_wheel.hpp has refresh(),
// which costs one store when the deadline only moves later):
//   auto next = tcp_transition(c.state, hit.dir, flags);
//   c.state = next;
//   wheel.refresh(c, wheel.ticks_for(timeouts.of(next)));
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fnat/core/error.hpp"

namespace fnat {

// ---- direction --------------------------------------------------------------------------------

/// Which tuple of a connection a packet matched. The values index the two tuples of a conn.
enum class direction : std::uint8_t {
  inbound = 0,   ///< client -> VIP:vport (IPVS: INPUT)
  outbound = 1,  ///< RS:rport -> LIP:lport, the real server's reply (IPVS: OUTPUT)
};

[[nodiscard]] constexpr direction opposite(direction d) noexcept {
  return d == direction::inbound ? direction::outbound : direction::inbound;
}

[[nodiscard]] constexpr std::string_view to_string(direction d) noexcept {
  return d == direction::inbound ? "inbound" : "outbound";
}

// ---- TCP ----------------------------------------------------------------------------------------

/// TCP connection states as a balancer tracks them (IPVS's IP_VS_TCP_S_*, in the same order).
enum class tcp_state : std::uint8_t {
  none,
  established,
  syn_sent,
  syn_recv,
  fin_wait,
  time_wait,
  close,
  close_wait,
  last_ack,
  listen,
  synack,
};

/// Number of tcp_state values.
inline constexpr std::size_t tcp_state_count = 11;

/// Upper-case name as IPVS prints it, e.g. "SYN_RECV".
[[nodiscard]] constexpr std::string_view to_string(tcp_state s) noexcept {
  switch (s) {
    case tcp_state::none: return "NONE";
    case tcp_state::established: return "ESTABLISHED";
    case tcp_state::syn_sent: return "SYN_SENT";
    case tcp_state::syn_recv: return "SYN_RECV";
    case tcp_state::fin_wait: return "FIN_WAIT";
    case tcp_state::time_wait: return "TIME_WAIT";
    case tcp_state::close: return "CLOSE";
    case tcp_state::close_wait: return "CLOSE_WAIT";
    case tcp_state::last_ack: return "LAST_ACK";
    case tcp_state::listen: return "LISTEN";
    case tcp_state::synack: return "SYNACK";
  }
  return "?";
}

/// TCP flag bits as they sit in byte 13 of the TCP header, so the packet layer passes that byte
/// unchanged.
namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
}  // namespace tcp_flag

/// What a segment means to the state machine.
enum class tcp_event : std::uint8_t { syn, fin, ack, rst, invalid };

/// Reduces TCP flags to one event, by priority RST > SYN > FIN > ACK; none of the four is
/// `invalid`. Complexity O(1), noexcept.
[[nodiscard]] constexpr tcp_event tcp_event_of(std::uint8_t flags) noexcept {
  if (flags & tcp_flag::rst) return tcp_event::rst;
  if (flags & tcp_flag::syn) return tcp_event::syn;
  if (flags & tcp_flag::fin) return tcp_event::fin;
  if (flags & tcp_flag::ack) return tcp_event::ack;
  return tcp_event::invalid;
}

/// Next state of a TCP conn in `s` that sees `e` travelling in direction `d` (rules in the file
/// comment). Complexity O(1), noexcept, constexpr.
[[nodiscard]] constexpr tcp_state tcp_transition(tcp_state s, direction d, tcp_event e) noexcept {
  using enum tcp_state;
  const auto one_of = [s](auto... states) { return ((s == states) || ...); };
  if (e == tcp_event::invalid) return close;
  if (d == direction::inbound) {
    switch (e) {
      case tcp_event::syn:  // a client SYN (re)opens, unless the conn already runs
        return one_of(established, syn_sent) ? established : syn_recv;
      case tcp_event::fin:  // the client closes its half
        if (s == established) return close_wait;
        if (one_of(syn_recv, fin_wait, synack)) return time_wait;
        return s == none ? close : s;
      case tcp_event::ack:  // the client completes the handshake
        if (one_of(syn_recv, synack)) return established;
        return one_of(none, last_ack) ? close : s;
      case tcp_event::rst:  // not trusted during the handshake
        if (one_of(syn_recv, synack)) return syn_recv;
        return one_of(last_ack, listen) ? s : close;
      case tcp_event::invalid: break;
    }
  } else {
    switch (e) {
      case tcp_event::syn:  // a server SYN or SYN+ACK
        if (s == established || s == listen) return s;
        return one_of(syn_recv, synack) ? syn_recv : syn_sent;
      case tcp_event::fin:  // the server closes its half
        if (s == established) return fin_wait;
        return one_of(none, syn_recv, close_wait, synack) ? time_wait : s;
      case tcp_event::ack:  // any server ACK shows a live conversation
        return one_of(none, syn_recv, listen, synack) ? established : s;
      case tcp_event::rst:
        return one_of(syn_sent, time_wait) ? s : close;
      case tcp_event::invalid: break;
    }
  }
  return close;
}

/// tcp_transition on the raw flags byte (byte 13 of the TCP header).
[[nodiscard]] constexpr tcp_state tcp_transition(tcp_state s, direction d, std::uint8_t flags) noexcept {
  return tcp_transition(s, d, tcp_event_of(flags));
}

// ---- UDP ----------------------------------------------------------------------------------------

/// UDP conn states (DPVS's ONEWAY / NORMAL).
enum class udp_state : std::uint8_t {
  oneway,  ///< only the client has sent
  normal,  ///< the real server has answered
};

[[nodiscard]] constexpr std::string_view to_string(udp_state s) noexcept {
  return s == udp_state::oneway ? "UDP_ONEWAY" : "UDP_NORMAL";
}

/// Next UDP state: the first outbound datagram makes the conn `normal`. O(1), noexcept.
[[nodiscard]] constexpr udp_state udp_transition(udp_state s, direction d) noexcept {
  return d == direction::outbound ? udp_state::normal : s;
}

// ---- timeouts -----------------------------------------------------------------------------------

/// Idle timeout of each state. Defaults are DPVS's; `ipvs()` gives Linux IPVS's (table in the file
/// comment). Build with designated initializers, e.g. `conn_timeouts{.established = 300s}`.
struct conn_timeouts {
  using duration = std::chrono::milliseconds;

  /// NONE: a conn that saw no valid segment yet. DPVS 2 s, IPVS 2 s.
  duration none = std::chrono::seconds(2);
  /// ESTABLISHED: the data phase. DPVS 90 s, IPVS 900 s.
  duration established = std::chrono::seconds(90);
  /// SYN_SENT: the server sent SYN first. DPVS 3 s, IPVS 120 s.
  duration syn_sent = std::chrono::seconds(3);
  /// SYN_RECV: handshake in progress; short so that SYN floods age out. DPVS 30 s, IPVS 60 s.
  duration syn_recv = std::chrono::seconds(30);
  /// FIN_WAIT: the server closed first. DPVS 7 s, IPVS 120 s.
  duration fin_wait = std::chrono::seconds(7);
  /// TIME_WAIT: both sides closed. DPVS 7 s, IPVS 120 s.
  duration time_wait = std::chrono::seconds(7);
  /// CLOSE: reset or invalid. DPVS 3 s, IPVS 10 s.
  duration close = std::chrono::seconds(3);
  /// CLOSE_WAIT: the client closed first. DPVS 7 s, IPVS 60 s.
  duration close_wait = std::chrono::seconds(7);
  /// LAST_ACK. DPVS 7 s, IPVS 30 s.
  duration last_ack = std::chrono::seconds(7);
  /// LISTEN. DPVS 120 s, IPVS 120 s.
  duration listen = std::chrono::seconds(120);
  /// SYNACK (IPVS's secure_tcp mode). DPVS 30 s, IPVS 120 s.
  duration synack = std::chrono::seconds(30);
  /// UDP before the real server answered. DPVS 300 s (IPVS has one UDP state: 300 s).
  duration udp_oneway = std::chrono::seconds(300);
  /// UDP after the real server answered. DPVS 300 s, IPVS 300 s.
  duration udp_normal = std::chrono::seconds(300);

  /// Longest timeout validate() accepts: one day (DPVS caps at IPVS_TIMEOUT_MAX, also a day).
  static constexpr duration max_timeout = std::chrono::hours(24);

  /// DPVS's defaults (the same as a default-constructed conn_timeouts).
  [[nodiscard]] static constexpr conn_timeouts dpvs() noexcept { return conn_timeouts{}; }

  /// Linux IPVS's defaults.
  [[nodiscard]] static constexpr conn_timeouts ipvs() noexcept {
    using std::chrono::seconds;
    return conn_timeouts{.none = seconds(2),
                         .established = seconds(900),
                         .syn_sent = seconds(120),
                         .syn_recv = seconds(60),
                         .fin_wait = seconds(120),
                         .time_wait = seconds(120),
                         .close = seconds(10),
                         .close_wait = seconds(60),
                         .last_ack = seconds(30),
                         .listen = seconds(120),
                         .synack = seconds(120),
                         .udp_oneway = seconds(300),
                         .udp_normal = seconds(300)};
  }

  /// Timeout of a TCP state. O(1), noexcept.
  [[nodiscard]] constexpr duration of(tcp_state s) const noexcept {
    switch (s) {
      case tcp_state::none: return none;
      case tcp_state::established: return established;
      case tcp_state::syn_sent: return syn_sent;
      case tcp_state::syn_recv: return syn_recv;
      case tcp_state::fin_wait: return fin_wait;
      case tcp_state::time_wait: return time_wait;
      case tcp_state::close: return close;
      case tcp_state::close_wait: return close_wait;
      case tcp_state::last_ack: return last_ack;
      case tcp_state::listen: return listen;
      case tcp_state::synack: return synack;
    }
    return close;
  }

  /// Timeout of a UDP state. O(1), noexcept.
  [[nodiscard]] constexpr duration of(udp_state s) const noexcept {
    return s == udp_state::oneway ? udp_oneway : udp_normal;
  }

  /// Checks every timeout is positive and at most max_timeout. Configuration time.
  /// Errors: errc::invalid_argument naming the state and the accepted range.
  [[nodiscard]] result<void> validate() const {
    const std::array<std::pair<std::string_view, duration>, 13> all = {{
        {"none", none}, {"established", established}, {"syn_sent", syn_sent}, {"syn_recv", syn_recv},
        {"fin_wait", fin_wait}, {"time_wait", time_wait}, {"close", close}, {"close_wait", close_wait},
        {"last_ack", last_ack}, {"listen", listen}, {"synack", synack}, {"udp_oneway", udp_oneway},
        {"udp_normal", udp_normal},
    }};
    for (const auto& [name, value] : all)
      if (value <= duration::zero() || value > max_timeout)
        return error(errc::invalid_argument, "conn timeouts: " + std::string(name) + " is " +
                                                 std::to_string(value.count()) +
                                                 " ms; give a timeout above 0 and at most 86400000 ms (one day)");
    return {};
  }

  friend constexpr bool operator==(const conn_timeouts&, const conn_timeouts&) noexcept = default;
};

}  // namespace fnat
