// The registries a proxy keeps across applies, and snapshots built from JSON
// text as the control server builds them: shared by the snapshot, persistence
// and L7 counter tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "config/parse.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"

namespace banyan::dp::proxy::testing {

struct SnapshotFixture {
  explicit SnapshotFixture(size_t workers = 2)
      : listener_counters(workers), member_counters(workers), policy_counters(workers) {}

  health::HealthRegistry health;
  CounterRegistry listener_counters;
  CounterRegistry member_counters;
  PolicyCounterRegistry policy_counters;
  PersistenceRegistry persistence;
  uint64_t serial = 0;

  std::shared_ptr<const Snapshot> build(const std::string& json) {
    auto parsed = config::parseConfig(json);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().context + ": " +
                                                        parsed.error().message);
    if (!parsed.ok()) return nullptr;
    auto cfg = std::make_shared<const config::Config>(std::move(parsed).value());
    return buildSnapshot(cfg, json, ++serial, health, listener_counters, member_counters, nullptr,
                         &persistence, &policy_counters);
  }
};

}  // namespace banyan::dp::proxy::testing
