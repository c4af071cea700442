// A local cert manager's storage_path for API tests: a TLS reference (leaf, key,
// intermediate), the root CA and the intermediate as CA references ("root-ca",
// "int-ca"), and their CRLs ("root-crl", "int-crl"); removed with the object.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../certs/test_pki.h"
#include "certs/cert_manager.h"
#include "certs/tls_certificate.h"

namespace banyan::provider::api::testing {

struct LocalCerts {
  certs::test::TestPki& pki = certs::test::sharedPki();
  std::string dir;
  std::string tls_ref;
  LocalCerts() {
    char tmpl[] = "/tmp/banyan-api-certs-XXXXXX";
    dir = mkdtemp(tmpl);
    auto cert = certs::fromPem(pki.read("leaf.pem"), pki.read("leaf.key"), pki.read("int.pem"), "");
    EXPECT_TRUE(cert.ok());
    auto ref = certs::storeLocalCertificate(dir, cert.value());
    EXPECT_TRUE(ref.ok()) << ref.error().message;
    tls_ref = ref.value();
    secret("root-ca", pki.read("ca.pem"));
    secret("int-ca", pki.read("int.pem"));
    secret("root-crl", pki.read("ca.crl"));
    secret("int-crl", pki.read("int.crl"));
  }
  ~LocalCerts() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  LocalCerts(const LocalCerts&) = delete;
  LocalCerts& operator=(const LocalCerts&) = delete;
  // A CA or CRL reference: the local manager's secret is <ref>.crt.
  void secret(const std::string& ref, const std::string& pem) const {
    std::ofstream(dir + "/" + ref + ".crt") << pem;
  }
};

}  // namespace banyan::provider::api::testing
