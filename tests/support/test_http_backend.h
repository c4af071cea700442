// A test member speaking HTTP/1.1 on a loopback address, with one thread per
// connection. It answers every request with `X-Backend: <name>` and records
// what the proxy sent, so tests can check inserted headers, PROXY headers and
// that smuggled requests never arrived. Behaviour is configurable at any time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http_wire.h"
#include "server_core.h"

namespace banyan::test {

struct HttpBackendOptions {
  int status = 200;
  std::string body;  // empty: body_size bytes of a pattern, or "<name>\n" when 0
  size_t body_size = 0;
  int delay_ms = 0;                   // before answering (504 tests, drain tests)
  std::string delay_path_prefix;      // non-empty: delay only requests whose target starts with it
  bool chunked = false;               // answer with Transfer-Encoding: chunked
  bool close_after_response = false;  // `Connection: close` and close
  bool never_answer = false;          // read requests, never write a byte
  bool send_100_continue = true;      // answer Expect: 100-continue before reading the body
  bool answer_upgrade = true;         // Upgrade request: 101, then echo bytes
  HeaderList extra_headers;           // added to every response (Set-Cookie, ...)
};

struct RecordedRequest {
  size_t connection = 0;  // index of the member connection it came on
  std::string method;
  std::string target;
  std::string version;
  HeaderList headers;
  std::string head;  // raw head, CRLF CRLF included
  std::string body;  // decoded
  std::string header(std::string_view name) const { return headerValue(headers, name); }
  // Upgrade header plus `Connection: upgrade` (RFC 9110 section 7.8).
  bool hasHeaderUpgrade() const {
    return headerCount(headers, "Upgrade") > 0 && headerHasToken(headers, "Connection", "upgrade");
  }
};

struct RecordedConnection {
  std::string peer_address;
  uint16_t peer_port = 0;
  std::string first_bytes;   // the first up to 1024 bytes received, PROXY header included
  std::string proxy_header;  // the PROXY v1/v2 header that was skipped, if any
};

// The deterministic body a member sends for `body_size` bytes.
std::string patternBody(size_t size);

class TestHttpBackend {
 public:
  // Starts listening on address:0 at once.
  TestHttpBackend(std::string name, std::string address = "127.0.0.1",
                  HttpBackendOptions options = {});
  ~TestHttpBackend();

  const std::string& name() const { return name_; }
  const std::string& address() const { return core_.address(); }
  uint16_t port() const { return core_.port(); }

  void configure(const std::function<void(HttpBackendOptions&)>& change);
  HttpBackendOptions options() const;

  // Closes the listener and all connections (the port refuses connections).
  void stop() { core_.stop(); }
  // Listens again on the same port.
  void start() { core_.start(core_.port()); }
  bool running() const { return core_.running(); }

  size_t connectionCount() const { return core_.connectionCount(); }
  size_t activeConnections() const { return core_.activeConnections(); }
  size_t requestCount() const;
  std::vector<RecordedRequest> requests() const;
  std::vector<RecordedConnection> connections() const;
  // Everything received on every connection, concatenated (capped at 8 MiB).
  std::string receivedBytes() const;
  size_t receivedByteCount() const;
  bool waitForRequests(size_t count, int timeout_ms) const;
  void clearRecords();

 private:
  void serve(int fd, size_t index, const sockaddr_storage& peer);
  std::string bodyFor(const HttpBackendOptions& options) const;

  std::string name_;
  mutable std::mutex mu_;
  HttpBackendOptions options_;
  std::vector<RecordedRequest> requests_;
  std::vector<RecordedConnection> connections_;  // by connection index
  std::string received_;
  size_t received_count_ = 0;
  ServerCore core_;  // last: its threads use the members above
};

}  // namespace banyan::test
