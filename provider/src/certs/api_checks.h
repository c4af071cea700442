// Octavia's API checks of the certificate references a listener or pool names
// (api/v2/controllers/base.py: _validate_tls_refs, _validate_client_ca_and_crl_refs),
// with its answers. Each check first lets Banyan read the reference (grantAccess, with
// the user's token), then reads it. On failure the error is kInvalidArgument and its
// message is the API's whole faultstring (the API answers 400 with it).
#pragma once

#include <string>
#include <vector>

#include "certs/cert_manager.h"

namespace banyan::provider::certs {

// TLS certificates (listener SNI refs then the default ref, or a pool's
// tls_container_ref): every unreadable one is listed, as Octavia does:
// "Could not retrieve certificate: ['<ref>', ...]". A Barbican secret that is not
// PKCS12 gets Octavia's UnreadablePKCS12 message instead.
common::Result<void> checkTlsRefs(CertManager& manager, const RequestContext& ctx,
                                  const std::vector<std::string>& refs);

// A client CA (listener) or member CA (pool) and an optional CRL: both readable, the
// CA a PEM certificate, the CRL a PEM CRL signed by it ("Validation failure: ...").
common::Result<void> checkCaAndCrlRefs(CertManager& manager, const RequestContext& ctx,
                                       const std::string& ca_ref, const std::string& crl_ref);

}  // namespace banyan::provider::certs
