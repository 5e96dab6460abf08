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

// ---- periodic tables ------------------------------------------------------------------------------

TEST_CASE("reta_period_bits: exact splits take the shortest period, others balance x queues, capped", "[reta]") {
  auto bits = [](std::size_t n, std::size_t size, std::uint32_t balance = fnat::reta_default_balance) {
    auto m = fnat::reta_period_bits(n, size, balance);
    REQUIRE(m);
    return *m;
  };
  CHECK(bits(1, 512) == 0);   // one queue: period 1
  CHECK(bits(2, 512) == 1);   // powers of two split exactly: round robin's own period
  CHECK(bits(4, 512) == 2);
  CHECK(bits(8, 512) == 3);
  CHECK(bits(64, 512) == 6);
  CHECK(bits(6, 512) == 7);   // 6 x 16 = 96 -> 128
  CHECK(bits(3, 512) == 6);   // 48 -> 64
  CHECK(bits(7, 512) == 7);   // 112 -> 128
  CHECK(bits(12, 512) == 8);  // 192 -> 256
  CHECK(bits(6, 64) == 6);    // capped at the table: 64 entries, round robin over it
  CHECK(bits(40, 512) == 9);
  CHECK(bits(6, 512, 8) == 6);  // a lower balance target, a shorter period
  CHECK(bits(6, 512, 1) == 3);  // balance 1: one class per queue at least
  CHECK(bits(5, 2048, 64) == 9);
  // Weighted: exact when every quota is whole, else balance x active queues; zero weights do not count.
  auto wbits = [](std::vector<std::uint32_t> w, std::size_t size, std::uint32_t balance = fnat::reta_default_balance) {
    auto m = fnat::reta_period_bits(w, size, balance);
    REQUIRE(m);
    return *m;
  };
  CHECK(wbits({1, 1, 2}, 512) == 2);     // quotas 1, 1, 2 of 4
  CHECK(wbits({3, 3, 3, 3}, 512) == 2);  // equal weights behave like the queue count
  CHECK(wbits({1, 2, 3, 4}, 512) == 6);  // 4 x 16 = 64
  CHECK(wbits({0, 5, 0, 5}, 512) == 1);  // two active queues, exact at 2
  CHECK(wbits({5, 5, 5, 0, 0, 0}, 512) == 6);
  // A tiny weight still gets a class: at P = 32 Hamilton gives weight 1 of 1001 nothing, at 512 the
  // one leftover class.
  CHECK(wbits({1, 1000}, 2048) == 9);
  auto counts = fnat::reta_apportion(std::vector<std::uint32_t>{1, 1000}, 256);
  REQUIRE(counts);
  CHECK((*counts)[0] == 0);
}

TEST_CASE("periodic RETA: periodic with 2^m, every share within 1/2^m of its quota, balance bound, minimal m",
          "[reta]") {
  for (std::size_t size : {64u, 128u, 512u, 2048u})
    for (std::size_t n = 1; n <= 24; ++n)
      for (std::uint32_t balance : {1u, 4u, 16u, 64u}) {
        INFO("size " << size << ", " << n << " queues, balance " << balance);
        std::vector<std::uint16_t> queues(n);
        for (std::size_t i = 0; i < n; ++i) queues[i] = static_cast<std::uint16_t>(3 * i + 1);
        const auto m = fnat::reta_period_bits(n, size, balance);
        REQUIRE(m);
        const std::size_t period = std::size_t{1} << *m;
        auto t = fnat::reta_periodic(queues, size, {.balance = balance});
        REQUIRE(t);
        REQUIRE(t->size() == size);
        // The rule itself: class c -> queues[c mod n], repeated every period.
        for (std::size_t j = 0; j < size; ++j) REQUIRE((*t)[j] == queues[(j % period) % n]);
        // Distinct queues: the table's shortest period is exactly the chosen one.
        REQUIRE(fnat::reta_period(*t) == period);
        // Balance: entries floor/ceil of size / n per period's worth, so every share is within 1/P of
        // 1/n, and the spread (max - min) / mean is n / P, at most 1/balance unless the split is exact
        // or the period hit the table size.
        const auto c = counts_of(*t, queues);
        const auto [lo, hi] = std::minmax_element(c.begin(), c.end());
        REQUIRE(*lo >= 1);
        for (std::uint32_t x : c) REQUIRE(std::abs(static_cast<double>(x) / size - 1.0 / n) < 1.0 / period);
        REQUIRE((*hi - *lo) * period <= size);  // differ by at most one class
        const bool exact = period % n == 0;
        if (exact) REQUIRE(*hi == *lo);
        if (period < size) {
          REQUIRE(period >= n);
          REQUIRE((exact || period >= std::size_t{balance} * n));
          if (!exact) REQUIRE(static_cast<double>(*hi - *lo) / (static_cast<double>(size) / n) <= 1.0 / balance);
        }
        // Minimal: half the period would break the rule (or is below the queue count).
        if (*m > 0) {
          const std::size_t half = period / 2;
          REQUIRE((half < n || (half % n != 0 && half < std::size_t{balance} * n)));
        }
        // A period that fills the table is round robin's table.
        if (period == size) REQUIRE(*t == *fnat::reta_round_robin(queues, size));
      }
}

TEST_CASE("periodic weighted RETA: one reta_weighted period repeated, quota rule per period", "[reta]") {
  std::mt19937 rng(777);
  for (std::size_t size : {128u, 512u, 2048u})
    for (int trial = 0; trial < 150; ++trial) {
      const std::size_t n = 1 + rng() % 12;
      std::vector<std::uint16_t> queues(n);
      std::iota(queues.begin(), queues.end(), std::uint16_t{0});
      std::shuffle(queues.begin(), queues.end(), rng);
      std::vector<std::uint32_t> w(n);
      for (auto& x : w) x = rng() % 6 == 0 ? 0 : 1 + rng() % 100;
      if (std::all_of(w.begin(), w.end(), [](auto x) { return x == 0; })) w[0] = 3;
      INFO("size " << size << ", trial " << trial);
      const auto m = fnat::reta_period_bits(w, size);
      REQUIRE(m);
      const std::size_t period = std::size_t{1} << *m;
      auto t = fnat::reta_periodic_weighted(queues, w, size);
      REQUIRE(t);
      const auto one = fnat::reta_weighted(queues, w, period);
      REQUIRE(one);
      for (std::size_t j = 0; j < size; ++j) REQUIRE((*t)[j] == (*one)[j % period]);
      REQUIRE(fnat::reta_period(*t) <= period);
      const auto c = counts_of(*t, queues);
      const double total = std::accumulate(w.begin(), w.end(), 0.0);
      for (std::size_t q = 0; q < n; ++q) {
        REQUIRE(std::abs(static_cast<double>(c[q]) / size - w[q] / total) < 1.0 / period);  // quota rule
        if (w[q] == 0) REQUIRE(c[q] == 0);
        // Below the cap the period is chosen so that every weighted queue is served; at the cap the
        // table is reta_weighted over its whole length, which may leave a tiny weight out.
        if (period < size && w[q] != 0) REQUIRE(c[q] != 0);
      }
      if (period == size) REQUIRE(*t == *fnat::reta_weighted(queues, w, size));
    }
}

TEST_CASE("periodic RETA: explicit periods and refusals", "[reta]") {
  const std::vector<std::uint16_t> q6 = {0, 1, 2, 3, 4, 5};
  auto t = fnat::reta_periodic(q6, 512, {.period_bits = 6});
  REQUIRE(t);
  REQUIRE(fnat::reta_period(*t) == 64);
  REQUIRE(counts_of(*t, q6) == std::vector<std::uint32_t>{88, 88, 88, 88, 80, 80});  // 11 11 11 11 10 10 per 64
  auto full = fnat::reta_periodic(q6, 512, {.period_bits = 9});
  REQUIRE(full);
  REQUIRE(*full == *fnat::reta_round_robin(q6, 512));

  auto longer = fnat::reta_periodic(q6, 128, {.period_bits = 8});
  REQUIRE_FALSE(longer);
  CHECK(longer.err().code() == errc::invalid_argument);
  CHECK(longer.err().message().find("longer than the 128-entry table") != std::string::npos);
  auto shorter = fnat::reta_periodic(q6, 512, {.period_bits = 2});
  REQUIRE_FALSE(shorter);
  CHECK(shorter.err().message().find("cannot hold 6 queues") != std::string::npos);
  CHECK(shorter.err().message().find("period_bits >= 3") != std::string::npos);
  auto odd = fnat::reta_periodic(q6, 96);
  REQUIRE_FALSE(odd);
  CHECK(odd.err().message().find("not a power of two") != std::string::npos);
  auto zero = fnat::reta_periodic(q6, 512, {.balance = 0});
  REQUIRE_FALSE(zero);
  CHECK(zero.err().message().find("balance 0") != std::string::npos);
  auto empty = fnat::reta_periodic(std::vector<std::uint16_t>{}, 512);
  REQUIRE_FALSE(empty);
  CHECK(empty.err().message().find("queue list is empty") != std::string::npos);
  auto mismatch = fnat::reta_periodic_weighted(q6, std::vector<std::uint32_t>{1, 2}, 512);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.err().message().find("6 queues but 2 weights") != std::string::npos);
  auto no_weight = fnat::reta_periodic_weighted(q6, std::vector<std::uint32_t>(6, 0), 512);
  REQUIRE_FALSE(no_weight);
  CHECK(no_weight.err().message().find("every weight is 0") != std::string::npos);

  // reta_period on tables of other origin.
  CHECK(fnat::reta_period(*fnat::reta_round_robin(q6, 512)) == 512);
  CHECK(fnat::reta_period(*fnat::reta_round_robin(std::vector<std::uint16_t>{7, 3, 5, 1}, 512)) == 4);
  CHECK(fnat::reta_period(std::vector<std::uint16_t>(256, 9)) == 1);
  std::vector<std::uint16_t> halves(512, 1);
  std::fill(halves.begin() + 256, halves.end(), std::uint16_t{2});
  CHECK(fnat::reta_period(halves) == 512);
  CHECK(fnat::reta_period(std::vector<std::uint16_t>(96, 1)) == 96);  // not a power of two: the size
  CHECK(fnat::to_string(fnat::reta_fill::periodic) == "periodic");
}
