// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: the balancer's INI configuration loader (examples/fnat_lb/config.hpp) on
// arbitrary file contents. No EAL.
//
// The input is the file. It is written to a memfd and loaded through /proc/self/fd/N, so the loader
// runs exactly as on a real file (its line scan with fopen) without touching the disk. Checked,
// besides "no crash, no leak, no UB":
//   read_ini error    code invalid_argument; the message starts with the file name, then either
//                     ": " or ":LINE: " with 1 <= LINE <= the input's line count;
//   read_ini success  DPDK's rte_cfgfile_load_with_params reads the same path to the same sections
//                     and entries, in the same order (the loader keeps rte_cfgfile's format with one
//                     parser of its own; rte_cfgfile is the oracle here, not a second parser at run
//                     time); sections and entries in strictly increasing line order, inside the file; each
//                     entry's line really holds its key, then '=', then its value before any '#';
//                     each header's line holds '[' and its name; names, keys and values within
//                     rte_cfgfile's limits, non-empty, stripped, free of '#', '\\', NUL and newlines;
//   parse_config error  the same prefix rule, and a LINE that is a header or entry line of the file;
//   parse_config success  the documented invariants (config.hpp): workers non-empty, distinct, below
//                     RTE_MAX_LCORE, making a port plan; every value in its domain; each port has an
//                     address, at most one gateway per family (one per family over all ports), on
//                     link, neighbours on link and distinct, connected networks disjoint across
//                     ports; each service has >= 1 LIP and >= 1 RS, all of the VIP's family, distinct,
//                     no LIP is a VIP, every RS routed through a server-facing port, a scheduler that
//                     builds, VIP:vport/proto unique; local_addresses() without duplicates; and a
//                     round trip: the config written back as INI text loads to the same config.
// Inputs that ask for a Maglev table above 2^17 entries are skipped: the harness builds each
// service's scheduler four times (load, check, round trip), and a 1M-entry table already takes ~3 s
// under ASan (16M is allowed): legitimately slow, and it would only teach the fuzzer to time out.
#include <sys/mman.h>
#include <unistd.h>

#include <rte_build_config.h>
#include <rte_cfgfile.h>
#include <rte_log.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fnat_lb/config.hpp"
#include "fuzz/fuzz_support.hpp"

namespace {

namespace lb = fnat::lb;
using fnat::errc;

int g_fd = -1;
std::string g_path;  // "/proc/self/fd/N" of the memfd

bool write_file(const std::uint8_t* data, std::size_t size) {
  if (::ftruncate(g_fd, 0) != 0) return false;
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(g_fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;  // as the loader counts them: a last line without '\n' counts, an empty tail does not
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool stripped(std::string_view s) { return !s.empty() && !is_space(s.front()) && !is_space(s.back()); }

// The line number after "PATH:" in a message, 0 for "PATH: ..." (a message about the whole file).
unsigned message_line(const std::string& msg) {
  FUZZ_CHECK(msg.compare(0, g_path.size(), g_path) == 0);  // every message starts with the file name
  FUZZ_CHECK(msg.size() > g_path.size() + 1 && msg[g_path.size()] == ':');
  const std::size_t at = g_path.size() + 1;
  if (msg[at] == ' ') return 0;
  unsigned line = 0;
  const auto [end, ec] = std::from_chars(msg.data() + at, msg.data() + msg.size(), line);
  FUZZ_CHECK(ec == std::errc{} && end != msg.data() + at);
  FUZZ_CHECK(end < msg.data() + msg.size() && *end == ':');  // "PATH:LINE: what"
  FUZZ_CHECK(line >= 1);
  return line;
}

void check_error(const fnat::error& e, std::size_t line_count, const std::set<unsigned>* known_lines) {
  FUZZ_CHECK(e.code() == errc::invalid_argument);
  const std::string& msg = e.message();
  // "PATH: cannot open": the harness's file went away. (Only at the start of the message: later
  // parts quote the file's own text, which may say anything.)
  FUZZ_CHECK(msg.rfind(g_path + ": cannot open", 0) != 0);
  const unsigned line = message_line(msg);
  FUZZ_CHECK(line <= line_count);
  if (line != 0 && known_lines != nullptr) FUZZ_CHECK(known_lines->count(line) == 1);
}

// The part of a line rte_cfgfile reads: up to the first '#'.
std::string_view uncommented(std::string_view line) { return line.substr(0, line.find('#')); }

struct cfgfile_closer {
  void operator()(rte_cfgfile* c) const noexcept { rte_cfgfile_close(c); }
};

// What the loader read is what rte_cfgfile reads from the same file: same sections, same entries,
// same order (the format is rte_cfgfile's; the loader's scanner only adds line numbers and refusals).
void check_same_as_rte_cfgfile(const lb::ini_file& f) {
  rte_cfgfile_parameters params{};
  params.comment_character = '#';
  std::unique_ptr<rte_cfgfile, cfgfile_closer> cfg(rte_cfgfile_load_with_params(g_path.c_str(), 0, &params));
  FUZZ_CHECK(cfg != nullptr);
  const int n = rte_cfgfile_num_sections(cfg.get(), nullptr, 0);
  FUZZ_CHECK(n >= 0 && static_cast<std::size_t>(n) == f.sections.size());
  for (int i = 0; i < n; ++i) {
    const auto& sec = f.sections[static_cast<std::size_t>(i)];
    char name[CFG_NAME_LEN];
    const int count = rte_cfgfile_section_num_entries_by_index(cfg.get(), name, i);
    FUZZ_CHECK(count >= 0 && static_cast<std::size_t>(count) == sec.entries.size() && sec.name == name);
    std::vector<rte_cfgfile_entry> entries(static_cast<std::size_t>(count));
    FUZZ_CHECK(count == 0 || rte_cfgfile_section_entries_by_index(cfg.get(), i, name, entries.data(), count) == count);
    for (std::size_t j = 0; j < entries.size(); ++j)
      FUZZ_CHECK(sec.entries[j].key == entries[j].name && sec.entries[j].value == entries[j].value);
  }
}

void check_ini(const lb::ini_file& f, const std::vector<std::string_view>& lines) {
  FUZZ_CHECK(f.path == g_path);
  unsigned last = 0;
  for (const auto& s : f.sections) {
    FUZZ_CHECK(s.line > last && s.line <= lines.size());
    last = s.line;
    FUZZ_CHECK(s.name.size() <= 63);
    FUZZ_CHECK(s.name.find_first_of("#\\\n]") == std::string::npos && s.name.find('\0') == std::string::npos);
    FUZZ_CHECK(s.name.empty() || stripped(s.name));
    const std::string_view text = uncommented(lines[s.line - 1]);
    const auto open = text.find('[');
    FUZZ_CHECK(open != std::string_view::npos && text.find(s.name, open + 1) != std::string_view::npos);
    for (const auto& e : s.entries) {
      FUZZ_CHECK(e.line > last && e.line <= lines.size());
      last = e.line;
      FUZZ_CHECK(!e.key.empty() && e.key.size() <= 63 && stripped(e.key));
      FUZZ_CHECK(!e.value.empty() && e.value.size() <= 255 && stripped(e.value));
      FUZZ_CHECK(e.key.find_first_of("#\\\n=") == std::string::npos && e.key.find('\0') == std::string::npos);
      FUZZ_CHECK(e.value.find_first_of("#\\\n") == std::string::npos && e.value.find('\0') == std::string::npos);
      const std::string_view t = uncommented(lines[e.line - 1]);
      const auto k = t.find(e.key);
      FUZZ_CHECK(k != std::string_view::npos);
      const auto eq = t.find('=', k + e.key.size());
      FUZZ_CHECK(eq != std::string_view::npos && t.find(e.value, eq + 1) != std::string_view::npos);
    }
  }
}

// ---- the round trip -------------------------------------------------------------------------------

std::string mac_text(const fnat::mac_addr& m) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < m.bytes.size(); ++i) {
    if (i) s += ':';
    s += hex[m.bytes[i] >> 4];
    s += hex[m.bytes[i] & 15];
  }
  return s;
}

std::string workers_text(const std::vector<unsigned>& w) {
  std::string s;
  for (std::size_t i = 0; i < w.size();) {
    std::size_t j = i;
    while (j + 1 < w.size() && w[j + 1] == w[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + std::to_string(w[i]) + (j > i ? "-" + std::to_string(w[j]) : "");
    i = j + 1;
  }
  return s;
}

std::string_view sched_name(fnat::scheduler_kind k) {
  switch (k) {
    case fnat::scheduler_kind::rr: return "rr";
    case fnat::scheduler_kind::wrr: return "wrr";
    default: return "maglev";
  }
}

std::string secs(std::chrono::milliseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

// The config as an INI file. Values longer than rte_cfgfile's 255 make it give up (false).
bool write_ini(const lb::lb_config& c, std::string& out) {
  bool fits = true;
  auto kv = [&](std::string_view k, const std::string& v) {
    fits = fits && v.size() <= 255;
    out += std::string(k) + " = " + v + "\n";
  };
  const auto& g = c.global;
  out += "[global]\n";
  kv("workers", workers_text(g.workers));
  kv("steering", std::string(lb::to_string(g.steering)));
  kv("idle", std::string(lb::to_string(g.idle)));
  kv("idle_sleep_us", std::to_string(g.idle_sleep_us));
  kv("conns_per_lcore", std::to_string(g.conns_per_lcore));
  kv("sa_pool_buckets", std::to_string(g.sa_pool_buckets));
  kv("local_ports", std::to_string(g.port_low) + "-" + std::to_string(g.port_high));
  kv("class_bits", std::to_string(g.class_bits));
  kv("timer_tick_ms", std::to_string(g.timer_tick_ms));
  kv("log_level", std::string(lb::to_string(g.log)));
  kv("telemetry", g.telemetry ? "on" : "off");
  kv("conn_table_capacity", std::to_string(g.conn_table_capacity));
  kv("max_half_open", std::to_string(g.max_half_open));
  kv("max_udp_oneway", std::to_string(g.max_udp_oneway));
  kv("syn_refusal", std::string(lb::to_string(g.refusal)));
  kv("rst_rate", std::to_string(g.rst_rate));
  kv("rst_burst", std::to_string(g.rst_burst));
  const auto& t = c.timeouts;
  out += "[timeouts]\n";
  kv("tcp_none", secs(t.none));
  kv("tcp_established", secs(t.established));
  kv("tcp_syn_sent", secs(t.syn_sent));
  kv("tcp_syn_recv", secs(t.syn_recv));
  kv("tcp_fin_wait", secs(t.fin_wait));
  kv("tcp_time_wait", secs(t.time_wait));
  kv("tcp_close", secs(t.close));
  kv("tcp_close_wait", secs(t.close_wait));
  kv("tcp_last_ack", secs(t.last_ack));
  kv("tcp_listen", secs(t.listen));
  kv("tcp_synack", secs(t.synack));
  kv("udp_oneway", secs(t.udp_oneway));
  kv("udp_normal", secs(t.udp_normal));
  for (const auto& p : c.ports) {
    out += "[port " + p.name + "]\n";
    kv("role", std::string(lb::to_string(p.role)));
    for (const auto& a : p.addresses) kv("address", a.to_string());
    for (const auto& gw : p.gateways) kv("gateway", gw.to_string());
    for (const auto& n : p.neighbours) kv("neighbour", n.addr.to_string() + " " + mac_text(n.mac));
  }
  for (const auto& s : c.services) {
    out += "[service " + s.name + "]\n";
    kv("vip", s.vip.addr.to_string());
    kv("vport", std::to_string(s.vip.port));
    kv("proto", s.proto == fnat::ipproto::udp ? "udp" : "tcp");
    kv("scheduler", std::string(sched_name(s.scheduler)));
    if (s.scheduler == fnat::scheduler_kind::maglev) kv("maglev_table_size", std::to_string(s.maglev_table_size));
    for (const auto& l : s.lips) kv("lip", l.to_string());
    for (const auto& r : s.rss) kv("rs", r.addr.to_string() + " weight=" + std::to_string(r.weight));
  }
  return fits;
}

bool same_config(const lb::lb_config& a, const lb::lb_config& b) {
  const auto& x = a.global;
  const auto& y = b.global;
  if (x.workers != y.workers || x.steering != y.steering || x.idle != y.idle || x.idle_sleep_us != y.idle_sleep_us ||
      x.conns_per_lcore != y.conns_per_lcore || x.sa_pool_buckets != y.sa_pool_buckets || x.port_low != y.port_low ||
      x.port_high != y.port_high || x.class_bits != y.class_bits || x.timer_tick_ms != y.timer_tick_ms ||
      x.log != y.log || x.telemetry != y.telemetry || x.conn_table_capacity != y.conn_table_capacity ||
      x.max_half_open != y.max_half_open || x.max_udp_oneway != y.max_udp_oneway || x.refusal != y.refusal ||
      x.rst_rate != y.rst_rate || x.rst_burst != y.rst_burst)
    return false;
  if (!(a.timeouts == b.timeouts)) return false;
  if (a.ports.size() != b.ports.size() || a.services.size() != b.services.size()) return false;
  for (std::size_t i = 0; i < a.ports.size(); ++i) {
    const auto& p = a.ports[i];
    const auto& q = b.ports[i];
    if (p.name != q.name || p.role != q.role || p.addresses.size() != q.addresses.size() ||
        p.gateways != q.gateways || p.neighbours.size() != q.neighbours.size())
      return false;
    for (std::size_t j = 0; j < p.addresses.size(); ++j)
      if (p.addresses[j].addr != q.addresses[j].addr || p.addresses[j].len != q.addresses[j].len) return false;
    for (std::size_t j = 0; j < p.neighbours.size(); ++j)
      if (p.neighbours[j].addr != q.neighbours[j].addr || p.neighbours[j].mac.bytes != q.neighbours[j].mac.bytes)
        return false;
  }
  for (std::size_t i = 0; i < a.services.size(); ++i) {
    const auto& s = a.services[i];
    const auto& t = b.services[i];
    if (s.name != t.name || s.vip != t.vip || s.proto != t.proto || s.scheduler != t.scheduler ||
        (s.scheduler == fnat::scheduler_kind::maglev && s.maglev_table_size != t.maglev_table_size) ||
        s.lips != t.lips || s.rss.size() != t.rss.size())
      return false;
    for (std::size_t j = 0; j < s.rss.size(); ++j)
      if (s.rss[j].addr != t.rss[j].addr || s.rss[j].weight != t.rss[j].weight) return false;
  }
  return true;
}

// ---- invariants of a loaded config ---------------------------------------------------------------

void check_config(const lb::lb_config& c, std::size_t line_count) {
  FUZZ_CHECK(c.source == g_path);
  const auto& g = c.global;
  FUZZ_CHECK(!g.workers.empty());
  for (std::size_t i = 0; i < g.workers.size(); ++i) {
    FUZZ_CHECK(g.workers[i] < RTE_MAX_LCORE);
    for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(g.workers[i] != g.workers[j]);
  }
  FUZZ_CHECK(fnat::port_plan::make(c.plan_config()).has_value());
  FUZZ_CHECK(g.port_low >= 1 && g.port_low <= g.port_high);
  FUZZ_CHECK(g.idle_sleep_us >= 1 && g.idle_sleep_us <= 1000000);
  FUZZ_CHECK(g.conns_per_lcore >= 1 && g.conns_per_lcore <= (1u << 27));
  FUZZ_CHECK(g.sa_pool_buckets >= 1 && g.sa_pool_buckets <= 4096);
  FUZZ_CHECK(g.class_bits <= fnat::port_plan::max_class_bits);
  FUZZ_CHECK(g.timer_tick_ms >= 1 && g.timer_tick_ms <= 1000);
  const auto& t = c.timeouts;
  for (auto d : {t.none, t.established, t.syn_sent, t.syn_recv, t.fin_wait, t.time_wait, t.close, t.close_wait,
                 t.last_ack, t.listen, t.synack, t.udp_oneway, t.udp_normal})
    FUZZ_CHECK(d >= std::chrono::seconds(1) && d <= fnat::conn_timeouts::max_timeout && d.count() % 1000 == 0);

  FUZZ_CHECK(!c.ports.empty());
  bool gw4 = false, gw6 = false;
  for (std::size_t p = 0; p < c.ports.size(); ++p) {
    const auto& port = c.ports[p];
    FUZZ_CHECK(port.line >= 1 && port.line <= line_count);
    FUZZ_CHECK(!port.name.empty() && port.name.find_first_of(" \t") == std::string::npos);
    FUZZ_CHECK(c.port_index(port.name) == p);
    FUZZ_CHECK(!port.addresses.empty());
    FUZZ_CHECK(!port.port_id.has_value());
    auto on_link = [&](const fnat::inet_addr& a) {
      return std::any_of(port.addresses.begin(), port.addresses.end(), [&](const auto& x) { return x.contains(a); });
    };
    for (std::size_t i = 0; i < port.addresses.size(); ++i) {
      const auto& a = port.addresses[i];
      FUZZ_CHECK(a.len >= 1 && a.len <= fnat::lb::inet_prefix::width(a.family()));
      FUZZ_CHECK(!a.addr.is_unspecified());
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(a.addr != port.addresses[j].addr);
      for (std::size_t q = 0; q < p; ++q)
        for (const auto& o : c.ports[q].addresses) FUZZ_CHECK(!a.overlaps(o));
      const auto hop = c.routes.lookup(a.addr);
      FUZZ_CHECK(hop && hop.connected && hop.port == p);
    }
    for (std::size_t i = 0; i < port.gateways.size(); ++i) {
      bool& seen = port.gateways[i].is_v4() ? gw4 : gw6;
      FUZZ_CHECK(!seen);  // one per family over all ports
      seen = true;
      FUZZ_CHECK(on_link(port.gateways[i]));
    }
    for (std::size_t i = 0; i < port.neighbours.size(); ++i) {
      FUZZ_CHECK(on_link(port.neighbours[i].addr) && port.neighbours[i].mac.is_unicast());
      FUZZ_CHECK(port.neighbours[i].line >= 1 && port.neighbours[i].line <= line_count);
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(port.neighbours[i].addr != port.neighbours[j].addr);
    }
    const auto local = c.local_addresses(p);
    for (std::size_t i = 0; i < local.size(); ++i)
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(local[i] != local[j]);
    for (const auto& a : port.addresses) FUZZ_CHECK(std::find(local.begin(), local.end(), a.addr) != local.end());
  }
  FUZZ_CHECK(c.local_addresses(c.ports.size()).empty());

  FUZZ_CHECK(!c.services.empty());
  for (std::size_t si = 0; si < c.services.size(); ++si) {
    const auto& s = c.services[si];
    FUZZ_CHECK(s.line >= 1 && s.line <= line_count);
    FUZZ_CHECK(s.vip.port >= 1);
    FUZZ_CHECK(s.proto == fnat::ipproto::tcp || s.proto == fnat::ipproto::udp);
    FUZZ_CHECK(!s.lips.empty() && !s.rss.empty());
    const auto fam = s.family();
    for (std::size_t i = 0; i < s.lips.size(); ++i) {
      FUZZ_CHECK(s.lips[i].family() == fam);
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(s.lips[i] != s.lips[j]);
      for (const auto& o : c.services) FUZZ_CHECK(s.lips[i] != o.vip.addr);
    }
    for (std::size_t i = 0; i < s.rss.size(); ++i) {
      const auto& r = s.rss[i];
      FUZZ_CHECK(r.addr.addr.family() == fam && r.addr.port >= 1 && r.weight <= fnat::sched_max_weight);
      FUZZ_CHECK(r.line > s.line && r.line <= line_count);
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(r.addr != s.rss[j].addr);
      const auto hop = c.routes.lookup(r.addr.addr);
      FUZZ_CHECK(hop && c.ports[hop.port].faces_servers());
    }
    if (s.scheduler == fnat::scheduler_kind::maglev) FUZZ_CHECK(fnat::is_prime(s.maglev_table_size));
    FUZZ_CHECK(s.backends().size() == s.rss.size());
    FUZZ_CHECK(fnat::any_scheduler::make(s.backends(), s.scheduler_cfg()).has_value());
    for (std::size_t sj = 0; sj < si; ++sj) {
      const auto& o = c.services[sj];
      FUZZ_CHECK(s.name != o.name);
      FUZZ_CHECK(!(s.vip == o.vip && s.proto == o.proto));
    }
  }
  FUZZ_CHECK(!c.describe().empty());
}

// True when some line asks for a Maglev table above 2^17 entries (see the file comment).
bool huge_maglev(const std::vector<std::string_view>& lines) {
  for (std::string_view l : lines) {
    l = uncommented(l);
    const auto k = l.find("maglev_table_size");
    if (k == std::string_view::npos) continue;
    std::uint64_t v = 0;
    for (char ch : l.substr(k))
      if (ch >= '0' && ch <= '9') v = std::min<std::uint64_t>(v * 10 + static_cast<unsigned>(ch - '0'), 1u << 30);
    if (v > (1u << 17)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_fd = ::memfd_create("fuzz_config.ini", 0);
  if (g_fd < 0) {
    std::perror("fuzz_config: memfd_create");
    return 1;
  }
  g_path = "/proc/self/fd/" + std::to_string(g_fd);
  // rte_cfgfile logs what it rejects; the loader's own message is what is checked here.
  rte_log_set_global_level(RTE_LOG_EMERG);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FUZZ_CHECK(g_fd >= 0);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto lines = split_lines(text);
  if (huge_maglev(lines)) return 0;
  FUZZ_CHECK(write_file(data, size));

  auto ini = lb::read_ini(g_path);
  if (fnat::fuzz::summary_wanted() && !ini) std::fprintf(stderr, "fuzz_config: read_ini: %s\n", ini.err().message().c_str());
  if (!ini) {
    check_error(ini.err(), lines.size(), nullptr);
    return 0;
  }
  check_ini(*ini, lines);
  check_same_as_rte_cfgfile(*ini);

  std::set<unsigned> known;  // lines parse_config may name: headers and entries
  for (const auto& s : ini->sections) {
    known.insert(s.line);
    for (const auto& e : s.entries) known.insert(e.line);
  }
  auto cfg = lb::parse_config(*ini);
  if (fnat::fuzz::summary_wanted())
    std::fprintf(stderr, "fuzz_config: parse_config: %s\n", cfg ? "loaded" : cfg.err().message().c_str());
  if (!cfg) {
    check_error(cfg.err(), lines.size(), &known);
    return 0;
  }
  check_config(*cfg, lines.size());

  // Written back and loaded again, the config is the same.
  std::string again;
  if (!write_ini(*cfg, again)) return 0;
  FUZZ_CHECK(write_file(reinterpret_cast<const std::uint8_t*>(again.data()), again.size()));
  auto back = lb::load_config(g_path);
  if (!back) std::fprintf(stderr, "fuzz_config: round trip refused: %s\n--\n%s--\n", back.err().message().c_str(), again.c_str());
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(same_config(*cfg, *back));
  return 0;
}
