// TLS clients for the integration tests.
//
// TlsTestClient: an in-process client (OpenSSL with memory BIOs over a
// blocking socket) that can cut its TLS records into small TCP segments, to
// exercise the proxy's handling of partial records, and reports what the
// handshake negotiated. Failures throw std::runtime_error.
//
// runTool: runs a real client (`openssl s_client`, `curl`) to completion,
// bounded in time, with stdin text, capturing its output.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "http_client.h"
#include "socket_util.h"

namespace banyan::test {

struct TlsClientOptions {
  std::string sni;                 // empty: no SNI
  std::string ca;                  // non-empty: verify the server against it
  std::string cert, key;           // client certificate
  std::vector<std::string> alpn;   // offered protocols
  int min_version = 0, max_version = 0;  // TLS1_2_VERSION etc.; 0: OpenSSL's
  std::string cipher_list;         // TLS <= 1.2
  std::string ciphersuites;        // TLS 1.3
  size_t segment = 0;              // >0: send TLS bytes in TCP segments of this size...
  int segment_delay_ms = 0;        // ...this far apart
  std::string session;             // DER session (from sessionDer()) offered for resumption
  std::string source_address;
  std::string preamble;            // raw bytes sent before the handshake (a PROXY header)
  int timeout_ms = 3000;
};

class TlsTestClient {
 public:
  // Connects and runs the handshake; handshakeOk() tells how it went.
  TlsTestClient(const std::string& host, uint16_t port, TlsClientOptions options);
  ~TlsTestClient();
  TlsTestClient(const TlsTestClient&) = delete;
  TlsTestClient& operator=(const TlsTestClient&) = delete;

  bool handshakeOk() const { return ok_; }
  const std::string& error() const { return error_; }
  std::string peerCommonName() const;
  std::string alpn() const;
  std::string version() const;  // "TLSv1.3"
  std::string cipher() const;
  bool resumed() const;
  // The newest session (TLS 1.3: its latest ticket) as DER, for later
  // resumptions; "" when there is none. A copy per use matters: OpenSSL
  // clients use a TLS 1.3 session object once.
  std::string sessionDer() const;

  void send(std::string_view plain);
  // Reads one Content-Length response (the test members always send one).
  HttpResponse readResponse();
  HttpResponse get(const std::string& target, const HeaderList& headers = {});
  // Reads until `n` plain bytes arrived (after any response already read).
  std::string readBytes(size_t n);
  // True when the server closes (TLS close or TCP EOF/RST) within timeout_ms.
  bool waitClosed(int timeout_ms);

 private:
  void flushOut();
  bool readMore(int timeout_ms);  // false on EOF/error/timeout
  bool handshake();

  TlsClientOptions opts_;
  Fd fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;
  bool ok_ = false;
  std::string error_;
  std::string plain_;  // decrypted bytes not yet returned
};

struct ToolResult {
  int exit_status = -1;  // -1: did not finish in time (killed)
  std::string out;       // stdout
  std::string err;       // stderr
};
ToolResult runTool(const std::vector<std::string>& args, const std::string& input = "",
                   int timeout_ms = 10000);

// The first flight of an OpenSSL client, made through memory BIOs (no network): its
// ClientHello record(s), for tests that send exactly these bytes.
struct ClientHelloSpec {
  std::string sni;                // empty: none
  int max_version = 0;            // e.g. TLS1_2_VERSION; 0: OpenSSL's maximum
  unsigned max_fragment = 0;      // >0: records of at most this many bytes
  std::vector<std::string> alpn;  // offered protocols (also a way to make it large)
};
std::string clientHelloBytes(const ClientHelloSpec& spec);

}  // namespace banyan::test
