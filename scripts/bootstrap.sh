#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs the Debian 12 packages fnat's build, tests, demo and benchmarks need. Idempotent: apt-get
# installs what is missing and leaves the rest; safe to run twice. Needs root.
set -euo pipefail

packages=(
  # build
  cmake g++ pkg-config make libboost-dev libdpdk-dev catch2 libbenchmark-dev
  # clang: header checks, the sanitizer build, libFuzzer (with its runtime)
  clang-14 libclang-rt-14-dev
  # dpdk-testpmd and dpdk-telemetry.py
  dpdk-dev
  # end-to-end rigs: namespaces, veth, real clients and servers
  iproute2 ethtool procps curl wrk nginx-light socat iputils-ping hping3 python3 python3-scapy
  # benchmark report plots
  gnuplot-nox
)

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap.sh: installing ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "bootstrap.sh: all ${#packages[@]} packages already installed"
fi
