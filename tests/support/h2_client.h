// An in-process HTTP/2 client for the integration tests: OpenSSL (ALPN "h2")
// over a loopback socket and an nghttp2 client session, driven by run() with
// a deadline. Tests use it where the real tools cannot do what is needed:
// resetting a stream mid-body, reading slowly, seeing GOAWAY.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "http_wire.h"

namespace banyan::test {

struct H2StreamResult {
  int status = 0;
  HeaderList headers;
  HeaderList trailers;
  std::string body;
  bool closed = false;
  uint32_t error_code = 0;  // RST_STREAM code (0: closed normally)
};

struct H2ClientOptions {
  std::string authority = "www.example.test";
  // Initial stream window the client advertises; with consume_data false the
  // client never opens it further (a reader that stopped reading).
  int32_t stream_window = 65535;
  bool consume_data = true;
};

class H2TestClient {
 public:
  H2TestClient(uint16_t port, H2ClientOptions options = {});
  ~H2TestClient();
  H2TestClient(const H2TestClient&) = delete;
  H2TestClient& operator=(const H2TestClient&) = delete;

  bool connected() const { return ok_; }
  const std::string& error() const { return error_; }

  // Starts a request. With `body`, it is sent as DATA; `end` false leaves the
  // stream open after it (more may follow with sendMore()).
  int32_t submit(const std::string& method, const std::string& path, const HeaderList& headers = {},
                 const std::string* body = nullptr, bool end = true);
  // Appends to an open request body (`end`: the last piece).
  void sendMore(int32_t stream_id, const std::string& bytes, bool end);
  void reset(int32_t stream_id, uint32_t code = NGHTTP2_CANCEL);
  // Opens the receive windows by `bytes` (for consume_data false).
  void consume(int32_t stream_id, size_t bytes);

  // Moves bytes both ways until `done()` or the deadline; false on timeout or
  // when the connection ended before done().
  bool run(const std::function<bool()>& done, int timeout_ms);
  bool waitClosed(int32_t stream_id, int timeout_ms) {
    return run([&] { return stream(stream_id).closed; }, timeout_ms);
  }
  // One GET, waited for.
  H2StreamResult get(const std::string& path, const HeaderList& headers = {}, int timeout_ms = 5000);

  H2StreamResult& stream(int32_t id) { return streams_[id]; }
  bool goawayReceived() const { return goaway_; }
  int32_t goawayLastStream() const { return goaway_last_; }
  bool connectionEnded() const { return eof_; }

  struct Pending {
    std::string data;
    size_t off = 0;
    bool end = false;
  };

 private:
  friend struct H2ClientCallbacks;
  bool pump(int wait_ms);

  H2ClientOptions opts_;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;
  bool ok_ = false;
  bool eof_ = false;
  bool goaway_ = false;
  int32_t goaway_last_ = 0;
  std::string error_;
  std::map<int32_t, H2StreamResult> streams_;
  std::map<int32_t, Pending> pending_;
};

}  // namespace banyan::test
