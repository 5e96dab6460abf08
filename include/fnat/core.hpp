// SPDX-License-Identifier: BSD-3-Clause
// Every core header: pure C++20 and Boost.Intrusive, no DPDK header (link fnat::core).
// Include single headers where build time matters; tests/headers/check_umbrella.sh keeps this list whole.
#pragma once

#include "fnat/core/addr.hpp"
#include "fnat/core/checked.hpp"
#include "fnat/core/checksum.hpp"
#include "fnat/core/class_cover.hpp"
#include "fnat/core/conn_state.hpp"
#include "fnat/core/conn_table.hpp"
#include "fnat/core/error.hpp"
#include "fnat/core/hash.hpp"
#include "fnat/core/headers.hpp"
#include "fnat/core/icmp_error.hpp"
#include "fnat/core/neighbour.hpp"
#include "fnat/core/object_pool.hpp"
#include "fnat/core/packet.hpp"
#include "fnat/core/port_plan.hpp"
#include "fnat/core/reta.hpp"
#include "fnat/core/rss_ports.hpp"
#include "fnat/core/sa_pool.hpp"
#include "fnat/core/sa_pool_policy.hpp"
#include "fnat/core/scheduler.hpp"
#include "fnat/core/session_table.hpp"
#include "fnat/core/tcp_reset.hpp"
#include "fnat/core/timer_wheel.hpp"
#include "fnat/core/toeplitz.hpp"
#include "fnat/core/token_bucket.hpp"
