// SPDX-License-Identifier: BSD-3-Clause
// Every header of fnat: the core and the DPDK glue (link fnat::dpdk).
// Include single headers where build time matters; tests/headers/check_umbrella.sh keeps this list whole.
#pragma once

#include "fnat/core.hpp"
#include "fnat/dpdk/ethdev_ops.hpp"
#include "fnat/dpdk/flow_rules.hpp"
#include "fnat/dpdk/memory.hpp"
#include "fnat/dpdk/nic_model.hpp"
#include "fnat/dpdk/packet.hpp"
#include "fnat/dpdk/rcu_publish.hpp"
#include "fnat/dpdk/redirect.hpp"
#include "fnat/dpdk/reply_steering.hpp"
#include "fnat/dpdk/rss.hpp"
#include "fnat/dpdk/rx_checksum.hpp"
