// One described row per rule type x compare type case: the row's request must
// (or must not) match a one-rule policy, and the same rule inverted must give
// the opposite answer, through both the index and the linear scan.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "l7/policy.h"
#include "request_fixture.h"

namespace banyan::dp::l7 {
namespace {

using testing::Request;

struct Row {
  const char* name;  // becomes the test name
  RuleType type;
  CompareType compare;
  std::string key;
  std::string value;
  Request request;
  bool matches;
};

Request host(std::string h) {
  Request r;
  r.host = std::move(h);
  return r;
}
Request path(std::string p) {
  Request r;
  r.path = std::move(p);
  return r;
}
Request headers(std::vector<std::pair<std::string, std::string>> hs) {
  Request r;
  r.headers = std::move(hs);
  return r;
}
Request tlsClient(bool cert, int64_t verify, std::vector<std::pair<std::string, std::string>> dn) {
  Request r;
  r.tls = true;
  r.has_client_cert = cert;
  r.verify_result = verify;
  r.dn = std::move(dn);
  return r;
}

using RT = RuleType;
using CT = CompareType;

const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      // HOST_NAME: req.hdr(host) -i, every compare type case-insensitive.
      {"HostEqualToSameHost", RT::kHostName, CT::kEqualTo, "", "www.example.com",
       host("www.example.com"), true},
      {"HostEqualToIgnoresCaseOfValue", RT::kHostName, CT::kEqualTo, "", "WWW.Example.COM",
       host("www.example.com"), true},
      {"HostEqualToIgnoresCaseOfRequest", RT::kHostName, CT::kEqualTo, "", "www.example.com",
       host("WWW.EXAMPLE.com"), true},
      {"HostEqualToOtherHost", RT::kHostName, CT::kEqualTo, "", "www.example.com",
       host("example.com"), false},
      {"HostStartsWithPrefix", RT::kHostName, CT::kStartsWith, "", "www.", host("www.example.com"),
       true},
      {"HostStartsWithOtherPrefix", RT::kHostName, CT::kStartsWith, "", "api.",
       host("www.example.com"), false},
      {"HostEndsWithDomain", RT::kHostName, CT::kEndsWith, "", ".EXAMPLE.com",
       host("www.example.com"), true},
      {"HostEndsWithOtherDomain", RT::kHostName, CT::kEndsWith, "", ".example.org",
       host("www.example.com"), false},
      {"HostContainsLabel", RT::kHostName, CT::kContains, "", "Example", host("www.example.com"),
       true},
      {"HostContainsAbsentLabel", RT::kHostName, CT::kContains, "", "sample",
       host("www.example.com"), false},
      {"HostRegexIsCaseless", RT::kHostName, CT::kRegex, "", "^API\\.[a-z]+\\.com$",
       host("api.example.com"), true},
      {"HostRegexNoMatch", RT::kHostName, CT::kRegex, "", "^api\\.", host("www.example.com"),
       false},
      {"HostMissingNeverMatches", RT::kHostName, CT::kRegex, "", ".*", host(""), false},
      // PATH: case-sensitive, no query string.
      {"PathEqualToSamePath", RT::kPath, CT::kEqualTo, "", "/api", path("/api"), true},
      {"PathEqualToIsCaseSensitive", RT::kPath, CT::kEqualTo, "", "/api", path("/API"), false},
      {"PathStartsWithPrefix", RT::kPath, CT::kStartsWith, "", "/api/", path("/api/v1/users"),
       true},
      {"PathStartsWithNeedsWholePrefix", RT::kPath, CT::kStartsWith, "", "/api/", path("/apix"),
       false},
      {"PathEndsWithSuffix", RT::kPath, CT::kEndsWith, "", ".php", path("/index.php"), true},
      {"PathEndsWithOtherSuffix", RT::kPath, CT::kEndsWith, "", ".php", path("/index.php5"), false},
      {"PathContainsSegment", RT::kPath, CT::kContains, "", "admin", path("/x/admin/y"), true},
      {"PathContainsIsCaseSensitive", RT::kPath, CT::kContains, "", "admin", path("/x/Admin/y"),
       false},
      {"PathRegexSearchesUnanchored", RT::kPath, CT::kRegex, "", "v[0-9]+/", path("/api/v2/x"),
       true},
      {"PathRegexNoMatch", RT::kPath, CT::kRegex, "", "^/v[0-9]+/", path("/vx/"), false},
      // FILE_TYPE: EQUAL_TO is the extension; REGEX runs on the path (path_end -m reg).
      {"FileTypeEqualToExtension", RT::kFileType, CT::kEqualTo, "", "jpg", path("/img/a.jpg"),
       true},
      {"FileTypeEqualToExtensionWithDot", RT::kFileType, CT::kEqualTo, "", ".jpg",
       path("/img/a.jpg"), true},
      {"FileTypeEqualToNeedsTheDot", RT::kFileType, CT::kEqualTo, "", "jpg", path("/img/ajpg"),
       false},
      {"FileTypeEqualToIsCaseSensitive", RT::kFileType, CT::kEqualTo, "", "jpg", path("/img/a.JPG"),
       false},
      {"FileTypeEqualToLastExtensionOnly", RT::kFileType, CT::kEqualTo, "", "tar",
       path("/a.tar.gz"), false},
      {"FileTypeRegexOnPath", RT::kFileType, CT::kRegex, "", "\\.(png|gif)$", path("/a/b.gif"),
       true},
      {"FileTypeRegexNoMatch", RT::kFileType, CT::kRegex, "", "\\.(png|gif)$", path("/a/b.jpg"),
       false},
      // HEADER: req.hdr(<key>), name case-insensitive, value case-sensitive,
      // every comma-separated value of every line.
      {"HeaderEqualToValue", RT::kHeader, CT::kEqualTo, "X-Env", "prod",
       headers({{"x-env", "prod"}}), true},
      {"HeaderEqualToIsCaseSensitive", RT::kHeader, CT::kEqualTo, "X-Env", "prod",
       headers({{"X-Env", "PROD"}}), false},
      {"HeaderMissingNeverMatches", RT::kHeader, CT::kContains, "X-Env", "p",
       headers({{"X-Other", "prod"}}), false},
      {"HeaderCommaSeparatedValuesAreSamples", RT::kHeader, CT::kEqualTo, "X-Env", "prod",
       headers({{"X-Env", "dev,  prod "}}), true},
      {"HeaderSecondLineMatches", RT::kHeader, CT::kEqualTo, "X-Env", "prod",
       headers({{"X-Env", "dev"}, {"X-Env", "prod"}}), true},
      {"HeaderStartsWith", RT::kHeader, CT::kStartsWith, "User-Agent", "curl/",
       headers({{"User-Agent", "curl/8.0"}}), true},
      {"HeaderEndsWith", RT::kHeader, CT::kEndsWith, "User-Agent", "bot",
       headers({{"User-Agent", "crawlerbot"}}), true},
      {"HeaderContains", RT::kHeader, CT::kContains, "Accept", "json",
       headers({{"Accept", "application/json"}}), true},
      {"HeaderRegex", RT::kHeader, CT::kRegex, "X-Version", "^v[12]$",
       headers({{"X-Version", "v3"}}), false},
      // COOKIE: req.cook(<key>), name and value case-sensitive.
      {"CookieEqualToValue", RT::kCookie, CT::kEqualTo, "session", "abc",
       headers({{"Cookie", "a=1; session=abc"}}), true},
      {"CookieNameIsCaseSensitive", RT::kCookie, CT::kEqualTo, "session", "abc",
       headers({{"Cookie", "Session=abc"}}), false},
      {"CookieMissingNeverMatches", RT::kCookie, CT::kStartsWith, "session", "a", headers({}),
       false},
      {"CookieInSecondHeaderLine", RT::kCookie, CT::kStartsWith, "tier", "gold",
       headers({{"Cookie", "a=1"}, {"cookie", "tier=gold-plus"}}), true},
      {"CookieEndsWith", RT::kCookie, CT::kEndsWith, "tier", "plus",
       headers({{"Cookie", "tier=gold-plus"}}), true},
      {"CookieContains", RT::kCookie, CT::kContains, "tier", "old",
       headers({{"Cookie", "tier=gold"}}), true},
      {"CookieRegex", RT::kCookie, CT::kRegex, "tier", "^(gold|silver)$",
       headers({{"Cookie", "tier=bronze"}}), false},
      // SSL_CONN_HAS_CERT: ssl_c_used.
      {"HasCertWithCert", RT::kSslConnHasCert, CT::kEqualTo, "", "True", tlsClient(true, 0, {}),
       true},
      {"HasCertWithoutCert", RT::kSslConnHasCert, CT::kEqualTo, "", "true", tlsClient(false, 0, {}),
       false},
      {"HasCertOnPlainHttp", RT::kSslConnHasCert, CT::kEqualTo, "", "true", Request{}, false},
      // SSL_VERIFY_RESULT: ssl_c_verify eq <value>.
      {"VerifyResultZeroIsOk", RT::kSslVerifyResult, CT::kEqualTo, "", "0", tlsClient(true, 0, {}),
       true},
      {"VerifyResultOtherCode", RT::kSslVerifyResult, CT::kEqualTo, "", "0",
       tlsClient(true, 10, {}), false},
      {"VerifyResultSameErrorCode", RT::kSslVerifyResult, CT::kEqualTo, "", "10",
       tlsClient(true, 10, {}), true},
      {"VerifyResultOnPlainHttp", RT::kSslVerifyResult, CT::kEqualTo, "", "0", Request{}, false},
      // SSL_DN_FIELD: ssl_c_s_dn(<key>), every compare type, case-sensitive.
      {"DnFieldEqualTo", RT::kSslDnField, CT::kEqualTo, "CN", "alice",
       tlsClient(true, 0, {{"CN", "alice"}}), true},
      {"DnFieldEqualToIsCaseSensitive", RT::kSslDnField, CT::kEqualTo, "CN", "alice",
       tlsClient(true, 0, {{"CN", "Alice"}}), false},
      {"DnFieldStartsWith", RT::kSslDnField, CT::kStartsWith, "OU", "eng",
       tlsClient(true, 0, {{"OU", "engineering"}}), true},
      {"DnFieldEndsWith", RT::kSslDnField, CT::kEndsWith, "emailAddress", "@example.com",
       tlsClient(true, 0, {{"emailAddress", "a@example.com"}}), true},
      {"DnFieldContains", RT::kSslDnField, CT::kContains, "O", "Corp",
       tlsClient(true, 0, {{"O", "Example Corp Ltd"}}), true},
      {"DnFieldRegex", RT::kSslDnField, CT::kRegex, "CN", "^svc-[0-9]+$",
       tlsClient(true, 0, {{"CN", "svc-12"}}), true},
      {"DnFieldMissingField", RT::kSslDnField, CT::kEqualTo, "OU", "eng",
       tlsClient(true, 0, {{"CN", "eng"}}), false},
      {"DnFieldWithoutCert", RT::kSslDnField, CT::kEqualTo, "CN", "alice",
       tlsClient(false, 0, {{"CN", "alice"}}), false},
  };
  return kRows;
}

void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

class RuleRow : public ::testing::TestWithParam<Row> {};

std::shared_ptr<const PolicySet> compileOne(const Row& row, bool invert) {
  auto set = compilePolicies({testing::policy(
      "p", 1, {testing::rule(row.type, row.compare, row.value, row.key, invert)})});
  EXPECT_TRUE(set.ok()) << set.error().message << " " << set.error().context;
  return set.ok() ? set.value() : nullptr;
}

TEST_P(RuleRow, MatchesAsOctaviaAndInvertNegates) {
  const Row& row = GetParam();
  for (bool invert : {false, true}) {
    SCOPED_TRACE(invert ? "inverted" : "plain");
    auto set = compileOne(row, invert);
    ASSERT_NE(set, nullptr);
    MatchInput in = row.request.input();
    bool expected = row.matches != invert;
    EXPECT_EQ(set->match(in) != nullptr, expected);
    EXPECT_EQ(set->matchLinear(in) != nullptr, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(L7Rule, RuleRow, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace banyan::dp::l7
