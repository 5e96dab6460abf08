// SPDX-License-Identifier: BSD-3-Clause
// fnat_lb's configuration loader (the format and the checks are described in config.hpp).
#include "fnat_lb/config.hpp"

#include <rte_build_config.h>
#include <rte_ethdev.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>

namespace fnat::lb {

std::string_view to_string(steering_mode m) noexcept {
  switch (m) {
    case steering_mode::automatic:
      return "auto";
    case steering_mode::flow:
      return "flow";
    case steering_mode::rss:
      return "rss";
    case steering_mode::redirect:
      return "redirect";
    case steering_mode::lip_per_lcore:
      return "lip_per_lcore";
  }
  return "unknown";
}
std::string_view to_string(client_address_mode m) noexcept {
  switch (m) {
    case client_address_mode::none: return "none";
    case client_address_mode::toa: return "toa";
    case client_address_mode::proxy_protocol_v1: return "proxy_protocol_v1";
    case client_address_mode::proxy_protocol_v2: return "proxy_protocol_v2";
  }
  return "unknown";
}
std::string_view to_string(syn_refusal r) noexcept { return r == syn_refusal::drop ? "drop" : "rst"; }
std::string_view to_string(idle_policy p) noexcept { return p == idle_policy::busy ? "busy" : "backoff"; }
std::string_view to_string(log_level l) noexcept {
  switch (l) {
    case log_level::error:
      return "error";
    case log_level::warning:
      return "warning";
    case log_level::notice:
      return "notice";
    case log_level::info:
      return "info";
    case log_level::debug:
      return "debug";
  }
  return "unknown";
}
std::string_view to_string(port_role r) noexcept {
  switch (r) {
    case port_role::client:
      return "client";
    case port_role::server:
      return "server";
    case port_role::both:
      return "both";
  }
  return "unknown";
}

namespace {

// ---- the line scan ------------------------------------------------------------------------------

// One parser, our own. rte_cfgfile was run beside it until 2026-12 (and the two compared), but it
// keeps no line numbers, which every message below needs ("lb.ini:14: ..."), and it skips or
// truncates what it cannot read instead of saying so; a scanner that must find those lines anyway
// is the whole parser, so the second one only added a way to disagree. The limits stay
// rte_cfgfile's (names 63, values 255, lines 322 characters), so a file valid here loads in DPDK's
// own tools and the other way round.
constexpr char comment_char = '#';
constexpr std::size_t max_name = 63;
constexpr std::size_t max_value = 255;
static_assert(ini_max_line == max_name + 1 + max_value + 1 + 4 - 2);

std::string_view strip(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

// Per line (rte_cfgfile's rules, with what it would skip or truncate rejected): cut at the first
// comment character (backslashes, which rte_cfgfile reads as an escape of '#', are rejected), strip
// whitespace, "[" opens a section up to the first "]", otherwise the first "=" splits key and value;
// any other line is an error.
result<ini_file> scan(const std::string& path) {
  std::unique_ptr<std::FILE, file_closer> f(std::fopen(path.c_str(), "r"));
  if (!f) return error(errc::invalid_argument, path + ": cannot open: " + std::strerror(errno));
  ini_file out;
  out.path = path;
  auto fail = [&](unsigned line, const std::string& what) {
    return error(errc::invalid_argument, path + ":" + std::to_string(line) + ": " + what);
  };
  std::string raw;
  unsigned lineno = 0;
  for (int c = 0; c != EOF;) {
    raw.clear();
    while ((c = std::fgetc(f.get())) != EOF && c != '\n') raw.push_back(static_cast<char>(c));
    if (c == EOF && raw.empty()) break;
    ++lineno;
    if (raw.size() > ini_max_line)
      return fail(lineno, "the line is " + std::to_string(raw.size()) + " characters long; a line has at most " +
                              std::to_string(ini_max_line));
    if (raw.find('\0') != std::string::npos) return fail(lineno, "the line holds a NUL byte");
    std::string_view text = raw;
    if (const auto hash = text.find(comment_char); hash != std::string_view::npos) {
      if (hash > 0 && text[hash - 1] == '\\') return fail(lineno, "a backslash has no meaning in this file; remove it");
      text = text.substr(0, hash);
    }
    text = strip(text);
    if (text.empty()) continue;
    if (text.find('\\') != std::string_view::npos)
      return fail(lineno, "a backslash has no meaning in this file; remove it");
    if (text.front() == '[') {
      const auto close = text.find(']');
      if (close == std::string_view::npos) return fail(lineno, quote(text) + ": no closing ']'");
      if (!strip(text.substr(close + 1)).empty())
        return fail(lineno, quote(text) + ": text after ']'; put a key on a line of its own");
      const auto name = strip(text.substr(1, close - 1));
      if (name.size() > max_name)
        return fail(lineno, "[" + std::string(name) + "]: a section name has at most " + std::to_string(max_name) +
                                " characters");
      out.sections.push_back({std::string(name), lineno, {}});
      continue;
    }
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) return fail(lineno, quote(text) + ": expected '[section]' or 'key = value'");
    const auto key = strip(text.substr(0, eq));
    const auto value = strip(text.substr(eq + 1));
    const std::string where = out.sections.empty() ? std::string() : "[" + out.sections.back().name + "] ";
    if (out.sections.empty())
      return fail(lineno, quote(text) + ": comes before any [section]; start the file with [global]");
    if (key.empty()) return fail(lineno, where + quote(text) + ": no key before '='");
    if (value.empty()) return fail(lineno, where + std::string(key) + ": no value after '='");
    if (key.size() > max_name)
      return fail(lineno, where + quote(key) + ": a key has at most " + std::to_string(max_name) + " characters");
    if (value.size() > max_value)
      return fail(lineno, where + std::string(key) + ": the value has " + std::to_string(value.size()) +
                              " characters; a value has at most " + std::to_string(max_value));
    out.sections.back().entries.push_back({std::string(key), std::string(value), lineno});
  }
  if (std::ferror(f.get())) return error(errc::invalid_argument, path + ": read error: " + std::strerror(errno));
  return out;
}

}  // namespace

result<ini_file> read_ini(const std::string& path) { return scan(path); }

// ---- values -------------------------------------------------------------------------------------

namespace {

// A message for "what is wrong with this value"; the caller adds where.
using problem = std::optional<std::string>;

result<std::uint64_t> parse_uint(std::string_view v, std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t x = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || end != v.data() + v.size() || (ec != std::errc{} && ec != std::errc::result_out_of_range) ||
      !std::isdigit(static_cast<unsigned char>(v.front())))
    return error(errc::invalid_argument, "not a whole number");
  if (ec == std::errc::result_out_of_range || x < lo || x > hi)
    return error(errc::invalid_argument, "out of range " + std::to_string(lo) + ".." + std::to_string(hi));
  return x;
}

template <class E>
result<E> parse_word(std::string_view v, std::initializer_list<std::pair<std::string_view, E>> words) {
  std::string list;
  for (const auto& [w, e] : words) {
    if (v == w) return e;
    list += (list.empty() ? "" : ", ") + std::string(w);
  }
  return error(errc::invalid_argument, "expected one of: " + list);
}

result<bool> parse_bool(std::string_view v) {
  for (std::string_view t : {"on", "yes", "true", "1"})
    if (v == t) return true;
  for (std::string_view f : {"off", "no", "false", "0"})
    if (v == f) return false;
  return error(errc::invalid_argument, "expected on or off");
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto p = s.find(sep);
    out.push_back(strip(s.substr(0, p)));
    if (p == std::string_view::npos) return out;
    s = s.substr(p + 1);
  }
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  s = strip(s);
  while (!s.empty()) {
    std::size_t n = 0;
    while (n < s.size() && !std::isspace(static_cast<unsigned char>(s[n]))) ++n;
    out.push_back(s.substr(0, n));
    s = strip(s.substr(n));
  }
  return out;
}

result<std::vector<unsigned>> parse_lcores(std::string_view v) {
  std::vector<unsigned> out;
  const auto max = static_cast<std::uint64_t>(RTE_MAX_LCORE - 1);
  for (auto item : split(v, ',')) {
    const auto dash = item.find('-');
    auto first = parse_uint(strip(item.substr(0, dash)), 0, max);
    auto last = dash == std::string_view::npos ? first : parse_uint(strip(item.substr(dash + 1)), 0, max);
    if (!first || !last) {
      const auto& e = !first ? first.err() : last.err();
      if (e.message() == "not a whole number")
        return error(errc::invalid_argument, "not a list of lcore ids (e.g. 1,2 or 1-3)");
      return error(errc::invalid_argument, "lcore " + std::string(item) + " is " + e.message() + " (RTE_MAX_LCORE " +
                                               std::to_string(RTE_MAX_LCORE) + ")");
    }
    if (*first > *last) return error(errc::invalid_argument, "lcore range " + std::string(item) + " runs backwards");
    for (auto id = *first; id <= *last; ++id) {
      if (std::find(out.begin(), out.end(), id) != out.end())
        return error(errc::invalid_argument, "lcore " + std::to_string(id) + " is listed twice");
      out.push_back(static_cast<unsigned>(id));
    }
  }
  return out;
}

bool is_loopback(const inet_addr& a) {
  return a.is_v4() ? (a.v4().host() >> 24) == 127 : a == inet_addr(*ipv6_addr::parse("::1"));
}
bool is_multicast(const inet_addr& a) { return a.is_v4() ? (a.v4().host() >> 28) == 0xe : a.raw()[0] == 0xff; }

// What makes an address unusable as a VIP, LIP, RS, gateway, neighbour or interface address.
problem unusable(const inet_addr& a) {
  if (a.is_unspecified()) return "the unspecified address cannot be used here";
  if (is_multicast(a)) return "a multicast address cannot be used here";
  if (a.is_v4() && a.v4().host() == 0xffffffffu) return "the broadcast address cannot be used here";
  if (is_loopback(a)) return "a loopback address cannot be used here";
  return std::nullopt;
}

result<inet_addr> parse_host(std::string_view v) {
  auto a = inet_addr::parse(v);
  if (!a) return error(errc::invalid_argument, "not an IPv4 or IPv6 address");
  if (auto p = unusable(*a)) return error(errc::invalid_argument, *p);
  return *a;
}

result<inet_prefix> parse_iface(std::string_view v) {
  const auto slash = v.find('/');
  if (slash == std::string_view::npos)
    return error(errc::invalid_argument, "no prefix length; write ADDRESS/PREFIX, e.g. 198.18.0.1/24");
  auto a = parse_host(v.substr(0, slash));
  if (!a) return a.err();
  const unsigned width = inet_prefix::width(a->family());
  auto len = parse_uint(v.substr(slash + 1), 1, width);
  if (!len)
    return error(errc::invalid_argument, "prefix length " + std::string(v.substr(slash + 1)) + ": " +
                                             len.err().message() + " for " + std::string(a->is_v4() ? "IPv4" : "IPv6"));
  inet_prefix p{*a, static_cast<std::uint8_t>(*len)};
  if (a->is_v4() && *len <= 30) {
    const std::uint32_t host_mask = (std::uint32_t{1} << (32 - *len)) - 1;
    const std::uint32_t h = a->v4().host() & host_mask;
    if (h == 0 || h == host_mask)
      return error(errc::invalid_argument, std::string(h == 0 ? "the network" : "the broadcast") + " address of " +
                                               p.network().to_string() + "; give the port's own address");
  }
  return p;
}

struct rs_value {
  endpoint addr;
  std::uint32_t weight = 1;
};

result<rs_value> parse_rs(std::string_view v) {
  auto w = words(v);
  const std::string_view ep = w.empty() ? std::string_view{} : w[0];
  std::string_view host, port;
  if (!ep.empty() && ep.front() == '[') {
    const auto close = ep.find(']');
    if (close == std::string_view::npos || close + 1 >= ep.size() || ep[close + 1] != ':')
      return error(errc::invalid_argument, "write an IPv6 real server as [ADDRESS]:PORT");
    host = ep.substr(1, close - 1);
    port = ep.substr(close + 2);
    if (host.find(':') == std::string_view::npos)
      return error(errc::invalid_argument,
                   "brackets are for IPv6 addresses; write an IPv4 real server as ADDRESS:PORT");
  } else {
    const auto colon = ep.rfind(':');
    if (colon == std::string_view::npos) return error(errc::invalid_argument, "no port; write ADDRESS:PORT");
    host = ep.substr(0, colon);
    port = ep.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return error(errc::invalid_argument, "write an IPv6 real server as [ADDRESS]:PORT");
  }
  auto a = parse_host(host);
  if (!a) return a.err();
  auto p = parse_uint(port, 1, 65535);
  if (!p) return error(errc::invalid_argument, "port " + std::string(port) + ": " + p.err().message());
  rs_value out{{*a, static_cast<std::uint16_t>(*p)}, 1};
  bool weight_seen = false;
  for (std::size_t i = 1; i < w.size(); ++i) {
    if (w[i].substr(0, 7) != "weight=")
      return error(errc::invalid_argument, quote(w[i]) + ": unknown option; expected weight=N");
    if (weight_seen) return error(errc::invalid_argument, "weight given twice");
    weight_seen = true;
    auto x = parse_uint(w[i].substr(7), 0, sched_max_weight);
    if (!x) return error(errc::invalid_argument, "weight " + std::string(w[i].substr(7)) + ": " + x.err().message());
    out.weight = static_cast<std::uint32_t>(*x);
  }
  return out;
}

std::string family_name(ip_family f) { return f == ip_family::v4 ? "IPv4" : "IPv6"; }
std::string proto_name(std::uint8_t p) { return p == ipproto::udp ? "udp" : "tcp"; }

// ---- the parser ---------------------------------------------------------------------------------

// Where an entry came from, kept next to what it produced until the cross-section checks are done.
struct located {
  const ini_section* sec = nullptr;
  const ini_entry* ent = nullptr;
};

class parser {
 public:
  explicit parser(const ini_file& f) : file_(f) {}

  result<lb_config> run() {
    cfg_.source = file_.path;
    for (const auto& sec : file_.sections)
      if (auto e = section(sec)) return *e;
    if (auto e = finish()) return *e;
    return std::move(cfg_);
  }

 private:
  using failure = std::optional<error>;

  error at(const ini_section& s, const std::string& what) const {
    return error(errc::invalid_argument, file_.path + ":" + std::to_string(s.line) + ": [" + s.name + "]: " + what);
  }
  error at(located l, const std::string& what) const {
    return error(errc::invalid_argument, file_.path + ":" + std::to_string(l.ent->line) + ": [" + l.sec->name + "] " +
                                             l.ent->key + " = " + l.ent->value + ": " + what);
  }
  error at_file(const std::string& what) const { return error(errc::invalid_argument, file_.path + ": " + what); }
  std::string line_ref(unsigned line) const { return "line " + std::to_string(line); }

  // Dispatches one section's keys. `single` keys may appear once, `multi` keys any number of times.
  using handler = std::function<failure(located)>;
  failure keys(const ini_section& sec, const std::vector<std::pair<std::string_view, handler>>& single,
               const std::vector<std::pair<std::string_view, handler>>& multi) {
    std::map<std::string, unsigned> seen;
    for (const auto& ent : sec.entries) {
      const located l{&sec, &ent};
      const handler* h = nullptr;
      for (const auto& [k, f] : single)
        if (ent.key == k) {
          if (auto it = seen.find(ent.key); it != seen.end())
            return at(l, "given twice (first at " + line_ref(it->second) + ")");
          seen.emplace(ent.key, ent.line);
          h = &f;
        }
      for (const auto& [k, f] : multi)
        if (ent.key == k) h = &f;
      if (h == nullptr) {
        std::string known;
        for (const auto& [k, f] : single) known += (known.empty() ? "" : ", ") + std::string(k);
        for (const auto& [k, f] : multi) known += (known.empty() ? "" : ", ") + std::string(k);
        return at(l, "unknown key; [" + kind_of(sec.name) + "] takes " + known);
      }
      if (auto e = (*h)(l)) return e;
    }
    return std::nullopt;
  }

  static std::string kind_of(const std::string& name) {
    const auto sp = name.find_first_of(" \t");
    return sp == std::string::npos ? name : name.substr(0, sp) + " NAME";
  }

  // Runs a value parser and stores its value, or turns its error into "FILE:LINE: [...] k = v: what".
  template <class T, class F, class Store>
  failure value(located l, F&& parse, Store&& store) {
    result<T> r = parse(std::string_view(l.ent->value));
    if (!r) return at(l, r.err().message());
    store(std::move(*r));
    return std::nullopt;
  }
  handler uint_key(std::uint64_t lo, std::uint64_t hi, std::function<void(std::uint64_t)> store) {
    return [this, lo, hi, store](located l) {
      return value<std::uint64_t>(
          l, [&](std::string_view v) { return parse_uint(v, lo, hi); }, store);
    };
  }

  failure section(const ini_section& sec) {
    const auto sp = sec.name.find_first_of(" \t");
    const std::string head = sec.name.substr(0, sp);
    const std::string name =
        sp == std::string::npos ? std::string() : std::string(strip(std::string_view(sec.name).substr(sp)));
    if (head == "global" || head == "timeouts") {
      if (!name.empty()) return at(sec, "[" + head + "] takes no name");
      unsigned& first = head == "global" ? global_line_ : timeouts_line_;
      if (first != 0) return at(sec, "given twice (first at " + line_ref(first) + ")");
      first = sec.line;
      return head == "global" ? global(sec) : timeouts(sec);
    }
    if (head == "port" || head == "service") {
      if (name.empty())
        return at(sec, head == "port" ? "a port section needs the DPDK port name: [port net_af_packet0]"
                                      : "a service section needs a name: [service web]");
      if (name.find_first_of(" \t") != std::string::npos) return at(sec, "a " + head + " name has no spaces");
      auto& names = head == "port" ? port_names_ : service_names_;
      if (auto it = names.find(name); it != names.end())
        return at(sec, "given twice (first at " + line_ref(it->second) + ")");
      names.emplace(name, sec.line);
      return head == "port" ? port(sec, name) : service(sec, name);
    }
    return at(sec, "unknown section; use [global], [timeouts], [port NAME] or [service NAME]");
  }

  // ---- [global] ----
  failure global(const ini_section& sec) {
    auto& g = cfg_.global;
    bool have_workers = false;
    auto e = keys(
        sec,
        {
            {"workers",
             [&](located l) {
               have_workers = true;
               workers_at_ = l;
               return value<std::vector<unsigned>>(l, parse_lcores, [&](auto v) { g.workers = std::move(v); });
             }},
            {"steering",
             [&](located l) {
               return value<steering_mode>(
                   l,
                   [](std::string_view v) {
                     return parse_word<steering_mode>(v, {{"auto", steering_mode::automatic},
                                                          {"flow", steering_mode::flow},
                                                          {"rss", steering_mode::rss},
                                                          {"redirect", steering_mode::redirect},
                                                          {"lip_per_lcore", steering_mode::lip_per_lcore}});
                   },
                   [&](steering_mode m) { g.steering = m; });
             }},
            {"idle",
             [&](located l) {
               return value<idle_policy>(
                   l,
                   [](std::string_view v) {
                     return parse_word<idle_policy>(v,
                                                    {{"busy", idle_policy::busy}, {"backoff", idle_policy::backoff}});
                   },
                   [&](idle_policy p) { g.idle = p; });
             }},
            {"idle_sleep_us",
             uint_key(1, 1'000'000, [&](std::uint64_t x) { g.idle_sleep_us = static_cast<std::uint32_t>(x); })},
            {"conns_per_lcore", uint_key(1, std::uint64_t{1} << 27,
                                         [&](std::uint64_t x) { g.conns_per_lcore = static_cast<std::uint32_t>(x); })},
            {"sa_pool_buckets",
             uint_key(1, 4096, [&](std::uint64_t x) { g.sa_pool_buckets = static_cast<std::uint32_t>(x); })},
            {"local_ports",
             [&](located l) {
               ports_at_ = l;
               return value<std::pair<std::uint16_t, std::uint16_t>>(
                   l,
                   [](std::string_view v) -> result<std::pair<std::uint16_t, std::uint16_t>> {
                     const auto dash = v.find('-');
                     if (dash == std::string_view::npos)
                       return error(errc::invalid_argument, "expected a range LOW-HIGH, e.g. 1025-65535");
                     auto lo = parse_uint(strip(v.substr(0, dash)), 1, 65535);
                     auto hi = parse_uint(strip(v.substr(dash + 1)), 1, 65535);
                     if (!lo) return error(errc::invalid_argument, "low port: " + lo.err().message());
                     if (!hi) return error(errc::invalid_argument, "high port: " + hi.err().message());
                     if (*lo > *hi) return error(errc::invalid_argument, "the low port is above the high port");
                     return std::pair{static_cast<std::uint16_t>(*lo), static_cast<std::uint16_t>(*hi)};
                   },
                   [&](auto r) {
                     g.port_low = r.first;
                     g.port_high = r.second;
                   });
             }},
            {"class_bits",
             [&](located l) {
               class_bits_at_ = l;
               return uint_key(0, port_plan::max_class_bits,
                               [&](std::uint64_t x) { g.class_bits = static_cast<unsigned>(x); })(l);
             }},
            {"timer_tick_ms",
             uint_key(1, 1000, [&](std::uint64_t x) { g.timer_tick_ms = static_cast<std::uint32_t>(x); })},
            {"log_level",
             [&](located l) {
               return value<log_level>(
                   l,
                   [](std::string_view v) {
                     return parse_word<log_level>(v, {{"error", log_level::error},
                                                      {"warning", log_level::warning},
                                                      {"notice", log_level::notice},
                                                      {"info", log_level::info},
                                                      {"debug", log_level::debug}});
                   },
                   [&](log_level x) { g.log = x; });
             }},
            {"telemetry", [&](located l) { return value<bool>(l, parse_bool, [&](bool b) { g.telemetry = b; }); }},
            {"conn_table_capacity", uint_key(0, std::uint64_t{1} << 27, [&](std::uint64_t x) {
               g.conn_table_capacity = static_cast<std::uint32_t>(x);
             })},
            {"max_half_open",
             uint_key(0, std::uint64_t{1} << 27, [&](std::uint64_t x) { g.max_half_open = static_cast<std::uint32_t>(x); })},
            {"max_udp_oneway",
             uint_key(0, std::uint64_t{1} << 27, [&](std::uint64_t x) { g.max_udp_oneway = static_cast<std::uint32_t>(x); })},
            {"syn_refusal",
             [&](located l) {
               return value<syn_refusal>(
                   l,
                   [](std::string_view v) {
                     return parse_word<syn_refusal>(v, {{"drop", syn_refusal::drop}, {"rst", syn_refusal::rst}});
                   },
                   [&](syn_refusal r) { g.refusal = r; });
             }},
            {"rst_rate", uint_key(1, 10'000'000, [&](std::uint64_t x) { g.rst_rate = static_cast<std::uint32_t>(x); })},
            {"rst_burst", uint_key(1, 10'000'000, [&](std::uint64_t x) { g.rst_burst = static_cast<std::uint32_t>(x); })},
            {"frag_entries",
             uint_key(16, 1u << 20, [&](std::uint64_t x) { g.frag_entries = static_cast<std::uint32_t>(x); })},
            {"frag_timeout_ms",
             uint_key(10, 60000, [&](std::uint64_t x) { g.frag_timeout_ms = static_cast<std::uint32_t>(x); })},
        },
        {});
    if (e) return e;
    if (!have_workers) return at(sec, "no workers; add 'workers = LCORES', e.g. workers = 1,2 (EAL lcore ids)");
    return std::nullopt;
  }

  // ---- [timeouts] ----
  failure timeouts(const ini_section& sec) {
    auto& t = cfg_.timeouts;
    using dur = conn_timeouts::duration;
    const auto max_s = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(conn_timeouts::max_timeout).count());
    auto secs = [&](dur& field) {
      return uint_key(1, max_s, [&field](std::uint64_t x) { field = std::chrono::seconds(x); });
    };
    return keys(sec,
                {
                    {"tcp_none", secs(t.none)},
                    {"tcp_established", secs(t.established)},
                    {"tcp_syn_sent", secs(t.syn_sent)},
                    {"tcp_syn_recv", secs(t.syn_recv)},
                    {"tcp_fin_wait", secs(t.fin_wait)},
                    {"tcp_time_wait", secs(t.time_wait)},
                    {"tcp_close", secs(t.close)},
                    {"tcp_close_wait", secs(t.close_wait)},
                    {"tcp_last_ack", secs(t.last_ack)},
                    {"tcp_listen", secs(t.listen)},
                    {"tcp_synack", secs(t.synack)},
                    {"udp_oneway", secs(t.udp_oneway)},
                    {"udp_normal", secs(t.udp_normal)},
                },
                {});
  }

  // ---- [port NAME] ----
  struct port_extra {
    const ini_section* sec = nullptr;
    std::vector<located> addresses, gateways, neighbours;
  };

  failure port(const ini_section& sec, const std::string& name) {
    port_config p;
    p.name = name;
    p.line = sec.line;
    port_extra x;
    x.sec = &sec;
    auto e = keys(
        sec,
        {
            {"role",
             [&](located l) {
               return value<port_role>(
                   l,
                   [](std::string_view v) {
                     return parse_word<port_role>(
                         v, {{"client", port_role::client}, {"server", port_role::server}, {"both", port_role::both}});
                   },
                   [&](port_role r) { p.role = r; });
             }},
            {"mtu", uint_key(576, 9000, [&](std::uint64_t x) { p.mtu = static_cast<std::uint16_t>(x); })},
        },
        {
            {"address",
             [&](located l) {
               x.addresses.push_back(l);
               return value<inet_prefix>(l, parse_iface, [&](inet_prefix a) { p.addresses.push_back(a); });
             }},
            {"gateway",
             [&](located l) {
               x.gateways.push_back(l);
               return value<inet_addr>(l, parse_host, [&](inet_addr a) { p.gateways.push_back(a); });
             }},
            {"neighbour",
             [&](located l) {
               x.neighbours.push_back(l);
               return value<static_neighbour>(
                   l,
                   [&](std::string_view v) -> result<static_neighbour> {
                     auto w = words(v);
                     if (w.size() != 2)
                       return error(errc::invalid_argument, "expected ADDRESS MAC, e.g. 198.18.2.11 02:00:00:00:02:11");
                     auto a = parse_host(w[0]);
                     if (!a) return a.err();
                     auto m = mac_addr::parse(w[1]);
                     if (!m)
                       return error(errc::invalid_argument, quote(w[1]) + " is not a MAC address (02:00:00:00:02:11)");
                     if (!m->is_unicast())
                       return error(errc::invalid_argument,
                                    "a neighbour's MAC is unicast: not zero, not a group address");
                     return static_neighbour{*a, *m, l.ent->line};
                   },
                   [&](static_neighbour n) { p.neighbours.push_back(n); });
             }},
        });
    if (e) return e;
    if (p.addresses.empty()) return at(sec, "no address; add 'address = ADDRESS/PREFIX'");
    // Within the port: no address twice; at most one gateway per family, on a connected network;
    // static neighbours on a connected network, each address once.
    for (std::size_t i = 0; i < p.addresses.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (p.addresses[i].addr == p.addresses[j].addr)
          return at(x.addresses[i], "given twice (first at " + line_ref(x.addresses[j].ent->line) + ")");
    auto on_link = [&](const inet_addr& a) {
      return std::any_of(p.addresses.begin(), p.addresses.end(),
                         [&](const inet_prefix& pre) { return pre.contains(a); });
    };
    for (std::size_t i = 0; i < p.gateways.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j)
        if (p.gateways[i].family() == p.gateways[j].family())
          return at(x.gateways[i], "a second " + family_name(p.gateways[i].family()) + " gateway (first at " +
                                       line_ref(x.gateways[j].ent->line) + "); a port has one per family");
      if (!on_link(p.gateways[i]))
        return at(x.gateways[i], "not inside a connected network of this port; add an address in its network");
    }
    for (std::size_t i = 0; i < p.neighbours.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j)
        if (p.neighbours[i].addr == p.neighbours[j].addr)
          return at(x.neighbours[i],
                    "this neighbour is given twice (first at " + line_ref(x.neighbours[j].ent->line) + ")");
      if (!on_link(p.neighbours[i].addr))
        return at(x.neighbours[i], "not inside a connected network of this port; a neighbour is on-link");
    }
    cfg_.ports.push_back(std::move(p));
    port_extras_.push_back(std::move(x));
    return std::nullopt;
  }

  // ---- [service NAME] ----
  struct service_extra {
    const ini_section* sec = nullptr;
    located vip, vport, proto, scheduler, table_size, mss_clamp, client_address;
    std::vector<located> lips, rss;
  };

  failure service(const ini_section& sec, const std::string& name) {
    service_config s;
    s.name = name;
    s.line = sec.line;
    service_extra x;
    x.sec = &sec;
    bool have_vip = false, have_vport = false, have_table = false;
    auto e =
        keys(sec,
             {
                 {"vip",
                  [&](located l) {
                    have_vip = true;
                    x.vip = l;
                    return value<inet_addr>(l, parse_host, [&](inet_addr a) { s.vip.addr = a; });
                  }},
                 {"vport",
                  [&](located l) {
                    have_vport = true;
                    x.vport = l;
                    return uint_key(1, 65535, [&](std::uint64_t v) { s.vip.port = static_cast<std::uint16_t>(v); })(l);
                  }},
                 {"proto",
                  [&](located l) {
                    x.proto = l;
                    return value<std::uint8_t>(
                        l,
                        [](std::string_view v) {
                          return parse_word<std::uint8_t>(v, {{"tcp", ipproto::tcp}, {"udp", ipproto::udp}});
                        },
                        [&](std::uint8_t p) { s.proto = p; });
                  }},
                 {"scheduler",
                  [&](located l) {
                    x.scheduler = l;
                    return value<scheduler_kind>(
                        l,
                        [](std::string_view v) {
                          return parse_word<scheduler_kind>(v, {{"rr", scheduler_kind::rr},
                                                                {"wrr", scheduler_kind::wrr},
                                                                {"maglev", scheduler_kind::maglev}});
                        },
                        [&](scheduler_kind k) { s.scheduler = k; });
                  }},
                 {"maglev_table_size",
                  [&](located l) {
                    have_table = true;
                    x.table_size = l;
                    return value<std::uint32_t>(
                        l,
                        [](std::string_view v) -> result<std::uint32_t> {
                          auto n = parse_uint(v, 2, maglev::max_table_size);
                          if (!n) return n.err();
                          if (!is_prime(*n))
                            return error(errc::invalid_argument, "not a prime; try " + std::to_string(next_prime(*n)) +
                                                                     " (the default is 65537)");
                          return static_cast<std::uint32_t>(*n);
                        },
                        [&](std::uint32_t n) { s.maglev_table_size = n; });
                  }},
                 {"mss_clamp",
                  [&](located l) {
                    x.mss_clamp = l;
                    return uint_key(0, 65535, [&](std::uint64_t v) { s.mss_clamp = static_cast<std::uint16_t>(v); })(l);
                  }},
                 {"client_address",
                  [&](located l) {
                    x.client_address = l;
                    return value<client_address_mode>(
                        l,
                        [](std::string_view v) {
                          return parse_word<client_address_mode>(
                              v, {{"none", client_address_mode::none},
                                  {"toa", client_address_mode::toa},
                                  {"proxy_protocol_v1", client_address_mode::proxy_protocol_v1},
                                  {"proxy_protocol_v2", client_address_mode::proxy_protocol_v2}});
                        },
                        [&](client_address_mode m) { s.client_address = m; });
                  }},
             },
             {
                 {"lip",
                  [&](located l) {
                    x.lips.push_back(l);
                    return value<inet_addr>(l, parse_host, [&](inet_addr a) { s.lips.push_back(a); });
                  }},
                 {"rs",
                  [&](located l) {
                    x.rss.push_back(l);
                    return value<rs_value>(l, parse_rs, [&](rs_value r) {
                      s.rss.push_back({r.addr, r.weight, l.ent->line});
                    });
                  }},
             });
    if (e) return e;
    if (!have_vip) return at(sec, "no vip; add 'vip = ADDRESS'");
    if (!have_vport) return at(sec, "no vport; add 'vport = PORT'");
    if (s.lips.empty())
      return at(sec, "no lip; add 'lip = ADDRESS' (a local address the balancer connects to real servers from)");
    if (s.rss.empty()) return at(sec, "no rs; add 'rs = ADDRESS:PORT', optionally followed by weight=N");
    const auto fam = s.family();
    const std::string no_nat64 = "; the VIP, LIPs and real servers of a service are of one family (no NAT64)";
    for (std::size_t i = 0; i < s.lips.size(); ++i) {
      if (s.lips[i].family() != fam)
        return at(x.lips[i], "an " + family_name(s.lips[i].family()) + " LIP in a service whose VIP is " +
                                 family_name(fam) + no_nat64);
      for (std::size_t j = 0; j < i; ++j)
        if (s.lips[i] == s.lips[j])
          return at(x.lips[i], "given twice (first at " + line_ref(x.lips[j].ent->line) + ")");
      if (s.lips[i] == s.vip.addr) return at(x.lips[i], "the LIP is the service's VIP; use another address");
    }
    for (std::size_t i = 0; i < s.rss.size(); ++i) {
      if (s.rss[i].addr.addr.family() != fam)
        return at(x.rss[i], "an " + family_name(s.rss[i].addr.addr.family()) +
                                " real server in a service whose VIP is " + family_name(fam) + no_nat64);
      for (std::size_t j = 0; j < i; ++j)
        if (s.rss[i].addr == s.rss[j].addr)
          return at(x.rss[i], "this real server is given twice (first at " + line_ref(x.rss[j].ent->line) + ")");
    }
    if (s.mss_clamp != 0) {
      // The smallest MSS every host must take: 536 for IPv4 (RFC 9293 3.7.1); for IPv6 the minimum
      // link MTU 1280 less 60 bytes of headers (RFC 8200 5). Below that, hosts may not cope.
      const std::uint16_t least = fam == ip_family::v4 ? 536 : 1220;
      if (s.proto != ipproto::tcp)
        return at(x.mss_clamp, "only TCP has an MSS; remove this line or set proto = tcp");
      if (s.mss_clamp < least)
        return at(x.mss_clamp, "below " + std::to_string(least) + ", the smallest MSS every " + family_name(fam) +
                                   " host must accept; give " + std::to_string(least) +
                                   "..65535, or 0 to turn clamping off");
    }
    if (s.proto == ipproto::udp && (s.client_address == client_address_mode::toa ||
                                    s.client_address == client_address_mode::proxy_protocol_v1))
      return at(x.client_address, std::string(s.client_address == client_address_mode::toa
                                                  ? "TOA is a TCP option"
                                                  : "Proxy Protocol v1 is defined for TCP only") +
                                      "; a UDP service takes client_address = proxy_protocol_v2 (a header on each "
                                      "datagram) or none");
    if (have_table && s.scheduler != scheduler_kind::maglev)
      return at(x.table_size, "only scheduler = maglev has a table; remove this line or set scheduler = maglev");
    if (auto sch = any_scheduler::make(s.backends(), s.scheduler_cfg()); !sch)
      return have_table ? at(x.table_size, sch.err().message())
                        : at(sec, sch.err().message() + "; set maglev_table_size to a larger prime");
    cfg_.services.push_back(std::move(s));
    service_extras_.push_back(std::move(x));
    return std::nullopt;
  }

  // ---- what spans sections ----
  failure finish() {
    if (global_line_ == 0) return at_file("no [global] section; add one with 'workers = LCORES'");
    if (cfg_.ports.empty()) return at_file("no [port NAME] section; add one per DPDK port the balancer uses");
    if (cfg_.services.empty()) return at_file("no [service NAME] section; add at least one");

    // The port plan of the workers: reported where the culprit is most likely written.
    if (auto plan = port_plan::make(cfg_.plan_config()); !plan) {
      const located where = class_bits_at_.ent ? class_bits_at_ : ports_at_.ent ? ports_at_ : workers_at_;
      return at(where, plan.err().message());
    }

    // Connected networks: disjoint across ports.
    for (std::size_t p = 0; p < cfg_.ports.size(); ++p)
      for (std::size_t i = 0; i < cfg_.ports[p].addresses.size(); ++i)
        for (std::size_t q = 0; q < p; ++q)
          for (const auto& other : cfg_.ports[q].addresses)
            if (cfg_.ports[p].addresses[i].overlaps(other))
              return at(port_extras_[p].addresses[i],
                        "its network overlaps " + other.network().to_string() + " of [port " + cfg_.ports[q].name +
                            "] (" + line_ref(cfg_.ports[q].line) + "); a connected network belongs to one port");
    // One gateway per family over all ports.
    for (std::size_t p = 0; p < cfg_.ports.size(); ++p)
      for (std::size_t i = 0; i < cfg_.ports[p].gateways.size(); ++i)
        for (std::size_t q = 0; q < p; ++q)
          for (std::size_t j = 0; j < cfg_.ports[q].gateways.size(); ++j)
            if (cfg_.ports[q].gateways[j].family() == cfg_.ports[p].gateways[i].family())
              return at(port_extras_[p].gateways[i], "a second " + family_name(cfg_.ports[p].gateways[i].family()) +
                                                         " gateway (first on [port " + cfg_.ports[q].name + "], " +
                                                         line_ref(port_extras_[q].gateways[j].ent->line) +
                                                         "); the balancer has one default route per family");
    for (std::size_t p = 0; p < cfg_.ports.size(); ++p) {
      for (const auto& a : cfg_.ports[p].addresses) cfg_.routes.add_connected(a, static_cast<std::uint16_t>(p));
      for (const auto& gw : cfg_.ports[p].gateways) cfg_.routes.set_gateway(gw, static_cast<std::uint16_t>(p));
    }

    // Services: reachability, then uniqueness of VIP:vport/proto, then LIPs that are VIPs.
    for (std::size_t si = 0; si < cfg_.services.size(); ++si) {
      const auto& s = cfg_.services[si];
      const auto& x = service_extras_[si];
      if (auto why = owned_problem(s.vip.addr, true)) return at(x.vip, *why);
      for (std::size_t i = 0; i < s.lips.size(); ++i)
        if (auto why = owned_problem(s.lips[i], false)) return at(x.lips[i], *why);
      for (std::size_t i = 0; i < s.rss.size(); ++i) {
        const auto hop = cfg_.routes.lookup(s.rss[i].addr.addr);
        if (!hop)
          return at(x.rss[i], "no route: not inside a connected network of any port, and no " +
                                  family_name(s.family()) + " gateway");
        const auto& via = cfg_.ports[hop.port];
        if (!via.faces_servers())
          return at(x.rss[i], "reached through [port " + via.name +
                                  "], whose role is client; give that port role = server "
                                  "or both, or fix the address");
      }
    }
    for (std::size_t si = 0; si < cfg_.services.size(); ++si)
      for (std::size_t sj = 0; sj < si; ++sj) {
        const auto& a = cfg_.services[si];
        const auto& b = cfg_.services[sj];
        if (a.vip == b.vip && a.proto == b.proto)
          return at(service_extras_[si].vip, a.vip.to_string() + " " + proto_name(a.proto) +
                                                 " is already served by [service " + b.name + "] (" + line_ref(b.line) +
                                                 ")");
      }
    for (std::size_t si = 0; si < cfg_.services.size(); ++si)
      for (std::size_t i = 0; i < cfg_.services[si].lips.size(); ++i)
        for (const auto& other : cfg_.services)
          if (cfg_.services[si].lips[i] == other.vip.addr)
            return at(service_extras_[si].lips[i], "this address is the VIP of [service " + other.name + "] (" +
                                                       line_ref(other.line) + "); a LIP is not a VIP");
    return std::nullopt;
  }

  // A VIP (clients side) or LIP (servers side) must be on a connected network of a port facing that
  // side, or such a port must have a gateway of its family (routers then route it to us).
  problem owned_problem(const inet_addr& a, bool vip) const {
    bool routed = false;
    for (const auto& p : cfg_.ports) {
      if (vip ? !p.faces_clients() : !p.faces_servers()) continue;
      for (const auto& pre : p.addresses)
        if (pre.contains(a)) return std::nullopt;
      for (const auto& gw : p.gateways) routed = routed || gw.family() == a.family();
    }
    if (routed) return std::nullopt;
    const std::string side = vip ? "client" : "server";
    for (const auto& p : cfg_.ports)
      for (const auto& pre : p.addresses)
        if (pre.contains(a))
          return "inside " + pre.network().to_string() + " of [port " + p.name + "], whose role is " +
                 std::string(to_string(p.role)) + "; a " + (vip ? "VIP" : "LIP") + " lives on a port with role " +
                 side + " or both";
    return "not inside a connected network of a port with role " + side + " or both, and no such port has an " +
           family_name(a.family()) + " gateway; add an address in its network to such a port";
  }

  const ini_file& file_;
  lb_config cfg_;
  unsigned global_line_ = 0, timeouts_line_ = 0;
  std::map<std::string, unsigned> port_names_, service_names_;
  std::vector<port_extra> port_extras_;
  std::vector<service_extra> service_extras_;
  located workers_at_, ports_at_, class_bits_at_;
};

}  // namespace

result<lb_config> parse_config(const ini_file& file) { return parser(file).run(); }

result<lb_config> load_config(const std::string& path) {
  auto f = read_ini(path);
  if (!f) return f.err();
  return parse_config(*f);
}

// ---- lb_config helpers ------------------------------------------------------------------------

std::vector<sched_backend> service_config::backends() const {
  std::vector<sched_backend> b;
  for (const auto& r : rss) b.push_back({.id = backend_id(r.addr), .weight = r.weight});
  return b;
}

scheduler_config service_config::scheduler_cfg(std::uint32_t start) const {
  return {.kind = scheduler, .start = start, .maglev = {.table_size = maglev_table_size}};
}

std::optional<std::size_t> lb_config::port_index(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < ports.size(); ++i)
    if (ports[i].name == name) return i;
  return std::nullopt;
}

port_plan_config lb_config::plan_config() const {
  port_plan_config p;
  for (std::size_t i = 0; i < global.workers.size(); ++i)
    p.lcores.push_back({global.workers[i], static_cast<std::uint16_t>(i)});
  p.port_low = global.port_low;
  p.port_high = global.port_high;
  p.class_bits = global.class_bits;
  return p;
}

std::vector<inet_addr> lb_config::local_addresses(std::size_t port) const {
  std::vector<inet_addr> out;
  if (port >= ports.size()) return out;
  const auto& p = ports[port];
  auto add = [&](const inet_addr& a) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  auto on_link = [&](const inet_addr& a) {
    return std::any_of(p.addresses.begin(), p.addresses.end(), [&](const inet_prefix& x) { return x.contains(a); });
  };
  for (const auto& a : p.addresses) add(a.addr);
  for (const auto& s : services) {
    if (p.faces_clients() && on_link(s.vip.addr)) add(s.vip.addr);
    if (p.faces_servers())
      for (const auto& l : s.lips)
        if (on_link(l)) add(l);
  }
  return out;
}

std::string lb_config::describe() const {
  std::string s = source + ": " + std::to_string(global.workers.size()) + " workers (lcores";
  for (auto w : global.workers) s += " " + std::to_string(w);
  s += "), steering " + std::string(to_string(global.steering)) + ", local ports " + std::to_string(global.port_low) +
       "-" + std::to_string(global.port_high) + ", " + std::to_string(global.conns_per_lcore) + " conns per lcore\n";
  s += "  per lcore: conn table " + std::to_string(global.table_capacity()) + ", half-open TCP <= " +
       std::to_string(global.half_open_bound()) + ", one-way UDP <= " + std::to_string(global.udp_oneway_bound()) +
       "; refused SYNs: " + std::string(to_string(global.refusal)) +
       (global.refusal == syn_refusal::rst
            ? " (" + std::to_string(global.rst_rate) + "/s, burst " + std::to_string(global.rst_burst) + ")"
            : std::string()) +
       "\n";
  for (const auto& p : ports) {
    s += "  port " + p.name + " (" + std::string(to_string(p.role)) + "):";
    for (const auto& a : p.addresses) s.append(" ").append(a.to_string());
    for (const auto& g : p.gateways) s += " gateway " + g.to_string();
    if (!p.neighbours.empty()) s += ", " + std::to_string(p.neighbours.size()) + " static neighbours";
    s += "\n";
  }
  for (const auto& v : services) {
    s += "  service " + v.name + ": " + v.vip.to_string() + " " + proto_name(v.proto) + ", " +
         std::string(to_string(v.scheduler)) + ", lip";
    for (const auto& l : v.lips) s.append(" ").append(l.to_string());
    s += ", rs";
    for (const auto& r : v.rss) {
      s.append(" ").append(r.addr.to_string());
      if (r.weight != 1) s.append("*").append(std::to_string(r.weight));
    }
    if (v.mss_clamp != 0) s += ", mss_clamp " + std::to_string(v.mss_clamp);
    if (v.client_address != client_address_mode::none) s += ", client_address " + std::string(to_string(v.client_address));
    s += "\n";
  }
  return s;
}

// ---- DPDK ports ---------------------------------------------------------------------------------

std::optional<std::uint16_t> ethdev_directory::find(const std::string& name) const {
  std::uint16_t id = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) return std::nullopt;
  return id;
}

std::vector<std::string> ethdev_directory::names() const {
  std::vector<std::string> out;
  std::uint16_t id;
  RTE_ETH_FOREACH_DEV(id) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(id, name) == 0) out.emplace_back(name);
  }
  return out;
}

result<void> resolve_ports(lb_config& cfg) { return resolve_ports(cfg, ethdev_directory{}); }

}  // namespace fnat::lb
