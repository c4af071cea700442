#include "h2/server_codec.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "banyan/common/logging.h"
#include "h2/nv.h"

namespace banyan::dp::h2 {

struct ServerCodec::Stream {
  int32_t id = 0;
  // ---- the request ----
  std::string method, path, authority, host, cookie;
  std::vector<Field> headers;
  std::vector<Field> trailers;
  size_t header_bytes = 0;
  bool bad = false;              // refused while its head arrived (RST_STREAM sent)
  bool has_content_length = false;
  bool delivered = false;        // onRequest ran: the proxy works on it
  bool chunked = false;          // the HTTP/1.1 body is sent chunked
  bool request_ended = false;    // END_STREAM received (and framing closed)
  std::string inbox;             // HTTP/1.1 body bytes the proxy has not taken
  size_t inbox_off = 0;
  uint64_t unconsumed = 0;       // DATA payload received but not acknowledged
  // ---- the response ----
  ResponseTranslator translator;
  std::string outbox;            // body bytes waiting for the client's window
  size_t outbox_off = 0;
  bool head_submitted = false;   // final HEADERS queued
  bool provider = false;         // final HEADERS went with a data provider
  bool deferred = false;         // the data provider waits for bytes
  bool end_sent = false;         // END_STREAM went out
  bool proxy_done = false;       // finishStream ran

  size_t outboxSize() const { return outbox.size() - outbox_off; }
};

namespace {

bool methodExpectsBody(std::string_view m) { return m == "POST" || m == "PUT" || m == "PATCH"; }

}  // namespace

// nghttp2's C callbacks, forwarding to the codec.
struct CodecCallbacks {
  static ServerCodec& codec(void* user_data) { return *static_cast<ServerCodec*>(user_data); }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    ServerCodec& c = codec(ud);
    auto s = std::make_unique<ServerCodec::Stream>();
    s->id = frame->hd.stream_id;
    c.streams_[s->id] = std::move(s);
    return 0;
  }

  static void refuse(ServerCodec& c, ServerCodec::Stream& s, uint32_t code) {
    if (s.bad) return;
    s.bad = true;
    nghttp2_submit_rst_stream(c.session_, NGHTTP2_FLAG_NONE, s.id, code);
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name_p,
                      size_t namelen, const uint8_t* value_p, size_t valuelen, uint8_t, void* ud) {
    ServerCodec& c = codec(ud);
    ServerCodec::Stream* s = c.find(frame->hd.stream_id);
    if (s == nullptr || s->bad || frame->hd.type != NGHTTP2_HEADERS) return 0;
    std::string_view name(reinterpret_cast<const char*>(name_p), namelen);
    std::string_view value(reinterpret_cast<const char*>(value_p), valuelen);
    // RFC 7541 section 4.1 counts 32 bytes per field.
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > c.limits_.max_head) {
      refuse(c, *s, NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) {  // trailers
      if (!name.empty() && name.front() != ':' && !isConnectionSpecific(name))
        s->trailers.push_back({std::string(name), std::string(value)});
      return 0;
    }
    if (!name.empty() && name.front() == ':') {
      if (name == ":method") s->method.assign(value);
      else if (name == ":path") s->path.assign(value);
      else if (name == ":authority") s->authority.assign(value);
      // :scheme is https on this connection; a member hears of it through
      // X-Forwarded-Proto when the listener inserts it.
      return 0;
    }
    // RFC 9113 section 8.2.2: connection-specific fields make the request
    // malformed; TE may only say "trailers". nghttp2 checks these too: this
    // keeps the rule whatever its options.
    if (isConnectionSpecific(name)) {
      if (name != "te" || value != "trailers") {
        refuse(c, *s, NGHTTP2_PROTOCOL_ERROR);
        return 0;
      }
      // "te: trailers" goes on in the HTTP/1.1 head: the session passes it
      // to members (gRPC needs it over HTTP/2) and drops any other TE.
      s->headers.push_back({std::string(name), std::string(value)});
      return 0;
    }
    if (name == "host") {
      s->host.assign(value);
      return 0;
    }
    if (name == "cookie") {
      // RFC 9113 section 8.2.3: crumbs are joined with "; " for HTTP/1.1.
      if (!s->cookie.empty()) s->cookie.append("; ");
      s->cookie.append(value);
      return 0;
    }
    if (name == "content-length") s->has_content_length = true;
    s->headers.push_back({std::string(name), std::string(value)});
    return 0;
  }

  // nghttp2 drops a field it finds invalid (uppercase or forbidden characters
  // in the name, CR/LF/NUL in the value) and goes on; RFC 9113 section 8.2.1
  // makes the message malformed, which is a stream error.
  static int onInvalidHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t*, size_t,
                             const uint8_t*, size_t, uint8_t, void* ud) {
    ServerCodec& c = codec(ud);
    if (ServerCodec::Stream* s = c.find(frame->hd.stream_id)) refuse(c, *s, NGHTTP2_PROTOCOL_ERROR);
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    ServerCodec& c = codec(ud);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    ServerCodec::Stream* s = c.find(frame->hd.stream_id);
    if (s == nullptr || s->bad) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      deliverRequest(c, *s, end);
      return 0;
    }
    if (!end || !s->delivered) return 0;
    // END_STREAM on DATA or trailers: close the HTTP/1.1 body.
    if (s->chunked && !s->proxy_done) {
      s->inbox.append("0\r\n");
      for (const auto& t : s->trailers) s->inbox.append(t.name).append(": ").append(t.value).append("\r\n");
      s->inbox.append("\r\n");
    }
    s->trailers.clear();
    s->request_ended = true;
    if (!s->proxy_done) c.handler_.onRequestData(s->id);
    return 0;
  }

  static void deliverRequest(ServerCodec& c, ServerCodec::Stream& s, bool end) {
    if (s.method == "CONNECT") {
      // No tunnels over HTTP/2 streams (no RFC 8441 either): refused as HAProxy
      // refuses a method its frontend does not handle.
      refuse(c, s, NGHTTP2_REFUSED_STREAM);
      return;
    }
    std::string head;
    head.reserve(256 + s.header_bytes);
    head.append(s.method).push_back(' ');
    head.append(s.path).append(" HTTP/1.1\r\n");
    // RFC 9113 section 8.3.1: :authority stands for Host, and wins over one.
    const std::string& host = s.authority.empty() ? s.host : s.authority;
    if (!host.empty()) head.append("host: ").append(host).append("\r\n");
    for (const auto& f : s.headers) head.append(f.name).append(": ").append(f.value).append("\r\n");
    if (!s.cookie.empty()) head.append("cookie: ").append(s.cookie).append("\r\n");
    if (!end && !s.has_content_length) {
      head.append("transfer-encoding: chunked\r\n");
      s.chunked = true;
    } else if (end && !s.has_content_length && methodExpectsBody(s.method)) {
      head.append("content-length: 0\r\n");
    }
    head.append("\r\n");
    s.request_ended = end;
    s.delivered = true;
    s.translator = ResponseTranslator(s.method == "HEAD");
    s.headers.clear();
    s.headers.shrink_to_fit();
    c.handler_.onRequest(s.id, std::move(head));
  }

  static int onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* ud) {
    ServerCodec& c = codec(ud);
    ServerCodec::Stream* s = c.find(stream_id);
    if (s == nullptr || s->bad || s->proxy_done || !s->delivered) {
      nghttp2_session_consume(session, stream_id, len);  // nobody reads it: free the window
      return 0;
    }
    if (s->chunked) appendHex(s->inbox, len);
    s->inbox.append(reinterpret_cast<const char*>(data), len);
    if (s->chunked) s->inbox.append("\r\n");
    s->unconsumed += len;
    c.handler_.onRequestData(stream_id);
    return 0;
  }

  static int onStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* ud) {
    ServerCodec& c = codec(ud);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) return 0;
    ServerCodec::Stream& s = *it->second;
    if (s.unconsumed) nghttp2_session_consume_connection(session, s.unconsumed);
    bool tell = s.delivered && !s.proxy_done;
    c.streams_.erase(it);
    if (tell) c.handler_.onStreamClosed(stream_id, error_code);
    return 0;
  }

  static int onFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      return 0;
    ServerCodec& c = codec(ud);
    ServerCodec::Stream* s = c.find(frame->hd.stream_id);
    if (s == nullptr) return 0;
    s->end_sent = true;
    // The response is complete but the client still sends: cut the request
    // off without an error (RFC 9113 section 8.1).
    if (s->proxy_done && !s->request_ended)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
  }

  static ssize_t readData(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source*, void* ud) {
    ServerCodec& c = codec(ud);
    ServerCodec::Stream* s = c.find(stream_id);
    if (s == nullptr) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    size_t n = takeOutbox(s->outbox, &s->outbox_off, buf, length);
    if (n && !s->proxy_done) c.handler_.onResponseWritable(stream_id);
    return finishRead(session, stream_id, n, s->outboxSize() == 0 && s->translator.done(),
                      s->translator.trailers(), &s->deferred, data_flags);
  }
};

ServerCodec::ServerCodec(ServerHandler& handler, const CodecLimits& limits)
    : handler_(handler), limits_(limits) {
  nghttp2_session_callbacks* cbs = nullptr;
  LB_CHECK(nghttp2_session_callbacks_new(&cbs) == 0, "nghttp2 callbacks (out of memory)");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, CodecCallbacks::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, CodecCallbacks::onHeader);
  nghttp2_session_callbacks_set_on_invalid_header_callback(cbs, CodecCallbacks::onInvalidHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, CodecCallbacks::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, CodecCallbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, CodecCallbacks::onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, CodecCallbacks::onFrameSend);
  nghttp2_option* opt = nullptr;
  LB_CHECK(nghttp2_option_new(&opt) == 0, "nghttp2 options (out of memory)");
  // Request bodies are acknowledged as the proxy forwards them, not as they
  // arrive: the client's window is what bounds the bytes held per stream.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  LB_CHECK(nghttp2_session_server_new2(&session_, cbs, this, opt) == 0,
           "nghttp2 server session (out of memory)");
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(limits_.stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits_.max_head)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, limits_.connection_window);
}

ServerCodec::~ServerCodec() { nghttp2_session_del(session_); }

ServerCodec::Stream* ServerCodec::find(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

bool ServerCodec::feed(std::string_view bytes) {
  if (fatal_) return false;
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                       bytes.size());
  if (n < 0) {
    LB_DEBUG("HTTP/2 connection failed. reason=%s", nghttp2_strerror(static_cast<int>(n)));
    fatal_ = true;
    if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
      nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    return false;
  }
  return true;
}

bool ServerCodec::produce(std::string& out, size_t max) {
  if (produceFrames(session_, out, max)) return true;
  fatal_ = true;
  return false;
}

bool ServerCodec::wantRead() const { return !fatal_ && nghttp2_session_want_read(session_); }
bool ServerCodec::wantWrite() const { return nghttp2_session_want_write(session_); }

size_t ServerCodec::takeRequest(int32_t stream_id, char* dst, size_t max) {
  Stream* s = find(stream_id);
  if (s == nullptr) return 0;
  size_t n = std::min(max, s->inbox.size() - s->inbox_off);
  if (n == 0) return 0;
  std::memcpy(dst, s->inbox.data() + s->inbox_off, n);
  s->inbox_off += n;
  if (s->inbox_off == s->inbox.size()) {
    s->inbox.clear();
    s->inbox_off = 0;
    // Everything received so far has moved on: the client may send more.
    if (s->unconsumed) nghttp2_session_consume(session_, stream_id, s->unconsumed);
    s->unconsumed = 0;
  }
  return n;
}

bool ServerCodec::requestEnded(int32_t stream_id) const {
  Stream* s = find(stream_id);
  return s == nullptr || (s->request_ended && s->inbox_off == s->inbox.size());
}

void ServerCodec::submitHead(Stream& s, const ResponseHead& head) {
  std::vector<nghttp2_nv> nv;
  nv.reserve(head.fields.size() + 1);
  char status[4];
  snprintf(status, sizeof status, "%03d", head.status);
  nv.push_back(makeNv(":status", std::string_view(status, 3)));
  for (const auto& f : head.fields) nv.push_back(makeNv(f.name, f.value));
  if (!head.final) {
    nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, s.id, nullptr, nv.data(), nv.size(), nullptr);
    return;
  }
  s.head_submitted = true;
  if (!head.has_body) {
    nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), nullptr);
    return;
  }
  nghttp2_data_provider provider;
  provider.source.ptr = nullptr;
  provider.read_callback = CodecCallbacks::readData;
  s.provider = true;
  nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), &provider);
}

size_t ServerCodec::pushResponse(int32_t stream_id, std::string_view bytes, PushStatus* status) {
  *status = PushStatus::Ok;
  Stream* s = find(stream_id);
  if (s == nullptr || s->proxy_done) return bytes.size();  // the client went away: discard
  if (s->outboxSize() >= kResponseCap) return 0;
  if (s->outbox_off > 0 && s->outbox_off * 2 > s->outbox.size()) {
    s->outbox.erase(0, s->outbox_off);
    s->outbox_off = 0;
  }
  std::vector<ResponseHead> heads;
  size_t before = s->outbox.size();
  if (s->translator.feed(bytes, heads, s->outbox) != ResponseTranslator::Status::Ok) {
    *status = PushStatus::Invalid;
    return bytes.size();
  }
  for (const auto& h : heads) {
    if (s->head_submitted) break;  // nothing follows a final head
    submitHead(*s, h);
  }
  if (s->deferred && (s->outbox.size() != before || s->translator.done())) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, stream_id);
  }
  return bytes.size();
}

void ServerCodec::endResponse(int32_t stream_id) {
  Stream* s = find(stream_id);
  if (s == nullptr) return;
  s->translator.endOfInput();
  if (s->deferred && s->translator.done()) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, stream_id);
  }
}

void ServerCodec::finishStream(int32_t stream_id) {
  Stream* s = find(stream_id);
  if (s == nullptr || s->proxy_done) return;
  s->proxy_done = true;
  // What the proxy did not take will never be read: give the window back.
  if (s->unconsumed) nghttp2_session_consume(session_, stream_id, s->unconsumed);
  s->unconsumed = 0;
  s->inbox.clear();
  s->inbox_off = 0;
  if (!s->head_submitted || !s->translator.done()) {
    // The response broke off (member reset, timeout after the head): the
    // client must not take a truncated body for a whole one.
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  if (s->end_sent && !s->request_ended)
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
}

void ServerCodec::resetStream(int32_t stream_id, uint32_t error_code) {
  Stream* s = find(stream_id);
  if (s != nullptr) s->proxy_done = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
}

void ServerCodec::goAway() {
  if (going_away_) return;
  going_away_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

}  // namespace banyan::dp::h2
