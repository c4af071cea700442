// The embedded default authenticator, Octavia's [api_settings] auth_strategy = noauth.
//
// Octavia with noauth has no keystonemiddleware in front of the API, so oslo.context
// builds the request context straight from the client's headers, and Octavia's Context
// marks every caller an admin (Context.is_admin = ... or auth_strategy == noauth).
// We do the same; every request is accepted (never kUnauthorized), and:
//   user_id            X-User-Id, else X-User
//   project_id         X-Project-Id, else X-Tenant-Id, else X-Tenant ("" when absent)
//   user_name          X-User-Name
//   project_name       X-Project-Name, else X-Tenant-Name
//   user_domain_id     X-User-Domain-Id
//   project_domain_id  X-Project-Domain-Id
//   roles              X-Roles, else X-Role: comma-separated, trimmed, lower-cased,
//                      empty items dropped
//   system_scope       OpenStack-System-Scope: "all" (any case) → true
//   is_admin           always true
// X-Auth-Token is ignored. Because these headers are the client's own, noauth is for a
// trusted network or a single-user setup only (as in Octavia).
#pragma once

#include <memory>

#include "auth/auth.h"

namespace banyan::provider::auth {

std::unique_ptr<Authenticator> makeNoauthAuthenticator();

}  // namespace banyan::provider::auth
