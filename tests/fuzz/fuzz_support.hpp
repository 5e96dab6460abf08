// SPDX-License-Identifier: BSD-3-Clause
// Shared by the model-checking fuzz targets (fuzz_sa_pool, fuzz_conn_table, fuzz_config): the
// check macro and the reader that turns libFuzzer's bytes into an operation sequence.
//
// The reader takes bytes from the front, in order, and yields 0 once the input is used up, so a
// seed file can be written by hand (or by make_model_seeds.py) as "header bytes, then one op per
// few bytes", and every prefix of an input is itself a valid, shorter input (libFuzzer's mutations
// that truncate or splice stay meaningful). FuzzedDataProvider would take integers from the back
// and make hand-written seeds unreadable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

/// Stops the run with a message libFuzzer shows next to the crash: which invariant, where.
#define FUZZ_CHECK(cond)                                                                        \
  do {                                                                                          \
    if (!(cond)) [[unlikely]] {                                                                 \
      std::fprintf(stderr, "%s:%d: model check failed: %s\n", __FILE__, __LINE__, #cond);       \
      __builtin_trap();                                                                         \
    }                                                                                           \
  } while (0)

namespace fnat::fuzz {

/// Reads an input front to back; past the end every read yields 0 and empty() is true.
class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size) noexcept : p_(data), n_(size) {}
  [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
  [[nodiscard]] std::size_t left() const noexcept { return n_; }
  std::uint8_t u8() noexcept {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  /// Little endian, so a seed writes the low byte first.
  std::uint16_t u16() noexcept {
    const std::uint16_t lo = u8();
    const std::uint16_t hi = u8();
    return static_cast<std::uint16_t>(lo | (hi << 8));
  }
  bool bit() noexcept { return (u8() & 1u) != 0; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

/// True when FNAT_FUZZ_SUMMARY is set: the harnesses then print what an input did (to check by
/// hand that a seed reaches what it was written for: `FNAT_FUZZ_SUMMARY=1 fuzz_sa_pool seed`).
inline bool summary_wanted() noexcept {
  static const bool wanted = std::getenv("FNAT_FUZZ_SUMMARY") != nullptr;
  return wanted;
}

}  // namespace fnat::fuzz
