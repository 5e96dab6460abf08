// SPDX-License-Identifier: BSD-3-Clause
// TCP/UDP state tracking and timeouts: the transition function against IPVS's semantics state by
// state, the usual conversations, and the timer re-arm a state change causes.
#include <fnat/core/conn_state.hpp>
#include <fnat/core/timer_wheel.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <vector>

using fnat::direction;
using fnat::tcp_event;
using fnat::tcp_state;
using namespace std::chrono_literals;

namespace {

constexpr std::uint8_t SYN = fnat::tcp_flag::syn, ACK = fnat::tcp_flag::ack, FIN = fnat::tcp_flag::fin,
                       RST = fnat::tcp_flag::rst, PSH = fnat::tcp_flag::psh;
constexpr direction IN = direction::inbound, OUT = direction::outbound;

tcp_state parse(const std::string& s) {
  static const std::array<std::pair<const char*, tcp_state>, 11> names = {{
      {"NO", tcp_state::none}, {"ES", tcp_state::established}, {"SS", tcp_state::syn_sent},
      {"SR", tcp_state::syn_recv}, {"FW", tcp_state::fin_wait}, {"TW", tcp_state::time_wait},
      {"CL", tcp_state::close}, {"CW", tcp_state::close_wait}, {"LA", tcp_state::last_ack},
      {"LI", tcp_state::listen}, {"SA", tcp_state::synack},
  }};
  for (const auto& [n, st] : names)
    if (s == n) return st;
  FAIL("bad state name " << s);
  return tcp_state::none;
}

// Expected next state for each current state, in enum order (NO ES SS SR FW TW CL CW LA LI SA).
// These rows restate the behaviour of Linux IPVS's default (non secure_tcp) INPUT and OUTPUT
// tables, which DPVS uses unchanged, as observed facts to test against.
struct row {
  direction dir;
  tcp_event event;
  const char* next;
};
const row expected[] = {
    {IN, tcp_event::syn, "SR ES ES SR SR SR SR SR SR SR SR"},
    {IN, tcp_event::fin, "CL CW SS TW TW TW CL CW LA LI TW"},
    {IN, tcp_event::ack, "CL ES SS ES FW TW CL CW CL LI ES"},
    {IN, tcp_event::rst, "CL CL CL SR CL CL CL CL LA LI SR"},
    {OUT, tcp_event::syn, "SS ES SS SR SS SS SS SS SS LI SR"},
    {OUT, tcp_event::fin, "TW FW SS TW FW TW CL TW LA LI TW"},
    {OUT, tcp_event::ack, "ES ES SS ES FW TW CL CW LA ES ES"},
    {OUT, tcp_event::rst, "CL CL SS CL CL TW CL CL CL CL CL"},
};

}  // namespace

TEST_CASE("flags reduce to one event by priority RST > SYN > FIN > ACK", "[conn_state]") {
  CHECK(fnat::tcp_event_of(SYN) == tcp_event::syn);
  CHECK(fnat::tcp_event_of(SYN | ACK) == tcp_event::syn);
  CHECK(fnat::tcp_event_of(FIN | ACK) == tcp_event::fin);
  CHECK(fnat::tcp_event_of(ACK | PSH) == tcp_event::ack);
  CHECK(fnat::tcp_event_of(RST | ACK) == tcp_event::rst);
  CHECK(fnat::tcp_event_of(RST | SYN | FIN) == tcp_event::rst);
  CHECK(fnat::tcp_event_of(SYN | FIN) == tcp_event::syn);
  CHECK(fnat::tcp_event_of(0) == tcp_event::invalid);
  CHECK(fnat::tcp_event_of(PSH) == tcp_event::invalid);
}

TEST_CASE("the transition function gives IPVS's next state for every state, direction and event", "[conn_state]") {
  for (const row& r : expected) {
    std::vector<std::string> next;
    for (const char* p = r.next; *p;) {
      next.emplace_back(p, 2);
      p += p[2] ? 3 : 2;
    }
    REQUIRE(next.size() == fnat::tcp_state_count);
    for (std::size_t s = 0; s < fnat::tcp_state_count; ++s) {
      const auto from = static_cast<tcp_state>(s);
      INFO(to_string(r.dir) << " event " << static_cast<int>(r.event) << " from " << to_string(from));
      CHECK(fnat::tcp_transition(from, r.dir, r.event) == parse(next[s]));
    }
  }
  // A segment without SYN, FIN, ACK or RST closes, from any state and either way.
  for (std::size_t s = 0; s < fnat::tcp_state_count; ++s)
    for (direction d : {IN, OUT}) CHECK(fnat::tcp_transition(static_cast<tcp_state>(s), d, std::uint8_t{0}) == tcp_state::close);
  static_assert(fnat::tcp_transition(tcp_state::none, IN, SYN) == tcp_state::syn_recv, "usable at compile time");
}

TEST_CASE("the usual conversations walk the expected states", "[conn_state]") {
  struct step {
    direction d;
    std::uint8_t flags;
    tcp_state then;
  };
  auto play = [](std::initializer_list<step> steps) {
    tcp_state s = tcp_state::none;
    for (const step& st : steps) {
      s = fnat::tcp_transition(s, st.d, st.flags);
      REQUIRE(s == st.then);
    }
  };
  SECTION("handshake, data, client closes first") {
    play({{IN, SYN, tcp_state::syn_recv},
          {OUT, SYN | ACK, tcp_state::syn_recv},
          {IN, ACK, tcp_state::established},
          {IN, ACK | PSH, tcp_state::established},
          {OUT, ACK | PSH, tcp_state::established},
          {IN, FIN | ACK, tcp_state::close_wait},
          {OUT, ACK, tcp_state::close_wait},
          {OUT, FIN | ACK, tcp_state::time_wait},
          {IN, ACK, tcp_state::time_wait}});
  }
  SECTION("server closes first") {
    play({{IN, SYN, tcp_state::syn_recv},
          {OUT, SYN | ACK, tcp_state::syn_recv},
          {IN, ACK, tcp_state::established},
          {OUT, FIN | ACK, tcp_state::fin_wait},
          {IN, ACK, tcp_state::fin_wait},
          {IN, FIN | ACK, tcp_state::time_wait}});
  }
  SECTION("reset by either side") {
    play({{IN, SYN, tcp_state::syn_recv}, {IN, ACK, tcp_state::established}, {OUT, RST, tcp_state::close}});
    play({{IN, SYN, tcp_state::syn_recv}, {IN, ACK, tcp_state::established}, {IN, RST | ACK, tcp_state::close}});
  }
  SECTION("a client RST during the handshake does not end it early") {
    play({{IN, SYN, tcp_state::syn_recv}, {IN, RST, tcp_state::syn_recv}, {OUT, RST, tcp_state::close}});
  }
  SECTION("the tuple is reused after TIME_WAIT") {
    play({{IN, SYN, tcp_state::syn_recv}, {IN, ACK, tcp_state::established}, {IN, FIN, tcp_state::close_wait},
          {OUT, FIN, tcp_state::time_wait}, {IN, SYN, tcp_state::syn_recv}, {IN, ACK, tcp_state::established}});
  }
}

TEST_CASE("UDP turns normal at the first reply", "[conn_state]") {
  using fnat::udp_state;
  CHECK(fnat::udp_transition(udp_state::oneway, IN) == udp_state::oneway);
  CHECK(fnat::udp_transition(udp_state::oneway, OUT) == udp_state::normal);
  CHECK(fnat::udp_transition(udp_state::normal, IN) == udp_state::normal);
  CHECK(std::string(to_string(udp_state::normal)) == "UDP_NORMAL");
}

TEST_CASE("timeouts default to DPVS's values, ipvs() gives the kernel's", "[conn_state][timeouts]") {
  const fnat::conn_timeouts d;
  CHECK(d == fnat::conn_timeouts::dpvs());
  CHECK(d.of(tcp_state::none) == 2s);
  CHECK(d.of(tcp_state::established) == 90s);
  CHECK(d.of(tcp_state::syn_sent) == 3s);
  CHECK(d.of(tcp_state::syn_recv) == 30s);
  CHECK(d.of(tcp_state::fin_wait) == 7s);
  CHECK(d.of(tcp_state::time_wait) == 7s);
  CHECK(d.of(tcp_state::close) == 3s);
  CHECK(d.of(tcp_state::close_wait) == 7s);
  CHECK(d.of(tcp_state::last_ack) == 7s);
  CHECK(d.of(tcp_state::listen) == 120s);
  CHECK(d.of(tcp_state::synack) == 30s);
  CHECK(d.of(fnat::udp_state::oneway) == 300s);
  CHECK(d.of(fnat::udp_state::normal) == 300s);
  const auto k = fnat::conn_timeouts::ipvs();
  CHECK(k.of(tcp_state::established) == 900s);
  CHECK(k.of(tcp_state::syn_sent) == 120s);
  CHECK(k.of(tcp_state::syn_recv) == 60s);
  CHECK(k.of(tcp_state::fin_wait) == 120s);
  CHECK(k.of(tcp_state::time_wait) == 120s);
  CHECK(k.of(tcp_state::close) == 10s);
  CHECK(k.of(tcp_state::close_wait) == 60s);
  CHECK(k.of(tcp_state::last_ack) == 30s);
  CHECK(k.of(tcp_state::synack) == 120s);
  CHECK(k.of(fnat::udp_state::normal) == 300s);
  CHECK(d.validate());
  CHECK(k.validate());
  CHECK(std::string(to_string(tcp_state::syn_recv)) == "SYN_RECV");
  CHECK(std::string(to_string(direction::outbound)) == "outbound");
  CHECK(fnat::opposite(direction::inbound) == direction::outbound);
}

TEST_CASE("timeouts are configurable and validated", "[conn_state][timeouts]") {
  const fnat::conn_timeouts t{.established = 300s, .udp_normal = 30s};
  CHECK(t.of(tcp_state::established) == 300s);
  CHECK(t.of(fnat::udp_state::normal) == 30s);
  CHECK(t.of(tcp_state::fin_wait) == 7s);  // the rest keep their defaults
  CHECK(t.validate());
  auto zero = fnat::conn_timeouts{.time_wait = 0s}.validate();
  REQUIRE_FALSE(zero);
  CHECK(zero.err().code() == fnat::errc::invalid_argument);
  CHECK_THAT(zero.err().message(), Catch::Contains("time_wait"));
  REQUIRE_FALSE(fnat::conn_timeouts{.close = -1s}.validate());
  REQUIRE_FALSE(fnat::conn_timeouts{.established = 25h}.validate());
}

namespace {
struct tcp_conn : fnat::timer_entry {
  tcp_state state = tcp_state::none;
};
}  // namespace

TEST_CASE("a state change re-arms the conn's timer with the new state's timeout", "[conn_state][timeouts]") {
  // 1 s ticks on a nanosecond clock: the balancer's per-packet step, as in conn_state.hpp's comment.
  auto w = std::move(*fnat::timer_wheel<tcp_conn>::make({.slots = 64, .tick = 1s}));
  const fnat::conn_timeouts timeouts;
  tcp_conn c;
  std::uint64_t expired_at = 0;
  auto packet = [&](std::uint64_t at_s, direction d, std::uint8_t flags) {
    w.advance_to(at_s, [&](tcp_conn&) { expired_at = w.now_tick(); });
    REQUIRE(expired_at == 0);
    c.state = fnat::tcp_transition(c.state, d, flags);
    w.refresh(c, w.ticks_for(timeouts.of(c.state)));
  };
  packet(0, IN, SYN);
  REQUIRE(c.state == tcp_state::syn_recv);
  REQUIRE(w.remaining(c) == 30);
  packet(1, OUT, SYN | ACK);
  packet(2, IN, ACK);
  REQUIRE(c.state == tcp_state::established);
  REQUIRE(w.remaining(c) == 90);  // later: stored lazily
  packet(50, IN, ACK | PSH);
  REQUIRE(w.remaining(c) == 90);
  packet(60, OUT, FIN | ACK);
  REQUIRE(c.state == tcp_state::fin_wait);
  REQUIRE(w.remaining(c) == 7);  // earlier: re-linked, so it is not fired at 150
  REQUIRE(w.stats().rearms >= 1);
  w.advance_to(66, [&](tcp_conn&) { expired_at = w.now_tick(); });
  REQUIRE(expired_at == 0);
  w.advance_to(67, [&](tcp_conn&) { expired_at = w.now_tick(); });
  REQUIRE(expired_at == 67);
  REQUIRE_FALSE(c.is_armed());
}
