// L7 policies on passed-through connections (TCP and HTTPS listeners): the
// ClientHello's SNI is the only sample (as the host); every other rule type has
// none, so it does not match and an inverted one does; redirects never match.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "l7/policy.h"
#include "request_fixture.h"

namespace banyan::dp::l7 {
namespace {

using testing::policy;
using testing::Request;
using testing::rule;
using RT = RuleType;
using CT = CompareType;
using PA = PolicyAction;

std::shared_ptr<const PolicySet> compileOk(std::vector<Policy> policies,
                                           const CompileOptions& options = {}) {
  auto set = compilePolicies(std::move(policies), options);
  EXPECT_TRUE(set.ok()) << set.error().message << " " << set.error().context;
  return set.ok() ? set.value() : nullptr;
}

// What a passthrough connection whose ClientHello named `sni` follows.
std::string routed(const PolicySet& set, const std::string& sni) {
  Request r;
  r.host = sni;
  r.path = "";
  r.passthrough = true;
  const Policy* p = set.match(r.input());
  EXPECT_EQ(p, set.matchLinear(r.input())) << "index and linear scan disagree";
  return p == nullptr ? "" : p->id;
}

TEST(L7Passthrough, HostNameRulesCompareTheSniIgnoringCase) {
  auto set = compileOk({policy("exact", 1, {rule(RT::kHostName, CT::kEqualTo, "A.Example")}),
                        policy("wild", 2, {rule(RT::kHostName, CT::kEndsWith, ".b.example")}),
                        policy("re", 3, {rule(RT::kHostName, CT::kRegex, "^c[0-9]+\\.example$")})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(routed(*set, "a.example"), "exact");
  EXPECT_EQ(routed(*set, "A.EXAMPLE"), "exact");
  EXPECT_EQ(routed(*set, "x.b.example"), "wild");
  EXPECT_EQ(routed(*set, "c42.example"), "re");
  EXPECT_EQ(routed(*set, "d.example"), "");
}

TEST(L7Passthrough, NoSniIsAMissingSampleSoOnlyInvertedHostRulesMatch) {
  auto set = compileOk({policy("a", 1, {rule(RT::kHostName, CT::kEqualTo, "a.example")}),
                        policy("not-a", 2,
                               {rule(RT::kHostName, CT::kEqualTo, "a.example", {}, true)})});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(routed(*set, ""), "not-a");
  EXPECT_EQ(routed(*set, "b.example"), "not-a");
  EXPECT_EQ(routed(*set, "a.example"), "a");
}

TEST(L7Passthrough, HttpAndTlsRulesHaveNoSampleSoInvertedOnesMatch) {
  struct Row {
    const char* what;
    Rule rule;
  };
  const Row rows[] = {
      {"PATH", rule(RT::kPath, CT::kRegex, "^$")},  // would match an empty HTTP path
      {"FILE_TYPE", rule(RT::kFileType, CT::kRegex, ".*")},
      {"HEADER", rule(RT::kHeader, CT::kRegex, ".*", "X-A")},
      {"COOKIE", rule(RT::kCookie, CT::kRegex, ".*", "c")},
      {"SSL_CONN_HAS_CERT", rule(RT::kSslConnHasCert, CT::kEqualTo, "true")},
      {"SSL_VERIFY_RESULT", rule(RT::kSslVerifyResult, CT::kEqualTo, "0")},
      {"SSL_DN_FIELD", rule(RT::kSslDnField, CT::kRegex, ".*", "CN")},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    Rule inverted = row.rule;
    inverted.invert = true;
    auto plain = compileOk({policy("p", 1, {row.rule})});
    auto inv = compileOk({policy("p", 1, {inverted})});
    ASSERT_NE(plain, nullptr);
    ASSERT_NE(inv, nullptr);
    EXPECT_EQ(routed(*plain, "a.example"), "");
    EXPECT_EQ(routed(*inv, "a.example"), "p");
    EXPECT_EQ(plain->passthroughCount(), 0u);
    EXPECT_EQ(inv->passthroughCount(), 1u);
    // Neither depends on the SNI: no reason to hold the client's bytes.
    EXPECT_FALSE(plain->passthroughNeedsHost());
    EXPECT_FALSE(inv->passthroughNeedsHost());
  }
}

TEST(L7Passthrough, RedirectPoliciesNeverMatch) {
  auto set = compileOk(
      {policy("url", 1, {rule(RT::kHostName, CT::kEqualTo, "a.example")}, PA::kRedirectToUrl),
       policy("prefix", 2, {rule(RT::kHostName, CT::kEqualTo, "a.example")}, PA::kRedirectPrefix),
       policy("reject", 3, {rule(RT::kHostName, CT::kEqualTo, "a.example")}, PA::kReject)});
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(routed(*set, "a.example"), "reject");
  EXPECT_EQ(set->passthroughCount(), 1u);
  // The same request over HTTP follows the first redirect.
  Request http;
  http.host = "a.example";
  ASSERT_NE(set->match(http.input()), nullptr);
  EXPECT_EQ(set->match(http.input())->id, "url");
}

TEST(L7Passthrough, ActionClassPrecedenceStillAppliesWithoutRedirects) {
  CompileOptions haproxy;
  haproxy.precedence = Precedence::kActionClassThenPosition;
  auto set = compileOk(
      {policy("pool", 1, {rule(RT::kHostName, CT::kEndsWith, ".example")}),
       policy("url", 2, {rule(RT::kHostName, CT::kEndsWith, ".example")}, PA::kRedirectToUrl),
       policy("reject", 3, {rule(RT::kHostName, CT::kEqualTo, "bad.example")}, PA::kReject)},
      haproxy);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(routed(*set, "bad.example"), "reject");
  EXPECT_EQ(routed(*set, "good.example"), "pool");
}

TEST(L7Passthrough, OnlyPoliciesThatCanMatchAndLookAtTheHostNeedTheSni) {
  auto path_only = compileOk({policy("p", 1, {rule(RT::kPath, CT::kStartsWith, "/api")}),
                              policy("u", 2, {rule(RT::kHostName, CT::kEqualTo, "a.example")},
                                     PA::kRedirectToUrl)});
  ASSERT_NE(path_only, nullptr);
  EXPECT_EQ(path_only->passthroughCount(), 0u);
  EXPECT_FALSE(path_only->passthroughNeedsHost());
  auto mixed = compileOk({policy("p", 1,
                                 {rule(RT::kHostName, CT::kEqualTo, "a.example"),
                                  rule(RT::kHeader, CT::kEqualTo, "1", "X-A", true)})});
  ASSERT_NE(mixed, nullptr);
  EXPECT_EQ(mixed->passthroughCount(), 1u);
  EXPECT_TRUE(mixed->passthroughNeedsHost());
  EXPECT_EQ(routed(*mixed, "a.example"), "p");
  // An admin-down HOST_NAME rule is not compiled: the policy no longer needs the SNI.
  Policy off = policy("off", 1, {rule(RT::kHostName, CT::kEqualTo, "a.example"),
                                 rule(RT::kPath, CT::kEqualTo, "/x", {}, true)});
  off.rules[0].admin_state_up = false;
  auto set = compileOk({off});
  ASSERT_NE(set, nullptr);
  EXPECT_FALSE(set->passthroughNeedsHost());
  EXPECT_EQ(routed(*set, ""), "off");
}

}  // namespace
}  // namespace banyan::dp::l7
