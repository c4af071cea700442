// A test PKI made once per test process with the OpenSSL API, in a temp dir
// removed at exit: CAs, an intermediate, server certificates with SANs (one a
// wildcard), client certificates (one revoked in a CRL, one from an unknown
// CA), an expired certificate and a certificate/key mismatch. Bundles are what
// banyan-proxy reads: certificate, chain, then the private key, in one PEM file.
#pragma once

#include <string>

namespace banyan::test {

struct TestPki {
  std::string dir;

  // Listener side. Server certificates are RSA 2048 (Octavia's default TLS 1.2
  // ciphers are RSA ones), issued by `intermediate`, itself issued by `root_ca`.
  std::string root_ca;        // PEM certificate clients trust (curl --cacert)
  std::string www_bundle;     // CN www.example.test, SAN www.example.test, *.wild.example.test
  std::string api_bundle;     // CN api.example.test, SAN api.example.test
  std::string default_bundle; // CN default.example.test, no SAN (CN is the name)
  std::string expired_bundle; // CN expired.example.test, expired yesterday
  std::string future_bundle;  // CN future.example.test, valid from tomorrow
  std::string mismatch_bundle;// www certificate with another key
  std::string nokey_bundle;   // certificate and chain only
  std::string garbage_file;   // not PEM at all

  // Client authentication (EC P-256), issued by client_ca.
  std::string client_ca;       // PEM certificate
  std::string client_crl;      // CRL of client_ca revoking `revoked`
  std::string client_cert, client_key, client_bundle;     // CN client.example.test
  std::string revoked_cert, revoked_key;                  // CN revoked.example.test
  std::string stranger_cert, stranger_key;                // issued by a CA nobody trusts
  std::string stranger_ca;

  // Members (re-encryption): member_bundle issued by member_ca, CN and SAN
  // member.example.test (not the member's address: hostnames are not checked).
  std::string member_ca;
  std::string member_bundle;
  std::string member_crl;              // CRL of member_ca revoking member_revoked
  std::string member_revoked_bundle;
  std::string proxy_client_bundle;     // client certificate banyan-proxy shows members (client_ca)
  std::string empty_crl;               // CRL of member_ca revoking nothing
};

// Made on first use (takes about a second); thread-safe.
const TestPki& testPki();

// Certificate facts tests compare headers with.
std::string certificateSha1Hex(const std::string& cert_pem_file);  // upper-case hex
std::string certificateNotBefore(const std::string& cert_pem_file); // YYMMDDhhmmssZ
std::string certificateNotAfter(const std::string& cert_pem_file);

}  // namespace banyan::test
