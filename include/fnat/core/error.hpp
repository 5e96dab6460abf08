// SPDX-License-Identifier: BSD-3-Clause
// Error reporting shared by every fnat component.
//
// Two shapes, chosen by where a call runs:
//  - configuration time (building plans, pools, rules, reading config): `result<T>` carries either a
//    value or an `error` with a code and a message that names what was wrong and what to do, like
//    rte_flow_error's (type, cause, message) triple;
//  - fast path (fetch, release, lookup, insert): a plain `errc` or a small struct holding one, never an
//    exception and never an allocation.
// Library code never exits or aborts on a runtime condition.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace fnat {

/// Error codes. `ok` is zero so that `if (rc != errc::ok)` and `if (!is_ok(rc))` read the same.
enum class errc : std::uint8_t {
  ok = 0,
  invalid_argument,  ///< an argument or a configuration value is outside its domain
  exhausted,         ///< a pool has nothing left to hand out (ports, conn objects)
  table_full,        ///< a bounded table reached the capacity it was built for
  exists,            ///< the key is already present
  not_found,         ///< the key is not present
  not_in_use,        ///< release of something that was not handed out (double release)
  foreign,           ///< the item belongs to another lcore, bucket or pool
  not_supported,     ///< the device, PMD or CPU lacks the capability
  device_error,      ///< the PMD or a DPDK call rejected the request
  no_memory,         ///< memory could not be obtained
  bucket_full,       ///< a hash bucket reached its bound (a chain at max_chain: hash flooding?)
};

/// Stable, short name of a code, e.g. "exhausted".
[[nodiscard]] constexpr std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
    case errc::invalid_argument: return "invalid_argument";
    case errc::exhausted: return "exhausted";
    case errc::table_full: return "table_full";
    case errc::exists: return "exists";
    case errc::not_found: return "not_found";
    case errc::not_in_use: return "not_in_use";
    case errc::foreign: return "foreign";
    case errc::not_supported: return "not_supported";
    case errc::device_error: return "device_error";
    case errc::no_memory: return "no_memory";
    case errc::bucket_full: return "bucket_full";
  }
  return "unknown";
}

[[nodiscard]] constexpr bool is_ok(errc e) noexcept { return e == errc::ok; }

/// A configuration-time error: a code plus a sentence for the operator.
class error {
 public:
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  [[nodiscard]] errc code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  /// "<code>: <message>", the form logs and exceptions use.
  [[nodiscard]] std::string what() const { return std::string(to_string(code_)) + ": " + message_; }

 private:
  errc code_;
  std::string message_;
};

/// Either a T or an error; the configuration-time return type. Modelled on std::expected (C++23),
/// reduced to what fnat needs.
template <class T>
class [[nodiscard]] result {
  static_assert(!std::is_reference_v<T>, "result<T&> is not supported; return a pointer");

 public:
  using value_type = T;

  template <class U = T>
    requires std::is_constructible_v<T, U&&> && (!std::is_same_v<std::remove_cvref_t<U>, error>) &&
             (!std::is_same_v<std::remove_cvref_t<U>, result>)
  result(U&& value) : v_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT: implicit by design
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}              // NOLINT: implicit by design

  [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// Requires: has_value().
  [[nodiscard]] T& value() & noexcept { return *std::get_if<0>(&v_); }
  [[nodiscard]] const T& value() const& noexcept { return *std::get_if<0>(&v_); }
  [[nodiscard]] T&& value() && noexcept { return std::move(*std::get_if<0>(&v_)); }
  T& operator*() & noexcept { return value(); }
  const T& operator*() const& noexcept { return value(); }
  T&& operator*() && noexcept { return std::move(*this).value(); }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }

  /// Requires: !has_value().
  [[nodiscard]] const error& err() const noexcept { return *std::get_if<1>(&v_); }

 private:
  std::variant<T, error> v_;
};

/// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : e_(std::move(e)), ok_(false) {}  // NOLINT: implicit by design

  [[nodiscard]] bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  /// Requires: !has_value().
  [[nodiscard]] const error& err() const noexcept { return e_; }

 private:
  error e_{errc::ok, {}};
  bool ok_ = true;
};

namespace detail {
/// `v` in hexadecimal for an error or description message: "0x" and at least `min_digits` digits
/// (hex(0x3f) == "0x3f", hex(0x3f, 4) == "0x003f").
[[nodiscard]] inline std::string hex(std::uint64_t v, int min_digits = 1) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[v & 0xf]);
    v >>= 4;
  } while (v != 0);
  if (static_cast<int>(s.size()) < min_digits) s.insert(0, static_cast<std::size_t>(min_digits) - s.size(), '0');
  return "0x" + s;
}
}  // namespace detail

}  // namespace fnat
