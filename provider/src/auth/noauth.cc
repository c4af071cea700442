#include "auth/noauth.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>

namespace banyan::provider::auth {
namespace {

std::string trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// oslo.context's from_environ takes the first of a field's header names that is present.
std::string firstHeader(const HeaderLookup& headers,
                        std::initializer_list<std::string_view> names) {
  for (auto name : names) {
    if (auto value = headers(name)) return trimmed(*value);
  }
  return {};
}

class NoauthAuthenticator final : public Authenticator {
 public:
  AuthOutcome authenticate(const HeaderLookup& headers) override {
    AuthOutcome out;
    out.status = AuthOutcome::Status::kOk;
    Credentials& c = out.credentials;
    c.user_id = firstHeader(headers, {"X-User-Id", "X-User"});
    c.project_id = firstHeader(headers, {"X-Project-Id", "X-Tenant-Id", "X-Tenant"});
    c.user_name = firstHeader(headers, {"X-User-Name"});
    c.project_name = firstHeader(headers, {"X-Project-Name", "X-Tenant-Name"});
    c.user_domain_id = firstHeader(headers, {"X-User-Domain-Id"});
    c.project_domain_id = firstHeader(headers, {"X-Project-Domain-Id"});
    std::string roles = firstHeader(headers, {"X-Roles", "X-Role"});
    size_t start = 0;
    while (start <= roles.size()) {
      size_t comma = roles.find(',', start);
      if (comma == std::string::npos) comma = roles.size();
      std::string role = trimmed(std::string_view(roles).substr(start, comma - start));
      std::transform(role.begin(), role.end(), role.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      if (!role.empty()) c.roles.push_back(std::move(role));
      start = comma + 1;
    }
    std::string scope = firstHeader(headers, {"OpenStack-System-Scope"});
    std::transform(scope.begin(), scope.end(), scope.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    c.system_scope = scope == "all";
    c.is_admin = true;
    out.reason = "noauth";
    return out;
  }
};

}  // namespace

std::unique_ptr<Authenticator> makeNoauthAuthenticator() {
  return std::make_unique<NoauthAuthenticator>();
}

}  // namespace banyan::provider::auth
