// The certificates users give listeners and pools, as the API checks them and as the
// controller hands them to amphorae. Users reference them by Barbican secret (one
// PKCS12 bundle), Barbican certificate container (PEM pieces) or, with the local
// certificate manager, by the name of files on the controller; all three end up as
// a TlsCertificate. Pure functions over OpenSSL; nothing here touches the network.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::certs {

// PEM throughout; the private key is unencrypted (a passphrase is applied on load).
struct TlsCertificate {
  std::string certificate;
  std::string private_key;
  std::vector<std::string> intermediates;  // leaf-to-root order
};

// A PKCS12 bundle (what Octavia stores in a Barbican secret and reads back with no
// passphrase). The key must belong to the certificate. An empty passphrase reads a
// bundle made without one (or with the empty one); a bundle whose integrity check
// fails with the passphrase given is refused as "the PKCS12 passphrase is wrong", one
// that needs a passphrase none was given for says so.
common::Result<TlsCertificate> fromPkcs12(std::string_view der, std::string_view passphrase = {});

// PEM pieces: one certificate, its private key (encrypted when `passphrase` is given),
// and zero or more concatenated intermediate certificates (PEM or PKCS7 PEM, as
// Octavia's get_intermediates_pems accepts). The key must belong to the certificate.
common::Result<TlsCertificate> fromPem(std::string_view certificate, std::string_view private_key,
                                       std::string_view intermediates, std::string_view passphrase);

// The single file banyan-proxy reads: certificate, intermediates, then the key
// (docs/proxy-config.md, "TLS termination"), as Octavia's build_pem orders it.
std::string proxyBundle(const TlsCertificate& cert);

// Octavia's checks of a listener's client CA and CRL secrets; the messages are the
// API's (400, "Validation failure: ..."): the CA must be a PEM certificate, the CRL a
// PEM CRL signed by that CA. An empty `crl_pem` is no CRL.
common::Result<void> checkClientCaAndCrl(std::string_view ca_pem, std::string_view crl_pem);

// Every DNS name a certificate answers for (SAN DNS entries, or the subject CN without
// SANs), lower-cased; for logs and the SNI summary.
std::vector<std::string> hostNames(std::string_view certificate_pem);

}  // namespace banyan::provider::certs
