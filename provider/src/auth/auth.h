// Who is asking, and may they: the API's authentication and policy seams.
//
// Authenticator turns a request's headers into Credentials: NoauthAuthenticator (the
// embedded default, like Octavia's auth_strategy=noauth) and KeystoneAuthenticator
// (tokens validated against Keystone v3 with a service token, cached until expiry).
// Policy answers whether Credentials may perform an Octavia policy action
// ("os_load-balancer_api:loadbalancer:post") on a target, with Octavia's Zed defaults
// overridable by an oslo.policy-style file. Both are thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::auth {

using common::Result;

struct Credentials {
  std::string user_id;
  std::string user_name;
  std::string project_id;    // "" for a system-scoped or unscoped token
  std::string project_name;
  std::string user_domain_id;
  std::string project_domain_id;
  std::vector<std::string> roles;  // lower-case role names
  bool system_scope = false;       // token scoped to the whole system ("all")
  bool is_admin = false;           // noauth, or the context is an admin one per policy
};

// Request headers, looked up case-insensitively; nullopt when absent.
using HeaderLookup = std::function<std::optional<std::string>(std::string_view name)>;

struct AuthOutcome {
  enum class Status { kOk, kUnauthorized, kUnavailable };
  Status status = Status::kUnauthorized;
  Credentials credentials;         // when kOk
  std::string reason;              // for the log, never the token
  std::string www_authenticate;    // for a 401: Keystone uri="..." like keystonemiddleware
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual AuthOutcome authenticate(const HeaderLookup& headers) = 0;
};

// The object an action is about. project_id is the object's owner (for a create, the
// project in the request body, defaulting to the caller's).
struct Target {
  std::string project_id;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual bool allowed(std::string_view action, const Credentials& who, const Target& target) const = 0;
};

}  // namespace banyan::provider::auth
