// A TLS test member: terminates TLS (OpenSSL) on a loopback address and relays
// the plain bytes to a TestHttpBackend it owns, so tests see both what the
// handshake carried (SNI, ALPN, the client certificate banyan-proxy showed,
// resumption) and every request (through backend()). One thread per connection.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server_core.h"
#include "test_http_backend.h"

namespace banyan::test {

struct TlsMemberOptions {
  std::string bundle;          // certificate, chain and key (PEM)
  std::string client_ca;       // non-empty: require a client certificate issued by it
  int max_version = 0;         // e.g. TLS1_2_VERSION; 0: OpenSSL's maximum
  std::vector<std::string> alpn;  // protocols it selects from (its order); empty: no ALPN
};

struct TlsHandshakeRecord {
  bool ok = false;
  std::string sni;
  std::string alpn;
  std::string version;    // "TLSv1.3"
  std::string client_cn;  // "" when the client sent no certificate
  bool resumed = false;
};

class TestTlsMember {
 public:
  TestTlsMember(std::string name, std::string address, TlsMemberOptions options);
  ~TestTlsMember();

  const std::string& address() const { return core_.address(); }
  uint16_t port() const { return core_.port(); }
  const std::string& name() const { return backend_.name(); }
  TestHttpBackend& backend() { return backend_; }
  std::vector<TlsHandshakeRecord> handshakes() const;
  size_t handshakeCount() const;

 private:
  void serve(int fd);

  TestHttpBackend backend_;
  SSL_CTX* ctx_ = nullptr;
  std::string alpn_wire_;
  mutable std::mutex mu_;
  std::vector<TlsHandshakeRecord> handshakes_;
  ServerCore core_;  // last: its threads use the members above
};

}  // namespace banyan::test
