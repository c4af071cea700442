#include "health/h2_check.h"

#include <nghttp2/nghttp2.h>

#include <cstring>

#include "banyan/common/logging.h"

namespace banyan::dp::health {

struct H2Check::Callbacks {
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* arg) {
    auto* self = static_cast<H2Check*>(arg);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != self->stream_) return 0;
    if (namelen != 7 || std::memcmp(name, ":status", 7) != 0) return 0;
    int code = 0;
    for (size_t i = 0; i < valuelen; ++i) {
      if (value[i] < '0' || value[i] > '9' || valuelen != 3) return 0;
      code = code * 10 + (value[i] - '0');
    }
    // An interim (1xx) head is followed by the final one.
    if (code >= 200) self->status_ = code;
    return 0;
  }
  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* arg) {
    auto* self = static_cast<H2Check*>(arg);
    if (stream_id == self->stream_ && self->status_ == 0 && self->error_.empty())
      self->error_ = std::string("HTTP/2 stream closed before a status: ") +
                     nghttp2_http2_strerror(error_code);
    return 0;
  }
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* arg) {
    auto* self = static_cast<H2Check*>(arg);
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.last_stream_id < self->stream_ &&
        self->status_ == 0 && self->error_.empty())
      self->error_ = std::string("HTTP/2 GOAWAY: ") + nghttp2_http2_strerror(frame->goaway.error_code);
    return 0;
  }
  static int onError(nghttp2_session*, int, const char* msg, size_t len, void* arg) {
    auto* self = static_cast<H2Check*>(arg);
    if (self->error_.empty()) self->error_ = "HTTP/2 protocol error: " + std::string(msg, len);
    return 0;
  }
};

namespace {

nghttp2_nv header(const char* name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), std::strlen(name),
                    value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

}  // namespace

H2Check::H2Check(const std::string& method, const std::string& path, const std::string& authority) {
  nghttp2_session_callbacks* cb = nullptr;
  LB_CHECK(nghttp2_session_callbacks_new(&cb) == 0, "nghttp2 callbacks");
  nghttp2_session_callbacks_set_on_header_callback(cb, Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, Callbacks::onStreamClose);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, Callbacks::onFrameRecv);
  nghttp2_session_callbacks_set_error_callback2(cb, Callbacks::onError);
  int rc = nghttp2_session_client_new(&session_, cb, this);
  nghttp2_session_callbacks_del(cb);
  LB_CHECK(rc == 0, "nghttp2 client session");
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  const std::string scheme = "https";
  const std::string agent = "banyan-health-check";
  const nghttp2_nv nva[] = {header(":method", method), header(":scheme", scheme),
                            header(":authority", authority), header(":path", path),
                            header("user-agent", agent)};
  stream_ = nghttp2_submit_request(session_, nullptr, nva, sizeof nva / sizeof nva[0], nullptr, nullptr);
  if (stream_ < 0) error_ = nghttp2_strerror(stream_);
  drain();
}

H2Check::~H2Check() { nghttp2_session_del(session_); }

void H2Check::drain() {
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) {
      if (n < 0 && error_.empty()) error_ = nghttp2_strerror(static_cast<int>(n));
      return;
    }
    out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

int H2Check::feed(const char* data, size_t size) {
  if (!error_.empty()) return -1;
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), size);
  if (n < 0) {
    error_ = std::string("HTTP/2 protocol error: ") + nghttp2_strerror(static_cast<int>(n));
    return -1;
  }
  if (status_ != 0) return status_;
  // A connection error (bytes that are not HTTP/2) ends the session's reading.
  if (error_.empty() && nghttp2_session_want_read(session_) == 0)
    error_ = "HTTP/2 connection closed before a status";
  return error_.empty() ? 0 : -1;
}

}  // namespace banyan::dp::health
