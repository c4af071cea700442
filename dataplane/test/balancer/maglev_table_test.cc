#include "balancer/maglev_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "balancer/balancer.h"

namespace banyan::dp::balancer {
namespace {

std::vector<MaglevEntry> membersNamed(int n, uint32_t weight = 1, int first = 0) {
  std::vector<MaglevEntry> entries;
  for (int i = first; i < first + n; ++i) {
    entries.push_back(MaglevEntry{hashString("member-" + std::to_string(i)), weight});
  }
  return entries;
}

// Slot owner counts by entry index.
std::vector<int> slotCounts(const MaglevTable& table, size_t n) {
  std::vector<int> counts(n, 0);
  for (uint32_t slot = 0; slot < table.size(); ++slot) {
    const int idx = table.lookup(slot);
    EXPECT_GE(idx, 0);
    EXPECT_LT(idx, static_cast<int>(n));
    if (idx >= 0 && idx < static_cast<int>(n)) ++counts[idx];
  }
  return counts;
}

// id_hash of the member owning each of `keys`.
std::vector<uint64_t> ownersOf(const MaglevTable& table, const std::vector<MaglevEntry>& entries,
                               const std::vector<uint64_t>& keys) {
  std::vector<uint64_t> owners;
  owners.reserve(keys.size());
  for (uint64_t key : keys) owners.push_back(entries[table.lookup(key)].id_hash);
  return owners;
}

std::vector<uint64_t> randomKeys(size_t n) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> keys(n);
  for (auto& k : keys) k = rng();
  return keys;
}

TEST(MaglevTable, EmptyInputBuildsNoTableAndLookupReturnsMinusOne) {
  MaglevTable table;
  EXPECT_FALSE(table.build({}));
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.lookup(12345), -1);
  const MaglevEntry zero[] = {{hashString("a"), 0}};
  EXPECT_FALSE(table.build(zero));
  EXPECT_EQ(table.lookup(12345), -1);
}

TEST(MaglevTable, EverySlotIsFilledWithAValidEntry) {
  const auto entries = membersNamed(7);
  MaglevTable table;
  ASSERT_TRUE(table.build(entries));
  ASSERT_EQ(table.size(), MaglevTable::kDefaultSize);
  const auto counts = slotCounts(table, entries.size());
  int total = 0;
  for (int c : counts) {
    EXPECT_GT(c, 0);
    total += c;
  }
  EXPECT_EQ(total, static_cast<int>(MaglevTable::kDefaultSize));
}

TEST(MaglevTable, EqualWeightsGetEqualSharesWithinTwoPercent) {
  const auto entries = membersNamed(10);
  MaglevTable table;
  ASSERT_TRUE(table.build(entries));
  const double expected = MaglevTable::kDefaultSize / 10.0;
  for (int c : slotCounts(table, entries.size())) EXPECT_NEAR(c, expected, expected * 0.02);
}

TEST(MaglevTable, WeightsOneToTwoGiveSharesOneToTwoWithinTwoPercent) {
  std::vector<MaglevEntry> entries = membersNamed(3, 1);
  for (auto e : membersNamed(3, 2, 100)) entries.push_back(e);
  MaglevTable table;
  ASSERT_TRUE(table.build(entries));
  const auto counts = slotCounts(table, entries.size());
  const double unit = MaglevTable::kDefaultSize / 9.0;  // total weight 3*1 + 3*2
  for (size_t i = 0; i < entries.size(); ++i) {
    const double expected = unit * entries[i].weight;
    EXPECT_NEAR(counts[i], expected, expected * 0.02) << "entry " << i;
  }
}

TEST(MaglevTable, UnevenWeightsGiveProportionalShares) {
  const MaglevEntry entries[] = {{hashString("x"), 1}, {hashString("y"), 5}, {hashString("z"), 256}};
  MaglevTable table;
  ASSERT_TRUE(table.build(entries));
  const auto counts = slotCounts(table, 3);
  const double unit = MaglevTable::kDefaultSize / 262.0;
  for (size_t i = 0; i < 3; ++i) {
    const double expected = unit * entries[i].weight;
    // One round of slack: a light member's share is a few slots at most.
    EXPECT_NEAR(counts[i], expected, std::max(expected * 0.02, 2.0)) << "entry " << i;
  }
}

TEST(MaglevTable, BuildIsIndependentOfEntryOrder) {
  auto entries = membersNamed(20);
  for (size_t i = 0; i < entries.size(); ++i) entries[i].weight = 1 + i % 4;
  auto shuffled = entries;
  std::mt19937 rng(7);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  ASSERT_NE(entries[0].id_hash, shuffled[0].id_hash);  // the shuffle did move things

  MaglevTable a, b;
  ASSERT_TRUE(a.build(entries));
  ASSERT_TRUE(b.build(shuffled));
  for (uint32_t slot = 0; slot < a.size(); ++slot) {
    ASSERT_EQ(entries[a.lookup(slot)].id_hash, shuffled[b.lookup(slot)].id_hash) << "slot " << slot;
  }
}

TEST(MaglevTable, RemovingOneOfTenMembersRemapsAboutATenthOfKeys) {
  const auto before_entries = membersNamed(10);
  auto after_entries = before_entries;
  const uint64_t removed = after_entries[3].id_hash;
  after_entries.erase(after_entries.begin() + 3);

  MaglevTable before, after;
  ASSERT_TRUE(before.build(before_entries));
  ASSERT_TRUE(after.build(after_entries));
  const auto keys = randomKeys(100000);
  const auto owners_before = ownersOf(before, before_entries, keys);
  const auto owners_after = ownersOf(after, after_entries, keys);

  size_t moved = 0, survivors = 0, survivors_kept = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (owners_before[i] != owners_after[i]) ++moved;
    if (owners_before[i] != removed) {
      ++survivors;
      if (owners_before[i] == owners_after[i]) ++survivors_kept;
    }
  }
  const double moved_fraction = static_cast<double>(moved) / keys.size();
  std::printf("removing 1 of 10: moved %.4f of keys, survivors kept %.4f\n", moved_fraction,
              static_cast<double>(survivors_kept) / survivors);
  EXPECT_LE(moved_fraction, 1.5 / 10);
  EXPECT_GE(moved_fraction, 0.09);  // at least the removed member's own keys
  EXPECT_GE(static_cast<double>(survivors_kept) / survivors, 0.95);
}

TEST(MaglevTable, AddingOneMemberMovesAboutAnEleventhOfKeys) {
  const auto before_entries = membersNamed(10);
  const auto after_entries = membersNamed(11);
  MaglevTable before, after;
  ASSERT_TRUE(before.build(before_entries));
  ASSERT_TRUE(after.build(after_entries));
  const auto keys = randomKeys(100000);
  const auto owners_before = ownersOf(before, before_entries, keys);
  const auto owners_after = ownersOf(after, after_entries, keys);

  const uint64_t added = after_entries.back().id_hash;
  size_t moved = 0, moved_elsewhere = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (owners_before[i] == owners_after[i]) continue;
    ++moved;
    if (owners_after[i] != added) ++moved_elsewhere;
  }
  const double moved_fraction = static_cast<double>(moved) / keys.size();
  std::printf("adding 1 to 10: moved %.4f of keys, %.4f not to the new member\n", moved_fraction,
              static_cast<double>(moved_elsewhere) / keys.size());
  EXPECT_GE(moved_fraction, 0.8 / 11);
  EXPECT_LE(moved_fraction, 1.5 / 11);
  EXPECT_LE(static_cast<double>(moved_elsewhere) / keys.size(), 0.05);
}

TEST(MaglevTable, BuildingForAHundredMembersIsFast) {
  auto entries = membersNamed(100);
  for (size_t i = 0; i < entries.size(); ++i) entries[i].weight = 1 + i % 10;
  MaglevTable table;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(table.build(entries));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const double ms = std::chrono::duration<double, std::milli>(elapsed).count();
  std::printf("maglev build, 100 members, %u slots: %.2f ms\n", table.size(), ms);
#if defined(__SANITIZE_ADDRESS__)
  constexpr double kBudgetMs = 500;  // ASan slows the fill loop ~5-10x
#else
  constexpr double kBudgetMs = 50;
#endif
  EXPECT_LT(ms, kBudgetMs);
}

TEST(MaglevTable, SmallPrimeSizeStillFillsEverySlot) {
  const auto entries = membersNamed(5);
  MaglevTable table;
  ASSERT_TRUE(table.build(entries, 13));
  EXPECT_EQ(table.size(), 13u);
  for (int c : slotCounts(table, entries.size())) EXPECT_GE(c, 2);
}

TEST(MaglevTableDeathTest, NonPrimeSizeIsAProgrammingError) {
  const auto entries = membersNamed(2);
  MaglevTable table;
  EXPECT_DEATH((void)table.build(entries, 65536), "prime");
}

}  // namespace
}  // namespace banyan::dp::balancer
