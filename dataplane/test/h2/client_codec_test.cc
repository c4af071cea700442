// ClientCodec against a real nghttp2 server session (the member): frames go
// back and forth through exchange() until neither side has anything to say.
#include "h2/client_codec.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <map>
#include <string>
#include <vector>

namespace banyan::dp::h2 {
namespace {

struct MemberStream {
  std::map<std::string, std::string> headers;
  std::map<std::string, std::string> trailers;
  std::string body;
  bool ended = false;
};

// A scripted HTTP/2 member: records requests; answers the way `answer` says.
class Member {
 public:
  enum class Answer { Ok, OkWithTrailers, Refuse, GoAwayNone };
  explicit Member(uint32_t max_streams = 100) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, onHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, onData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, onFrame);
    nghttp2_session_server_new(&s_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_settings_entry st[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams}};
    nghttp2_submit_settings(s_, NGHTTP2_FLAG_NONE, st, 1);
  }
  ~Member() { nghttp2_session_del(s_); }

  static int onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                      const uint8_t* v, size_t vl, uint8_t, void* ud) {
    auto* m = static_cast<Member*>(ud);
    auto& st = m->streams[f->hd.stream_id];
    std::string name(reinterpret_cast<const char*>(n), nl), value(reinterpret_cast<const char*>(v), vl);
    if (st.headers.empty() || f->headers.cat == NGHTTP2_HCAT_REQUEST)
      st.headers[name] = value;
    else
      st.trailers[name] = value;
    return 0;
  }
  static int onData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t len, void* ud) {
    static_cast<Member*>(ud)->streams[id].body.append(reinterpret_cast<const char*>(d), len);
    return 0;
  }
  static int onFrame(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
    auto* m = static_cast<Member*>(ud);
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
    m->streams[f->hd.stream_id].ended = true;
    m->respond(s, f->hd.stream_id);
    return 0;
  }
  void respond(nghttp2_session* s, int32_t id) {
    if (answer == Answer::Refuse) {
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (answer == Answer::GoAwayNone) {
      nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
      return;
    }
    bodies[id] = "echo:" + streams[id].body;
    nghttp2_data_provider p;
    p.source.ptr = this;
    p.read_callback = [](nghttp2_session* ss, int32_t sid, uint8_t* buf, size_t len, uint32_t* fl,
                         nghttp2_data_source* src, void*) -> ssize_t {
      auto* m = static_cast<Member*>(src->ptr);
      std::string& b = m->bodies[sid];
      size_t n = std::min(len, b.size());
      memcpy(buf, b.data(), n);
      b.erase(0, n);
      if (b.empty()) {
        *fl |= NGHTTP2_DATA_FLAG_EOF;
        if (m->answer == Answer::OkWithTrailers) {
          nghttp2_nv t[] = {{(uint8_t*)"grpc-status", (uint8_t*)"0", 11, 1, 0}};
          nghttp2_submit_trailer(ss, sid, t, 1);
          *fl |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
      }
      return static_cast<ssize_t>(n);
    };
    nghttp2_nv nv[] = {{(uint8_t*)":status", (uint8_t*)"200", 7, 3, 0},
                       {(uint8_t*)"x-member", (uint8_t*)"yes", 8, 3, 0}};
    nghttp2_submit_response(s, id, nv, 2, &p);
  }

  nghttp2_session* s_ = nullptr;
  Answer answer = Answer::Ok;
  std::map<int32_t, MemberStream> streams;
  std::map<int32_t, std::string> bodies;
};

struct Recorder : ClientHandler {
  std::vector<uint32_t> data, writable;
  void onResponseData(uint32_t h) override { data.push_back(h); }
  void onRequestWritable(uint32_t h) override { writable.push_back(h); }
};

// Moves frames both ways until quiet.
void exchange(ClientCodec& c, Member& m) {
  for (int i = 0; i < 1000; ++i) {
    std::string out;
    ASSERT_TRUE(c.produce(out, 1 << 20));
    if (!out.empty()) {
      ASSERT_GE(nghttp2_session_mem_recv(m.s_, reinterpret_cast<const uint8_t*>(out.data()), out.size()), 0);
    }
    std::string back;
    for (;;) {
      const uint8_t* d;
      ssize_t n = nghttp2_session_mem_send(m.s_, &d);
      if (n <= 0) break;
      back.append(reinterpret_cast<const char*>(d), static_cast<size_t>(n));
    }
    if (!back.empty()) c.feed(back);
    if (out.empty() && back.empty()) return;
  }
}

std::string takeAll(ClientCodec& c, uint32_t h) {
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = c.takeResponse(h, buf, sizeof buf);
    if (n == 0) return out;
    out.append(buf, n);
  }
}

TEST(ClientCodec, AnHttp11GetBecomesHeadersAndTheAnswerComesBackAsHttp11) {
  Recorder rec;
  ClientCodec c(rec, {});
  Member m;
  uint32_t h = c.open(false, false);
  bool invalid = false;
  std::string req =
      "GET /p?q=1 HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 10.0.0.1\r\n"
      "Connection: keep-alive\r\nTE: trailers\r\n\r\n";
  EXPECT_EQ(c.pushRequest(h, req, &invalid), req.size());
  EXPECT_FALSE(invalid);
  exchange(c, m);
  ASSERT_EQ(m.streams.size(), 1u);
  const auto& st = m.streams.begin()->second;
  EXPECT_EQ(st.headers.at(":method"), "GET");
  EXPECT_EQ(st.headers.at(":path"), "/p?q=1");
  EXPECT_EQ(st.headers.at(":authority"), "example.test");
  EXPECT_EQ(st.headers.at(":scheme"), "https");
  EXPECT_EQ(st.headers.at("x-forwarded-for"), "10.0.0.1");
  EXPECT_EQ(st.headers.at("te"), "trailers");
  EXPECT_EQ(st.headers.count("connection"), 0u);
  EXPECT_EQ(st.headers.count("host"), 0u);
  std::string resp = takeAll(c, h);
  EXPECT_EQ(resp,
            "HTTP/1.1 200 OK\r\nx-member: yes\r\ntransfer-encoding: chunked\r\n\r\n"
            "5\r\necho:\r\n0\r\n\r\n");
  EXPECT_TRUE(c.responseEnded(h));
  EXPECT_TRUE(c.responseComplete(h));
  c.release(h);
  EXPECT_EQ(c.openStreams(), 0u);
}

TEST(ClientCodec, AChunkedBodyWithTrailersIsDecodedAndTrailersComeBack) {
  Recorder rec;
  ClientCodec c(rec, {});
  Member m;
  m.answer = Member::Answer::OkWithTrailers;
  uint32_t h = c.open(false, false);
  bool invalid = false;
  std::string req =
      "POST /grpc HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nx-req-trailer: t1\r\n\r\n";
  EXPECT_EQ(c.pushRequest(h, req, &invalid), req.size());
  ASSERT_FALSE(invalid);
  exchange(c, m);
  ASSERT_EQ(m.streams.size(), 1u);
  const auto& st = m.streams.begin()->second;
  EXPECT_EQ(st.body, "abcdefg");
  EXPECT_EQ(st.trailers.at("x-req-trailer"), "t1");
  EXPECT_EQ(st.headers.count("transfer-encoding"), 0u);
  std::string resp = takeAll(c, h);
  EXPECT_NE(resp.find("transfer-encoding: chunked\r\n\r\nc\r\necho:abcdefg\r\n0\r\ngrpc-status: 0\r\n\r\n"),
            std::string::npos)
      << resp;
}

TEST(ClientCodec, ContentLengthBodiesAndHttp10AnswersKeepTheirFraming) {
  Recorder rec;
  ClientCodec c(rec, {});
  Member m;
  uint32_t h = c.open(false, true);
  bool invalid = false;
  std::string req = "PUT /x HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  EXPECT_EQ(c.pushRequest(h, req, &invalid), req.size());
  exchange(c, m);
  EXPECT_EQ(m.streams.begin()->second.body, "hello");
  // HTTP/1.0: no chunked; the body runs to the end of the stream.
  EXPECT_EQ(takeAll(c, h), "HTTP/1.1 200 OK\r\nx-member: yes\r\n\r\necho:hello");
  EXPECT_TRUE(c.responseEnded(h));
}

TEST(ClientCodec, ManyStreamsShareTheConnectionUpToTheMembersLimit) {
  Recorder rec;
  ClientCodec c(rec, {});
  Member m(3);
  exchange(c, m);  // the member's SETTINGS arrive
  std::vector<uint32_t> hs;
  while (c.canOpen()) hs.push_back(c.open(false, false));
  EXPECT_EQ(hs.size(), 3u);
  bool invalid = false;
  for (uint32_t h : hs) c.pushRequest(h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &invalid);
  exchange(c, m);
  EXPECT_EQ(m.streams.size(), 3u);
  for (uint32_t h : hs) {
    EXPECT_EQ(takeAll(c, h).substr(0, 15), "HTTP/1.1 200 OK");
    c.release(h);
  }
  EXPECT_TRUE(c.canOpen());
}

TEST(ClientCodec, ARefusedStreamMayBeRetried) {
  Recorder rec;
  ClientCodec c(rec, {});
  Member m;
  m.answer = Member::Answer::Refuse;
  uint32_t h = c.open(false, false);
  bool invalid = false;
  c.pushRequest(h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &invalid);
  exchange(c, m);
  EXPECT_TRUE(c.responseEnded(h));
  EXPECT_FALSE(c.responseComplete(h));
  EXPECT_TRUE(c.refused(h));
  EXPECT_EQ(c.resetCode(h), static_cast<uint32_t>(NGHTTP2_REFUSED_STREAM));
}

TEST(ClientCodec, StreamsAboveGoawaysLastStreamIdAreRefusedAndNoNewOnesOpen) {
  Recorder rec;
  ClientCodec c(rec, {});
  Member m;
  m.answer = Member::Answer::GoAwayNone;
  uint32_t h = c.open(false, false);
  bool invalid = false;
  c.pushRequest(h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &invalid);
  exchange(c, m);
  EXPECT_TRUE(c.goingAway());
  EXPECT_FALSE(c.canOpen());
  EXPECT_TRUE(c.responseEnded(h));
  EXPECT_TRUE(c.refused(h));
}

TEST(ClientCodec, ALostConnectionEndsStreamsAndUnsentOnesAreRefused) {
  Recorder rec;
  ClientCodec c(rec, {});
  uint32_t sent = c.open(false, false);
  uint32_t unsent = c.open(false, false);
  bool invalid = false;
  c.pushRequest(sent, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &invalid);
  std::string out;
  ASSERT_TRUE(c.produce(out, 1 << 20));  // the first request's HEADERS leave
  c.pushRequest(unsent, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &invalid);
  c.connectionLost();
  EXPECT_TRUE(c.responseEnded(sent));
  EXPECT_FALSE(c.refused(sent));  // the member may have processed it
  EXPECT_TRUE(c.responseEnded(unsent));
  EXPECT_TRUE(c.refused(unsent));
}

TEST(ClientCodec, ConnectAndBadFramingAreInvalid) {
  Recorder rec;
  ClientCodec c(rec, {});
  bool invalid = false;
  uint32_t h = c.open(false, false);
  c.pushRequest(h, "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", &invalid);
  EXPECT_TRUE(invalid);
  uint32_t h2 = c.open(false, false);
  c.pushRequest(h2, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &invalid);
  EXPECT_TRUE(invalid);
}

TEST(ClientCodec, RequestBytesAreTakenOnlyWhileTheBufferHasRoom) {
  Recorder rec;
  ClientCodec c(rec, {});
  uint32_t h = c.open(false, false);
  bool invalid = false;
  std::string head = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n";
  std::string body(1000000, 'b');
  size_t taken = c.pushRequest(h, head + body, &invalid);
  EXPECT_FALSE(invalid);
  EXPECT_LT(taken, head.size() + ClientCodec::kRequestCap + 100);
  EXPECT_EQ(c.pushRequest(h, "more", &invalid), 0u);  // full until the member's window opens
}

}  // namespace
}  // namespace banyan::dp::h2
