// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: the TCP segment rewrites of issue 18 on arbitrary frames: option walker
// (core/tcp_options.hpp), sequence translation (core/seq_adjust.hpp), TOA insertion (core/toa.hpp),
// the cookie SYN-ACK and the ACK check (core/syn_cookie.hpp).
//
// Input: bytes 0-15 = control (seq_adjust parameters, the client endpoint of the TOA, the clock),
// the rest = an Ethernet frame, copied into a buffer of exactly its size plus 32 bytes of room so
// that AddressSanitizer reports any access past it. Frames that do not parse as TCP are skipped.
// Invariants checked (abort on violation):
//   walker:      every option lies inside the header; at most 40 steps;
//   seq_adjust:  a refusal changes nothing; otherwise the TCP checksum verifies after iff it did
//                before, and only seq, ack, window and option bytes changed;
//   insert_toa:  a refusal changes nothing; otherwise the frame grew by 8 or 20 bytes, re-parses,
//                both checksums verify iff they did before, and read_toa gives the client back;
//   payload:     insert_tcp_payload refuses (nothing changed) or leaves the new bytes then the old
//                payload, a verifying checksum (only segments that verified are accepted);
//   syn cookies: a SYN-ACK re-parses with both checksums verified and the tuple reversed (or is
//                refused only as bad_source: a SYN to a multicast address); the ACK check never
//                accepts the SYN itself.
#include <fnat/core/packet.hpp>
#include <fnat/core/seq_adjust.hpp>
#include <fnat/core/syn_cookie.hpp>
#include <fnat/core/tcp_options.hpp>
#include <fnat/core/toa.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz_tcp_segment: invariant failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

using bytes = std::vector<std::uint8_t>;

std::uint32_t rd32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

bool ip_ok(const bytes& f, const fnat::packet_info& info) {
  if (info.family != fnat::ip_family::v4) return true;
  return fnat::checksum_ok({f.data() + info.l3_off, fnat::ipv4_hdr_len});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 16) return 0;
  const std::uint8_t* ctl = data;
  const std::size_t flen = size - 16;
  bytes f(data + 16, data + size);
  f.resize(flen + 32, 0);
  fnat::packet_info info;
  if (fnat::parse(std::span<const std::uint8_t>(f.data(), flen), info) != fnat::drop_reason::none) return 0;
  if (info.proto != fnat::ipproto::tcp) return 0;
  const std::span<const std::uint8_t> head(f.data(), info.frame_len);
  const std::size_t hl = info.payload_off - info.l4_off;

  // Walker.
  {
    fnat::tcp_option_walker w({f.data() + info.l4_off, hl});
    fnat::tcp_option o;
    int steps = 0;
    while (w.next(o)) {
      FUZZ_CHECK(o.off >= 20 && o.off + o.len <= hl);
      FUZZ_CHECK(++steps <= 40);
    }
  }

  const bool l4_before = fnat::l4_checksum_ok(head, info);
  const bool ip_before = ip_ok(f, info);

  // seq_adjust.
  {
    fnat::seq_adjust a;
    if (ctl[0] & 1) a.insert_inbound(rd32(ctl + 4), ctl[1]);
    if (ctl[0] & 2) a.set_server_isn(rd32(ctl + 8), rd32(ctl + 12));
    if (ctl[0] & 4) a.set_timestamp_delta(rd32(ctl + 4) ^ rd32(ctl + 8));
    if (ctl[0] & 8) a.set_window_scales(ctl[2] & 15, ctl[3] & 15);
    const fnat::direction dir = (ctl[0] & 16) ? fnat::direction::outbound : fnat::direction::inbound;
    bytes g = f;
    const auto e = a.apply({g.data() + info.l4_off, hl}, dir, (ctl[0] & 32) == 0);
    if (e != fnat::tcp_option_error::none) {
      FUZZ_CHECK(g == f);
    } else {
      FUZZ_CHECK(fnat::l4_checksum_ok({g.data(), info.frame_len}, info) == l4_before);
      for (std::size_t i = 0; i < g.size(); ++i) {
        if (g[i] == f[i]) continue;
        const std::size_t r = i - info.l4_off;
        FUZZ_CHECK(i >= info.l4_off && ((r >= 4 && r < 12) || r == 14 || r == 15 || r == 16 || r == 17 || (r >= 20 && r < hl)));
      }
    }
  }

  // TOA.
  {
    fnat::endpoint client;
    if (ctl[0] & 64) {
      fnat::ipv6_addr a;
      std::memcpy(a.bytes.data(), data, 16);
      a.bytes[0] = 0x20;  // not mapped
      client.addr = a;
    } else {
      client.addr = fnat::ipv4_addr{rd32(ctl + 4)};
    }
    client.port = static_cast<std::uint16_t>(rd32(ctl + 8));
    bytes g = f;
    fnat::packet_info gi = info;
    const auto e = fnat::insert_toa(g, gi, client, {.capacity = g.size(), .max_ip_len = ctl[1] & 1 ? 1500u : 0u});
    if (e != fnat::tcp_option_error::none) {
      FUZZ_CHECK(g == f);
      FUZZ_CHECK(gi.frame_len == info.frame_len);
    } else {
      FUZZ_CHECK(gi.frame_len == info.frame_len + (client.addr.is_v4() ? 8u : 20u));
      fnat::packet_info re;
      FUZZ_CHECK(fnat::parse(std::span<const std::uint8_t>(g.data(), gi.frame_len), re) == fnat::drop_reason::none);
      FUZZ_CHECK(re.payload_off == gi.payload_off && re.tuple == info.tuple);
      FUZZ_CHECK(fnat::l4_checksum_ok({g.data(), gi.frame_len}, re) == l4_before);
      FUZZ_CHECK(ip_ok(g, re) == ip_before);
      const auto back = fnat::read_toa({g.data() + re.l4_off, std::size_t{re.payload_off} - re.l4_off});
      FUZZ_CHECK(back && *back == client);
    }
  }

  // Payload insertion (a Proxy Protocol header in front of the data).
  {
    const std::size_t n = ctl[1] % 17;
    bytes g = f;
    fnat::packet_info gi = info;
    const auto e = fnat::insert_tcp_payload(g, gi, {ctl, n}, {.capacity = g.size(), .max_ip_len = ctl[2] & 1 ? 1500u : 0u});
    if (e != fnat::tcp_option_error::none) {
      FUZZ_CHECK(g == f);
      FUZZ_CHECK(e != fnat::tcp_option_error::bad_checksum || !l4_before);
    } else {
      FUZZ_CHECK(l4_before);
      FUZZ_CHECK(gi.frame_len == info.frame_len + n);
      fnat::packet_info re;
      FUZZ_CHECK(fnat::parse(std::span<const std::uint8_t>(g.data(), gi.frame_len), re) == fnat::drop_reason::none);
      FUZZ_CHECK(fnat::l4_checksum_ok({g.data(), gi.frame_len}, re));
      FUZZ_CHECK(ip_ok(g, re) == ip_before);
      FUZZ_CHECK(std::memcmp(g.data() + info.payload_off, ctl, n) == 0);
      FUZZ_CHECK(std::memcmp(g.data() + info.payload_off + n, f.data() + info.payload_off, info.frame_len - info.payload_off) == 0);
    }
  }

  // SYN cookies.
  {
    static const auto cookies = *fnat::syn_cookies::make({}, fnat::hash_secret{1, 2});
    const std::uint64_t now = rd32(ctl + 12);
    std::uint8_t out[128];
    const auto sa = cookies.make_synack(out, head, info, fnat::reply_l2(head, info, fnat::mac_addr{{2, 0, 0, 0, 0, 1}}), now,
                                        rd32(ctl + 8));
    if (sa) {
      fnat::packet_info si;
      const auto why = fnat::parse(std::span<const std::uint8_t>(out, sa.len), si,
                                   {.verify_ip_checksum = true, .verify_l4_checksum = true});
      // A SYN to a multicast / unspecified / loopback address gets a SYN-ACK from it, which parse
      // refuses as a source (the balancer answers only SYNs to its VIPs); anything else must pass.
      FUZZ_CHECK(why == fnat::drop_reason::none || why == fnat::drop_reason::bad_source);
      if (why == fnat::drop_reason::none) {
        FUZZ_CHECK(si.tuple == info.tuple.reversed());
        FUZZ_CHECK(si.tcp_flags == (fnat::tcp_flags::syn | fnat::tcp_flags::ack));
      }
      FUZZ_CHECK(!cookies.check_ack(head, info, now));  // the SYN is not its own ACK
    }
    (void)cookies.check_ack(head, info, now);
  }
  return 0;
}
