// SPDX-License-Identifier: BSD-3-Clause
#include <fnat/core/addr.hpp>
#include <fnat/core/reta.hpp>
#include <fnat/core/toeplitz.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

using fnat::errc;

namespace {

std::vector<std::uint32_t> counts_of(const std::vector<std::uint16_t>& table,
                                     const std::vector<std::uint16_t>& queues) {
  std::vector<std::uint32_t> c(queues.size(), 0);
  for (std::uint16_t q : table) {
    const auto it = std::find(queues.begin(), queues.end(), q);
    REQUIRE(it != queues.end());  // nothing outside the list
    ++c[static_cast<std::size_t>(it - queues.begin())];
  }
  return c;
}

}  // namespace

TEST_CASE("round-robin RETA is exactly queues[i mod n] for sizes 64, 128, 512", "[reta]") {
  const std::vector<std::vector<std::uint16_t>> lists = {
      {0}, {0, 1}, {3, 1, 2}, {0, 1, 2, 3, 4, 5}, {7, 9, 11, 13, 15, 17, 19}, {5, 4, 3, 2, 1, 0, 6, 8, 10, 12}};
  for (std::size_t size : {64u, 128u, 512u}) {
    for (const auto& queues : lists) {
      INFO("size " << size << ", " << queues.size() << " queues");
      auto t = fnat::reta_round_robin(queues, size);
      REQUIRE(t);
      REQUIRE(t->size() == size);
      for (std::size_t i = 0; i < size; ++i) REQUIRE((*t)[i] == queues[i % queues.size()]);
      // Shares differ by at most one entry, the first (size mod n) queues get the extra one.
      const auto c = counts_of(*t, queues);
      for (std::size_t q = 0; q < queues.size(); ++q)
        REQUIRE(c[q] == size / queues.size() + (q < size % queues.size() ? 1 : 0));
    }
  }
}

TEST_CASE("weighted apportionment is Hamilton's: floor of the quota plus the largest remainders", "[reta]") {
  // 128 entries over weights 1:2:3:4 (W = 10): quotas 12.8, 25.6, 38.4, 51.2 -> floors 12, 25, 38, 51 (126),
  // the 2 left go to the largest fractions .8 and .6.
  auto c = fnat::reta_apportion(std::vector<std::uint32_t>{1, 2, 3, 4}, 128);
  REQUIRE(c);
  REQUIRE(*c == std::vector<std::uint32_t>{13, 26, 38, 51});
  // Ties go to the earlier queue: 64 entries over three equal weights -> 22, 21, 21.
  c = fnat::reta_apportion(std::vector<std::uint32_t>{5, 5, 5}, 64);
  REQUIRE(c);
  REQUIRE(*c == std::vector<std::uint32_t>{22, 21, 21});
  // A zero weight gets nothing, even when a remainder is left to hand out.
  c = fnat::reta_apportion(std::vector<std::uint32_t>{0, 1, 1, 1}, 64);
  REQUIRE(c);
  REQUIRE(*c == std::vector<std::uint32_t>{0, 22, 21, 21});
}

TEST_CASE("weighted RETA: quota rule, every prefix within one entry of its share, equal weights = round robin",
          "[reta]") {
  std::mt19937 rng(12345);
  for (std::size_t size : {64u, 128u, 512u}) {
    for (int trial = 0; trial < 200; ++trial) {
      const std::size_t n = 1 + rng() % 24;
      std::vector<std::uint16_t> queues(n);
      std::iota(queues.begin(), queues.end(), std::uint16_t{0});
      std::shuffle(queues.begin(), queues.end(), rng);
      std::vector<std::uint32_t> w(n);
      for (auto& x : w) x = rng() % 5 == 0 ? 0 : 1 + rng() % 1000;
      if (std::all_of(w.begin(), w.end(), [](auto x) { return x == 0; })) w[0] = 1;
      INFO("size " << size << ", trial " << trial);
      auto t = fnat::reta_weighted(queues, w, size);
      REQUIRE(t);
      REQUIRE(t->size() == size);
      const auto c = counts_of(*t, queues);
      const auto expect = fnat::reta_apportion(w, size);
      REQUIRE(expect);
      REQUIRE(c == *expect);
      const double total = std::accumulate(w.begin(), w.end(), 0.0);
      for (std::size_t q = 0; q < n; ++q) {
        const double quota = static_cast<double>(size) * w[q] / total;
        REQUIRE(std::abs(static_cast<double>(c[q]) - quota) < 1.0);  // the quota rule
        // Spread: every prefix holds the queue's share to within one entry, |x_q(t) * S - t * c_q| < S
        // (so any window is within two).
        std::int64_t have = 0, worst = 0;
        for (std::size_t i = 0; i < size; ++i) {
          have += (*t)[i] == queues[q] ? 1 : 0;
          const std::int64_t lag = have * static_cast<std::int64_t>(size) - static_cast<std::int64_t>(i + 1) * c[q];
          worst = std::max(worst, std::abs(lag));
        }
        REQUIRE(worst < static_cast<std::int64_t>(size));
      }
    }
    // Equal weights with n dividing size: exactly the round-robin table.
    const std::vector<std::uint16_t> q = {4, 2, 6, 0};
    auto t = fnat::reta_weighted(q, std::vector<std::uint32_t>{7, 7, 7, 7}, size);
    auto rr = fnat::reta_round_robin(q, size);
    REQUIRE(t);
    REQUIRE(rr);
    REQUIRE(*t == *rr);
  }
}

TEST_CASE("RETA computation refuses what cannot be a table", "[reta]") {
  const std::vector<std::uint16_t> none;
  auto a = fnat::reta_round_robin(none, 128);
  REQUIRE_FALSE(a);
  REQUIRE(a.err().code() == errc::invalid_argument);
  REQUIRE(a.err().message().find("queue list is empty") != std::string::npos);
  auto b = fnat::reta_round_robin(std::vector<std::uint16_t>{0, 1}, 0);
  REQUIRE_FALSE(b);
  REQUIRE(b.err().message().find("reta_size 0") != std::string::npos);
  auto c = fnat::reta_weighted(std::vector<std::uint16_t>{0, 1}, std::vector<std::uint32_t>{1}, 64);
  REQUIRE_FALSE(c);
  REQUIRE(c.err().message().find("2 queues but 1 weights") != std::string::npos);
  auto d = fnat::reta_weighted(std::vector<std::uint16_t>{0, 1}, std::vector<std::uint32_t>{0, 0}, 64);
  REQUIRE_FALSE(d);
  REQUIRE(d.err().message().find("every weight is 0") != std::string::npos);
}

TEST_CASE("the symmetric key hashes both directions of a connection alike", "[reta][rss_key]") {
  REQUIRE(fnat::rss_key_symmetric.size() == 40);
  REQUIRE(fnat::rss_key_symmetric[0] == 0x6d);
  REQUIRE(fnat::rss_key_symmetric[1] == 0x5a);
  REQUIRE(fnat::make_symmetric_rss_key(52).size() == 52);
  REQUIRE(std::equal(fnat::rss_key_symmetric.begin(), fnat::rss_key_symmetric.end(),
                     fnat::make_symmetric_rss_key(52).begin()));
  std::mt19937 rng(7);
  auto bytes = [&](std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
  };
  for (std::size_t alen : {4u, 16u}) {
    for (int i = 0; i < 2000; ++i) {
      const auto a = bytes(alen), b = bytes(alen), pa = bytes(2), pb = bytes(2);
      std::vector<std::uint8_t> fwd, rev, fwd_ip, rev_ip;
      for (const auto* part : {&a, &b, &pa, &pb}) fwd.insert(fwd.end(), part->begin(), part->end());
      for (const auto* part : {&b, &a, &pb, &pa}) rev.insert(rev.end(), part->begin(), part->end());
      for (const auto* part : {&a, &b}) fwd_ip.insert(fwd_ip.end(), part->begin(), part->end());
      for (const auto* part : {&b, &a}) rev_ip.insert(rev_ip.end(), part->begin(), part->end());
      const auto h = fnat::toeplitz_hash_reference(fnat::rss_key_symmetric, fwd);
      REQUIRE(h == fnat::toeplitz_hash_reference(fnat::rss_key_symmetric, rev));
      REQUIRE(fnat::toeplitz_hash_reference(fnat::rss_key_symmetric, fwd_ip) ==
              fnat::toeplitz_hash_reference(fnat::rss_key_symmetric, rev_ip));
      REQUIRE((h >> 16) == (h & 0xffff));  // the price: 16 bits of entropy (file comment)
    }
  }
  // The Microsoft key is not symmetric: the property is the key's, not Toeplitz's.
  const std::vector<std::uint8_t> fwd = {198, 18, 0, 1, 198, 18, 1, 1, 0x30, 0x39, 0x00, 0x50};
  const std::vector<std::uint8_t> rev = {198, 18, 1, 1, 198, 18, 0, 1, 0x00, 0x50, 0x30, 0x39};
  REQUIRE(fnat::toeplitz_hash_reference(fnat::rss_key_microsoft, fwd) !=
          fnat::toeplitz_hash_reference(fnat::rss_key_microsoft, rev));
}

TEST_CASE("reta_index takes the low bits of the hash", "[reta]") {
  REQUIRE(fnat::reta_index(0x12345678u, 128) == 0x78);
  REQUIRE(fnat::reta_index(0x12345678u, 512) == 0x78);
  REQUIRE(fnat::reta_index(0x123456ffu, 64) == 0x3f);
}
