// SPDX-License-Identifier: BSD-3-Clause
// SYN proxy and sequence translation (core/syn_cookie.hpp, core/seq_adjust.hpp): what one lcore pays
// per SYN answered with a cookie, per completing ACK checked, and per translated segment.
//
//   synproxy_syn/fnat/v4 | v6           make_synack for a parsed SYN with Linux's options (MSS, SACK,
//                                       timestamps, window scale): one SipHash-2-4 (20 / 44 bytes),
//                                       options read, a 74 / 94-byte SYN-ACK written with both
//                                       checksums computed in full. Each iteration a new client port
//                                       (the hash input changes); independent iterations: throughput.
//   synproxy_syn/fnat/v4_parse          the same, with the SYN's parse (packet.hpp) included.
//   synproxy_ack/fnat/validate          check_ack of a valid ACK made in the current period (one hash).
//   synproxy_ack/fnat/validate_age2     ... made two periods ago: three hashes, the worst accepted case.
//   synproxy_ack/fnat/reject            a forged ACK: every counter tried (three hashes), refused.
//   seq_adjust/fnat/syn_proxy_ts_sack   apply() to a server segment: seq, ack, window, TSval, two SACK
//                                       blocks, incremental checksum (RFC 1624).
//   seq_adjust/fnat/pp_plain            apply() to a client segment without options (Proxy Protocol
//                                       shift of seq, server space unshifted).
//   seq_adjust/full_checksum/mss1460    the peer: the same seq/ack change with the TCP checksum
//                                       recomputed over a 1460-byte payload, what an implementation
//                                       without incremental updates pays.
// Memory: std::allocator; buffers are on the stack, so every case runs from L1.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include <fnat/core/checksum.hpp>
#include <fnat/core/packet.hpp>
#include <fnat/core/seq_adjust.hpp>
#include <fnat/core/syn_cookie.hpp>

namespace {

using namespace fnat;
using bytes = std::vector<std::uint8_t>;

const mac_addr lb_mac{{0x02, 0, 0, 0, 0, 0x01}};
const hash_secret key{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

// Appends n bytes to a frame. (resize + memcpy: g++ 12 -O3 warns falsely on vector::insert, GCC bug 107852.)
void append(bytes& f, const std::uint8_t* p, std::size_t n) {
  const std::size_t at = f.size();
  f.resize(at + n);
  std::memcpy(f.data() + at, p, n);
}

// A Linux SYN (MSS 1460, SACK, TS, NOP, WS 7) from client to VIP, checksums left zero (not verified).
bytes make_syn(bool v6) {
  bytes f(14, 0);
  f[12] = v6 ? 0x86 : 0x08;
  f[13] = v6 ? 0xdd : 0x00;
  static constexpr std::uint8_t opts[20] = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0, 0,
                                            0,    1,    0,    0,    0,    0,    0x01, 0x03, 0x03, 0x07};
  static constexpr std::uint8_t ip4[20] = {0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 10, 198, 18, 1, 100};
  static constexpr std::uint8_t ip6[40] = {0x60, 0, 0, 0, 0, 40, 6, 64, 0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0,    0, 0, 0x10, 0x20, 0x01, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x64};
  static constexpr std::uint8_t tcp[20] = {0x9c, 0x40, 0, 80, 1, 2, 3, 4, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0};
  if (v6) append(f, ip6, sizeof ip6);
  else append(f, ip4, sizeof ip4);
  append(f, tcp, sizeof tcp);
  append(f, opts, sizeof opts);
  return f;
}

void bm_syn(benchmark::State& state, bool v6, bool with_parse) {
  const auto cookies = *syn_cookies::make({}, key);
  bytes syn = make_syn(v6);
  packet_info info;
  if (parse(syn, info) != drop_reason::none) {
    state.SkipWithError("SYN does not parse");
    return;
  }
  const l2_spec l2 = reply_l2(syn, info, lb_mac);
  std::uint8_t out[128];
  std::uint16_t port = 1024;
  std::uint64_t now = 6400;
  for (auto _ : state) {
    const std::uint16_t p = hton16(port++);
    if (with_parse) {
      std::memcpy(syn.data() + info.l4_off, &p, 2);
      if (parse(syn, info) != drop_reason::none) state.SkipWithError("parse");
    } else {
      info.tuple.sport = p;  // a new client each time: the hash input changes
    }
    const auto r = cookies.make_synack(out, syn, info, l2, now, 0x00abcdef);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// An ACK completing the handshake of make_syn(false), made `age` periods before it is checked.
bytes make_ack(const syn_cookies& c, std::uint64_t made_at, bool forged) {
  bytes syn = make_syn(false);
  packet_info info;
  (void)parse(syn, info);
  std::uint8_t out[128];
  const auto sa = c.make_synack(out, syn, info, reply_l2(syn, info, lb_mac), made_at, 0x00abcdef);
  bytes ack = syn;
  std::uint8_t* tcp = ack.data() + info.l4_off;
  store(tcp + 4, hton32(0x01020305));
  store(tcp + 8, hton32(forged ? sa.cookie ^ 0x5a5a5a5a : sa.cookie + 1));
  tcp[13] = tcp_flags::ack;
  store(tcp + 32, hton32(sa.tsval));  // TSecr: the TS option sits at offset 26 of the header
  return ack;
}

void bm_ack(benchmark::State& state, std::uint64_t made_at, bool forged) {
  const auto cookies = *syn_cookies::make({}, key);
  const bytes ack = make_ack(cookies, made_at, forged);
  packet_info info;
  if (parse(ack, info) != drop_reason::none) {
    state.SkipWithError("ACK does not parse");
    return;
  }
  const std::uint64_t now = 6400 + 63;  // counter 100
  if (static_cast<bool>(cookies.check_ack(ack, info, now)) == forged) {
    state.SkipWithError("unexpected verdict");
    return;
  }
  for (auto _ : state) {
    const auto r = cookies.check_ack(ack, info, now);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

// A TCP segment (header + options + payload) with a valid checksum over a zero pseudo-header.
bytes make_segment(bool opts, std::size_t payload) {
  bytes t(20, 0);
  store(t.data() + 4, hton32(0x1000));
  store(t.data() + 8, hton32(0xabcdef01));
  t[13] = tcp_flags::ack;
  store_be16(t.data() + 14, 1000);
  if (opts) {
    static constexpr std::uint8_t o[32] = {0x01, 0x01, 0x08, 0x0a, 0,    0,    0,    5,    0,    0,    0,
                                           9,    0x01, 0x01, 0x05, 0x12, 0xab, 0xcd, 0xef, 0x10, 0xab, 0xcd,
                                           0xef, 0x20, 0xab, 0xcd, 0xef, 0x30, 0xab, 0xcd, 0xef, 0x40};
    append(t, o, sizeof o);
  }
  t[12] = static_cast<std::uint8_t>((t.size() / 4) << 4);
  t.resize(t.size() + payload, 0x5a);
  store(t.data() + 16, internet_checksum(t));
  return t;
}

void bm_seq_adjust(benchmark::State& state, bool syn_proxy) {
  seq_adjust a;
  if (syn_proxy) {
    a.set_server_isn(0x1000, 0xabcdef00);
    a.set_timestamp_delta(12345);
    a.set_window_scales(7, 9);
  } else {
    a.insert_inbound(0x1000, 47);
  }
  bytes seg = make_segment(syn_proxy, 0);
  const direction dir = syn_proxy ? direction::outbound : direction::inbound;
  for (auto _ : state) {
    const auto e = a.apply(seg, dir);
    benchmark::DoNotOptimize(e);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_full_checksum(benchmark::State& state) {
  bytes seg = make_segment(false, 1460);
  std::uint32_t s = 0x1000;
  for (auto _ : state) {
    store(seg.data() + 4, hton32(s += 47));
    store(seg.data() + 16, std::uint16_t{0});
    store(seg.data() + 16, internet_checksum(seg));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK_CAPTURE(bm_syn, v4, false, false)->Name("synproxy_syn/fnat/v4");
BENCHMARK_CAPTURE(bm_syn, v6, true, false)->Name("synproxy_syn/fnat/v6");
BENCHMARK_CAPTURE(bm_syn, v4_parse, false, true)->Name("synproxy_syn/fnat/v4_parse");
BENCHMARK_CAPTURE(bm_ack, validate, 6400, false)->Name("synproxy_ack/fnat/validate");
BENCHMARK_CAPTURE(bm_ack, validate_age2, 6400 - 128, false)->Name("synproxy_ack/fnat/validate_age2");
BENCHMARK_CAPTURE(bm_ack, reject, 6400, true)->Name("synproxy_ack/fnat/reject");
BENCHMARK_CAPTURE(bm_seq_adjust, syn_proxy, true)->Name("seq_adjust/fnat/syn_proxy_ts_sack");
BENCHMARK_CAPTURE(bm_seq_adjust, pp, false)->Name("seq_adjust/fnat/pp_plain");
BENCHMARK(bm_full_checksum)->Name("seq_adjust/full_checksum/mss1460");
