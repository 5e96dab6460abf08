# SPDX-License-Identifier: BSD-3-Clause
# Flags for what fnat itself compiles (tests, benchmarks, examples); never applied to users.
include_guard(GLOBAL)

# Warnings and sanitizers: everything fnat compiles.
add_library(fnat_warnings INTERFACE)
target_compile_options(fnat_warnings INTERFACE -Wall -Wextra $<$<BOOL:${FNAT_WERROR}>:-Werror>)
# g++ 12 at -O3 reports -Wrestrict on "literal" + std::string temporaries inside libstdc++ (GCC bug
# 105329, a false positive fixed in GCC 13): keep it from failing -Werror builds of fnat's own code.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(fnat_warnings INTERFACE -Wno-restrict)
endif()
if(FNAT_SANITIZE)
  set(_fnat_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_compile_options(fnat_warnings INTERFACE ${_fnat_san})
  target_link_options(fnat_warnings INTERFACE ${_fnat_san})
endif()

# Tests, fuzzers and examples: warnings plus the checked mode (misuse assertions), set for a whole
# binary at once so that no inline function is compiled both ways in one program.
add_library(fnat_build_flags INTERFACE)
target_link_libraries(fnat_build_flags INTERFACE fnat_warnings)
if(FNAT_CHECKED)
  target_compile_definitions(fnat_build_flags INTERFACE FNAT_CHECKED=1)
endif()

# Benchmarks measure the fast path as users ship it: no checked mode, and -march=native after DPDK's
# "-march=corei7". Interface compile options are emitted in link order, so benchmark targets link
# this target after fnat::dpdk.
add_library(fnat_bench_native INTERFACE)
target_link_libraries(fnat_bench_native INTERFACE fnat_warnings)
if(FNAT_BENCH_NATIVE)
  target_compile_options(fnat_bench_native INTERFACE -march=native)
endif()
