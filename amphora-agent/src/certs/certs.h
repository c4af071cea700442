// TLS material the controller pushes (PUT /1.0/certificates/{name}) and the agent's
// own server certificate (PUT /1.0/certificate). A bundle is PEM: one or more
// certificates (leaf first) and exactly one unencrypted private key matching the leaf.
// The controller also pushes the files banyan-proxy verifies peers with: CA
// certificates and CRLs, without a key (listener client_ca_certificate/client_crl,
// pool ca_certificate/crl).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::agent::certs {

// ^[A-Za-z0-9_.-]{1,128}$ and not "." or "..": a name can never leave the directory.
bool isValidName(std::string_view name);

struct Bundle {
  int certificate_count = 0;
  int crl_count = 0;         // X509 CRL blocks (key-less files only)
  bool has_key = false;
  std::string subject;       // of the leaf, OpenSSL one-line form
  std::string not_after;     // of the leaf, "Jan  1 00:00:00 2030 GMT"
  std::string cert_chain_pem;  // the certificates, re-encoded, leaf first
  std::string key_pem;         // the key, re-encoded (PKCS#8)
};

// kInvalidArgument naming what is wrong: no certificate, a block that does not parse,
// no key / several keys, an encrypted key, a key that does not match the leaf.
common::Result<Bundle> parseBundle(std::string_view pem);

// What PUT /1.0/certificates/{name} stores: a TLS bundle as parseBundle takes it, or a
// key-less file of certificates and/or CRLs (a CA file, a CRL file, or both in one).
// kInvalidArgument for an empty file, a block that does not parse, a key without
// certificate or not matching the first one, a key together with CRLs.
common::Result<Bundle> parseCertificateFile(std::string_view pem);

// Bundles stored as DIR/<name>.pem, mode 0600, written atomically. Thread-safe (each
// call is one file operation).
class CertStore {
 public:
  explicit CertStore(std::string dir) : dir_(std::move(dir)) {}
  // Validates (parseCertificateFile), then stores the bytes as sent. kInvalidArgument
  // for a bad name or file.
  common::Result<Bundle> put(std::string_view name, std::string_view pem);
  // The names stored, sorted; none when the directory does not exist yet.
  common::Result<std::vector<std::string>> list() const;
  common::Result<std::string> get(std::string_view name) const;  // kNotFound
  common::Result<void> remove(std::string_view name);            // idempotent
  std::string pathOf(std::string_view name) const { return dir_ + "/" + std::string(name) + ".pem"; }

 private:
  std::string dir_;
};

}  // namespace banyan::agent::certs
