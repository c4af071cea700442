// The codec against a real nghttp2 client session, in memory: frames go back
// and forth through exchange() until neither side has anything to say.
#include "h2/server_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace banyan::dp::h2 {
namespace {

struct Recorder : ServerHandler {
  std::map<int32_t, std::string> heads;
  std::vector<int32_t> data_events;
  std::vector<int32_t> writable;
  std::map<int32_t, uint32_t> closed;
  void onRequest(int32_t id, std::string head) override { heads[id] = std::move(head); }
  void onRequestData(int32_t id) override { data_events.push_back(id); }
  void onResponseWritable(int32_t id) override { writable.push_back(id); }
  void onStreamClosed(int32_t id, uint32_t code) override { closed[id] = code; }
};

struct ClientStream {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers, trailers;
  std::string body;
  bool closed = false;
  uint32_t code = 0;
  std::string to_send;
  bool end_after = true;
};

class Client {
 public:
  explicit Client(bool consume = true) : consume_(consume) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &Client::onHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Client::onData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Client::onClose);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Client::onFrame);
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&s, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(s); }

  int32_t request(std::vector<std::pair<std::string, std::string>> fields, const std::string* body,
                  bool end = true) {
    std::vector<nghttp2_nv> nv;
    for (auto& f : fields)
      nv.push_back({reinterpret_cast<uint8_t*>(f.first.data()), reinterpret_cast<uint8_t*>(f.second.data()),
                    f.first.size(), f.second.size(), NGHTTP2_NV_FLAG_NONE});
    if (!body && end) return nghttp2_submit_request(s, nullptr, nv.data(), nv.size(), nullptr, nullptr);
    nghttp2_data_provider p;
    p.source.ptr = nullptr;
    p.read_callback = &Client::read;
    int32_t id = nghttp2_submit_request(s, nullptr, nv.data(), nv.size(), &p, nullptr);
    streams[id].to_send = body ? *body : "";
    streams[id].end_after = end;
    return id;
  }
  static std::vector<std::pair<std::string, std::string>> get(const std::string& path) {
    return {{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test:8443"}, {":path", path}};
  }

  nghttp2_session* s = nullptr;
  std::map<int32_t, ClientStream> streams;
  bool goaway = false;
  int32_t goaway_last = -1;
  bool consume_;

 private:
  static Client& self(void* ud) { return *static_cast<Client*>(ud); }
  static int onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                      const uint8_t* v, size_t vl, uint8_t, void* ud) {
    ClientStream& cs = self(ud).streams[f->hd.stream_id];
    std::string name(reinterpret_cast<const char*>(n), nl), value(reinterpret_cast<const char*>(v), vl);
    if (name == ":status") cs.status = std::stoi(value);
    else if (f->headers.cat == NGHTTP2_HCAT_HEADERS) cs.trailers.emplace_back(name, value);
    else cs.headers.emplace_back(name, value);
    return 0;
  }
  static int onData(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* d, size_t len, void* ud) {
    self(ud).streams[id].body.append(reinterpret_cast<const char*>(d), len);
    if (self(ud).consume_) nghttp2_session_consume(s, id, len);
    return 0;
  }
  static int onClose(nghttp2_session*, int32_t id, uint32_t code, void* ud) {
    self(ud).streams[id].closed = true;
    self(ud).streams[id].code = code;
    return 0;
  }
  static int onFrame(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    if (f->hd.type == NGHTTP2_GOAWAY) {
      self(ud).goaway = true;
      self(ud).goaway_last = f->goaway.last_stream_id;
    }
    return 0;
  }
  static ssize_t read(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                      nghttp2_data_source*, void* ud) {
    ClientStream& cs = self(ud).streams[id];
    size_t n = std::min(len, cs.to_send.size());
    memcpy(buf, cs.to_send.data(), n);
    cs.to_send.erase(0, n);
    if (cs.to_send.empty() && cs.end_after) *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (cs.to_send.empty() && n == 0) return NGHTTP2_ERR_DEFERRED;
    return static_cast<ssize_t>(n);
  }
};

// Moves frames both ways until both sides are quiet.
void exchange(Client& c, ServerCodec& codec) {
  for (int i = 0; i < 1000; ++i) {
    bool moved = false;
    const uint8_t* data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c.s, &data)) > 0) {
      ASSERT_TRUE(codec.feed(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n))));
      moved = true;
    }
    std::string out;
    ASSERT_TRUE(codec.produce(out, 1 << 20));
    if (!out.empty()) {
      ASSERT_GE(nghttp2_session_mem_recv(c.s, reinterpret_cast<const uint8_t*>(out.data()), out.size()), 0);
      moved = true;
    }
    if (!moved) return;
  }
}

std::string takeAll(ServerCodec& codec, int32_t id) {
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = codec.takeRequest(id, buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

ServerCodec::PushStatus push(ServerCodec& codec, int32_t id, std::string_view bytes) {
  ServerCodec::PushStatus st;
  EXPECT_EQ(codec.pushResponse(id, bytes, &st), bytes.size());
  return st;
}

TEST(ServerCodec, AGetBecomesAnHttp11HeadWithHostFromAuthority) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  auto fields = Client::get("/p?q=1");
  fields.emplace_back("host", "ignored.test");
  fields.emplace_back("cookie", "a=1");
  fields.emplace_back("cookie", "b=2");
  fields.emplace_back("x-one", "1");
  int32_t id = c.request(fields, nullptr);
  exchange(c, codec);
  ASSERT_EQ(rec.heads.count(id), 1u);
  EXPECT_EQ(rec.heads[id],
            "GET /p?q=1 HTTP/1.1\r\nhost: a.test:8443\r\nx-one: 1\r\ncookie: a=1; b=2\r\n\r\n");
  EXPECT_TRUE(codec.requestEnded(id));
}

TEST(ServerCodec, TheResponseGoesBackAsHeadersAndData) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  int32_t id = c.request(Client::get("/"), nullptr);
  exchange(c, codec);
  EXPECT_EQ(push(codec, id, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\nConnection: close\r\n\r\nok"),
            ServerCodec::PushStatus::Ok);
  codec.finishStream(id);
  exchange(c, codec);
  ASSERT_TRUE(c.streams[id].closed);
  EXPECT_EQ(c.streams[id].code, 0u);
  EXPECT_EQ(c.streams[id].status, 200);
  EXPECT_EQ(c.streams[id].body, "ok");
  EXPECT_EQ(c.streams[id].headers,
            (std::vector<std::pair<std::string, std::string>>{{"content-length", "2"}, {"x-a", "b"}}));
  EXPECT_EQ(rec.closed.count(id), 0u);  // the proxy finished it: nothing to tell
}

TEST(ServerCodec, ABodyWithoutLengthIsSentChunkedWithItsTrailers) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  auto fields = Client::get("/up");
  fields[0].second = "POST";
  std::string body = "hello";
  int32_t id = c.request(fields, &body, /*end=*/false);
  exchange(c, codec);
  EXPECT_NE(rec.heads[id].find("transfer-encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(takeAll(codec, id), "5\r\nhello\r\n");
  EXPECT_FALSE(codec.requestEnded(id));
  // Trailers end the body.
  std::vector<nghttp2_nv> nv;
  std::string n = "grpc-timeout", v = "1S";
  nv.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()), n.size(), v.size(), 0});
  nghttp2_submit_trailer(c.s, id, nv.data(), nv.size());
  exchange(c, codec);
  EXPECT_EQ(takeAll(codec, id), "0\r\ngrpc-timeout: 1S\r\n\r\n");
  EXPECT_TRUE(codec.requestEnded(id));
}

TEST(ServerCodec, RequestDataIsAcknowledgedOnlyAsTheProxyTakesIt) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  auto fields = Client::get("/big");
  fields[0].second = "PUT";
  fields.emplace_back("content-length", "200000");
  std::string body(200000, 'x');
  int32_t id = c.request(fields, &body);
  exchange(c, codec);
  // The stream window (65535) bounds what arrived without the proxy taking it.
  std::string first = takeAll(codec, id);
  EXPECT_EQ(first.size(), 65535u);
  std::string all = first;
  for (int i = 0; i < 10 && all.size() < body.size(); ++i) {
    exchange(c, codec);
    all += takeAll(codec, id);
  }
  EXPECT_EQ(all.size(), body.size());
  EXPECT_TRUE(codec.requestEnded(id));
}

TEST(ServerCodec, ResponseBytesWaitForTheClientsWindowWithinACap) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c(/*consume=*/false);
  int32_t id = c.request(Client::get("/"), nullptr);
  exchange(c, codec);
  push(codec, id, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
  std::string chunk(16384, 'y');
  size_t accepted = 0;
  ServerCodec::PushStatus st;
  for (int i = 0; i < 100; ++i) {
    accepted += codec.pushResponse(id, chunk, &st);
    exchange(c, codec);
  }
  // The client never opened its window: 64 KiB reached it and at most the
  // cap (plus one offer) waits in the codec.
  EXPECT_EQ(c.streams[id].body.size(), 65535u);
  EXPECT_LE(accepted, 65535u + ServerCodec::kResponseCap + chunk.size());
  EXPECT_EQ(codec.pushResponse(id, chunk, &st), 0u);
  nghttp2_session_consume(c.s, id, 65535);
  exchange(c, codec);
  EXPECT_FALSE(rec.writable.empty());
  EXPECT_GT(codec.pushResponse(id, chunk, &st), 0u);
}

TEST(ServerCodec, AnUnfinishedResponseIsReset) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  int32_t id = c.request(Client::get("/"), nullptr);
  exchange(c, codec);
  push(codec, id, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  codec.finishStream(id);  // the member went away mid-body
  exchange(c, codec);
  ASSERT_TRUE(c.streams[id].closed);
  EXPECT_EQ(c.streams[id].code, static_cast<uint32_t>(NGHTTP2_INTERNAL_ERROR));
}

TEST(ServerCodec, AResponseBeforeTheWholeRequestEndsTheStreamWithNoError) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  auto fields = Client::get("/");
  fields[0].second = "POST";
  std::string body = "part";
  int32_t id = c.request(fields, &body, /*end=*/false);
  exchange(c, codec);
  push(codec, id, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  codec.finishStream(id);
  exchange(c, codec);
  EXPECT_EQ(c.streams[id].status, 403);
  ASSERT_TRUE(c.streams[id].closed);
  EXPECT_EQ(c.streams[id].code, static_cast<uint32_t>(NGHTTP2_NO_ERROR));
}

TEST(ServerCodec, TheClientResettingAStreamIsReported) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  int32_t id = c.request(Client::get("/"), nullptr);
  exchange(c, codec);
  nghttp2_submit_rst_stream(c.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  exchange(c, codec);
  ASSERT_EQ(rec.closed.count(id), 1u);
  EXPECT_EQ(rec.closed[id], static_cast<uint32_t>(NGHTTP2_CANCEL));
  ServerCodec::PushStatus st;
  EXPECT_EQ(codec.pushResponse(id, "HTTP/1.1 200 OK\r\n\r\n", &st), 19u);  // discarded
}

TEST(ServerCodec, ForbiddenRequestFieldsResetTheStreamBeforeTheProxySeesIt) {
  struct Case {
    const char* what;
    std::pair<std::string, std::string> field;
  };
  for (const Case& k : {Case{"TE other than trailers", {"te", "gzip"}},
                        Case{"Connection", {"connection", "keep-alive"}},
                        Case{"Transfer-Encoding", {"transfer-encoding", "chunked"}},
                        Case{"Upgrade", {"upgrade", "websocket"}},
                        Case{"space in a name", {"x up", "1"}},
                        Case{"line feed in a value", {"x-v", "a\nb"}}}) {
    Recorder rec;
    ServerCodec codec(rec, {});
    Client c;
    auto fields = Client::get("/");
    fields.push_back(k.field);
    int32_t id = c.request(fields, nullptr);
    exchange(c, codec);
    EXPECT_EQ(rec.heads.count(id), 0u) << k.what;
    EXPECT_TRUE(c.streams[id].closed) << k.what;
    EXPECT_NE(c.streams[id].code, 0u) << k.what;
  }
}

TEST(ServerCodec, TeTrailersIsAcceptedAndPassedOnInTheHttp1Head) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  auto fields = Client::get("/");
  fields.emplace_back("te", "trailers");
  int32_t id = c.request(fields, nullptr);
  exchange(c, codec);
  ASSERT_EQ(rec.heads.count(id), 1u);
  // The session decides whether the member hears it (pools allowing h2 only).
  EXPECT_NE(rec.heads[id].find("te: trailers\r\n"), std::string::npos);
}

TEST(ServerCodec, GoawayNamesTheLastStreamTaken) {
  Recorder rec;
  ServerCodec codec(rec, {});
  Client c;
  int32_t id = c.request(Client::get("/"), nullptr);
  exchange(c, codec);
  codec.goAway();
  exchange(c, codec);
  EXPECT_TRUE(c.goaway);
  EXPECT_EQ(c.goaway_last, id);
  EXPECT_TRUE(codec.wantRead());  // the stream in flight still finishes
  push(codec, id, "HTTP/1.1 204 No Content\r\n\r\n");
  codec.finishStream(id);
  exchange(c, codec);
  EXPECT_EQ(c.streams[id].status, 204);
  EXPECT_FALSE(codec.wantRead());
}

TEST(ServerCodec, AClientWithoutThePrefaceIsRefused) {
  Recorder rec;
  ServerCodec codec(rec, {});
  EXPECT_FALSE(codec.feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
}

TEST(ServerCodec, OversizedHeaderListsAreRefused) {
  Recorder rec;
  CodecLimits limits;
  limits.max_head = 1024;
  ServerCodec codec(rec, limits);
  Client c;
  auto fields = Client::get("/");
  fields.emplace_back("x-big", std::string(2000, 'a'));
  int32_t id = c.request(fields, nullptr);
  exchange(c, codec);
  EXPECT_EQ(rec.heads.count(id), 0u);
  EXPECT_TRUE(c.streams[id].closed);
}

}  // namespace
}  // namespace banyan::dp::h2
