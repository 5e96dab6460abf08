# SPDX-License-Identifier: BSD-3-Clause
# Finds DPDK through pkg-config (libdpdk) and defines the imported target fnat::libdpdk.
#
# Used both by fnat's own build and by the installed package config, so a project that does
# find_package(fnat) gets the same DPDK flags. DPDK's pkg-config Cflags carry "-include rte_config.h"
# and an -march (corei7 on Debian's amd64 build) that its inline headers need; they are kept as
# DPDK ships them. A project that wants a higher -march adds it after linking fnat::dpdk.
#
# Besides libdpdk's own libraries, fnat::libdpdk links the bonding PMD (rules for a bond go to each
# member port) so that rte_eth_bond_* resolve.
include_guard(GLOBAL)

function(fnat_find_dpdk)
  if(TARGET fnat::libdpdk)
    return()
  endif()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(FNAT_LIBDPDK REQUIRED IMPORTED_TARGET GLOBAL libdpdk)
  add_library(fnat::libdpdk INTERFACE IMPORTED GLOBAL)
  find_library(FNAT_RTE_NET_BOND rte_net_bond HINTS ${FNAT_LIBDPDK_LIBRARY_DIRS})
  set(_libs PkgConfig::FNAT_LIBDPDK)
  if(FNAT_RTE_NET_BOND)
    list(APPEND _libs ${FNAT_RTE_NET_BOND})
  endif()
  set_target_properties(fnat::libdpdk PROPERTIES INTERFACE_LINK_LIBRARIES "${_libs}")
  set(FNAT_DPDK_VERSION ${FNAT_LIBDPDK_VERSION} PARENT_SCOPE)
  message(STATUS "fnat: DPDK ${FNAT_LIBDPDK_VERSION} found with pkg-config")
endfunction()
