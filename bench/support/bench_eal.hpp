// SPDX-License-Identifier: BSD-3-Clause
// Shared main of every benchmark binary: starts EAL before Google Benchmark runs, on 2 MiB hugepages
// when the machine has free ones (--in-memory), else with --no-huge, and records which in the
// report's context ("fnat_eal_memory") so every figure says what memory it ran on.
#pragma once

namespace fnat::bench {
/// "hugepages" or "no-huge": what EAL runs on in this process.
const char* eal_memory_kind() noexcept;
}  // namespace fnat::bench
