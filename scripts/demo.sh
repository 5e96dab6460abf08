#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# README command 1: installs dependencies, builds the examples and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFNAT_BUILD_TESTS=OFF -DFNAT_BUILD_BENCH=OFF
cmake --build build/demo -j "$(nproc)"
build/demo/examples/port_plan_demo 6
