#include "net/cidr.h"

#include <gtest/gtest.h>

#include "net/socket.h"

namespace banyan::dp::net {
namespace {

sockaddr_storage addr(const char* text) {
  sockaddr_storage ss;
  EXPECT_TRUE(parseAddress(text, 1234, ss)) << text;
  return ss;
}

bool contains(const char* cidr_text, const char* address) {
  Cidr c;
  EXPECT_TRUE(parseCidr(cidr_text, c)) << cidr_text;
  return cidrContains(c, addr(address));
}

TEST(Cidr, ParsesPrefixesAndBareAddresses) {
  struct Row {
    const char* text;
    bool ok;
  } rows[] = {
      {"192.0.2.0/24", true},  {"192.0.2.7", true},       {"0.0.0.0/0", true},
      {"2001:db8::/32", true}, {"::1", true},             {"::/0", true},
      {"192.0.2.1/24", false},  // host bits set
      {"192.0.2.0/33", false}, {"2001:db8::/129", false}, {"192.0.2.0/", false},
      {"192.0.2.0/024", false}, {"/24", false},           {"192.0.2.0/2a", false},
      {"example.org", false},  {"", false},               {"192.0.2.0/24 ", false},
  };
  for (const auto& r : rows) {
    Cidr c;
    EXPECT_EQ(parseCidr(r.text, c), r.ok) << r.text;
  }
}

TEST(Cidr, MatchesAddressesInsideThePrefixOnly) {
  EXPECT_TRUE(contains("192.0.2.0/24", "192.0.2.200"));
  EXPECT_FALSE(contains("192.0.2.0/24", "192.0.3.1"));
  EXPECT_TRUE(contains("198.51.100.0/25", "198.51.100.127"));
  EXPECT_FALSE(contains("198.51.100.0/25", "198.51.100.128"));
  EXPECT_TRUE(contains("203.0.113.7", "203.0.113.7"));
  EXPECT_FALSE(contains("203.0.113.7", "203.0.113.8"));
  EXPECT_TRUE(contains("0.0.0.0/0", "203.0.113.8"));
  EXPECT_TRUE(contains("2001:db8::/32", "2001:db8:1::5"));
  EXPECT_FALSE(contains("2001:db8::/32", "2001:db9::5"));
}

TEST(Cidr, FamiliesDoNotMixExceptIpv4MappedAddresses) {
  EXPECT_FALSE(contains("::/0", "192.0.2.1"));
  EXPECT_FALSE(contains("0.0.0.0/0", "2001:db8::1"));
  EXPECT_TRUE(contains("192.0.2.0/24", "::ffff:192.0.2.9"));
  EXPECT_FALSE(contains("192.0.2.0/24", "::ffff:192.0.3.9"));
}

}  // namespace
}  // namespace banyan::dp::net
