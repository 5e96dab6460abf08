// SPDX-License-Identifier: BSD-3-Clause
// A small read-only hash map for the balancer's per-packet classification: which service a VIP:vport
// belongs to, whether a destination is one of our LIPs. Built once at start (a few dozen keys), then
// only read, from every worker at once. Open addressing, linear probing, load factor <= 1/2, keys
// compared as bytes: one or two cache lines per lookup, no allocation, noexcept.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <fnat/core/error.hpp>
#include <fnat/core/hash.hpp>

namespace fnat::lb {

template <class Key, class Value>
  requires std::has_unique_object_representations_v<Key> && std::is_trivially_copyable_v<Value>
class flat_map {
 public:
  /// Adds a key (configuration time; allocates, rehashes as it grows). errc::exists for a repeat.
  errc insert(const Key& key, const Value& value) {
    if (find(key) != nullptr) return errc::exists;
    if (2 * (size_ + 1) > slots_.size()) grow();
    place(key, value);
    ++size_;
    return errc::ok;
  }

  /// The value of `key`, or nullptr. O(1) expected, noexcept.
  [[nodiscard]] const Value* find(const Key& key) const noexcept {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = hash_key(key) & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (std::memcmp(&s.key, &key, sizeof(Key)) == 0) return &s.value;
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct slot {
    Key key{};
    Value value{};
    bool used = false;
  };

  void grow() {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(8, std::bit_ceil(2 * (size_ + 1))), slot{});
    mask_ = slots_.size() - 1;
    for (const slot& s : old)
      if (s.used) place(s.key, s.value);
  }
  void place(const Key& key, const Value& value) {
    std::size_t i = hash_key(key) & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    slots_[i] = slot{key, value, true};
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace fnat::lb
