// Octavia's barbican_cert_manager: certificate references are Barbican secrets (one
// PKCS12 bundle, the current way) or certificate containers (PEM pieces, the legacy
// way, still read as Octavia's fallback does). CA and CRL references are secrets whose
// payload is PEM.
//
// A reference is a Barbican href (".../v1/secrets/<uuid>", ".../v1/containers/<uuid>")
// or a bare secret UUID. Like python-barbicanclient, only the UUID and the kind are
// taken from an href: requests always go to the configured endpoint, so a user cannot
// make Banyan send its credentials, or fetch, anywhere else.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "banyan/common/http_client.h"
#include "certs/cert_manager.h"

namespace banyan::provider::auth {
class KeystoneSession;
}

namespace banyan::provider::certs {

// How Banyan presents itself to Barbican.
class BarbicanAuth {
 public:
  virtual ~BarbicanAuth() = default;
  // Headers for Banyan's own reads (what users shared with it through ACLs).
  virtual common::Result<common::HttpHeaders> serviceHeaders(const RequestContext& ctx) = 0;
  // Headers acting as the user, to add Banyan to their secret's read ACL.
  virtual common::Result<common::HttpHeaders> userHeaders(const RequestContext& ctx) = 0;
  // The user id Banyan's reads carry, for ACLs; "" when Barbican has no users to name
  // (unauthenticated Barbican: reads are made in the owning project).
  virtual common::Result<std::string> serviceUserId() = 0;
};

// An unauthenticated Barbican (its "unauthenticated-context" pipeline): every call
// names the project (X-Project-Id) with the admin role, as Banyan's noauth mode has one
// local admin. For single-node and test deployments.
std::unique_ptr<BarbicanAuth> makeUnauthenticatedBarbicanAuth();

// Barbican behind Keystone, as Octavia's barbican_acl_auth: Banyan reads with its own
// service token; adding Banyan's user to a secret's read ACL is done with the user's
// token (RequestContext::auth_token), which the API has while it checks the reference.
std::unique_ptr<BarbicanAuth> makeKeystoneBarbicanAuth(
    std::shared_ptr<auth::KeystoneSession> session);

struct BarbicanOptions {
  std::string endpoint;  // e.g. "https://barbican.example.com:9311" (with or without /v1)
  // Without an endpoint: asked on first use (Keystone's catalog), and again after a
  // failure.
  std::function<common::Result<std::string>()> endpoint_lookup;
  std::chrono::milliseconds timeout{10000};
};

// Fails on a malformed endpoint, or on neither an endpoint nor a lookup.
common::Result<std::unique_ptr<CertManager>> makeBarbicanCertManager(
    const BarbicanOptions& options, std::unique_ptr<BarbicanAuth> auth,
    std::unique_ptr<common::HttpClient> http);

}  // namespace banyan::provider::certs
