// The HTTP/2 form of an HTTP health check, for members of a tls_enabled pool
// whose handshake picked "h2" from the pool's ALPN list. The stock amphora's
// HAProxy checks such a server over the protocol its ALPN negotiated, so an
// HTTP/2-only member (a gRPC server) passes an HTTPS monitor there too.
// One stream, no I/O: output() holds the client preface, SETTINGS and the
// request's HEADERS (END_STREAM); feed() takes what the member answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct nghttp2_session;

namespace banyan::dp::health {

class H2Check {
 public:
  H2Check(const std::string& method, const std::string& path, const std::string& authority);
  ~H2Check();
  H2Check(const H2Check&) = delete;
  H2Check& operator=(const H2Check&) = delete;

  const std::string& output() const { return out_; }
  // The response's status once its head arrived; 0 while more bytes are
  // needed; -1 when the connection or the stream failed (see error()).
  int feed(const char* data, size_t size);
  const std::string& error() const { return error_; }

 private:
  struct Callbacks;  // nghttp2's, in h2_check.cc
  void drain();

  nghttp2_session* session_ = nullptr;
  int32_t stream_ = -1;
  int status_ = 0;
  std::string out_;
  std::string error_;
};

}  // namespace banyan::dp::health
