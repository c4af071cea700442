// H2Check against a real nghttp2 server session: the request it writes, the
// status it reads (interim heads skipped), and refusals.
#include "health/h2_check.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace banyan::dp::health {
namespace {

// A server session that records the request's headers and answers each
// stream with the heads it is given.
class Server {
 public:
  explicit Server(std::vector<std::string> statuses) : statuses_(std::move(statuses)) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame*, const uint8_t* n, size_t nl, const uint8_t* v,
               size_t vl, uint8_t, void* self) {
          static_cast<Server*>(self)->headers[std::string(reinterpret_cast<const char*>(n), nl)] =
              std::string(reinterpret_cast<const char*>(v), vl);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session* s, const nghttp2_frame* f, void* arg) {
          auto* self = static_cast<Server*>(arg);
          if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            for (size_t i = 0; i < self->statuses_.size(); ++i) {
              nghttp2_nv nv{reinterpret_cast<uint8_t*>(const_cast<char*>(":status")),
                            reinterpret_cast<uint8_t*>(self->statuses_[i].data()), 7,
                            self->statuses_[i].size(), NGHTTP2_NV_FLAG_NONE};
              bool last = i + 1 == self->statuses_.size();
              nghttp2_submit_headers(s, last ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE,
                                     f->hd.stream_id, nullptr, &nv, 1, nullptr);
            }
          }
          return 0;
        });
    nghttp2_session_server_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Server() { nghttp2_session_del(session_); }
  // Takes the client's bytes; returns what the server sends back.
  std::string exchange(const std::string& in) {
    EXPECT_EQ(nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(in.data()), in.size()),
              static_cast<ssize_t>(in.size()));
    std::string out;
    const uint8_t* data = nullptr;
    for (ssize_t n; (n = nghttp2_session_mem_send(session_, &data)) > 0;)
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    return out;
  }
  std::map<std::string, std::string> headers;

 private:
  std::vector<std::string> statuses_;
  nghttp2_session* session_ = nullptr;
};

TEST(H2Check, SendsTheMonitorsRequestAndReadsTheStatus) {
  H2Check check("HEAD", "/healthz", "example.com");
  EXPECT_EQ(check.output().rfind("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0), 0u);
  Server server({"204"});
  std::string answer = server.exchange(check.output());
  EXPECT_EQ(server.headers[":method"], "HEAD");
  EXPECT_EQ(server.headers[":path"], "/healthz");
  EXPECT_EQ(server.headers[":authority"], "example.com");
  EXPECT_EQ(server.headers[":scheme"], "https");
  EXPECT_EQ(server.headers["user-agent"], "banyan-health-check");
  EXPECT_EQ(check.feed(answer.data(), answer.size()), 204);
}

TEST(H2Check, StatusArrivingByteByByteAfterAnInterimHeadIsTheFinalOne) {
  H2Check check("GET", "/", "192.0.2.10");
  Server server({"103", "503"});
  std::string answer = server.exchange(check.output());
  int status = 0;
  for (size_t i = 0; i < answer.size() && status == 0; ++i) status = check.feed(&answer[i], 1);
  EXPECT_EQ(status, 503);
}

TEST(H2Check, AnHttp11AnswerIsAProtocolError) {
  H2Check check("GET", "/", "192.0.2.10");
  std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(check.feed(answer.data(), answer.size()), -1);
  EXPECT_NE(check.error().find("HTTP/2 protocol error"), std::string::npos) << check.error();
  EXPECT_EQ(check.feed("x", 1), -1);
}

TEST(H2Check, AResetStreamFailsWithItsErrorCode) {
  H2Check check("GET", "/", "192.0.2.10");
  // The server's SETTINGS, then RST_STREAM(1, REFUSED_STREAM).
  const unsigned char frames[] = {0, 0, 0, 4, 0, 0, 0, 0, 0,                 // SETTINGS
                                  0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 7};    // RST_STREAM
  EXPECT_EQ(check.feed(reinterpret_cast<const char*>(frames), sizeof frames), -1);
  EXPECT_NE(check.error().find("REFUSED_STREAM"), std::string::npos) << check.error();
}

}  // namespace
}  // namespace banyan::dp::health
