// SPDX-License-Identifier: BSD-3-Clause
// Brackets for the DPDK #includes of fnat::dpdk's headers:
//
//   FNAT_DPDK_INCLUDES_BEGIN
//   #include <rte_ring.h>
//   FNAT_DPDK_INCLUDES_END
//
// DPDK 22.11's inline functions (spinlocks, rings, mbuf reference counts) use ++ on volatile objects,
// deprecated in C++20: g++ (-Wvolatile) and clang (-Wdeprecated-volatile) report it when DPDK's
// headers are not on a system include path (pkg-config gives plain -I; fnat's CMake targets make
// them system headers). The warning is silenced for DPDK's headers only, here in one place.
#pragma once

#if defined(__clang__)
#define FNAT_DPDK_INCLUDES_BEGIN \
  _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Wdeprecated-volatile\"")
#define FNAT_DPDK_INCLUDES_END _Pragma("clang diagnostic pop")
#elif defined(__GNUC__)
#define FNAT_DPDK_INCLUDES_BEGIN _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wvolatile\"")
#define FNAT_DPDK_INCLUDES_END _Pragma("GCC diagnostic pop")
#else
#define FNAT_DPDK_INCLUDES_BEGIN
#define FNAT_DPDK_INCLUDES_END
#endif
