// Client-address header values: X-Forwarded-For text and RFC 7239 nodes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "http/forwarded.h"

namespace banyan::dp::http {
namespace {

sockaddr_storage v4(const char* text, uint16_t port = 80) {
  sockaddr_storage ss{};
  auto& in = reinterpret_cast<sockaddr_in&>(ss);
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET, text, &in.sin_addr), 1);
  return ss;
}

sockaddr_storage v6(const char* text, uint16_t port = 80) {
  sockaddr_storage ss{};
  auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
  return ss;
}

TEST(AddressText, PrintsIpv4WithoutPort) { EXPECT_EQ(addressText(v4("192.0.2.1", 4567)), "192.0.2.1"); }

TEST(AddressText, PrintsIpv6WithoutBrackets) {
  EXPECT_EQ(addressText(v6("2001:db8:0:0::1", 4567)), "2001:db8::1");
}

TEST(AddressText, PrintsIpv4MappedIpv6AsIpv4) { EXPECT_EQ(addressText(v6("::ffff:198.51.100.7")), "198.51.100.7"); }

TEST(AddressText, SaysUnknownForAFamilyWithoutAddress) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_EQ(addressText(ss), "unknown");
  sockaddr_storage unspec{};
  EXPECT_EQ(addressText(unspec), "unknown");
}

TEST(ForwardedNode, LeavesIpv4Bare) { EXPECT_EQ(forwardedNode(v4("203.0.113.9")), "203.0.113.9"); }

TEST(ForwardedNode, QuotesAndBracketsIpv6) { EXPECT_EQ(forwardedNode(v6("2001:db8::1")), "\"[2001:db8::1]\""); }

TEST(ForwardedNode, LeavesIpv4MappedBare) { EXPECT_EQ(forwardedNode(v6("::ffff:192.0.2.33")), "192.0.2.33"); }

TEST(ForwardedNode, SaysUnknownWithoutAddress) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_EQ(forwardedNode(ss), "unknown");
}

TEST(ForwardedElement, JoinsForProtoAndBy) {
  EXPECT_EQ(forwardedElement(v4("192.0.2.1"), v4("198.51.100.10", 443), "https"),
            "for=192.0.2.1;proto=https;by=198.51.100.10");
  EXPECT_EQ(forwardedElement(v6("2001:db8::1"), v6("2001:db8::ff"), "http"),
            "for=\"[2001:db8::1]\";proto=http;by=\"[2001:db8::ff]\"");
}

}  // namespace
}  // namespace banyan::dp::http
