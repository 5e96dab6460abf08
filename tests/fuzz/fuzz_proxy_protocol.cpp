// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target: the Proxy Protocol parser (core/proxy_protocol.hpp) on arbitrary bytes.
//
// Input: the bytes a client sends first, copied into a buffer of exactly their size so that
// AddressSanitizer reports any read past them. Invariants checked (abort on violation):
//   - an accepted header lies inside the input (v1: at most 107 bytes) and parses the same from
//     exactly its own bytes;
//   - proper prefixes of an accepted header (the one byte shorter, half, and a few more) are
//     `truncated`, never accepted nor another error;
//   - TLVs walked by for_each_tlv lie inside the header;
//   - a header with addresses of one family re-encodes (v1 for TCP, v2 for TCP and UDP, with and without CRC32C)
//     to bytes that parse to the same endpoints.
#include <fnat/core/proxy_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

#define FUZZ_CHECK(cond)                                                                         \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "fuzz_proxy_protocol: invariant failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)

using bytes = std::vector<std::uint8_t>;

fnat::proxy_header parse_copy(const std::uint8_t* p, std::size_t n) {
  const bytes b(p, p + n);
  return fnat::parse_proxy_header(b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bytes in(data, data + size);
  const fnat::proxy_header h = fnat::parse_proxy_header(in);
  if (!h) return 0;
  FUZZ_CHECK(h.length > 0 && h.length <= size);
  FUZZ_CHECK(h.version == 1 || h.version == 2);
  if (h.version == 1) FUZZ_CHECK(h.length <= fnat::proxy_v1_max_len);
  const auto again = parse_copy(data, h.length);
  FUZZ_CHECK(again && again.length == h.length && again.src == h.src && again.dst == h.dst && again.local == h.local);
  for (const std::size_t k : {h.length - 1, h.length / 2, std::size_t{0}, std::size_t{5}, std::size_t{12}, std::size_t{15}}) {
    if (k >= h.length) continue;
    FUZZ_CHECK(parse_copy(data, k).error == fnat::proxy_error::truncated);
  }
  fnat::for_each_tlv(in, h, [&](std::uint8_t, std::span<const std::uint8_t> v) {
    FUZZ_CHECK(v.data() >= in.data() + h.tlv_off && v.data() + v.size() <= in.data() + h.length);
  });
  // An IPv4-mapped IPv6 address comes back as an IPv4 inet_addr: then the two families may differ,
  // and no single header family can carry both.
  if (h.has_addresses() && h.src.addr.is_v4() == h.dst.addr.is_v4()) {
    bytes out(256);
    if (h.proto == fnat::ipproto::tcp) {
      const std::size_t n = fnat::encode_proxy_v1(out, h.src, h.dst);
      FUZZ_CHECK(n > 0);
      const auto r = parse_copy(out.data(), n);
      FUZZ_CHECK(r && r.src == h.src && r.dst == h.dst && r.length == n);
    }
    for (const bool crc : {false, true}) {
      const std::size_t n = fnat::encode_proxy_v2(out, h.src, h.dst, h.proto, {}, crc);
      FUZZ_CHECK(n > 0);
      const auto r = parse_copy(out.data(), n);
      FUZZ_CHECK(r && r.src == h.src && r.dst == h.dst && r.proto == h.proto && r.has_crc == crc);
    }
  }
  return 0;
}
