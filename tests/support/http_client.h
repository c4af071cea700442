// Blocking HTTP/1.1 client for the integration tests: raw bytes in, whole
// responses out (Content-Length, chunked, or until close), keep-alive reuse and
// pipelining. Every read is bounded by the client's timeout; failures throw
// std::runtime_error saying what was received so far.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http_wire.h"
#include "socket_util.h"

namespace banyan::test {

struct HttpResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  HeaderList headers;
  std::string body;  // decoded (chunked framing removed)
  std::string raw_head;
  bool chunked = false;
  bool closed_after = false;  // the body ran until close, or EOF followed the response

  std::string header(std::string_view name) const { return headerValue(headers, name); }
  bool hasHeader(std::string_view name) const { return headerCount(headers, name) > 0; }
};

// Reads consecutive responses from one stream socket (TCP or Unix), keeping
// bytes that arrive after a response for the next one (pipelining).
class ResponseReader {
 public:
  // `head_request`: the response to HEAD has no body whatever its headers say.
  HttpResponse read(int fd, int timeout_ms, bool head_request = false);
  std::string& buffered() { return buffer_; }

 private:
  std::string buffer_;
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port, ConnectOptions options = {});

  void connect();
  bool connected() const { return fd_.valid(); }
  void close() {
    fd_.reset();
    reader_ = ResponseReader();
  }
  void closeAbortively() {
    abortiveClose(fd_);
    reader_ = ResponseReader();
  }
  int fd() const { return fd_.get(); }
  uint16_t localPort() const;

  // Sends bytes as they are (connects first if needed).
  void sendRaw(std::string_view bytes);
  void shutdownWrite();
  HttpResponse readResponse(bool head_request = false);
  HttpResponse readResponse(int timeout_ms, bool head_request);
  // Raw bytes that arrive within timeout_ms (after anything already buffered).
  std::string readRaw(int timeout_ms);
  // True when the server closes (EOF or RST) within timeout_ms; `extra` gets any bytes seen.
  bool waitClosed(int timeout_ms, std::string* extra = nullptr);

  // Sends one request on the current connection (connecting if needed) and
  // reads its response. Adds Host and, for a body, Content-Length unless given.
  HttpResponse request(const std::string& method, const std::string& target,
                       const HeaderList& headers = {}, const std::string& body = "");
  HttpResponse get(const std::string& target, const HeaderList& headers = {}) {
    return request("GET", target, headers);
  }

  static std::string buildRequest(const std::string& method, const std::string& target,
                                  const HeaderList& headers, const std::string& body);

 private:
  std::string host_;
  uint16_t port_;
  ConnectOptions options_;
  Fd fd_;
  ResponseReader reader_;
};

// One request on a fresh connection with `Connection: close`; returns the response.
HttpResponse fetchOnce(const std::string& host, uint16_t port, const std::string& target = "/",
                       const ConnectOptions& options = {}, const HeaderList& headers = {});
// Like fetchOnce but never throws: nullopt when no complete response arrived.
std::optional<HttpResponse> tryFetchOnce(const std::string& host, uint16_t port,
                                         const std::string& target = "/",
                                         const ConnectOptions& options = {},
                                         std::string* error = nullptr);

}  // namespace banyan::test
