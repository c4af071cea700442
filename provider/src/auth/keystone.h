// Keystone token authentication, as keystonemiddleware's auth_token does it for Octavia
// ([api_settings] auth_strategy = keystone, options from [keystone_authtoken]).
//
// - Banyan's own service token: password authentication, project scoped, fetched on the
//   first request (startup never needs Keystone) and renewed shortly before it expires
//   or when Keystone refuses it (401 on validation → one fresh token and one retry).
// - The caller's X-Auth-Token (or X-Storage-Token) is validated with
//   GET /v3/auth/tokens?nocatalog (X-Auth-Token: service token, X-Subject-Token: caller).
//   200 → Credentials (ids, names, domains, roles lower-cased incl. implied ones,
//   system scope); 404 → kUnauthorized.
// - Valid tokens are cached until min(token expiry, token_cache_time); invalid ones for
//   invalid_token_cache_time, so a flood of garbage tokens does not reach Keystone.
//   The cache key is the token's SHA-256; tokens are neither logged nor kept in memory.
// - No or invalid token → kUnauthorized with www_authenticate
//   `Keystone uri="<www_authenticate_uri>"` (the API answers 401 with that header).
// - Keystone unreachable, failing or refusing the service credentials → kUnavailable
//   (the API answers 503, as keystonemiddleware does).
// Thread-safe; requests to Keystone happen outside the locks.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "auth/auth.h"
#include "banyan/common/http_client.h"

namespace banyan::provider::auth {

struct KeystoneOptions {
  std::string www_authenticate_uri;  // public Keystone URL shown to clients in 401s ("" = auth_url)
  std::string auth_url;              // Keystone URL Banyan talks to ("/v3" suffix optional)
  std::string username;              // the service user
  std::string password;              // secret
  std::string project_name;          // the service user's project (token scope)
  std::string user_domain_name = "Default";
  std::string project_domain_name = "Default";
  std::string cafile;                        // CA bundle for an https auth_url; "" = system store
  bool insecure = false;                     // skip server certificate verification
  int token_cache_time = 300;                // seconds a valid token is trusted without asking
  int invalid_token_cache_time = 10;         // seconds an invalid token is refused without asking
  std::chrono::milliseconds timeout{10000};  // per request to Keystone
  size_t max_cached_tokens = 10000;          // bound on the cache; older entries are dropped
};

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// Banyan's own identity in Keystone: a project-scoped token from the service
// credentials (fetched on first use, renewed a minute before expiry or when a caller
// reports it `rejected`), the token's user id (what Barbican ACLs name), and the
// service catalog that came with it. Thread-safe; one fetch at a time.
class KeystoneSession {
 public:
  virtual ~KeystoneSession() = default;
  virtual Result<std::string> token(const std::string& rejected = "") = 0;
  virtual Result<std::string> userId() = 0;
  // The catalog URL of `service_type` ("key-manager") at `interface` ("public",
  // "internal", "admin"; Octavia's "publicURL" spelling too), in `region` ("" = any).
  // kNotFound when the catalog has none.
  virtual Result<std::string> endpoint(std::string_view service_type, std::string_view interface,
                                       std::string_view region) = 0;
};

// Fails only on bad options. A null `http` or `now`: a client from the options' CA
// settings, the system clock.
Result<std::shared_ptr<KeystoneSession>> makeKeystoneSession(const KeystoneOptions& options,
                                                             std::shared_ptr<common::HttpClient> http = nullptr,
                                                             WallClock now = nullptr);

// Fails only on bad options (empty auth_url or user, unreadable cafile).
Result<std::unique_ptr<Authenticator>> makeKeystoneAuthenticator(const KeystoneOptions& options);

// For tests: a given HTTP client (a fake in unit tests) and clock.
Result<std::unique_ptr<Authenticator>> makeKeystoneAuthenticator(
    const KeystoneOptions& options, std::unique_ptr<common::HttpClient> http, WallClock now);

// Sharing a session (one service token for the API and the cert manager).
Result<std::unique_ptr<Authenticator>> makeKeystoneAuthenticator(const KeystoneOptions& options,
                                                                 std::shared_ptr<KeystoneSession> session,
                                                                 std::shared_ptr<common::HttpClient> http,
                                                                 WallClock now);

}  // namespace banyan::provider::auth
