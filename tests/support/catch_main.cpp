// SPDX-License-Identifier: BSD-3-Clause
// The one translation unit that holds Catch2's main, shared by every test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
