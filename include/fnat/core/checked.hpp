// SPDX-License-Identifier: BSD-3-Clause
// Checked mode and the few compiler hints fnat's headers share.
//
// Checked mode (STYLE.md, habit 8): with FNAT_CHECKED defined (fnat's own tests, fuzzers and
// examples build with FNAT_CHECKED=1), misuse that a component cannot report through its return
// values - a policy that breaks its contract, a hasher fed a longer input than it was built for, a
// pointer from another pool - stops the program with a message that says what the caller did wrong.
// Without FNAT_CHECKED the checks compile to nothing: releases pay no branch for them.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace fnat::detail {
/// Reports misuse in checked mode and stops: "fnat <component>: <what to fix> (<condition>)".
[[noreturn]] inline void misuse(const char* component, const char* message, const char* condition) noexcept {
  std::fprintf(stderr, "fnat %s: %s (%s)\n", component, message, condition);
  std::abort();
}
}  // namespace fnat::detail

#if defined(FNAT_CHECKED)
#define FNAT_EXPECT(component, cond, message)                                       \
  do {                                                                              \
    if (!(cond)) [[unlikely]] ::fnat::detail::misuse(component, message, #cond);    \
  } while (0)
#else
#define FNAT_EXPECT(component, cond, message) \
  do {                                        \
  } while (0)
#endif

/// For the few fast-path functions compilers decline to inline although every caller wants them
/// inline (their size estimate counts checked-mode code that is compiled out).
#if defined(__GNUC__) || defined(__clang__)
#define FNAT_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define FNAT_ALWAYS_INLINE inline
#endif

/// AddressSanitizer hooks for memory fnat manages itself (object_pool's free slots): poisoned bytes
/// make a use after deallocate() an ASan report instead of a silent read of a free slot.
#if defined(__SANITIZE_ADDRESS__)
#define FNAT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FNAT_ASAN 1
#endif
#endif
#if defined(FNAT_ASAN)
#include <sanitizer/asan_interface.h>
#define FNAT_ASAN_POISON(addr, size) ASAN_POISON_MEMORY_REGION((addr), (size))
#define FNAT_ASAN_UNPOISON(addr, size) ASAN_UNPOISON_MEMORY_REGION((addr), (size))
#else
#define FNAT_ASAN_POISON(addr, size) ((void)(addr), (void)(size))
#define FNAT_ASAN_UNPOISON(addr, size) ((void)(addr), (void)(size))
#endif
