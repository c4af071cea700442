// A throwaway PKI for tests, made with the OpenSSL API at test time: CAs, server and
// client certificates, including expired ones (the openssl 3.0 CLI cannot backdate).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace banyan::agent::testing {

struct PemPair {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (PKCS#8)
};

class TestCa {
 public:
  explicit TestCa(const std::string& common_name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& certPem() const { return cert_pem_; }
  // Validity is [now + not_before_s, now + not_after_s]. SANs go on server certs.
  PemPair issue(const std::string& common_name, bool server, long not_before_s = -3600,
                long not_after_s = 86400, const std::vector<std::string>& ip_sans = {"127.0.0.1"},
                const std::vector<std::string>& dns_sans = {"localhost"}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string cert_pem_;
};

// Writes CONTENT to PATH with MODE; aborts the test binary on failure.
void writeTestFile(const std::string& path, const std::string& content, int mode = 0600);
std::string readTestFile(const std::string& path);

}  // namespace banyan::agent::testing
