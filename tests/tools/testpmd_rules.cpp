// SPDX-License-Identifier: BSD-3-Clause
// Prints fnat's flow rules as dpdk-testpmd `flow validate` commands for tests/dpdk/testpmd_syntax.sh:
// one per line, "OK <command>" for the rules fnat builds (every plan shape, both families and
// protocols, the installer's variants) and "BAD <command>" for deliberately malformed copies, which the
// parser must reject before they reach the PMD. No EAL needed.
#include <fnat/dpdk/flow_rules.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace {

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

}  // namespace

int main() {
  using fnat::inet_addr;
  const std::vector<inet_addr> lips = {*inet_addr::parse("198.18.0.1"), *inet_addr::parse("198.19.255.254"),
                                       *inet_addr::parse("2001:2::1"), *inet_addr::parse("2001:2:0:ffff::abcd")};
  struct shape {
    std::size_t lcores;
    unsigned class_bits;
    fnat::dpdk::flow_build_options opts;
  };
  const std::vector<shape> shapes = {{1, 0, {}},
                                     {2, 0, {}},
                                     {3, 0, {}},
                                     {6, 0, {}},
                                     {8, 0, {}},
                                     {16, 0, {}},
                                     {64, 0, {}},
                                     {5, 6, {}},
                                     {8, 5, {}},
                                     {4, 0, {.group = 0, .priority = 3}},
                                     {4, 0, {.eth_item = false}},
                                     {7, 0, {.merge_classes = false}}};
  std::set<std::string> ok;
  std::vector<fnat::dpdk::flow_rule> samples;
  for (const auto& s : shapes) {
    std::vector<fnat::lcore_queue> lc;
    for (std::size_t i = 0; i < s.lcores; ++i)
      lc.push_back({static_cast<unsigned>(i + 1), static_cast<std::uint16_t>(i)});
    auto plan = fnat::port_plan::make({.lcores = lc, .class_bits = s.class_bits});
    if (!plan) {
      std::fprintf(stderr, "%s\n", plan.err().what().c_str());
      return 1;
    }
    auto rules = fnat::dpdk::build_flow_rules(*plan, lips, s.opts);
    if (!rules) {
      std::fprintf(stderr, "%s\n", rules.err().what().c_str());
      return 1;
    }
    for (auto v : {fnat::dpdk::flow_variant::as_built,
                   fnat::dpdk::flow_variant::priority_zero | fnat::dpdk::flow_variant::no_eth,
                   fnat::dpdk::flow_variant::uniform_mask}) {
      // Up to 24 rules per shape and variant, spread over the list (so over every LIP and protocol):
      // the forms matter to the parser, not the count.
      const auto set = fnat::dpdk::apply_variant(*rules, v);
      const std::size_t stride = (set.size() + 23) / 24;
      for (std::size_t i = 0; i < set.size(); i += stride)
        if (ok.insert(set[i].to_testpmd(0, "validate")).second && samples.size() < 64) samples.push_back(set[i]);
    }
  }
  // A single port and a full mask, as an operator might write them.
  for (const auto* a : {"198.18.0.9", "2001:2::9"})
    for (std::uint8_t proto : {fnat::ipproto::tcp, fnat::ipproto::udp}) {
      auto r = fnat::dpdk::flow_rule::make(
          {.dst = *inet_addr::parse(a), .proto = proto, .port_base = 65535, .port_mask = 0xffff, .queue = 2});
      ok.insert(r->to_testpmd(0, "validate"));
    }
  // Address-only rules (one LIP per lcore, reply_steering.hpp): no L4 item, with and without ETH.
  for (const auto* a : {"198.18.0.9", "2001:2::9"})
    for (bool eth : {true, false}) {
      auto r = fnat::dpdk::flow_rule::make(
          {.eth_item = eth, .dst = *inet_addr::parse(a), .proto = fnat::dpdk::flow_any_proto, .queue = 1});
      ok.insert(r->to_testpmd(0, "validate"));
    }
  for (const auto& line : ok) std::printf("OK %s\n", line.c_str());

  // Malformed copies: each breaks one token the parser checks.
  for (std::size_t i = 0; i < samples.size(); i += 9) {
    const std::string good = samples[i].to_testpmd(0, "validate");
    const std::vector<std::string> bad = {
        replace_once(good, " dst is ", " dst iz "),
        replace_once(good, " queue index ", " queue idx "),
        replace_once(good, "ingress pattern", "ingress patern"),
        good.substr(0, good.size() - std::string(" / end").size()),  // actions without END
        replace_once(good, " / end actions", " actions"),            // pattern without END
        replace_once(replace_once(good, "198.18.0.1", "198.18.0.300"), "2001:2::1 ", "2001:2::1::1 "),
    };
    for (const auto& b : bad)
      if (b != good) std::printf("BAD %s\n", b.c_str());
  }
  return 0;
}
