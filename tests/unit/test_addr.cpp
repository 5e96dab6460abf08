// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/addr.hpp>

#include <catch2/catch.hpp>

#include <optional>
#include <string>

namespace {
fnat::inet_addr addr_of(const char* s) { return *fnat::inet_addr::parse(s); }
}  // namespace

TEST_CASE("endpoint::parse reads what to_string writes, both families", "[addr]") {
  const auto v4 = fnat::endpoint::parse("198.18.2.11:8080");
  REQUIRE(v4);
  CHECK(v4->addr == addr_of("198.18.2.11"));
  CHECK(v4->port == 8080);
  const auto v6 = fnat::endpoint::parse("[2001:2:0:2::11]:80");
  REQUIRE(v6);
  CHECK(v6->addr == addr_of("2001:2:0:2::11"));
  CHECK(v6->port == 80);
  for (const char* s : {"198.18.0.1:1", "198.18.0.1:65535", "[2001:2::1]:443", "[::1]:53"}) {
    CAPTURE(s);
    const auto e = fnat::endpoint::parse(s);
    REQUIRE(e);
    CHECK(e->to_string() == s);
  }
}

TEST_CASE("endpoint::parse refuses what is not ADDR:PORT or [ADDR6]:PORT", "[addr]") {
  for (const char* s : {"", ":", "198.18.0.1", "198.18.0.1:", "198.18.0.1:0", "198.18.0.1:65536", "198.18.0.1:99999",
                        "198.18.0.1:123456", "198.18.0.1:8a", "198.18.0.1:+80", "198.18.0.1:-1", "198.18.0.1: 80",
                        "2001:2::1:80", "[198.18.0.1]:80", "[2001:2::1]", "[2001:2::1:80", "2001:2::1]:80", "[]:80",
                        "[2001:2::1]x:80", "[::ffff:198.18.0.1]:80", "host:80", "198.18.0.256:80"}) {
    CAPTURE(s);
    CHECK_FALSE(fnat::endpoint::parse(s).has_value());
  }
}
