// The deployment's PKI for the controller <-> amphora agent mutual TLS: one CA per
// deployment (generated at first start unless the operator configures one) that signs
// each amphora agent's server certificate and the controllers' client certificate.
// Both sides trust only this CA, so an agent accepts only controllers of its deployment
// and a controller only talks to amphorae it certified. docs/amphora-pki.md has the files,
// lifetimes and what each side verifies.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "banyan/common/result.h"

namespace banyan::provider::amphora {

struct PkiOptions {
  std::string dir;            // e.g. <state_dir>/pki; created 0700; files 0600
  std::string ca_cert_file;   // "" = <dir>/ca.pem (generated if absent)
  std::string ca_key_file;    // "" = <dir>/ca.key
  // Either both CA files are given or neither: a configured CA is loaded, never generated.
  int ca_validity_days = 3650;
  int server_cert_validity_days = 730;  // Octavia [certificates] cert_validity_time is 2 years
  int client_cert_validity_days = 730;
  // CN of the controller's client certificate.
  std::string client_cert_name = "banyan-controller";
};

struct CertBundle {
  std::string cert_pem;  // the leaf only (the CA is caCertPem())
  std::string key_pem;   // PKCS#8, unencrypted
  std::chrono::system_clock::time_point not_after;
};

// Issues certificates from the deployment CA. Every method may be called from many
// threads at once once loadOrCreate returned. The CA key stays in this object and in
// its file; nothing here logs key material.
class Pki {
 public:
  // Loads the CA, generating it (EC P-256, self-signed, SHA-256) when neither the CA
  // files are configured nor <dir>/ca.pem exists. Processes and threads starting at once
  // on one dir agree on one CA: generation happens under an flock() on <dir>/.lock and
  // is published with link(), which never replaces an existing file.
  // Errors: kInvalidArgument (bad options, unreadable or inconsistent CA files),
  // kUnavailable (the file system failed).
  static common::Result<std::unique_ptr<Pki>> loadOrCreate(const PkiOptions& options);

  ~Pki();
  Pki(const Pki&) = delete;
  Pki& operator=(const Pki&) = delete;

  const std::string& caCertPem() const { return ca_cert_pem_; }
  std::string caCertFile() const { return ca_cert_file_; }

  // A server certificate for an amphora agent: CN = amphora_id, SANs IP:<address>
  // (IPv4 or IPv6 literal) and DNS:<amphora_id>, extendedKeyUsage serverAuth, a fresh
  // EC P-256 key. Errors: kInvalidArgument for an empty or odd id or a non-IP address.
  common::Result<CertBundle> issueServerCert(std::string_view amphora_id, std::string_view address);

  // The controller's client certificate (CN = options.client_cert_name, extendedKeyUsage
  // clientAuth), kept in <dir>/client.pem + <dir>/client.key and reused while it has more
  // than 30 days left; otherwise a new one replaces it.
  common::Result<CertBundle> controllerClientCert();
  std::string clientCertFile() const { return dir_ + "/client.pem"; }
  std::string clientKeyFile() const { return dir_ + "/client.key"; }

  struct Impl;

 private:
  explicit Pki(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  std::string dir_;
  std::string ca_cert_file_;
  std::string ca_cert_pem_;
  std::mutex client_mu_;  // one renewal at a time within this process
};

// notAfter of the first certificate in PEM. kInvalidArgument when there is none.
common::Result<std::chrono::system_clock::time_point> certNotAfter(std::string_view pem);

}  // namespace banyan::provider::amphora
