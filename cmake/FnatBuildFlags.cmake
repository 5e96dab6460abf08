# SPDX-License-Identifier: BSD-3-Clause
# Flags for what fnat itself compiles (tests, benchmarks, examples); never applied to users.
include_guard(GLOBAL)

add_library(fnat_build_flags INTERFACE)
target_compile_options(fnat_build_flags INTERFACE -Wall -Wextra $<$<BOOL:${FNAT_WERROR}>:-Werror>)
if(FNAT_CHECKED)
  target_compile_definitions(fnat_build_flags INTERFACE FNAT_CHECKED=1)
endif()
if(FNAT_SANITIZE)
  set(_fnat_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_compile_options(fnat_build_flags INTERFACE ${_fnat_san})
  target_link_options(fnat_build_flags INTERFACE ${_fnat_san})
endif()

# Benchmarks: -march=native must come after DPDK's "-march=corei7". Interface compile options are
# emitted in link order, so benchmark targets link this target after fnat::dpdk.
add_library(fnat_bench_native INTERFACE)
if(FNAT_BENCH_NATIVE)
  target_compile_options(fnat_bench_native INTERFACE -march=native)
endif()
