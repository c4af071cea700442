// L7 policies and rules as Octavia defines them, compiled once per config
// apply into a PolicySet that picks the policy a request follows. Pure: no I/O,
// no clock, no globals; independent of config/ so the proxy's model can map
// onto it. Semantics follow Octavia's HAProxy amphora (templates/macros.j2):
//   HOST_NAME  req.hdr(host) -i   (case-insensitive)
//   PATH       path               (no query string, case-sensitive)
//   FILE_TYPE  path_end           (EQUAL_TO: the path's extension; REGEX: on the path)
//   HEADER     req.hdr(<key>)     (every comma-separated value of every occurrence)
//   COOKIE     req.cook(<key>)    (every occurrence)
//   SSL_CONN_HAS_CERT  ssl_c_used
//   SSL_VERIFY_RESULT  ssl_c_verify eq <value>
//   SSL_DN_FIELD       ssl_c_s_dn(<key>)
// A rule whose sample is missing (no such header, plain HTTP for SSL_*) does not
// match, so an inverted one does, as HAProxy's `!acl` behaves.
//
// Passthrough traffic (TCP and HTTPS listeners, MatchInput::passthrough): the
// only sample is HOST_NAME, the server name of the client's TLS ClientHello
// (SNI). PATH, FILE_TYPE, HEADER, COOKIE and SSL_* have no sample there, and
// REDIRECT_TO_URL / REDIRECT_PREFIX policies never match (no HTTP response can
// be sent on TLS bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::dp::l7 {

enum class RuleType {
  kHostName,
  kPath,
  kFileType,
  kHeader,
  kCookie,
  kSslConnHasCert,
  kSslVerifyResult,
  kSslDnField,
};
enum class CompareType { kEqualTo, kStartsWith, kEndsWith, kContains, kRegex };
enum class PolicyAction { kReject, kRedirectToUrl, kRedirectPrefix, kRedirectToPool };

struct Rule {
  std::string id;  // only for error messages; may be empty
  RuleType type = RuleType::kPath;
  CompareType compare_type = CompareType::kEqualTo;
  std::string key;    // header / cookie name, DN field; HEADER, COOKIE and SSL_DN_FIELD only
  std::string value;  // SSL_CONN_HAS_CERT: "true"; SSL_VERIFY_RESULT: a decimal integer
  bool invert = false;
  bool admin_state_up = true;
};

struct Policy {
  std::string id;
  int64_t position = 1;  // Octavia numbers 1..n; ties keep the input order
  PolicyAction action = PolicyAction::kReject;
  std::string redirect_pool_id;  // REDIRECT_TO_POOL
  // false, also when the pool is not in the config: the policy is dropped, as
  // HAProxy's template renders no use_backend for a disabled pool.
  bool redirect_pool_admin_state_up = true;
  std::string redirect_url;      // REDIRECT_TO_URL, absolute http(s) URL
  std::string redirect_prefix;   // REDIRECT_PREFIX, absolute http(s) URL
  int redirect_http_code = 302;  // 301, 302, 303, 307, 308 (redirects only)
  bool admin_state_up = true;
  std::vector<Rule> rules;
};

// Order in which policies are tried.
enum class Precedence {
  // The Octavia API's contract: the first matching policy by position wins.
  kPosition,
  // What the stock HAProxy amphora really does: every REJECT (by position), then
  // every redirect to a URL or prefix, then REDIRECT_TO_POOL, because HAProxy runs
  // `http-request deny`, `redirect` and `use_backend` in that order whatever their
  // place in the file. For deployments that must be bit-compatible with it.
  kActionClassThenPosition,
};

struct CompileOptions {
  Precedence precedence = Precedence::kPosition;
  // PCRE2 limits per regex evaluation, so a hostile pattern (catastrophic
  // backtracking) costs bounded CPU; hitting one counts as "no match".
  uint32_t regex_match_limit = 100000;
  uint32_t regex_depth_limit = 1000;
  uint32_t regex_heap_limit_kib = 1024;
};

// Multi-valued lookup by name used for headers, cookies and client DN fields:
// fn(ctx, name, index, &out) sets out to the index-th value of `name` (0, 1, ...)
// and returns true, or returns false past the last one. Header names must be
// compared case-insensitively by the callee, cookie names exactly.
// Holds no ownership: ctx must outlive the match() call.
struct ValuesLookup {
  const void* ctx = nullptr;
  bool (*fn)(const void* ctx, std::string_view name, size_t index, std::string_view* out) = nullptr;

  bool get(std::string_view name, size_t index, std::string_view* out) const {
    return fn != nullptr && fn(ctx, name, index, out);
  }
};

// Adapts a callable `bool(std::string_view name, size_t index, std::string_view* out)`;
// the callable must outlive the returned lookup.
template <typename F>
ValuesLookup makeLookup(const F& f) {
  return ValuesLookup{
      &f, [](const void* ctx, std::string_view name, size_t index, std::string_view* out) {
        return (*static_cast<const F*>(ctx))(name, index, out);
      }};
}

struct MatchInput {
  // Host header value without its port, preferably lowercased (anything else
  // costs a copy on the stack). Empty: the request has no Host.
  std::string_view host;
  std::string_view path;  // request path without the query string, as received
  ValuesLookup headers;   // whole field values, one per header line
  ValuesLookup cookies;   // cookie values from the Cookie header(s)
  bool tls = false;       // the connection is TLS-terminated here (SSL_* samples exist)
  bool has_client_cert = false;
  int64_t verify_result = 0;  // X509_V_OK (0) or the verification error code
  // Client certificate subject DN fields ("CN", "OU", ...): only index 0 is
  // asked for, the one value ssl_c_s_dn(<key>) yields. HAProxy looks entries
  // up by short name ignoring case; the callee should too.
  ValuesLookup client_dn;
  // A passed-through connection (TCP, HTTPS listeners): `host` is the SNI of
  // its ClientHello (empty: none, or not TLS) and is the only sample; path,
  // headers, cookies and TLS facts are ignored. Redirect policies never match.
  bool passthrough = false;
};

// An immutable compiled set of one listener's policies. Thread-safe: workers
// share one instance (through shared_ptr) and call match() concurrently.
class PolicySet {
 public:
  ~PolicySet();
  PolicySet(const PolicySet&) = delete;
  PolicySet& operator=(const PolicySet&) = delete;

  // The policy the request follows, or nullptr for the listener's default pool.
  // No allocation (after a thread's first regex evaluation). The pointer lives as
  // long as this set.
  const Policy* match(const MatchInput& input) const;
  // The same answer by trying every policy in order; the reference match() is
  // tested against, and the baseline of the benchmark.
  const Policy* matchLinear(const MatchInput& input) const;

  // Policies that can match, in the order they are tried.
  const std::vector<Policy>& policies() const;
  // Policies that are tried in order because none of their rules could be
  // indexed by host or path.
  size_t unindexedCount() const;
  // Rules dropped at compile time because their value holds control characters
  // (Octavia's template skips them too, which widens their policy).
  size_t skippedRuleCount() const;
  // Regex evaluations stopped by a PCRE2 limit since compile (a metric).
  uint64_t regexLimitHits() const;
  // Policies that can match passthrough traffic: REJECT or REDIRECT_TO_POOL
  // whose every rule is HOST_NAME or inverted (a missing sample matches those).
  size_t passthroughCount() const;
  // Whether the passthrough answer depends on the host (SNI): some policy that
  // can match passthrough traffic has a HOST_NAME rule. When false, matching
  // with an empty host gives the answer without looking at the client's bytes.
  bool passthroughNeedsHost() const;

  struct Impl;

 private:
  explicit PolicySet(std::unique_ptr<Impl> impl);
  friend common::Result<std::shared_ptr<const PolicySet>> compilePolicies(std::vector<Policy>,
                                                                          const CompileOptions&);
  std::unique_ptr<Impl> impl_;
};

// Validates and compiles policies. Skipped as Octavia's template skips them:
// admin-down policies, admin-down rules, REDIRECT_TO_POOL to an admin-down pool,
// and policies left with no rule (they never match). Errors (kInvalidArgument)
// name the policy and rule in Error::context.
common::Result<std::shared_ptr<const PolicySet>> compilePolicies(
    std::vector<Policy> policies, const CompileOptions& options = CompileOptions{});

// The Location of a redirect policy's response. REDIRECT_TO_URL: redirect_url as
// is (request path and query dropped). REDIRECT_PREFIX: redirect_prefix followed
// by the original path and query, verbatim as HAProxy's `redirect prefix` does
// (a prefix of exactly "/" keeps the request on scheme://host). Empty for other
// actions.
std::string buildRedirectLocation(const Policy& policy, std::string_view scheme,
                                  std::string_view host, std::string_view path_and_query);

std::string_view ruleTypeName(RuleType type);
std::string_view compareTypeName(CompareType type);
std::string_view policyActionName(PolicyAction action);

}  // namespace banyan::dp::l7
