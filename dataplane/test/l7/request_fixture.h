// A request as the proxy would describe it to the L7 matcher, for tests: owns
// its strings and exposes the lookups MatchInput needs.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "l7/policy.h"
#include "persistence/cookie.h"

namespace banyan::dp::l7::testing {

inline bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

struct Request {
  std::string host;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;  // Cookie lines included
  bool tls = false;
  bool has_client_cert = false;
  int64_t verify_result = 0;
  std::vector<std::pair<std::string, std::string>> dn;
  bool passthrough = false;  // a TCP/HTTPS listener's connection: `host` is the SNI

  // The lookups point into *this: keep it alive and unmoved while matching.
  MatchInput input() const {
    MatchInput in;
    in.host = host;
    in.path = path;
    in.headers = ValuesLookup{this, &headerValues};
    in.cookies = ValuesLookup{this, &cookieValues};
    in.tls = tls;
    in.has_client_cert = has_client_cert;
    in.verify_result = verify_result;
    in.client_dn = ValuesLookup{this, &dnValues};
    in.passthrough = passthrough;
    return in;
  }

 private:
  static bool headerValues(const void* ctx, std::string_view name, size_t index,
                           std::string_view* out) {
    for (const auto& [n, v] : static_cast<const Request*>(ctx)->headers)
      if (equalsIgnoreCase(n, name) && index-- == 0) {
        *out = v;
        return true;
      }
    return false;
  }
  static bool cookieValues(const void* ctx, std::string_view name, size_t index,
                           std::string_view* out) {
    for (const auto& [n, v] : static_cast<const Request*>(ctx)->headers) {
      if (!equalsIgnoreCase(n, "cookie")) continue;
      persistence::CookieIterator it(v);
      std::string_view cn, cv;
      while (it.next(&cn, &cv))
        if (cn == name && index-- == 0) {
          *out = cv;
          return true;
        }
    }
    return false;
  }
  static bool dnValues(const void* ctx, std::string_view name, size_t index,
                       std::string_view* out) {
    for (const auto& [n, v] : static_cast<const Request*>(ctx)->dn)
      if (n == name && index-- == 0) {
        *out = v;
        return true;
      }
    return false;
  }
};

inline Rule rule(RuleType type, CompareType compare, std::string value, std::string key = {},
                 bool invert = false) {
  Rule r;
  r.type = type;
  r.compare_type = compare;
  r.value = std::move(value);
  r.key = std::move(key);
  r.invert = invert;
  return r;
}

inline Policy policy(std::string id, int64_t position, std::vector<Rule> rules,
                     PolicyAction action = PolicyAction::kRedirectToPool) {
  Policy p;
  p.id = std::move(id);
  p.position = position;
  p.action = action;
  p.rules = std::move(rules);
  if (action == PolicyAction::kRedirectToPool) p.redirect_pool_id = "pool-" + p.id;
  if (action == PolicyAction::kRedirectToUrl) p.redirect_url = "https://example.com/moved";
  if (action == PolicyAction::kRedirectPrefix) p.redirect_prefix = "https://example.com";
  return p;
}

}  // namespace banyan::dp::l7::testing
