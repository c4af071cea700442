#include "persistence/stick_table.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace banyan::dp::persistence {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A manual clock: tests move time by hand, nothing sleeps.
struct ManualClock {
  TimePoint now{};
  void advance(std::chrono::nanoseconds d) { now += d; }
};

StickTableOptions options(size_t max_entries, milliseconds idle = milliseconds(0)) {
  StickTableOptions o;
  o.max_entries = max_entries;
  o.idle_timeout = idle;
  return o;
}

TEST(StickTable, StoredKeyReturnsItsMember) {
  ManualClock clock;
  StickTable t(options(10));
  t.store("k", "member-a", clock.now);
  auto m = t.lookup("k", clock.now);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, "member-a");
  EXPECT_FALSE(t.lookup("other", clock.now));
  EXPECT_EQ(t.counters().lookups, 2u);
  EXPECT_EQ(t.counters().hits, 1u);
}

TEST(StickTable, StoreReplacesTheMemberOfAnExistingKey) {
  ManualClock clock;
  StickTable t(options(10));
  t.store("k", "member-a", clock.now);
  t.store("k", "member-b", clock.now);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(*t.lookup("k", clock.now), "member-b");
}

TEST(StickTable, EntryExpiresAfterIdleTimeoutOfInactivity) {
  ManualClock clock;
  StickTable t(options(10, seconds(360)));
  t.store("k", "m", clock.now);
  clock.advance(seconds(359));
  EXPECT_TRUE(t.lookup("k", clock.now));  // refreshes the idle timer
  clock.advance(seconds(359));
  EXPECT_TRUE(t.lookup("k", clock.now));
  clock.advance(seconds(360));
  EXPECT_FALSE(t.lookup("k", clock.now));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.counters().expirations, 1u);
}

TEST(StickTable, ZeroTimeoutNeverExpiresAsOctaviasHaproxyTables) {
  ManualClock clock;
  StickTable t(options(10));
  t.store("k", "m", clock.now);
  clock.advance(std::chrono::hours(24 * 365));
  EXPECT_TRUE(t.lookup("k", clock.now));
}

TEST(StickTable, FullTableEvictsTheLeastRecentlyUsedEntry) {
  ManualClock clock;
  StickTable t(options(3));
  t.store("a", "m1", clock.now);
  t.store("b", "m2", clock.now);
  t.store("c", "m3", clock.now);
  EXPECT_TRUE(t.lookup("a", clock.now));  // "b" is now the least recently used
  t.store("d", "m4", clock.now);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_FALSE(t.lookup("b", clock.now));
  EXPECT_TRUE(t.lookup("a", clock.now));
  EXPECT_TRUE(t.lookup("c", clock.now));
  EXPECT_TRUE(t.lookup("d", clock.now));
  EXPECT_EQ(t.counters().evictions, 1u);
}

TEST(StickTable, ExpiryDropsOnlyIdleEntriesEvenWithoutLookups) {
  ManualClock clock;
  StickTable t(options(10, seconds(10)));
  t.store("old", "m", clock.now);
  clock.advance(seconds(6));
  t.store("new", "m", clock.now);
  clock.advance(seconds(5));
  t.expire(clock.now);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.lookup("new", clock.now));
}

TEST(StickTable, LongKeysAreCutTo64BytesAsHaproxyStringTables) {
  ManualClock clock;
  StickTable t(options(10));
  std::string base(64, 'x');
  t.store(base + "first", "m1", clock.now);
  auto m = t.lookup(base + "second", clock.now);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, "m1");
}

TEST(StickTable, ForgettingAMemberDropsOnlyItsEntries) {
  ManualClock clock;
  StickTable t(options(10));
  t.store("a", "gone", clock.now);
  t.store("b", "kept", clock.now);
  t.store("c", "gone", clock.now);
  EXPECT_EQ(t.forgetMember("gone"), 2u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(*t.lookup("b", clock.now), "kept");
}

TEST(StickTable, ManyKeysStayBoundedByMaxEntries) {
  ManualClock clock;
  StickTable t(options(100));
  for (int i = 0; i < 10000; ++i) {
    t.store("k" + std::to_string(i), "m", clock.now);
    clock.advance(milliseconds(1));
  }
  EXPECT_EQ(t.size(), 100u);
  EXPECT_TRUE(t.lookup("k9999", clock.now));
  EXPECT_FALSE(t.lookup("k9899", clock.now));
  EXPECT_EQ(t.counters().evictions, 9900u);
}

TEST(SharedStickTable, WorkersSeeEachOthersEntries) {
  ManualClock clock;
  SharedStickTable t(options(1000), 8);
  constexpr int kWorkers = 4;
  constexpr int kPerWorker = 200;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int i = 0; i < kPerWorker; ++i)
        t.store("w" + std::to_string(w) + "-" + std::to_string(i), "m" + std::to_string(w),
                clock.now);
    });
  }
  for (auto& th : workers) th.join();
  EXPECT_EQ(t.size(), static_cast<size_t>(kWorkers * kPerWorker));
  // A connection on another worker finds the entry a first worker stored.
  auto m = t.lookup("w3-17", clock.now);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, "m3");
  EXPECT_EQ(t.forgetMember("m0"), static_cast<size_t>(kPerWorker));
  EXPECT_EQ(t.counters().hits, 1u);
}

TEST(SharedStickTable, LongKeysSharingAPrefixMeetInOneShard) {
  ManualClock clock;
  SharedStickTable t(options(1000), 16);
  std::string base(64, 'y');
  t.store(base + "1", "m1", clock.now);
  for (int i = 0; i < 20; ++i) {
    auto m = t.lookup(base + std::to_string(i), clock.now);
    ASSERT_TRUE(m);
    EXPECT_EQ(*m, "m1");
  }
}

}  // namespace
}  // namespace banyan::dp::persistence
