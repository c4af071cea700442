#include "persistence/source_ip.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

namespace banyan::dp::persistence {
namespace {

using std::chrono::seconds;

sockaddr_storage addr(const std::string& text, uint16_t port = 40000) {
  sockaddr_storage ss{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, text.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), &sin6->sin6_addr), 1) << text;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
  }
  return ss;
}

Granularity granularity(const std::string& text) {
  auto g = parseGranularity(text);
  EXPECT_TRUE(g.ok()) << text;
  return g.ok() ? g.value() : Granularity{};
}

struct GranularityRow {
  const char* text;
  bool valid;
  int ipv4_prefix;
  int ipv6_prefix;
};

TEST(SourceIpGranularity, ParsesNetmasksAndRefusesOthers) {
  const GranularityRow rows[] = {
      {"", true, 32, 128},
      {"255.255.255.255", true, 32, 128},
      {"255.255.255.0", true, 24, 128},
      {"255.255.0.0", true, 16, 128},
      {"0.0.0.0", true, 0, 128},
      {"255.255.255.128", true, 25, 128},
      {"ffff:ffff:ffff:ffff::", true, 32, 64},
      {"ffff:ffff:ffff:ff00::", true, 32, 56},
      {"/24", true, 24, 24},
      {"/64", true, 32, 64},
      {"255.0.255.0", false, 0, 0},  // not contiguous
      {"ffff::ffff", false, 0, 0},   // not contiguous
      {"255.255.255.256", false, 0, 0},
      {"/129", false, 0, 0},
      {"/", false, 0, 0},
      {"/2x", false, 0, 0},
      {"24", false, 0, 0},
      {"garbage", false, 0, 0},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.text);
    auto g = parseGranularity(row.text);
    ASSERT_EQ(g.ok(), row.valid);
    if (!row.valid) continue;
    EXPECT_EQ(g->ipv4_prefix, row.ipv4_prefix);
    EXPECT_EQ(g->ipv6_prefix, row.ipv6_prefix);
  }
}

TEST(SourceIpKey, MasksByGranularityAndIgnoresThePort) {
  Granularity g = granularity("255.255.255.0");
  EXPECT_EQ(sourceIpKey(addr("192.0.2.10", 1000), g).view(),
            sourceIpKey(addr("192.0.2.200", 2000), g).view());
  EXPECT_NE(sourceIpKey(addr("192.0.2.10"), g).view(), sourceIpKey(addr("192.0.3.10"), g).view());
  Granularity whole;
  EXPECT_NE(sourceIpKey(addr("192.0.2.10"), whole).view(),
            sourceIpKey(addr("192.0.2.11"), whole).view());
}

TEST(SourceIpKey, Ipv6UsesItsOwnPrefix) {
  Granularity g = granularity("ffff:ffff:ffff:ffff::");
  EXPECT_EQ(sourceIpKey(addr("2001:db8:1:2::1"), g).view(),
            sourceIpKey(addr("2001:db8:1:2:ffff::9"), g).view());
  EXPECT_NE(sourceIpKey(addr("2001:db8:1:2::1"), g).view(),
            sourceIpKey(addr("2001:db8:1:3::1"), g).view());
}

TEST(SourceIpKey, Ipv4MappedAddressesShareTheIpv4Entry) {
  Granularity g;
  EXPECT_EQ(sourceIpKey(addr("::ffff:192.0.2.7"), g).view(),
            sourceIpKey(addr("192.0.2.7"), g).view());
}

TEST(SourceIpKey, NonIpAddressesHaveNoKey) {
  sockaddr_storage unix_addr{};
  unix_addr.ss_family = AF_UNIX;
  EXPECT_EQ(sourceIpKey(unix_addr, Granularity{}).size, 0);
}

TEST(SourceIpTable, ClientsOfOneNetworkStickToOneMember) {
  TimePoint now{};
  SourceIpTable t(granularity("255.255.255.0"), StickTableOptions{});
  EXPECT_FALSE(t.lookup(addr("198.51.100.1"), now));
  t.store(addr("198.51.100.1"), "member-1", now);
  auto m = t.lookup(addr("198.51.100.77", 5555), now);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, "member-1");
  EXPECT_FALSE(t.lookup(addr("198.51.101.1"), now));
}

TEST(SourceIpTable, EntriesExpireAfterPersistenceTimeout) {
  TimePoint now{};
  StickTableOptions o;
  o.idle_timeout = seconds(360);
  SourceIpTable t(Granularity{}, o);
  t.store(addr("203.0.113.5"), "member-1", now);
  now += seconds(300);
  EXPECT_TRUE(t.lookup(addr("203.0.113.5"), now));
  now += seconds(361);
  EXPECT_FALSE(t.lookup(addr("203.0.113.5"), now));
}

TEST(SourceIpTable, PersistenceSurvivesAConfigApplyThatKeepsTheMember) {
  // The table holds member ids, not positions: a new config that reorders the
  // pool (or adds members) still sends the client to the same member.
  TimePoint now{};
  SourceIpTable t(Granularity{}, StickTableOptions{});
  t.store(addr("192.0.2.1"), "5d3f4c2a-0000-4000-8000-000000000002", now);
  std::vector<std::string> new_pool = {"5d3f4c2a-0000-4000-8000-000000000009",
                                       "5d3f4c2a-0000-4000-8000-000000000002"};
  auto m = t.lookup(addr("192.0.2.1"), now);
  ASSERT_TRUE(m);
  EXPECT_EQ(std::string(*m), new_pool[1]);
  // A removed member's entries are dropped so the client is re-balanced.
  EXPECT_EQ(t.forgetMember("5d3f4c2a-0000-4000-8000-000000000002"), 1u);
  EXPECT_FALSE(t.lookup(addr("192.0.2.1"), now));
}

}  // namespace
}  // namespace banyan::dp::persistence
