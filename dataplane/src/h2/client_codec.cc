#include "h2/client_codec.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "banyan/common/logging.h"
#include "h2/nv.h"
#include "h2/response_translator.h"
#include "http/parser.h"

namespace banyan::dp::h2 {

struct ClientCodec::Stream {
  uint32_t handle = 0;
  int32_t id = 0;  // 0 until the request head was submitted
  bool head_request = false;
  bool http10 = false;
  // ---- the request (HTTP/1.1 in, HTTP/2 out) ----
  enum class Req { Head, Length, ChunkSize, ChunkExt, ChunkData, ChunkDataEnd, Trailer, Done };
  Req req = Req::Head;
  std::string pending;  // an unfinished head or trailer line
  uint64_t left = 0;    // Length: bytes left; ChunkData: bytes of the chunk left
  int size_digits = 0;
  std::vector<Field> req_trailers;
  std::string outbox;  // DATA payload waiting for the member's window
  size_t outbox_off = 0;
  bool deferred = false;
  bool request_done = false;  // the whole body is in the outbox
  bool headers_sent = false;  // the request HEADERS left
  // ---- the response (HTTP/2 in, HTTP/1.1 out) ----
  enum class Framing { None, Length, Chunked, UntilEnd };
  Framing framing = Framing::None;
  std::string status;
  std::vector<Field> fields;
  std::vector<Field> trailers;
  size_t header_bytes = 0;
  bool head_done = false;     // the final head was translated
  bool any_response = false;  // some response frame arrived
  std::string inbox;          // HTTP/1.1 bytes the proxy has not taken
  size_t inbox_off = 0;
  uint64_t unconsumed = 0;  // DATA payload received but not acknowledged
  bool complete = false;    // END_STREAM from the member
  bool closed = false;      // nghttp2 is done with the stream (or never had it)
  bool released = false;    // the proxy is done with it
  bool refused = false;
  uint32_t reset_code = 0;

  size_t outboxSize() const { return outbox.size() - outbox_off; }
  size_t inboxSize() const { return inbox.size() - inbox_off; }
};

namespace {

constexpr http::Limits kRequestLimits{65536, 262144, 1000};
constexpr size_t kMaxTrailerLine = 65536;

const char* reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
  }
  return "Status";
}

}  // namespace

// nghttp2's C callbacks, forwarding to the codec.
struct ClientCallbacks {
  using Stream = ClientCodec::Stream;
  static ClientCodec& codec(void* ud) { return *static_cast<ClientCodec*>(ud); }
  static Stream* stream(nghttp2_session* session, int32_t id) {
    return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  static int onHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name_p,
                      size_t namelen, const uint8_t* value_p, size_t valuelen, uint8_t, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    ClientCodec& c = codec(ud);
    Stream* s = stream(session, frame->hd.stream_id);
    if (s == nullptr || s->released) return 0;
    std::string_view name(reinterpret_cast<const char*>(name_p), namelen);
    std::string_view value(reinterpret_cast<const char*>(value_p), valuelen);
    s->any_response = true;
    // RFC 7541 section 4.1 counts 32 bytes per field.
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > c.limits_.max_head) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!name.empty() && name.front() == ':') {
      if (name == ":status" && !s->head_done) s->status.assign(value);
      return 0;
    }
    if (isConnectionSpecific(name)) return 0;  // nghttp2 refuses them already
    if (s->head_done)
      s->trailers.push_back({std::string(name), std::string(value)});
    else
      s->fields.push_back({std::string(name), std::string(value)});
    return 0;
  }

  // A HEADERS frame with :status: an interim or the final head.
  static void translateHead(ClientCodec& c, Stream& s, bool end) {
    int status = 0;
    for (char ch : s.status) status = status * 10 + (ch - '0');
    s.status.clear();
    std::string& out = s.inbox;
    char line[64];
    int len = snprintf(line, sizeof line, "HTTP/1.1 %03d %s\r\n", status, reason(status));
    out.append(line, static_cast<size_t>(len));
    bool has_length = false;
    for (const auto& f : s.fields) {
      if (f.name == "content-length") has_length = true;
      out.append(f.name).append(": ").append(f.value).append("\r\n");
    }
    s.fields.clear();
    s.header_bytes = 0;
    if (status < 200) {  // interim: the final head follows
      out.append("\r\n");
      c.handler_.onResponseData(s.handle);
      return;
    }
    s.head_done = true;
    if (s.head_request || status == 204 || status == 304) {
      s.framing = Stream::Framing::None;
    } else if (has_length) {
      s.framing = Stream::Framing::Length;
    } else if (end) {
      out.append("content-length: 0\r\n");
      s.framing = Stream::Framing::None;
    } else if (s.http10) {
      s.framing = Stream::Framing::UntilEnd;  // no chunked for HTTP/1.0 clients
    } else {
      out.append("transfer-encoding: chunked\r\n");
      s.framing = Stream::Framing::Chunked;
    }
    out.append("\r\n");
    c.handler_.onResponseData(s.handle);
  }

  static void complete(ClientCodec& c, Stream& s) {
    if (s.complete) return;
    s.complete = true;
    if (s.framing == Stream::Framing::Chunked) {
      s.inbox.append("0\r\n");
      for (const auto& t : s.trailers) s.inbox.append(t.name).append(": ").append(t.value).append("\r\n");
      s.inbox.append("\r\n");
    }
    s.trailers.clear();
    c.handler_.onResponseData(s.handle);
  }

  static int onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    ClientCodec& c = codec(ud);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      c.going_away_ = true;
      // Streams above last-stream-id were never processed (RFC 9113
      // section 6.8): nghttp2 closes them with REFUSED_STREAM.
      for (auto& [h, s] : c.streams_)
        if (s->id > frame->goaway.last_stream_id || s->id == 0)
          if (!s->any_response) s->refused = true;
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    Stream* s = stream(session, frame->hd.stream_id);
    if (s == nullptr || s->released) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && !s->head_done && !s->status.empty())
      translateHead(c, *s, end);
    if (end && s->head_done) complete(c, *s);
    return 0;
  }

  static int onDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* ud) {
    ClientCodec& c = codec(ud);
    Stream* s = stream(session, stream_id);
    if (s == nullptr || s->released || !s->head_done) {
      nghttp2_session_consume(session, stream_id, len);  // nobody reads it: free the window
      return 0;
    }
    s->any_response = true;
    if (s->framing == Stream::Framing::None) {  // a body where none belongs (HEAD, 204, 304)
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    if (s->framing == Stream::Framing::Chunked) appendHex(s->inbox, len);
    s->inbox.append(reinterpret_cast<const char*>(data), len);
    if (s->framing == Stream::Framing::Chunked) s->inbox.append("\r\n");
    s->unconsumed += len;
    c.handler_.onResponseData(s->handle);
    return 0;
  }

  static int onStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                           void* ud) {
    ClientCodec& c = codec(ud);
    Stream* s = stream(session, stream_id);
    if (s == nullptr) return 0;
    s->closed = true;
    if (s->unconsumed) nghttp2_session_consume_connection(session, s->unconsumed);
    s->unconsumed = 0;
    if (!s->complete) {
      s->reset_code = error_code ? error_code : static_cast<uint32_t>(NGHTTP2_INTERNAL_ERROR);
      if (error_code == NGHTTP2_REFUSED_STREAM && !s->any_response) s->refused = true;
    }
    if (s->released) {
      c.erase(*s);
      return 0;
    }
    c.handler_.onResponseData(s->handle);
    return 0;
  }

  static int onFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (Stream* s = stream(session, frame->hd.stream_id)) s->headers_sent = true;
    return 0;
  }

  // A request HEADERS that could not go out (GOAWAY arrived first, no stream
  // ids left): the member never saw it. nghttp2 never opened the stream, so
  // no close callback follows.
  static int onFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    ClientCodec& c = codec(ud);
    for (auto& [h, s] : c.streams_) {
      if (s->id != frame->hd.stream_id || s->closed) continue;
      s->closed = true;
      s->refused = true;
      s->reset_code = NGHTTP2_REFUSED_STREAM;
      if (s->released) {
        c.erase(*s);
        return 0;
      }
      c.handler_.onResponseData(s->handle);
      return 0;
    }
    return 0;
  }

  static ssize_t readRequest(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                             size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                             void* ud) {
    ClientCodec& c = codec(ud);
    Stream* s = static_cast<Stream*>(source->ptr);
    size_t n = takeOutbox(s->outbox, &s->outbox_off, buf, length);
    if (n && !s->released) c.handler_.onRequestWritable(s->handle);
    return finishRead(session, stream_id, n, s->outboxSize() == 0 && s->request_done,
                      s->req_trailers, &s->deferred, data_flags);
  }
};

ClientCodec::ClientCodec(ClientHandler& handler, const ClientLimits& limits)
    : handler_(handler), limits_(limits) {
  nghttp2_session_callbacks* cbs = nullptr;
  LB_CHECK(nghttp2_session_callbacks_new(&cbs) == 0, "nghttp2 callbacks (out of memory)");
  nghttp2_session_callbacks_set_on_header_callback(cbs, ClientCallbacks::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, ClientCallbacks::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, ClientCallbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, ClientCallbacks::onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, ClientCallbacks::onFrameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, ClientCallbacks::onFrameNotSend);
  nghttp2_option* opt = nullptr;
  LB_CHECK(nghttp2_option_new(&opt) == 0, "nghttp2 options (out of memory)");
  // Response bodies are acknowledged as the proxy forwards them, not as they
  // arrive: the member's window is what bounds the bytes held per stream.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  LB_CHECK(nghttp2_session_client_new2(&session_, cbs, this, opt) == 0,
           "nghttp2 client session (out of memory)");
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(limits_.stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits_.max_head)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, limits_.connection_window);
}

ClientCodec::~ClientCodec() { nghttp2_session_del(session_); }

ClientCodec::Stream* ClientCodec::find(uint32_t handle) const {
  auto it = streams_.find(handle);
  return it == streams_.end() ? nullptr : it->second.get();
}

void ClientCodec::erase(Stream& s) {
  if (s.id > 0 && !s.closed) nghttp2_session_set_stream_user_data(session_, s.id, nullptr);
  streams_.erase(s.handle);
}

bool ClientCodec::feed(std::string_view bytes) {
  if (fatal_) return false;
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                       bytes.size());
  if (n < 0) {
    LB_DEBUG("HTTP/2 member connection failed. reason=%s", nghttp2_strerror(static_cast<int>(n)));
    fatal_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    return false;
  }
  return true;
}

bool ClientCodec::produce(std::string& out, size_t max) {
  if (produceFrames(session_, out, max)) return true;
  fatal_ = true;
  return false;
}

bool ClientCodec::wantRead() const { return !fatal_ && nghttp2_session_want_read(session_); }
bool ClientCodec::wantWrite() const { return nghttp2_session_want_write(session_); }

bool ClientCodec::canOpen() const {
  if (goingAway()) return false;
  uint32_t peer = nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < std::min(peer, limits_.max_streams);
}

void ClientCodec::goAway() {
  if (going_away_) return;
  going_away_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

void ClientCodec::connectionLost() {
  fatal_ = true;
  std::vector<uint32_t> wake;
  for (auto& [h, s] : streams_) {
    if (s->closed || s->complete) continue;
    s->closed = true;
    s->reset_code = NGHTTP2_INTERNAL_ERROR;
    if (!s->headers_sent) s->refused = true;
    if (!s->released) wake.push_back(h);
  }
  for (uint32_t h : wake) handler_.onResponseData(h);
}

uint32_t ClientCodec::open(bool head_request, bool http10) {
  auto s = std::make_unique<Stream>();
  uint32_t h = next_handle_++;
  if (next_handle_ == 0) next_handle_ = 1;
  s->handle = h;
  s->head_request = head_request;
  s->http10 = http10;
  streams_[h] = std::move(s);
  return h;
}

void ClientCodec::resumeIfDeferred(Stream& s) {
  if (!s.deferred || s.id <= 0 || s.closed) return;
  s.deferred = false;
  nghttp2_session_resume_data(session_, s.id);
}

// The HTTP/1.1 head in s.pending (head_length bytes) becomes HEADERS.
bool ClientCodec::submitRequest(Stream& s, size_t head_length) {
  http::RequestHead req;
  auto r = http::parseRequestHead(std::string_view(s.pending).substr(0, head_length), kRequestLimits, req);
  if (r.status != http::ParseStatus::Done) return false;
  std::string_view target = req.target;
  std::string_view authority = req.host;
  // absolute-form: the target carries the authority (RFC 9112 section 3.2.2).
  if (size_t sep = target.find("://"); sep != std::string_view::npos && target.front() != '/') {
    std::string_view rest = target.substr(sep + 3);
    size_t slash = rest.find_first_of("/?");
    authority = rest.substr(0, slash);
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (!target.empty() && target.front() == '?') return false;
  }
  std::vector<std::string> names;  // lowercase copies, alive until submitted
  names.reserve(req.headers.size());
  std::vector<nghttp2_nv> nv;
  nv.reserve(req.headers.size() + 4);
  nv.push_back(makeNv(":method", req.method));
  nv.push_back(makeNv(":scheme", "https"));
  if (!authority.empty()) nv.push_back(makeNv(":authority", authority));
  nv.push_back(makeNv(":path", target));
  for (const auto& hd : req.headers) {
    if (http::equalsIgnoreCase(hd.name, "host")) continue;
    if (isConnectionSpecific(hd.name)) {
      // RFC 9113 section 8.2.2: TE may pass, saying only "trailers" (gRPC needs it).
      if (!http::equalsIgnoreCase(hd.name, "te") || !http::equalsIgnoreCase(hd.value, "trailers"))
        continue;
    }
    names.push_back(lower(hd.name));
  }
  size_t i = 0;
  for (const auto& hd : req.headers) {
    if (http::equalsIgnoreCase(hd.name, "host")) continue;
    if (isConnectionSpecific(hd.name) &&
        (!http::equalsIgnoreCase(hd.name, "te") || !http::equalsIgnoreCase(hd.value, "trailers")))
      continue;
    nv.push_back(makeNv(names[i++], hd.name.size() == 2 ? std::string_view("trailers") : hd.value));
  }
  nghttp2_data_provider provider;
  provider.source.ptr = &s;
  provider.read_callback = ClientCallbacks::readRequest;
  bool body = req.body != http::BodyKind::None;
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                      body ? &provider : nullptr, &s);
  if (id < 0) return false;
  s.id = id;
  switch (req.body) {
    case http::BodyKind::None:
    case http::BodyKind::UntilClose:
      s.req = Stream::Req::Done;
      s.request_done = true;
      break;
    case http::BodyKind::ContentLength:
      s.req = Stream::Req::Length;
      s.left = req.content_length;
      break;
    case http::BodyKind::Chunked:
      s.req = Stream::Req::ChunkSize;
      s.left = 0;
      s.size_digits = 0;
      break;
  }
  s.pending.erase(0, head_length);
  return true;
}

// Decodes HTTP/1.1 body framing from `in` into the outbox; `*used` bytes of
// `in` were consumed. False on invalid framing.
bool ClientCodec::translateBody(Stream& s, std::string_view in, size_t* used) {
  const size_t start = in.size();
  using Req = Stream::Req;
  for (;;) {
    switch (s.req) {
      case Req::Head:
        *used = start - in.size();
        return true;
      case Req::Length: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(s.left, in.size()));
        s.outbox.append(in.substr(0, take));
        in.remove_prefix(take);
        s.left -= take;
        if (s.left != 0) {
          *used = start - in.size();
          return true;
        }
        s.req = Req::Done;
        s.request_done = true;
        continue;
      }
      case Req::ChunkSize: {
        if (in.empty()) break;
        int v = hexValue(in.front());
        if (v >= 0) {
          if (++s.size_digits > 15) return false;
          s.left = s.left * 16 + static_cast<uint64_t>(v);
          in.remove_prefix(1);
          continue;
        }
        if (s.size_digits == 0) return false;
        s.req = Req::ChunkExt;
        continue;
      }
      case Req::ChunkExt: {
        size_t lf = in.find('\n');
        if (lf == std::string_view::npos) {
          in = {};
          break;
        }
        in.remove_prefix(lf + 1);
        s.size_digits = 0;
        s.req = s.left == 0 ? Req::Trailer : Req::ChunkData;
        continue;
      }
      case Req::ChunkData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(s.left, in.size()));
        s.outbox.append(in.substr(0, take));
        in.remove_prefix(take);
        s.left -= take;
        if (s.left != 0) break;
        s.req = Req::ChunkDataEnd;
        continue;
      }
      case Req::ChunkDataEnd: {
        if (in.empty()) break;
        char ch = in.front();
        in.remove_prefix(1);
        if (ch == '\r') continue;
        if (ch != '\n') return false;
        s.req = Req::ChunkSize;
        s.left = 0;
        continue;
      }
      case Req::Trailer: {
        size_t lf = in.find('\n');
        if (lf == std::string_view::npos) {
          s.pending.append(in);
          in = {};
          if (s.pending.size() > kMaxTrailerLine) return false;
          break;
        }
        s.pending.append(in.substr(0, lf));
        in.remove_prefix(lf + 1);
        if (!s.pending.empty() && s.pending.back() == '\r') s.pending.pop_back();
        if (s.pending.empty()) {
          s.req = Req::Done;
          s.request_done = true;
          continue;
        }
        size_t colon = s.pending.find(':');
        if (colon == std::string::npos || colon == 0) return false;
        std::string_view name(s.pending.data(), colon);
        std::string_view value = std::string_view(s.pending).substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        if (!isConnectionSpecific(name) && !http::equalsIgnoreCase(name, "content-length") &&
            !http::equalsIgnoreCase(name, "host"))
          s.req_trailers.push_back({lower(name), std::string(value)});
        s.pending.clear();
        continue;
      }
      case Req::Done:
        in = {};  // nothing belongs to this stream after its request
        break;
    }
    *used = start - in.size();
    return true;
  }
}

size_t ClientCodec::pushRequest(uint32_t handle, std::string_view bytes, bool* invalid) {
  *invalid = false;
  Stream* s = find(handle);
  if (s == nullptr || s->released) return bytes.size();
  if (s->closed) return bytes.size();  // the member answered or reset: discard
  if (s->outboxSize() >= kRequestCap) return 0;
  if (s->outbox_off > 0 && s->outbox_off * 2 > s->outbox.size()) {
    s->outbox.erase(0, s->outbox_off);
    s->outbox_off = 0;
  }
  size_t taken = 0;
  if (s->req == Stream::Req::Head) {
    size_t before = s->pending.size();
    s->pending.append(bytes);
    http::RequestHead scratch;
    auto r = http::parseRequestHead(s->pending, kRequestLimits, scratch);
    if (r.status == http::ParseStatus::NeedMore) return bytes.size();
    if (r.status == http::ParseStatus::Invalid || !submitRequest(*s, r.consumed)) {
      *invalid = true;
      s->closed = true;
      s->reset_code = NGHTTP2_INTERNAL_ERROR;
      return bytes.size();
    }
    // What followed the head in this call is body: translate it from `bytes`.
    size_t head_in_bytes = r.consumed - before;
    s->pending.clear();
    bytes.remove_prefix(head_in_bytes);
    taken = head_in_bytes;
  }
  size_t room = kRequestCap - std::min(kRequestCap, s->outboxSize());
  // Framing adds bytes: offer a little more than the payload room.
  std::string_view chunk = bytes.substr(0, std::max<size_t>(room, 1) + 64);
  size_t used = 0;
  if (!translateBody(*s, chunk, &used)) {
    *invalid = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    return taken + chunk.size();
  }
  taken += used;
  resumeIfDeferred(*s);
  return taken;
}

size_t ClientCodec::takeResponse(uint32_t handle, char* dst, size_t max) {
  Stream* s = find(handle);
  if (s == nullptr) return 0;
  size_t n = std::min(max, s->inboxSize());
  if (n == 0) return 0;
  std::memcpy(dst, s->inbox.data() + s->inbox_off, n);
  s->inbox_off += n;
  if (s->inbox_off == s->inbox.size()) {
    s->inbox.clear();
    s->inbox_off = 0;
  }
  if (s->inboxSize() < kResponseCap && s->unconsumed && s->id > 0 && !s->closed) {
    // What was received has mostly moved on: the member may send more.
    nghttp2_session_consume(session_, s->id, s->unconsumed);
    s->unconsumed = 0;
  }
  return n;
}

bool ClientCodec::responseEnded(uint32_t handle) const {
  Stream* s = find(handle);
  return s == nullptr || ((s->complete || s->closed) && s->inboxSize() == 0);
}

bool ClientCodec::responseComplete(uint32_t handle) const {
  Stream* s = find(handle);
  return s != nullptr && s->complete;
}

bool ClientCodec::refused(uint32_t handle) const {
  Stream* s = find(handle);
  return s != nullptr && s->refused && !s->any_response;
}

uint32_t ClientCodec::resetCode(uint32_t handle) const {
  Stream* s = find(handle);
  return s == nullptr ? 0 : s->reset_code;
}

void ClientCodec::release(uint32_t handle) {
  Stream* s = find(handle);
  if (s == nullptr || s->released) return;
  s->released = true;
  s->inbox.clear();
  s->inbox_off = 0;
  if (s->id <= 0 || s->closed) {
    if (s->unconsumed) nghttp2_session_consume_connection(session_, s->unconsumed);
    erase(*s);
    return;
  }
  if (s->unconsumed) nghttp2_session_consume(session_, s->id, s->unconsumed);
  s->unconsumed = 0;
  // A finished exchange closes by itself; anything else is cancelled.
  if (!s->complete || !s->request_done || s->outboxSize() != 0)
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  else
    resumeIfDeferred(*s);
}

}  // namespace banyan::dp::h2
