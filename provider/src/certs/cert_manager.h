// Where listener and pool certificate references are resolved: Octavia's cert
// managers. The API checks every reference a user gives (400 "Could not retrieve
// certificate" otherwise) and the controller reads them again to place them on the
// amphorae.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "banyan/common/result.h"
#include "certs/tls_certificate.h"

namespace banyan::provider::certs {

// Who asks: the API passes the user's project and token (Barbican reads happen as the
// user where Octavia does), the controller an empty context (service credentials).
struct RequestContext {
  std::string project_id;
  std::string auth_token;
};

class CertManager {
 public:
  virtual ~CertManager() = default;
  // Octavia's set_acls: lets the service account read what the user referenced.
  virtual common::Result<void> grantAccess(const RequestContext& ctx, const std::string& ref) = 0;
  // A TLS certificate with its key and intermediates. kNotFound when the reference
  // names nothing readable; kInvalidArgument when what it names is not a usable
  // certificate (the message says why).
  virtual common::Result<TlsCertificate> getCertificate(const RequestContext& ctx,
                                                        const std::string& ref) = 0;
  // A secret's payload as stored (client CA and CRL PEM).
  virtual common::Result<std::string> getSecret(const RequestContext& ctx,
                                                const std::string& ref) = 0;
};

// Octavia's local_cert_manager: a reference names files in `storage_path`:
// <ref>.crt (the certificate, also the payload of get_secret), <ref>.key, and the
// optional <ref>.int (intermediates) and <ref>.pass (the key's passphrase). For a
// single controller without Barbican; a reference that is not a plain file name
// (a path, "..", a leading dot) names nothing.
std::unique_ptr<CertManager> makeLocalCertManager(std::filesystem::path storage_path);

// Writes the files of a new local reference (0600, atomically: each file is renamed
// into place, the .crt last, so a reader never sees half a reference) and returns the
// reference (a new UUID). The certificate is checked first.
common::Result<std::string> storeLocalCertificate(const std::filesystem::path& storage_path,
                                                  const TlsCertificate& cert);

// The same for a PEM secret (a client or member CA, a CRL): only <ref>.crt, which the
// local manager's getSecret returns as is. The PEM must hold at least one certificate
// or CRL and nothing else.
common::Result<std::string> storeLocalSecret(const std::filesystem::path& storage_path,
                                             const std::string& pem);

}  // namespace banyan::provider::certs
