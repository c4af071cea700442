// The host/path index must give exactly the linear scan's answer: a randomized
// differential test over small vocabularies (so rules and requests collide
// often), plus the benchmark the index exists for.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "l7/policy.h"
#include "request_fixture.h"

namespace banyan::dp::l7 {
namespace {

using testing::Request;
using RT = RuleType;
using CT = CompareType;

template <typename T>
const T& pick(std::mt19937& rng, const std::vector<T>& v) {
  return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
}
bool chance(std::mt19937& rng, double p) { return std::bernoulli_distribution(p)(rng); }

const std::vector<std::string> kHosts = {
    "a.example.com",   "b.example.com", "example.com", "www.example.org",
    "api.example.com", "A.Example.COM", "x",           ""};
const std::vector<std::string> kHostValues = {
    "a.example.com", "example.com", ".example.com", "a.", "api",
    "www.",          "EXAMPLE.COM", ".org",         "b",  "x"};
const std::vector<std::string> kPaths = {
    "/",          "/api",  "/api/v1",   "/api/v1/users", "/static/a.jpg",
    "/img/b.png", "/apix", "/a.tar.gz", "/API",          "/a"};
const std::vector<std::string> kPathValues = {"/",   "/api", "/api/", "/api/v1", "/static", "jpg",
                                              "png", ".png", "gz",    "/a",      "users",   "/API"};
const std::vector<std::string> kRegexes = {"^/api", "v[0-9]", "\\.png$", "example",
                                           "^a\\.", "x$",     "^$"};
const std::vector<std::string> kHeaderNames = {"X-A", "X-B"};
const std::vector<std::string> kShortValues = {"1", "2", "10", "a", "b"};
const std::vector<CT> kAllCompares = {CT::kEqualTo, CT::kStartsWith, CT::kEndsWith, CT::kContains,
                                      CT::kRegex};

Rule randomRule(std::mt19937& rng) {
  Rule r;
  r.type = static_cast<RT>(std::uniform_int_distribution<int>(0, 7)(rng));
  r.compare_type = pick(rng, kAllCompares);
  r.invert = chance(rng, 0.2);
  r.admin_state_up = chance(rng, 0.9);
  switch (r.type) {
    case RT::kHostName:
      r.value = pick(rng, kHostValues);
      break;
    case RT::kPath:
      r.value = pick(rng, kPathValues);
      break;
    case RT::kFileType:
      r.compare_type = chance(rng, 0.7) ? CT::kEqualTo : CT::kRegex;
      r.value = pick(rng, std::vector<std::string>{"jpg", "png", "gz", ".png"});
      break;
    case RT::kHeader:
    case RT::kCookie:
      r.key = pick(rng, kHeaderNames);
      r.value = pick(rng, kShortValues);
      break;
    case RT::kSslConnHasCert:
      r.compare_type = CT::kEqualTo;
      r.value = "true";
      break;
    case RT::kSslVerifyResult:
      r.compare_type = CT::kEqualTo;
      r.value = pick(rng, std::vector<std::string>{"0", "10"});
      break;
    case RT::kSslDnField:
      r.key = pick(rng, std::vector<std::string>{"CN", "OU"});
      r.value = pick(rng, kShortValues);
      break;
  }
  if (r.compare_type == CT::kRegex) r.value = pick(rng, kRegexes);
  return r;
}

std::vector<Policy> randomPolicies(std::mt19937& rng, int count) {
  std::vector<Policy> out;
  for (int i = 0; i < count; ++i) {
    Policy p;
    p.id = "p" + std::to_string(i);
    p.position = std::uniform_int_distribution<int>(1, count / 2 + 1)(rng);  // ties happen
    p.action = static_cast<PolicyAction>(std::uniform_int_distribution<int>(0, 3)(rng));
    p.redirect_pool_id = "pool";
    p.redirect_url = "https://example.com/";
    p.redirect_prefix = "https://example.com";
    p.admin_state_up = chance(rng, 0.9);
    int rules = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int j = 0; j < rules; ++j) p.rules.push_back(randomRule(rng));
    out.push_back(std::move(p));
  }
  return out;
}

Request randomRequest(std::mt19937& rng) {
  Request r;
  r.host = pick(rng, kHosts);
  r.path = pick(rng, kPaths);
  for (const std::string& name : kHeaderNames)
    if (chance(rng, 0.5)) r.headers.emplace_back(name, pick(rng, kShortValues));
  if (chance(rng, 0.5))
    r.headers.emplace_back("Cookie",
                           "X-A=" + pick(rng, kShortValues) + "; X-B=" + pick(rng, kShortValues));
  r.tls = chance(rng, 0.5);
  r.has_client_cert = r.tls && chance(rng, 0.5);
  r.verify_result = chance(rng, 0.5) ? 0 : 10;
  if (r.has_client_cert) r.dn = {{"CN", pick(rng, kShortValues)}};
  return r;
}

TEST(L7PolicyIndex, RandomizedPolicySetsMatchExactlyAsTheLinearScan) {
  std::mt19937 rng(20261122);
  int matched = 0;
  for (int set_i = 0; set_i < 300; ++set_i) {
    int count = std::uniform_int_distribution<int>(1, 40)(rng);
    CompileOptions options;
    options.precedence =
        chance(rng, 0.5) ? Precedence::kPosition : Precedence::kActionClassThenPosition;
    auto set = compilePolicies(randomPolicies(rng, count), options);
    ASSERT_TRUE(set.ok()) << set.error().message << " " << set.error().context;
    for (int req_i = 0; req_i < 200; ++req_i) {
      Request req = randomRequest(rng);
      MatchInput in = req.input();
      const Policy* indexed = (*set)->match(in);
      const Policy* linear = (*set)->matchLinear(in);
      ASSERT_EQ(indexed, linear) << "set " << set_i << " host=" << req.host << " path=" << req.path
                                 << " indexed=" << (indexed ? indexed->id : "-")
                                 << " linear=" << (linear ? linear->id : "-");
      if (indexed != nullptr) ++matched;
    }
  }
  // The vocabularies are small so that plenty of requests match something.
  EXPECT_GT(matched, 10000);
}

// Passthrough requests (a TCP/HTTPS listener's SNI) go through the same index,
// skipping the path lists: still exactly the linear scan's answer, and never a
// policy that could not match passthrough traffic.
TEST(L7PolicyIndex, PassthroughMatchingAgreesWithTheLinearScan) {
  std::mt19937 rng(20240611);
  for (int round = 0; round < 300; ++round) {
    auto set = compilePolicies(randomPolicies(rng, 1 + round % 40));
    ASSERT_TRUE(set.ok()) << set.error().message;
    for (int i = 0; i < 30; ++i) {
      Request r = randomRequest(rng);
      r.passthrough = true;
      const Policy* indexed = (*set)->match(r.input());
      ASSERT_EQ(indexed, (*set)->matchLinear(r.input())) << "round " << round;
      if (indexed == nullptr) continue;
      EXPECT_TRUE(indexed->action == PolicyAction::kReject ||
                  indexed->action == PolicyAction::kRedirectToPool);
      for (const Rule& rule : indexed->rules) {
        if (rule.admin_state_up && rule.type != RT::kHostName) {
          EXPECT_TRUE(rule.invert);
        }
      }
    }
  }
}

TEST(L7PolicyIndex, HostAndPathRulesAreIndexedOthersScannedInOrder) {
  auto set = compilePolicies({
      testing::policy("host", 1, {testing::rule(RT::kHostName, CT::kEqualTo, "a.example.com")}),
      testing::policy("suffix", 2, {testing::rule(RT::kHostName, CT::kEndsWith, ".example.com")}),
      testing::policy("prefix", 3, {testing::rule(RT::kPath, CT::kStartsWith, "/api")}),
      testing::policy("ext", 4, {testing::rule(RT::kFileType, CT::kEqualTo, "jpg")}),
      testing::policy("inverted", 5,
                      {testing::rule(RT::kPath, CT::kEqualTo, "/x", "", /*invert=*/true)}),
      testing::policy("header", 6, {testing::rule(RT::kHeader, CT::kEqualTo, "1", "X-A")}),
  });
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->unindexedCount(), 2u);  // the inverted rule and the header rule
}

// Not an assertion: prints match rates for 500 policies where the request hits
// the last one, indexed vs linear.
TEST(L7PolicyIndex, BenchmarkFiveHundredPoliciesHitAtTheEnd) {
  struct Case {
    const char* what;
    std::vector<Policy> policies;
    Request request;
  };
  std::vector<Case> cases(3);
  cases[0].what = "host EQUAL_TO + path STARTS_WITH";
  cases[1].what = "path STARTS_WITH";
  cases[2].what = "header EQUAL_TO (unindexable)";
  for (int i = 0; i < 500; ++i) {
    std::string n = std::to_string(i);
    cases[0].policies.push_back(
        testing::policy("p" + n, i + 1,
                        {testing::rule(RT::kHostName, CT::kEqualTo, "svc" + n + ".example.com"),
                         testing::rule(RT::kPath, CT::kStartsWith, "/v1/")}));
    cases[1].policies.push_back(testing::policy(
        "p" + n, i + 1, {testing::rule(RT::kPath, CT::kStartsWith, "/svc" + n + "/")}));
    cases[2].policies.push_back(
        testing::policy("p" + n, i + 1, {testing::rule(RT::kHeader, CT::kEqualTo, n, "X-Svc")}));
  }
  cases[0].request.host = "svc499.example.com";
  cases[0].request.path = "/v1/items";
  cases[1].request.path = "/svc499/items";
  cases[2].request.headers = {{"X-Svc", "499"}};
  for (Case& c : cases) {
    auto set = compilePolicies(c.policies);
    ASSERT_TRUE(set.ok());
    MatchInput in = c.request.input();
    ASSERT_NE((*set)->match(in), nullptr);
    ASSERT_EQ((*set)->match(in)->id, "p499");
    auto rate = [&](bool indexed) {
      const auto budget = std::chrono::milliseconds(150);
      auto start = std::chrono::steady_clock::now();
      long n = 0;
      const Policy* sink = nullptr;
      while (std::chrono::steady_clock::now() - start < budget) {
        for (int k = 0; k < 64; ++k) sink = indexed ? (*set)->match(in) : (*set)->matchLinear(in);
        n += 64;
      }
      EXPECT_NE(sink, nullptr);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return n / secs;
    };
    double indexed = rate(true);
    double linear = rate(false);
    std::printf(
        "[ bench    ] 500 policies, %s: indexed %.0f matches/s, linear %.0f matches/s (x%.1f)\n",
        c.what, indexed, linear, indexed / linear);
  }
}

}  // namespace
}  // namespace banyan::dp::l7
