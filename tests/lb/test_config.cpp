// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's configuration loader: every mistake is reported with the file, the line and a message
// that says what to do; the commented sample loads; the route table answers like its comment says.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "fnat_lb/config.hpp"
#include "support/eal.hpp"

namespace lb = fnat::lb;
using fnat::errc;

namespace {

namespace fs = std::filesystem;

// A private directory for this process's files, removed at exit; messages are compared relative to
// it, so that they read "lb.ini:14: ..." as an operator in that directory would see them.
struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("fnat-config-test-" + std::to_string(::getpid()));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
const fs::path& dir() {
  static const temp_dir d;
  return d.path;
}

std::string write(const std::string& text, const std::string& name = "lb.ini") {
  const auto p = dir() / name;
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

fnat::result<lb::lb_config> load(const std::string& text) { return lb::load_config(write(text)); }

// The error of loading `text`, with the directory taken out of it.
std::string error_of(const std::string& text) {
  auto r = load(text);
  if (r) return "(loaded)";
  CHECK(r.err().code() == errc::invalid_argument);
  std::string m = r.err().message();
  const std::string prefix = (dir() / "").string();
  for (std::size_t p; (p = m.find(prefix)) != std::string::npos;) m.erase(p, prefix.size());
  return m;
}

// A small valid file; the cases below change one line of it (line numbers in the comments).
const std::vector<std::string> base = {
    "[global]",                 // 1
    "workers = 1",              // 2
    "[port p0]",                // 3
    "role = client",            // 4
    "address = 198.18.0.1/24",  // 5
    "address = 198.18.1.1/24",  // 6
    "[port p1]",                // 7
    "role = server",            // 8
    "address = 198.18.2.1/24",  // 9
    "[service web]",            // 10
    "vip = 198.18.1.100",       // 11
    "vport = 80",               // 12
    "lip = 198.18.2.100",       // 13
    "rs = 198.18.2.11:80",      // 14
};

std::string text(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}
// Line `n` (1-based) replaced.
std::string replaced(std::size_t n, const std::string& line) {
  auto l = base;
  l.at(n - 1) = line;
  return text(l);
}
// `lines` inserted after line `n` (0: at the top).
std::string inserted(std::size_t n, const std::vector<std::string>& lines) {
  auto l = base;
  l.insert(l.begin() + static_cast<std::ptrdiff_t>(n), lines.begin(), lines.end());
  return text(l);
}

fs::path sample_path() {
  return fs::path(__FILE__).parent_path() / ".." / ".." / "examples" / "fnat_lb" / "lb.ini.sample";
}

fnat::inet_addr ip(const char* s) { return fnat::inet_addr::parse(s).value(); }

}  // namespace

TEST_CASE("the base file and the commented sample load", "[config]") {
  auto small = load(text(base));
  REQUIRE(small);
  CHECK(small->global.workers == std::vector<unsigned>{1});
  CHECK(small->services.size() == 1);
  CHECK(small->services[0].proto == fnat::ipproto::tcp);
  CHECK(small->services[0].scheduler == fnat::scheduler_kind::wrr);
  CHECK(small->services[0].rss[0].weight == 1);
  CHECK(small->services[0].rss[0].line == 14);
  CHECK(small->ports[1].line == 7);
  // Defaults where the file says nothing.
  CHECK(small->global.steering == lb::steering_mode::automatic);
  CHECK(small->global.conns_per_lcore == 1u << 20);
  CHECK(small->global.sa_pool_buckets == 16);
  CHECK(small->global.port_low == 1025);
  CHECK(small->timeouts == fnat::conn_timeouts{});

  auto r = lb::load_config(sample_path().string());
  if (!r) FAIL(r.err().what());
  const auto& c = *r;
  CHECK(c.source == sample_path().string());
  CHECK(c.global.workers == std::vector<unsigned>{1, 2});
  CHECK(c.global.steering == lb::steering_mode::automatic);
  CHECK(c.global.idle == lb::idle_policy::busy);
  CHECK(c.global.telemetry);
  CHECK(c.global.log == lb::log_level::info);
  CHECK(c.timeouts == fnat::conn_timeouts{});  // the sample spells out the defaults
  REQUIRE(c.ports.size() == 2);
  CHECK(c.ports[0].name == "net_af_packet0");
  CHECK(c.ports[0].role == lb::port_role::client);
  CHECK(c.ports[0].addresses.size() == 4);
  CHECK(c.ports[1].role == lb::port_role::server);
  REQUIRE(c.services.size() == 4);
  const auto& web = c.services[0];
  CHECK(web.name == "web");
  CHECK(web.vip == fnat::endpoint{ip("198.18.1.100"), 80});
  CHECK(web.lips == std::vector<fnat::inet_addr>{ip("198.18.2.100"), ip("198.18.2.101")});
  REQUIRE(web.rss.size() == 3);
  CHECK(web.rss[0].weight == 2);
  CHECK(web.rss[2].addr == fnat::endpoint{ip("198.18.2.13"), 80});
  const auto& web6 = c.services[1];
  CHECK(web6.family() == fnat::ip_family::v6);
  CHECK(web6.scheduler == fnat::scheduler_kind::maglev);
  CHECK(web6.rss[1].addr == fnat::endpoint{ip("2001:2:0:2::12"), 80});
  CHECK(c.services[2].proto == fnat::ipproto::udp);
  // Every service's scheduler builds, and the workers make a port plan.
  for (const auto& s : c.services) {
    auto sch = fnat::any_scheduler::make(s.backends(), s.scheduler_cfg(1));
    REQUIRE(sch);
    CHECK(sch->kind() == s.scheduler);
    CHECK(sch->usable() == s.rss.size());
  }
  auto plan = fnat::port_plan::make(c.plan_config());
  REQUIRE(plan);
  CHECK(plan->size() == 2);
  CHECK(plan->lcore(1).lcore_id == 2);
  CHECK(plan->lcore(1).rx_queue == 1);
  // What ARP/ND answer for, per port.
  auto l0 = c.local_addresses(0);
  for (const char* a :
       {"198.18.0.1", "2001:2:0:1::1", "198.18.1.1", "2001:2:0:3::1", "198.18.1.100", "2001:2:0:3::100"})
    CHECK(std::count(l0.begin(), l0.end(), ip(a)) == 1);
  CHECK(l0.size() == 6);
  auto l1 = c.local_addresses(1);
  for (const char* a : {"198.18.2.1", "2001:2:0:2::1", "198.18.2.100", "198.18.2.101", "2001:2:0:2::100"})
    CHECK(std::count(l1.begin(), l1.end(), ip(a)) == 1);
  CHECK(l1.size() == 5);
  CHECK(
      c.describe().find("service web: 198.18.1.100:80 tcp, wrr, lip 198.18.2.100 198.18.2.101, rs 198.18.2.11:80*2") !=
      std::string::npos);
  // Routes: real servers and the client are on connected networks; nothing else is reachable.
  auto rs = c.routes.lookup(ip("198.18.2.12"));
  REQUIRE(rs);
  CHECK(rs.port == 1);
  CHECK(rs.connected);
  CHECK(rs.addr == ip("198.18.2.12"));
  CHECK(c.routes.lookup(ip("2001:2:0:1::2")).port == 0);
  CHECK(c.routes.lookup(ip("198.19.0.1")).rc == errc::not_found);
}

TEST_CASE("syntax errors name the line", "[config]") {
  const std::string long_value(400, 'x');
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"the brief's example",
       {replaced(14, "rs = 198.18.2.300:80"),
        "lb.ini:14: [service web] rs = 198.18.2.300:80: not an IPv4 or IPv6 address"}},
      {"a line without '='",
       {inserted(2, {"steering rss"}), "lb.ini:3: 'steering rss': expected '[section]' or 'key = value'"}},
      {"an entry before any section",
       {inserted(0, {"  workers = 1   # early"}),
        "lb.ini:1: 'workers = 1': comes before any [section]; start the file with [global]"}},
      {"no closing bracket", {replaced(10, "[service web"), "lb.ini:10: '[service web': no closing ']'"}},
      {"text after the bracket",
       {replaced(1, "[global] workers = 1"),
        "lb.ini:1: '[global] workers = 1': text after ']'; put a key on a line of its own"}},
      {"an empty value", {inserted(2, {"steering =   # to do"}), "lb.ini:3: [global] steering: no value after '='"}},
      {"an empty key", {inserted(2, {" = rss"}), "lb.ini:3: [global] '= rss': no key before '='"}},
      {"a long line",
       {inserted(2, {"steering = " + long_value}),
        "lb.ini:3: the line is 411 characters long; a line has at most 322"}},
      {"a long value",
       {inserted(2, {"steering = " + std::string(300, 'y')}),
        "lb.ini:3: [global] steering: the value has 300 characters; a value has at most 255"}},
      {"a long key",
       {inserted(2, {std::string(70, 'k') + " = 1"}),
        "lb.ini:3: [global] '" + std::string(70, 'k') + "': a key has at most 63 characters"}},
      {"a backslash",
       {inserted(2, {"steering = r\\ss"}), "lb.ini:3: a backslash has no meaning in this file; remove it"}},
      {"an escaped comment",
       {inserted(2, {"steering = rss \\# not a comment"}),
        "lb.ini:3: a backslash has no meaning in this file; remove it"}},
  };
  for (const auto& [name, c] : cases) {
    INFO(name);
    CHECK(error_of(c.first) == c.second);
  }
}

TEST_CASE("section and key errors name the line", "[config]") {
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"unknown section",
       {replaced(1, "[globl]"),
        "lb.ini:1: [globl]: unknown section; use [global], [timeouts], [port NAME] or [service NAME]"}},
      {"global twice",
       {inserted(14, {"[global]", "workers = 2"}), "lb.ini:15: [global]: given twice (first at line 1)"}},
      {"global with a name", {replaced(1, "[global main]"), "lb.ini:1: [global main]: [global] takes no name"}},
      {"port without a name",
       {replaced(3, "[port]"), "lb.ini:3: [port]: a port section needs the DPDK port name: [port net_af_packet0]"}},
      {"service without a name",
       {replaced(10, "[ service ]"), "lb.ini:10: [service]: a service section needs a name: [service web]"}},
      {"two ports of one name", {replaced(7, "[port p0]"), "lb.ini:7: [port p0]: given twice (first at line 3)"}},
      {"a name with a space",
       {replaced(10, "[service my web]"), "lb.ini:10: [service my web]: a service name has no spaces"}},
      {"unknown key",
       {inserted(2, {"stearing = rss"}),
        "lb.ini:3: [global] stearing = rss: unknown key; [global] takes workers, steering, idle, idle_sleep_us, "
        "conns_per_lcore, sa_pool_buckets, local_ports, class_bits, timer_tick_ms, log_level, telemetry, "
        "conn_table_capacity, max_half_open, max_udp_oneway, syn_refusal, rst_rate, rst_burst, frag_entries, "
         "frag_timeout_ms"}},
      {"unknown port key",
       {inserted(4, {"speed = 1500"}),
        "lb.ini:5: [port p0] speed = 1500: unknown key; [port NAME] takes role, mtu, address, gateway, neighbour"}},
      {"mtu out of range", {inserted(4, {"mtu = 9001"}), "lb.ini:5: [port p0] mtu = 9001: out of range 576..9000"}},
      {"a single key twice",
       {inserted(2, {"workers = 2"}), "lb.ini:3: [global] workers = 2: given twice (first at line 2)"}},
      {"vip twice",
       {inserted(14, {"vip = 198.18.1.101"}),
        "lb.ini:15: [service web] vip = 198.18.1.101: given twice (first at line 11)"}},
      {"no global",
       {text({base.begin() + 2, base.end()}), "lb.ini: no [global] section; add one with 'workers = LCORES'"}},
      {"no workers",
       {replaced(2, "steering = rss"),
        "lb.ini:1: [global]: no workers; add 'workers = LCORES', e.g. workers = 1,2 (EAL lcore ids)"}},
      {"no service", {text({base.begin(), base.begin() + 9}), "lb.ini: no [service NAME] section; add at least one"}},
      {"no port",
       {text({"[global]", "workers = 1"}), "lb.ini: no [port NAME] section; add one per DPDK port the balancer uses"}},
  };
  for (const auto& [name, c] : cases) {
    INFO(name);
    CHECK(error_of(c.first) == c.second);
  }
}

TEST_CASE("[global] and [timeouts] values", "[config]") {
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"steering word",
       {inserted(2, {"steering = fast"}),
        "lb.ini:3: [global] steering = fast: expected one of: auto, flow, rss, redirect, lip_per_lcore"}},
      {"idle word", {inserted(2, {"idle = spin"}), "lb.ini:3: [global] idle = spin: expected one of: busy, backoff"}},
      {"log level",
       {inserted(2, {"log_level = verbose"}),
        "lb.ini:3: [global] log_level = verbose: expected one of: error, warning, notice, info, debug"}},
      {"telemetry", {inserted(2, {"telemetry = maybe"}), "lb.ini:3: [global] telemetry = maybe: expected on or off"}},
      {"a suffix",
       {inserted(2, {"conns_per_lcore = 1M"}), "lb.ini:3: [global] conns_per_lcore = 1M: not a whole number"}},
      {"a sign",
       {inserted(2, {"conns_per_lcore = -5"}), "lb.ini:3: [global] conns_per_lcore = -5: not a whole number"}},
      {"zero tick", {inserted(2, {"timer_tick_ms = 0"}), "lb.ini:3: [global] timer_tick_ms = 0: out of range 1..1000"}},
      {"huge number",
       {inserted(2, {"sa_pool_buckets = 99999999999999999999999"}),
        "lb.ini:3: [global] sa_pool_buckets = 99999999999999999999999: out of range 1..4096"}},
      {"worker twice",
       {replaced(2, "workers = 1,2-3,1"), "lb.ini:2: [global] workers = 1,2-3,1: lcore 1 is listed twice"}},
      {"worker out of range",
       {replaced(2, "workers = 1, 200"),
        "lb.ini:2: [global] workers = 1, 200: lcore 200 is out of range 0..127 (RTE_MAX_LCORE 128)"}},
      {"workers not a list",
       {replaced(2, "workers = lcore1"),
        "lb.ini:2: [global] workers = lcore1: not a list of lcore ids (e.g. 1,2 or 1-3)"}},
      {"workers backwards",
       {replaced(2, "workers = 4-2"), "lb.ini:2: [global] workers = 4-2: lcore range 4-2 runs backwards"}},
      {"port range backwards",
       {inserted(2, {"local_ports = 20000-1025"}),
        "lb.ini:3: [global] local_ports = 20000-1025: the low port is above the high port"}},
      {"port range not a range",
       {inserted(2, {"local_ports = 1025"}),
        "lb.ini:3: [global] local_ports = 1025: expected a range LOW-HIGH, e.g. 1025-65535"}},
      {"port zero",
       {inserted(2, {"local_ports = 0-100"}),
        "lb.ini:3: [global] local_ports = 0-100: low port: out of range 1..65535"}},
      {"class bits for the workers",
       {replaced(2, "workers = 1-4\nclass_bits = 1"),
        "lb.ini:3: [global] class_bits = 1: port plan: class_bits 1 gives 2 classes for 4 lcores; use at least 2 (or 0 "
        "for "
        "auto)"}},
      {"a range too narrow for the workers",
       {replaced(2, "workers = 1-4\nlocal_ports = 1025-1026"),
        "lb.ini:3: [global] local_ports = 1025-1026: port plan: ports 1025-1026 leave lcore 1 without a port; widen "
        "the range "
        "or use fewer class bits"}},
      {"a timeout of zero",
       {inserted(14, {"[timeouts]", "tcp_established = 0"}),
        "lb.ini:16: [timeouts] tcp_established = 0: out of range 1..86400"}},
      {"an unknown timeout",
       {inserted(14, {"[timeouts]", "tcp_estab = 90"}),
        "lb.ini:16: [timeouts] tcp_estab = 90: unknown key; [timeouts] takes tcp_none, tcp_established, tcp_syn_sent, "
        "tcp_syn_recv, tcp_fin_wait, tcp_time_wait, tcp_close, tcp_close_wait, tcp_last_ack, tcp_listen, tcp_synack, "
        "udp_oneway, udp_normal"}},
  };
  for (const auto& [name, c] : cases) {
    INFO(name);
    CHECK(error_of(c.first) == c.second);
  }
  auto ok = load(inserted(2, {"steering = redirect # comment", "idle = backoff", "idle_sleep_us = 200",
                              "log_level = debug", "telemetry = off", "local_ports = 2000-3000", "class_bits = 4",
                              "timer_tick_ms = 5", "conns_per_lcore = 4096", "sa_pool_buckets = 32"}) +
                 "[timeouts]\ntcp_established = 600\nudp_oneway = 10\n");
  REQUIRE(ok);
  const auto& g = ok->global;
  CHECK(g.steering == lb::steering_mode::redirect);
  CHECK(g.idle == lb::idle_policy::backoff);
  CHECK(g.idle_sleep_us == 200);
  CHECK(g.log == lb::log_level::debug);
  CHECK_FALSE(g.telemetry);
  CHECK(g.port_low == 2000);
  CHECK(g.port_high == 3000);
  CHECK(g.class_bits == 4);
  CHECK(g.timer_tick_ms == 5);
  CHECK(g.conns_per_lcore == 4096);
  CHECK(g.sa_pool_buckets == 32);
  CHECK(ok->timeouts.established == std::chrono::seconds(600));
  CHECK(ok->timeouts.udp_oneway == std::chrono::seconds(10));
  CHECK(ok->timeouts.udp_normal == std::chrono::seconds(300));
  CHECK(ok->timeouts.validate());
}

TEST_CASE("[port] values and what spans ports", "[config]") {
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"role word",
       {replaced(4, "role = middle"), "lb.ini:4: [port p0] role = middle: expected one of: client, server, both"}},
      {"no prefix length",
       {replaced(5, "address = 198.18.0.1"),
        "lb.ini:5: [port p0] address = 198.18.0.1: no prefix length; write ADDRESS/PREFIX, e.g. 198.18.0.1/24"}},
      {"prefix too long",
       {replaced(5, "address = 198.18.0.1/33"),
        "lb.ini:5: [port p0] address = 198.18.0.1/33: prefix length 33: out of range 1..32 for IPv4"}},
      {"IPv6 prefix too long",
       {replaced(5, "address = 2001:2:0:1::1/129"),
        "lb.ini:5: [port p0] address = 2001:2:0:1::1/129: prefix length 129: out of range 1..128 for IPv6"}},
      {"network address",
       {replaced(5, "address = 198.18.0.0/24"),
        "lb.ini:5: [port p0] address = 198.18.0.0/24: the network address of 198.18.0.0/24; give the port's own "
        "address"}},
      {"broadcast address",
       {replaced(5, "address = 198.18.0.255/24"),
        "lb.ini:5: [port p0] address = 198.18.0.255/24: the broadcast address of 198.18.0.0/24; give the port's own "
        "address"}},
      {"multicast address",
       {replaced(5, "address = 224.0.0.1/24"),
        "lb.ini:5: [port p0] address = 224.0.0.1/24: a multicast address cannot be used here"}},
      {"not an address",
       {replaced(5, "address = 198.18.0/24"),
        "lb.ini:5: [port p0] address = 198.18.0/24: not an IPv4 or IPv6 address"}},
      {"address twice",
       {replaced(6, "address = 198.18.0.1/25"),
        "lb.ini:6: [port p0] address = 198.18.0.1/25: given twice (first at line 5)"}},
      {"no address", {replaced(9, "# no address"), "lb.ini:7: [port p1]: no address; add 'address = ADDRESS/PREFIX'"}},
      {"overlapping networks",
       {replaced(9, "address = 198.18.0.77/16"),
        "lb.ini:9: [port p1] address = 198.18.0.77/16: its network overlaps 198.18.0.0/24 of [port p0] (line 3); a "
        "connected "
        "network belongs to one port"}},
      {"gateway off-link",
       {inserted(9, {"gateway = 198.18.3.1"}),
        "lb.ini:10: [port p1] gateway = 198.18.3.1: not inside a connected network of this port; add an address in its "
        "network"}},
      {"two gateways on a port",
       {inserted(9, {"gateway = 198.18.2.254", "gateway = 198.18.2.253"}),
        "lb.ini:11: [port p1] gateway = 198.18.2.253: a second IPv4 gateway (first at line 10); a port has one per "
        "family"}},
      {"two gateways over the ports",
       {inserted(9, {"gateway = 198.18.2.254"}) + "[port p2]\naddress = 198.19.0.1/24\ngateway = 198.19.0.254\n",
        "lb.ini:18: [port p2] gateway = 198.19.0.254: a second IPv4 gateway (first on [port p1], line 10); the "
        "balancer has "
        "one default route per family"}},
      {"neighbour without MAC",
       {inserted(9, {"neighbour = 198.18.2.11"}),
        "lb.ini:10: [port p1] neighbour = 198.18.2.11: expected ADDRESS MAC, e.g. 198.18.2.11 02:00:00:00:02:11"}},
      {"neighbour bad MAC",
       {inserted(9, {"neighbour = 198.18.2.11 02:00:00:00:02"}),
        "lb.ini:10: [port p1] neighbour = 198.18.2.11 02:00:00:00:02: '02:00:00:00:02' is not a MAC address "
        "(02:00:00:00:02:11)"}},
      {"neighbour group MAC",
       {inserted(9, {"neighbour = 198.18.2.11 ff:ff:ff:ff:ff:ff"}),
        "lb.ini:10: [port p1] neighbour = 198.18.2.11 ff:ff:ff:ff:ff:ff: a neighbour's MAC is unicast: not zero, not a "
        "group "
        "address"}},
      {"neighbour off-link",
       {inserted(9, {"neighbour = 198.18.0.2 02:00:00:00:00:02"}),
        "lb.ini:10: [port p1] neighbour = 198.18.0.2 02:00:00:00:00:02: not inside a connected network of this port; a "
        "neighbour is on-link"}},
      {"neighbour twice",
       {inserted(9, {"neighbour = 198.18.2.11 02:00:00:00:00:02", "neighbour = 198.18.2.11 02:00:00:00:00:03"}),
        "lb.ini:11: [port p1] neighbour = 198.18.2.11 02:00:00:00:00:03: this neighbour is given twice (first at line "
        "10)"}},
  };
  for (const auto& [name, c] : cases) {
    INFO(name);
    CHECK(error_of(c.first) == c.second);
  }
  auto ok =
      load(inserted(9, {"address = 2001:2:0:2::1/64", "gateway = 198.18.2.254", "gateway = 2001:2:0:2::fe",
                        "neighbour = 198.18.2.11 02:00:00:00:02:0B", "neighbour = 2001:2:0:2::12 02:00:00:00:02:0c"}));
  REQUIRE(ok);
  const auto& p1 = ok->ports[1];
  CHECK(p1.gateways == std::vector<fnat::inet_addr>{ip("198.18.2.254"), ip("2001:2:0:2::fe")});
  REQUIRE(p1.neighbours.size() == 2);
  CHECK(p1.neighbours[0].mac.to_string() == "02:00:00:00:02:0b");
  CHECK(p1.neighbours[1].line == 14);
  CHECK(p1.role == lb::port_role::server);
  CHECK(ok->ports[0].role == lb::port_role::client);
}

TEST_CASE("[service] values, families and reachability", "[config]") {
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"no vip", {replaced(11, "proto = tcp"), "lb.ini:10: [service web]: no vip; add 'vip = ADDRESS'"}},
      {"no vport", {replaced(12, "proto = tcp"), "lb.ini:10: [service web]: no vport; add 'vport = PORT'"}},
      {"no lip",
       {replaced(13, "proto = tcp"),
        "lb.ini:10: [service web]: no lip; add 'lip = ADDRESS' (a local address the balancer connects to real servers "
        "from)"}},
      {"no rs",
       {replaced(14, "proto = udp"),
        "lb.ini:10: [service web]: no rs; add 'rs = ADDRESS:PORT', optionally followed by weight=N"}},
      {"proto word",
       {inserted(12, {"proto = sctp"}), "lb.ini:13: [service web] proto = sctp: expected one of: tcp, udp"}},
      {"scheduler word",
       {inserted(12, {"scheduler = lc"}), "lb.ini:13: [service web] scheduler = lc: expected one of: rr, wrr, maglev"}},
      {"vport zero", {replaced(12, "vport = 0"), "lb.ini:12: [service web] vport = 0: out of range 1..65535"}},
      {"vip unspecified",
       {replaced(11, "vip = 0.0.0.0"),
        "lb.ini:11: [service web] vip = 0.0.0.0: the unspecified address cannot be used here"}},
      {"vip loopback",
       {replaced(11, "vip = 127.0.0.1"),
        "lb.ini:11: [service web] vip = 127.0.0.1: a loopback address cannot be used here"}},
      {"IPv6 LIP in an IPv4 service",
       {replaced(13, "lip = 2001:2:0:2::100"),
        "lb.ini:13: [service web] lip = 2001:2:0:2::100: an IPv6 LIP in a service whose VIP is IPv4; the VIP, LIPs and "
        "real "
        "servers of a service are of one family (no NAT64)"}},
      {"IPv6 RS in an IPv4 service",
       {replaced(14, "rs = [2001:2:0:2::11]:80"),
        "lb.ini:14: [service web] rs = [2001:2:0:2::11]:80: an IPv6 real server in a service whose VIP is IPv4; the "
        "VIP, "
        "LIPs and real servers of a service are of one family (no NAT64)"}},
      {"LIP twice",
       {inserted(13, {"lip = 198.18.2.100"}),
        "lb.ini:14: [service web] lip = 198.18.2.100: given twice (first at line 13)"}},
      {"LIP is the VIP",
       {replaced(13, "lip = 198.18.1.100"),
        "lb.ini:13: [service web] lip = 198.18.1.100: the LIP is the service's VIP; use another address"}},
      {"RS twice",
       {inserted(14, {"rs = 198.18.2.11:80 weight=3"}),
        "lb.ini:15: [service web] rs = 198.18.2.11:80 weight=3: this real server is given twice (first at line 14)"}},
      {"RS weight out of range",
       {replaced(14, "rs = 198.18.2.11:80 weight=70000"),
        "lb.ini:14: [service web] rs = 198.18.2.11:80 weight=70000: weight 70000: out of range 0..65535"}},
      {"RS weight not a number",
       {replaced(14, "rs = 198.18.2.11:80 weight=-1"),
        "lb.ini:14: [service web] rs = 198.18.2.11:80 weight=-1: weight -1: not a whole number"}},
      {"RS unknown option",
       {replaced(14, "rs = 198.18.2.11:80 wieght=2"),
        "lb.ini:14: [service web] rs = 198.18.2.11:80 wieght=2: 'wieght=2': unknown option; expected weight=N"}},
      {"RS weight twice",
       {replaced(14, "rs = 198.18.2.11:80 weight=2 weight=3"),
        "lb.ini:14: [service web] rs = 198.18.2.11:80 weight=2 weight=3: weight given twice"}},
      {"RS without port",
       {replaced(14, "rs = 198.18.2.11"), "lb.ini:14: [service web] rs = 198.18.2.11: no port; write ADDRESS:PORT"}},
      {"RS port zero",
       {replaced(14, "rs = 198.18.2.11:0"),
        "lb.ini:14: [service web] rs = 198.18.2.11:0: port 0: out of range 1..65535"}},
      {"RS IPv6 without brackets",
       {replaced(14, "rs = 2001:2:0:2::11:80"),
        "lb.ini:14: [service web] rs = 2001:2:0:2::11:80: write an IPv6 real server as [ADDRESS]:PORT"}},
      {"RS IPv4 in brackets",
       {replaced(14, "rs = [198.18.2.11]:80"),
        "lb.ini:14: [service web] rs = [198.18.2.11]:80: brackets are for IPv6 addresses; write an IPv4 real server as "
        "ADDRESS:PORT"}},
      {"VIP off every network",
       {replaced(11, "vip = 198.18.5.100"),
        "lb.ini:11: [service web] vip = 198.18.5.100: not inside a connected network of a port with role client or "
        "both, and "
        "no such port has an IPv4 gateway; add an address in its network to such a port"}},
      {"VIP on the server side",
       {replaced(11, "vip = 198.18.2.200"),
        "lb.ini:11: [service web] vip = 198.18.2.200: inside 198.18.2.0/24 of [port p1], whose role is server; a VIP "
        "lives on "
        "a port with role client or both"}},
      {"LIP on the client side",
       {replaced(13, "lip = 198.18.0.100"),
        "lb.ini:13: [service web] lip = 198.18.0.100: inside 198.18.0.0/24 of [port p0], whose role is client; a LIP "
        "lives on "
        "a port with role server or both"}},
      {"RS without a route",
       {replaced(14, "rs = 198.19.0.5:80"),
        "lb.ini:14: [service web] rs = 198.19.0.5:80: no route: not inside a connected network of any port, and no "
        "IPv4 "
        "gateway"}},
      {"RS behind the client port",
       {replaced(14, "rs = 198.18.0.50:80"),
        "lb.ini:14: [service web] rs = 198.18.0.50:80: reached through [port p0], whose role is client; give that port "
        "role = "
        "server or both, or fix the address"}},
      {"two services on one VIP, port and protocol",
       {text(base) + "[service web2]\nvip = 198.18.1.100\nvport = 80\nlip = 198.18.2.101\nrs = 198.18.2.12:80\n",
        "lb.ini:16: [service web2] vip = 198.18.1.100: 198.18.1.100:80 tcp is already served by [service web] (line "
        "10)"}},
      {"a LIP that is another service's VIP",
       {text(base) + "[service web2]\nvip = 198.18.1.101\nvport = 80\nlip = 198.18.2.101\nrs = 198.18.2.12:80\n" +
            "[service web3]\nvip = 198.18.1.102\nvport = 80\nlip = 198.18.1.101\nrs = 198.18.2.12:80\n",
        "lb.ini:23: [service web3] lip = 198.18.1.101: inside 198.18.1.0/24 of [port p0], whose role is client; a LIP "
        "lives on "
        "a port with role server or both"}},
      {"table size not prime",
       {inserted(12, {"scheduler = maglev", "maglev_table_size = 65536"}),
        "lb.ini:14: [service web] maglev_table_size = 65536: not a prime; try 65537 (the default is 65537)"}},
      {"table size without maglev",
       {inserted(12, {"maglev_table_size = 65537"}),
        "lb.ini:13: [service web] maglev_table_size = 65537: only scheduler = maglev has a table; remove this line or "
        "set "
        "scheduler = maglev"}},
      {"mss_clamp below the IPv4 minimum",
       {inserted(12, {"mss_clamp = 500"}),
        "lb.ini:13: [service web] mss_clamp = 500: below 536, the smallest MSS every IPv4 host must accept; give "
        "536..65535, or 0 to turn clamping off"}},
      {"mss_clamp out of range",
       {inserted(12, {"mss_clamp = 70000"}), "lb.ini:13: [service web] mss_clamp = 70000: out of range 0..65535"}},
      {"mss_clamp on a UDP service",
       {inserted(12, {"proto = udp", "mss_clamp = 1400"}),
        "lb.ini:14: [service web] mss_clamp = 1400: only TCP has an MSS; remove this line or set proto = tcp"}},
      {"client_address = proxy_protocol_v1 on a UDP service",
       {inserted(12, {"proto = udp", "client_address = proxy_protocol_v1"}),
        "lb.ini:14: [service web] client_address = proxy_protocol_v1: Proxy Protocol v1 is defined for TCP only; a "
        "UDP service takes client_address = proxy_protocol_v2 (a header on each datagram) or none"}},
      {"client_address = toa on a UDP service",
       {inserted(12, {"proto = udp", "client_address = toa"}),
        "lb.ini:14: [service web] client_address = toa: TOA is a TCP option; a UDP service takes client_address = "
        "proxy_protocol_v2 (a header on each datagram) or none"}},
      {"client_address unknown",
       {inserted(12, {"client_address = proxy_protocol_v3"}),
        "lb.ini:13: [service web] client_address = proxy_protocol_v3: expected one of: none, toa, proxy_protocol_v1, "
        "proxy_protocol_v2"}},
      {"mss_clamp below the IPv6 minimum",
       {text(base) + "[service web6]\nvip = 2001:2:0:3::100\nvport = 80\nlip = 2001:2:0:2::100\n"
                     "rs = [2001:2:0:2::11]:80\nmss_clamp = 1200\n",
        "lb.ini:20: [service web6] mss_clamp = 1200: below 1220, the smallest MSS every IPv6 host must accept; give "
        "1220..65535, or 0 to turn clamping off"}},
      {"table too small for the servers",
       {inserted(14, {"rs = 198.18.2.12:80", "rs = 198.18.2.13:80", "scheduler = maglev", "maglev_table_size = 3"}),
        "lb.ini:18: [service web] maglev_table_size = 3: maglev: 3 usable backends need a table larger than 3 entries "
        "(aim "
        "for 100 times the backend count)"}},
  };
  for (const auto& [name, c] : cases) {
    INFO(name);
    CHECK(error_of(c.first) == c.second);
  }
  // A LIP that is a VIP of another service, with the VIP network on a one-armed port.
  auto one_armed = text({"[global]", "workers = 1", "[port p0]", "address = 198.18.0.1/24", "[service a]",
                         "vip = 198.18.0.100", "vport = 80", "lip = 198.18.0.101", "rs = 198.18.0.11:80", "[service b]",
                         "vip = 198.18.0.101", "vport = 81", "lip = 198.18.0.102", "rs = 198.18.0.12:80"});
  CHECK(
      error_of(one_armed) ==
      "lb.ini:8: [service a] lip = 198.18.0.101: this address is the VIP of [service b] (line 10); a LIP is not a VIP");
  // Real servers behind a gateway; VIP routed by the client's router (a gateway on the client port).
  auto routed = load(text({"[global]",
                           "workers = 1",
                           "[port c]",
                           "role = client",
                           "address = 198.18.0.1/24",
                           "gateway = 198.18.0.254",
                           "[port s]",
                           "role = server",
                           "address = 198.18.2.1/24",
                           "[port s6]",
                           "role = both",
                           "address = 2001:2:0:2::1/64",
                           "gateway = 2001:2:0:2::fe",
                           "[service a]",
                           "vip = 198.18.9.9",
                           "vport = 53",
                           "proto = udp",
                           "lip = 198.18.2.100",
                           "rs = 198.18.2.11:53 weight=0",
                           "[service b]",
                           "vip = 2001:2:0:9::1",
                           "vport = 53",
                           "lip = 2001:2:0:7::1",
                           "rs = [2001:db8::1]:53",
                           "scheduler = maglev",
                           "maglev_table_size = 251"}));
  if (!routed) FAIL(routed.err().message());
  CHECK(routed->services[0].rss[0].weight == 0);
  auto hop = routed->routes.lookup(ip("2001:db8::1"));
  REQUIRE(hop);
  CHECK(hop.port == 2);
  CHECK_FALSE(hop.connected);
  CHECK(hop.addr == ip("2001:2:0:2::fe"));
  auto hop4 = routed->routes.lookup(ip("203.0.113.7"));
  REQUIRE(hop4);
  CHECK(hop4.port == 0);
  CHECK(hop4.addr == ip("198.18.0.254"));
  CHECK(routed->services[1].maglev_table_size == 251);
  CHECK(routed->services[0].mss_clamp == 0);  // off unless given
}

TEST_CASE("mss_clamp: 0 is off, the bounds per family are accepted", "[config]") {
  for (const char* v : {"0", "536", "1400", "65535"}) {
    auto lines = base;
    lines.push_back(std::string("mss_clamp = ") + v);
    auto c = lb::load_config(write(text(lines)));
    INFO(v);
    if (!c) FAIL(c.err().message());
    CHECK(c->services[0].mss_clamp == std::stoi(v));
  }
}

TEST_CASE("read_ini maps every entry to its line, as rte_cfgfile reads it", "[config]") {
  auto f =
      lb::read_ini(write("# head\r\n\n[global]  # g\r\nworkers=1,2\n  rs =  a b  \nrs=c # two\n[service x]\n"
                         "[service x]\nk = v=w\n",
                         "scan.ini"));
  REQUIRE(f);
  REQUIRE(f->sections.size() == 3);
  CHECK(f->sections[0].name == "global");
  CHECK(f->sections[0].line == 3);
  REQUIRE(f->sections[0].entries.size() == 3);
  CHECK(f->sections[0].entries[0].key == "workers");
  CHECK(f->sections[0].entries[0].value == "1,2");
  CHECK(f->sections[0].entries[0].line == 4);
  CHECK(f->sections[0].entries[1].value == "a b");
  CHECK(f->sections[0].entries[1].line == 5);
  CHECK(f->sections[0].entries[2].value == "c");
  CHECK(f->sections[0].entries[2].line == 6);
  CHECK(f->sections[1].entries.empty());
  CHECK(f->sections[2].line == 8);
  CHECK(f->sections[2].entries[0].value == "v=w");
  auto missing = lb::read_ini((dir() / "nope.ini").string());
  REQUIRE_FALSE(missing);
  CHECK(missing.err().message() == (dir() / "nope.ini").string() + ": cannot open: No such file or directory");
  // A file without a final newline, and an empty file.
  auto last = lb::read_ini(write("[a]\nk = v", "last.ini"));
  REQUIRE(last);
  CHECK(last->sections[0].entries[0].line == 2);
  auto empty = lb::read_ini(write("", "empty.ini"));
  REQUIRE(empty);
  CHECK(empty->sections.empty());
  // The longest line rte_cfgfile reads is accepted.
  auto longest = lb::read_ini(
      write("[a]\nk=" + std::string(lb::ini_max_line - 2 - 63, ' ') + std::string(63, 'v') + "\n", "longest.ini"));
  REQUIRE(longest);
  CHECK(longest->sections[0].entries[0].value == std::string(63, 'v'));
}

TEST_CASE("route table: longest connected prefix, then the family's gateway", "[config][route]") {
  lb::route_table t;
  t.add_connected(*lb::inet_prefix::parse("198.18.0.1/16"), 0);
  t.add_connected(*lb::inet_prefix::parse("198.18.2.1/24"), 1);
  t.add_connected(*lb::inet_prefix::parse("198.18.2.7/24"), 1);  // second address, same network
  t.add_connected(*lb::inet_prefix::parse("2001:2::1/32"), 0);
  t.add_connected(*lb::inet_prefix::parse("8000::1/1"), 1);  // a short IPv6 prefix
  CHECK(t.connected().size() == 4);
  CHECK(t.lookup(ip("198.18.2.9")).port == 1);
  CHECK(t.lookup(ip("198.18.3.9")).port == 0);
  CHECK(t.lookup(ip("2001:2:ffff::9")).port == 0);
  CHECK(t.lookup(ip("fe80::1")).port == 1);
  CHECK(t.lookup(ip("10.0.0.1")).rc == errc::not_found);
  t.add_connected(*lb::inet_prefix::parse("::2/1"), 0);  // would cover ::ffff:a.b.c.d if families mixed
  CHECK(t.lookup(ip("10.0.0.1")).rc == errc::not_found);
  t.set_gateway(ip("198.18.2.254"), 1);
  auto h = t.lookup(ip("10.0.0.1"));
  REQUIRE(h);
  CHECK(h.port == 1);
  CHECK(h.addr == ip("198.18.2.254"));
  CHECK_FALSE(h.connected);
  REQUIRE(t.gateway_of(fnat::ip_family::v4));
  CHECK_FALSE(t.gateway_of(fnat::ip_family::v6));

  auto p = lb::inet_prefix::parse("198.18.2.77/23");
  REQUIRE(p);
  CHECK(p->network().to_string() == "198.18.2.0/23");
  CHECK(p->contains(ip("198.18.3.1")));
  CHECK_FALSE(p->contains(ip("198.18.4.1")));
  CHECK_FALSE(p->contains(ip("::c612:301")));  // same low bits, other family
  CHECK(lb::inet_prefix::parse("2001:2:0:2::1/61")->network().to_string() == "2001:2::/61");
  CHECK_FALSE(lb::inet_prefix::parse("198.18.0.1"));
  CHECK_FALSE(lb::inet_prefix::parse("198.18.0.1/33"));
  CHECK_FALSE(lb::inet_prefix::parse("198.18.0.1/"));
  CHECK_FALSE(lb::inet_prefix::parse("198.18.0.1/2x"));
  CHECK(lb::inet_prefix::parse("10.0.0.0/8")->overlaps(*lb::inet_prefix::parse("10.1.0.0/16")));
  CHECK_FALSE(lb::inet_prefix::parse("10.0.0.0/16")->overlaps(*lb::inet_prefix::parse("10.1.0.0/16")));
}

namespace {
struct fake_ports {
  std::map<std::string, std::uint16_t> ports;
  std::optional<std::uint16_t> find(const std::string& n) const {
    auto it = ports.find(n);
    if (it == ports.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const auto& [n, id] : ports) v.push_back(n);
    return v;
  }
};
}  // namespace

TEST_CASE("resolve_ports matches port names to devices, all or nothing", "[config]") {
  auto c = load(text(base));
  REQUIRE(c);
  auto r = lb::resolve_ports(*c, fake_ports{{{"p0", 3}, {"net_ring0", 0}}});
  REQUIRE_FALSE(r);
  CHECK(r.err().code() == errc::not_found);
  CHECK(r.err().message() ==
        (dir() / "lb.ini").string() +
            ":7: [port p1]: no DPDK port has this name (ports: net_ring0, p0); add the device to the "
            "EAL arguments (--vdev net_af_packetN,iface=IFNAME for an af_packet port, -a "
            "PCI_ADDRESS for a NIC) or fix the name");
  CHECK_FALSE(c->ports[0].port_id);  // nothing set on error
  REQUIRE(lb::resolve_ports(*c, fake_ports{{{"p0", 3}, {"p1", 5}}}));
  CHECK(c->ports[0].port_id == 3);
  CHECK(c->ports[1].port_id == 5);
}

TEST_CASE("resolve_ports finds ethdev ports by name once EAL is up", "[config][eal]") {
  fnat::test::require_eal();
  fnat::test::ring_port ring("fnat_cfg_ring", 1);  // ethdev names it net_ring_fnat_cfg_ring
  auto c = load(replaced(7, "[port net_ring_fnat_cfg_ring]"));
  REQUIRE(c);
  auto r = lb::resolve_ports(*c);
  REQUIRE_FALSE(r);
  CHECK(r.err().message().find(":3: [port p0]: no DPDK port has this name (ports: ") != std::string::npos);
  CHECK(r.err().message().find("net_ring_fnat_cfg_ring") != std::string::npos);
  c->ports.erase(c->ports.begin());  // keep only the ring port
  auto ok = lb::resolve_ports(*c);
  if (!ok) FAIL(ok.err().message());
  CHECK(c->ports[0].port_id == ring.port_id());
}
