// SPDX-License-Identifier: BSD-3-Clause
// A token bucket on an integer clock: at most `burst` events at once, `rate` per second on average.
// What a lcore uses to bound the packets it sends in answer to packets strangers chose (TCP resets,
// ICMP errors), so that a spoofed flood cannot turn the balancer into a reflector at line rate.
//
// ## Arithmetic
// Time is a tick counter of `hz` ticks per second (the TSC, or a manual clock in tests). Credit is
// kept in token-ticks: one token is worth `hz`, and `e` elapsed ticks add e * rate. So
//     credit = min(burst * hz, credit + e * rate);   take(): credit >= hz ? credit -= hz, true : false
// is exact integer arithmetic (no rounding drift, no division on the fast path). Elapsed time is
// capped at what refills an empty bucket, burst * hz / rate + 1 ticks (more cannot add credit beyond
// the cap anyway), so credit + e * rate <= 2 * burst * hz + rate stays below 2^64 for every
// configuration `make` accepts: burst at most 10^7, hz at most 10^11 (100 GHz), 2 * 10^18 < 1.8 * 10^19.
// A clock that goes backwards adds nothing.
//
// Single owner (one lcore), no atomics. Every member O(1), noexcept except make.
#pragma once

#include <cstdint>
#include <string>

#include "fnat/core/error.hpp"

namespace fnat {

/// Configuration of a token bucket. Designated initializers.
struct token_bucket_config {
  /// Average events per second, 1..10^7.
  std::uint64_t rate = 1000;
  /// Events allowed at once (and the bucket's size), 1..10^7.
  std::uint64_t burst = 100;
  /// Clock ticks per second, 1..10^11.
  std::uint64_t hz = 1'000'000'000;
};

/// See the file comment. Starts full.
class token_bucket {
 public:
  static constexpr std::uint64_t max_rate = 10'000'000;
  static constexpr std::uint64_t max_hz = 100'000'000'000;

  /// Errors: errc::invalid_argument naming the field out of range.
  [[nodiscard]] static result<token_bucket> make(const token_bucket_config& c, std::uint64_t now = 0) {
    if (c.rate == 0 || c.rate > max_rate)
      return error(errc::invalid_argument, "token bucket: rate " + std::to_string(c.rate) + " is outside 1..10000000 per second");
    if (c.burst == 0 || c.burst > max_rate)
      return error(errc::invalid_argument, "token bucket: burst " + std::to_string(c.burst) + " is outside 1..10000000");
    if (c.hz == 0 || c.hz > max_hz)
      return error(errc::invalid_argument, "token bucket: clock of " + std::to_string(c.hz) + " Hz is outside 1 Hz..100 GHz");
    return token_bucket(c, now);
  }

  /// Takes one token at time `now` if there is one. O(1), noexcept.
  [[nodiscard]] bool take(std::uint64_t now) noexcept {
    refill(now);
    if (credit_ < hz_) return false;
    credit_ -= hz_;
    return true;
  }
  /// Whole tokens available at time `now`. O(1), noexcept.
  [[nodiscard]] std::uint64_t available(std::uint64_t now) noexcept {
    refill(now);
    return credit_ / hz_;
  }

 private:
  token_bucket(const token_bucket_config& c, std::uint64_t now) noexcept
      : rate_(c.rate), hz_(c.hz), cap_(c.burst * c.hz), credit_(cap_), last_(now), max_elapsed_(c.burst * c.hz / c.rate + 1) {}

  void refill(std::uint64_t now) noexcept {
    if (now <= last_) return;
    std::uint64_t e = now - last_;
    last_ = now;
    if (e > max_elapsed_) e = max_elapsed_;
    credit_ += e * rate_;
    if (credit_ > cap_) credit_ = cap_;
  }

  std::uint64_t rate_, hz_, cap_, credit_, last_, max_elapsed_;
};

}  // namespace fnat
