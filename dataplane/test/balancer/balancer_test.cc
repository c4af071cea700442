#include "balancer/balancer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "alloc_counter.h"

namespace banyan::dp::balancer {
namespace {

MemberView member(const std::string& id, uint32_t weight = 1) {
  MemberView m;
  m.id_hash = hashString(id);
  m.weight = weight;
  return m;
}

MemberView backupMember(const std::string& id, uint32_t weight = 1) {
  MemberView m = member(id, weight);
  m.backup = true;
  return m;
}

// Pick counts per member index over `picks` picks with fresh random keys.
std::vector<int> countPicks(Selector& selector, const std::vector<MemberView>& members, int picks) {
  std::vector<int> counts(members.size(), 0);
  std::mt19937_64 rng(1);
  for (int i = 0; i < picks; ++i) {
    const int idx = selector.pick(members, rng());
    EXPECT_GE(idx, 0);
    if (idx >= 0) ++counts[idx];
  }
  return counts;
}

sockaddr_storage ipv4(const char* text, uint16_t port) {
  sockaddr_storage ss{};
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, text, &sin.sin_addr), 1);
  std::memcpy(&ss, &sin, sizeof(sin));
  return ss;
}

sockaddr_storage ipv6(const char* text, uint16_t port) {
  sockaddr_storage ss{};
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
  std::memcpy(&ss, &sin6, sizeof(sin6));
  return ss;
}

const Algorithm kAllAlgorithms[] = {Algorithm::RoundRobin, Algorithm::LeastConnections,
                                    Algorithm::SourceIp, Algorithm::SourceIpPort};

// --- ROUND_ROBIN ---------------------------------------------------------------

TEST(RoundRobin, WeightsFiveOneOneFollowTheNginxSmoothSequence) {
  const std::vector<MemberView> members = {member("a", 5), member("b", 1), member("c", 1)};
  Selector selector(Algorithm::RoundRobin);
  std::string sequence;
  for (int i = 0; i < 14; ++i) sequence += static_cast<char>('a' + selector.pick(members, 0));
  EXPECT_EQ(sequence, "aabacaa" "aabacaa");
}

TEST(RoundRobin, SharesFollowWeightsOneTwoThreeWithinOnePercent) {
  const std::vector<MemberView> members = {member("a", 1), member("b", 2), member("c", 3)};
  Selector selector(Algorithm::RoundRobin);
  const int picks = 60001;  // not a multiple of the total weight
  const auto counts = countPicks(selector, members, picks);
  for (size_t i = 0; i < members.size(); ++i) {
    const double expected = picks * members[i].weight / 6.0;
    EXPECT_NEAR(counts[i], expected, expected * 0.01) << "member " << i;
  }
}

TEST(RoundRobin, EqualWeightsTakeStrictTurns) {
  const std::vector<MemberView> members = {member("a"), member("b"), member("c")};
  Selector selector(Algorithm::RoundRobin);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(selector.pick(members, 0), i % 3);
}

TEST(RoundRobin, WeightZeroMemberIsNeverPicked) {
  const std::vector<MemberView> members = {member("a", 2), member("drained", 0), member("c", 1)};
  Selector selector(Algorithm::RoundRobin);
  const auto counts = countPicks(selector, members, 3000);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[0], 2000);
  EXPECT_EQ(counts[2], 1000);
}

TEST(RoundRobin, UnusableMemberIsNeverPicked) {
  std::vector<MemberView> members = {member("a"), member("down"), member("c")};
  members[1].usable = false;
  Selector selector(Algorithm::RoundRobin);
  const auto counts = countPicks(selector, members, 1000);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[0], 500);
  EXPECT_EQ(counts[2], 500);
}

TEST(RoundRobin, KeepsExactSharesAfterTheEligibleSetChanges) {
  std::vector<MemberView> members = {member("a", 5), member("b", 1), member("c", 1)};
  Selector selector(Algorithm::RoundRobin);
  for (int i = 0; i < 3; ++i) selector.pick(members, 0);  // a, a, b: state is mid-cycle
  members[0].usable = false;
  for (int i = 0; i < 10; ++i) EXPECT_NE(selector.pick(members, 0), 0);
  members[0].usable = true;
  // The returning member starts from zero, and within a few cycles every member
  // gets exactly its weight per cycle again.
  for (int i = 0; i < 21; ++i) selector.pick(members, 0);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 70; ++i) ++counts[selector.pick(members, 0)];
  EXPECT_EQ(counts, (std::vector<int>{50, 10, 10}));
}

TEST(RoundRobin, ReturningMemberStartsWithoutCreditEarnedBeforeLeaving) {
  std::vector<MemberView> members = {member("a", 5), member("b", 1)};
  Selector selector(Algorithm::RoundRobin);
  // a, a, a: b has built up credit 3 and would be next.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(selector.pick(members, 0), 0);
  members[1].usable = false;
  for (int i = 0; i < 4; ++i) ASSERT_EQ(selector.pick(members, 0), 0);
  members[1].usable = true;
  // Had b kept its old credit it would win right away; from zero it comes second.
  std::string sequence;
  for (int i = 0; i < 6; ++i) sequence += static_cast<char>('a' + selector.pick(members, 0));
  EXPECT_EQ(sequence, "abaaaa");
}

// --- Backup members ------------------------------------------------------------

TEST(Backup, BackupsTakeNoTrafficWhileAPrimaryIsUsable) {
  const std::vector<MemberView> members = {backupMember("b1"), member("p1"), backupMember("b2")};
  for (Algorithm algorithm : kAllAlgorithms) {
    Selector selector(algorithm);
    const auto counts = countPicks(selector, members, 500);
    EXPECT_EQ(counts[1], 500) << static_cast<int>(algorithm);
  }
}

TEST(Backup, AllUsableBackupsShareByWeightWhenEveryPrimaryIsOut) {
  std::vector<MemberView> members = {member("p1"), member("p2", 0), backupMember("b1", 1),
                                     backupMember("b2", 3), backupMember("b3-down")};
  members[0].usable = false;  // p2 is drained (weight 0): not a usable primary either
  members[4].usable = false;
  for (Algorithm algorithm : {Algorithm::RoundRobin, Algorithm::SourceIp}) {
    Selector selector(algorithm);
    const auto counts = countPicks(selector, members, 40000);
    EXPECT_EQ(counts[0] + counts[1] + counts[4], 0) << static_cast<int>(algorithm);
    EXPECT_NEAR(counts[2], 10000, 400) << static_cast<int>(algorithm);
    EXPECT_NEAR(counts[3], 30000, 400) << static_cast<int>(algorithm);
  }
}

TEST(Backup, PrimaryRecoveryTakesTrafficBackFromBackups) {
  std::vector<MemberView> members = {member("p1"), backupMember("b1")};
  members[0].usable = false;
  Selector selector(Algorithm::SourceIp);
  EXPECT_EQ(selector.pick(members, 99), 1);
  members[0].usable = true;
  EXPECT_EQ(selector.pick(members, 99), 0);
}

TEST(Selector, NoUsableMemberReturnsMinusOneForEveryAlgorithm) {
  std::vector<MemberView> members = {member("p1"), member("p2", 0), backupMember("b1", 0),
                                     backupMember("b2")};
  members[0].usable = false;
  members[3].usable = false;
  for (Algorithm algorithm : kAllAlgorithms) {
    Selector selector(algorithm);
    EXPECT_EQ(selector.pick(members, 7), -1) << static_cast<int>(algorithm);
    EXPECT_EQ(selector.pick({}, 7), -1) << static_cast<int>(algorithm);
  }
}

// --- LEAST_CONNECTIONS -----------------------------------------------------------

TEST(LeastConnections, PicksTheLeastLoadedMember) {
  std::vector<MemberView> members = {member("a"), member("b"), member("c")};
  members[0].active = 5;
  members[1].active = 2;
  members[2].active = 9;
  Selector selector(Algorithm::LeastConnections);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(selector.pick(members, 0), 1);
}

TEST(LeastConnections, LoadIsMeasuredRelativeToWeight) {
  std::vector<MemberView> members = {member("heavy", 4), member("light", 1)};
  members[0].active = 6;  // (6+1)/4 = 1.75
  members[1].active = 1;  // (1+1)/1 = 2
  Selector selector(Algorithm::LeastConnections);
  EXPECT_EQ(selector.pick(members, 0), 0);
  members[0].active = 8;  // (8+1)/4 = 2.25
  EXPECT_EQ(selector.pick(members, 0), 1);
}

TEST(LeastConnections, ConnectionsThatNeverCloseSpreadByWeight) {
  std::vector<MemberView> members = {member("a", 1), member("b", 3), member("drained", 0),
                                     member("down", 5)};
  members[3].usable = false;
  Selector selector(Algorithm::LeastConnections);
  for (int i = 0; i < 400; ++i) {
    const int idx = selector.pick(members, 0);
    ASSERT_TRUE(idx == 0 || idx == 1) << idx;
    ++members[idx].active;
  }
  EXPECT_EQ(members[0].active, 100u);
  EXPECT_EQ(members[1].active, 300u);
}

TEST(LeastConnections, EqualMembersAlternate) {
  const std::vector<MemberView> members = {member("a", 2), member("b", 2), member("c", 2)};
  Selector selector(Algorithm::LeastConnections);
  std::vector<int> seen;
  for (int i = 0; i < 6; ++i) seen.push_back(selector.pick(members, 0));
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 0, 1, 2}));
}

// --- SOURCE_IP / SOURCE_IP_PORT -----------------------------------------------------

TEST(SourceIp, SameClientKeyAlwaysPicksTheSameMember) {
  const std::vector<MemberView> members = {member("a"), member("b"), member("c"), member("d")};
  Selector selector(Algorithm::SourceIp);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t key = rng();
    const int first = selector.pick(members, key);
    ASSERT_GE(first, 0);
    EXPECT_EQ(selector.pick(members, key), first);
  }
}

TEST(SourceIp, TwoSelectorsWithDifferentlyOrderedMembersAgree) {
  const std::vector<MemberView> members = {member("a", 1), member("b", 2), member("c", 3)};
  const std::vector<MemberView> reversed = {members[2], members[1], members[0]};
  Selector one(Algorithm::SourceIp), other(Algorithm::SourceIp);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t key = rng();
    EXPECT_EQ(members[one.pick(members, key)].id_hash, reversed[other.pick(reversed, key)].id_hash);
  }
}

TEST(SourceIp, MemberGoingDownOnlyRemapsItsOwnClients) {
  std::vector<MemberView> members;
  for (int i = 0; i < 10; ++i) members.push_back(member("m" + std::to_string(i)));
  Selector selector(Algorithm::SourceIpPort);
  std::mt19937_64 rng(11);
  std::vector<uint64_t> keys(20000);
  for (auto& k : keys) k = rng();
  std::vector<int> before;
  for (uint64_t k : keys) before.push_back(selector.pick(members, k));
  members[4].usable = false;
  size_t kept = 0, survivors = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    const int now = selector.pick(members, keys[i]);
    EXPECT_NE(now, 4);
    if (before[i] != 4) {
      ++survivors;
      kept += before[i] == now;
    }
  }
  EXPECT_GE(static_cast<double>(kept) / survivors, 0.95);
  // Back up again: the table is rebuilt to the original one.
  members[4].usable = true;
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(selector.pick(members, keys[i]), before[i]);
}

TEST(SourceIp, WeightChangeRebuildsTheTable) {
  std::vector<MemberView> members = {member("a", 1), member("b", 1)};
  Selector selector(Algorithm::SourceIp);
  auto counts = countPicks(selector, members, 20000);
  EXPECT_NEAR(counts[0], 10000, 400);
  members[1].weight = 3;
  counts = countPicks(selector, members, 20000);
  EXPECT_NEAR(counts[0], 5000, 400);
  EXPECT_NEAR(counts[1], 15000, 400);
}

TEST(Selector, SteadyStatePicksDoNotAllocate) {
  std::vector<MemberView> members;
  for (int i = 0; i < 50; ++i) members.push_back(member("m" + std::to_string(i), 1 + i % 3));
  members.push_back(backupMember("b"));
  for (Algorithm algorithm : kAllAlgorithms) {
    Selector selector(algorithm);
    selector.pick(members, 1);  // first pick sizes the scratch and builds the table
    const long before = allocationCount();
    uint64_t key = 0x1234;
    for (int i = 0; i < 10000; ++i) {
      key = key * 6364136223846793005ULL + 1442695040888963407ULL;
      ++members[i % 50].active;
      ASSERT_GE(selector.pick(members, key), 0);
    }
    EXPECT_EQ(allocationCount(), before) << static_cast<int>(algorithm);
  }
}

// --- Hashes --------------------------------------------------------------------------

TEST(HashSourceAddress, Ipv4AndIpv4MappedIpv6HashAlike) {
  const auto v4 = ipv4("192.0.2.33", 4242);
  const auto mapped = ipv6("::ffff:192.0.2.33", 4242);
  EXPECT_EQ(hashSourceAddress(v4, false), hashSourceAddress(mapped, false));
  EXPECT_EQ(hashSourceAddress(v4, true), hashSourceAddress(mapped, true));
  EXPECT_NE(hashSourceAddress(v4, false), hashSourceAddress(ipv4("192.0.2.34", 4242), false));
  // A real IPv6 address with the same low 32 bits is a different client.
  EXPECT_NE(hashSourceAddress(v4, false), hashSourceAddress(ipv6("2001:db8::c000:221", 4242), false));
}

TEST(HashSourceAddress, WithPortTheClientPortChangesTheHash) {
  const auto a = ipv4("10.1.2.3", 1000);
  const auto b = ipv4("10.1.2.3", 1001);
  EXPECT_EQ(hashSourceAddress(a, false), hashSourceAddress(b, false));
  EXPECT_NE(hashSourceAddress(a, true), hashSourceAddress(b, true));
  EXPECT_NE(hashSourceAddress(a, true), hashSourceAddress(a, false));
  const auto c = ipv6("2001:db8::1", 1000);
  const auto d = ipv6("2001:db8::1", 1001);
  EXPECT_EQ(hashSourceAddress(c, false), hashSourceAddress(d, false));
  EXPECT_NE(hashSourceAddress(c, true), hashSourceAddress(d, true));
}

TEST(HashSourceAddress, NearbyAddressesSpreadOverMaglevTable) {
  // Clients of one subnet differ in the last byte only; they must still spread.
  const std::vector<MemberView> members = {member("a"), member("b"), member("c"), member("d")};
  Selector selector(Algorithm::SourceIp);
  std::vector<int> counts(4, 0);
  for (int host = 0; host < 4096; ++host) {
    const std::string text = "10.0." + std::to_string(host / 256) + "." + std::to_string(host % 256);
    ++counts[selector.pick(members, hashSourceAddress(ipv4(text.c_str(), 80), false))];
  }
  for (int c : counts) EXPECT_NEAR(c, 1024, 150);
}

TEST(HashString, IsStableAcrossRunsAndDistinguishesIds) {
  // Pinned values: changing the hash changes every SOURCE_IP client's member, so
  // it must not change by accident (amphorae of different versions must agree).
  EXPECT_EQ(hashString(""), hashString(std::string()));
  EXPECT_EQ(hashString("0f5a3f2e-7d1c-4d4e-9a55-3b6b4c1c2f10"),
            hashString(std::string("0f5a3f2e-7d1c-4d4e-9a55-3b6b4c1c2f10")));
  EXPECT_NE(hashString("member-1"), hashString("member-2"));
  EXPECT_EQ(hashString("member-1"), 0x36ad226c7f5181a0ULL);
}

}  // namespace
}  // namespace banyan::dp::balancer
