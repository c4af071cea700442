// Builds what the API and the controller need to read listener and pool certificates
// from the [certificates] options (docs/certificates.md), and the one Keystone session
// Banyan's service identity uses ([keystone_authtoken]).
#pragma once

#include <memory>
#include <string>

#include "banyan/common/options.h"
#include "banyan/common/result.h"
#include "certs/cert_manager.h"

#if __has_include("auth/keystone.h")
#include "auth/keystone.h"
#endif

namespace banyan::provider::app {

#if __has_include("auth/keystone.h")
// [keystone_authtoken] as the Keystone client takes it.
auth::KeystoneOptions keystoneOptionsFrom(const common::OptionSet& options);
#endif

// With auth_strategy = keystone: a session for [keystone_authtoken]'s service user;
// with noauth: null.
common::Result<std::shared_ptr<auth::KeystoneSession>> keystoneSessionFrom(
    const common::OptionSet& options);

// local_cert_manager, or barbican_cert_manager (Keystone-authenticated with a session,
// unauthenticated without one). Nothing is contacted here: a missing Barbican endpoint
// is looked up in the catalog on first use.
common::Result<std::shared_ptr<certs::CertManager>> certManagerFrom(
    const common::OptionSet& options, std::shared_ptr<auth::KeystoneSession> session);

// What the roles use: certManagerFrom with keystoneSessionFrom, or null (logged) when
// the options do not make one (e.g. barbican_cert_manager with noauth and no
// endpoint): the API then stores references unchecked and the controller fails the
// pushes of load balancers that use certificates, saying why.
std::shared_ptr<certs::CertManager> certManagerOrNull(const common::OptionSet& options);

// The directory of local_cert_manager ([certificates] storage_path, or
// <state_dir>/certificates).
std::string localStoragePath(const common::OptionSet& options);

}  // namespace banyan::provider::app
