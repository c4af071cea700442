// HTTP/2 on TERMINATED_HTTPS listeners (ALPN "h2"), proxied to HTTP/1.1
// members: real clients (curl --http2, nghttp, h2load) and the in-process
// H2TestClient for what they cannot do (reset mid-body, slow reader, GOAWAY),
// against members that record what they receive.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <thread>

#include "h2_client.h"
#include "tls_helpers.h"

namespace banyan::test {
namespace {

class H2 : public ::testing::Test {
 protected:
  void start(ConfigSpec c) { proxy_ = std::make_unique<ProxyProcess>(c.toJson()); }
  void start() { start(config()); }
  ConfigSpec config() { return tlsConfig(port_, {memberAt("m1", member_.address(), member_.port())}); }
  std::string url(const std::string& path) {
    return "https://www.example.test:" + std::to_string(port_) + path;
  }
  std::vector<std::string> curl(std::vector<std::string> extra) {
    std::string host = "www.example.test:" + std::to_string(port_);
    std::vector<std::string> cmd = {"curl", "-sS", "--cacert", testPki().root_ca, "--resolve",
                                    host + ":127.0.0.1", "--max-time", "10"};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    return cmd;
  }
  // nghttp resolves the name itself: talk to 127.0.0.1 and name the host with -H.
  std::vector<std::string> nghttp(std::vector<std::string> extra) {
    std::vector<std::string> cmd = {"nghttp", "-t", "30", "-H",
                                    ":authority: www.example.test:" + std::to_string(port_)};
    cmd.insert(cmd.end(), extra.begin(), extra.end());
    return cmd;
  }
  std::string local(const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend member_{"m1", "127.0.0.41"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(H2, CurlHttp2GetsTheMembersAnswerOverH2) {
  start();
  ToolResult r = runTool(curl({"--http2", url("/a/b?q=1"), "-w", " %{http_version} %{http_code}"}));
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "m1\n 2 200");
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  RecordedRequest req = member_.requests().back();
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/a/b?q=1");
  EXPECT_EQ(req.version, "HTTP/1.1");
  // :authority becomes Host (RFC 9113 section 8.3.1).
  EXPECT_EQ(req.header("Host"), "www.example.test:" + std::to_string(port_));
}

TEST_F(H2, CurlHttp11StillGetsHttp11WhenH2IsOffered) {
  start();
  ToolResult r = runTool(curl({"--http1.1", url("/"), "-o", "/dev/null", "-w", "%{http_version} %{http_code}"}));
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "1.1 200");
}

TEST_F(H2, AListenerWithoutH2InAlpnAnswersHttp2ClientsWithHttp11) {
  ConfigSpec c = config();
  c.listener("l1").extra["alpn_protocols"] = jsonList({"http/1.1"});
  start(c);
  ToolResult r = runTool(curl({"--http2", url("/"), "-o", "/dev/null", "-w", "%{http_version} %{http_code}"}));
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "1.1 200");
}

TEST_F(H2, UploadWithLengthReachesTheMemberWhole) {
  start();
  TempDir dir;
  std::string body = patternBody(1 << 20);
  writeFile(dir.file("up"), body);
  ToolResult r = runTool(curl({"--http2", "--data-binary", "@" + dir.file("up"), url("/up"), "-o",
                               "/dev/null", "-w", "%{http_version} %{http_code}"}));
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "2 200");
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  RecordedRequest req = member_.requests().back();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.header("Content-Length"), std::to_string(body.size()));
  EXPECT_TRUE(req.body == body) << "body of " << req.body.size() << " bytes differs";
}

TEST_F(H2, UploadWithoutLengthIsChunkedToTheMember) {
  start();
  std::string body = patternBody(300000);
  ToolResult r = runTool(curl({"--http2", "-T", "-", url("/stream"), "-o", "/dev/null", "-w",
                               "%{http_version} %{http_code}"}),
                         body);
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "2 200");
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  RecordedRequest req = member_.requests().back();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.header("Transfer-Encoding"), "chunked");
  EXPECT_TRUE(req.body == body) << "body of " << req.body.size() << " bytes differs";
}

TEST_F(H2, AnUploadLargerThanTheWindowNeedsNoOtherClientTraffic) {
  // The client sends a window's worth and then only waits: the proxy must send
  // WINDOW_UPDATE by itself as the body moves on to the member.
  start();
  H2TestClient c(port_);
  ASSERT_TRUE(c.connected()) << c.error();
  std::string body = patternBody(1 << 20);
  int32_t id = c.submit("POST", "/win", {{"content-length", std::to_string(body.size())}}, &body);
  ASSERT_TRUE(c.waitClosed(id, 8000));
  EXPECT_EQ(c.stream(id).status, 200);
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  EXPECT_TRUE(member_.requests().back().body == body);
}

TEST_F(H2, LargeResponseArrivesWhole) {
  member_.configure([](HttpBackendOptions& o) { o.body_size = 5 << 20; });
  start();
  ToolResult r = runTool(curl({"--http2", url("/big"), "-w", "%{http_version} %{size_download}", "-o", "/dev/null"}));
  ASSERT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "2 " + std::to_string(5 << 20));
}

TEST_F(H2, ChunkedMemberResponseIsDeframed) {
  member_.configure([](HttpBackendOptions& o) {
    o.chunked = true;
    o.body_size = 200000;
  });
  start();
  H2TestClient c(port_);
  ASSERT_TRUE(c.connected()) << c.error();
  H2StreamResult r = c.get("/chunked");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error_code, 0u);
  EXPECT_TRUE(r.body == patternBody(200000)) << r.body.size();
  EXPECT_EQ(headerValue(r.headers, "transfer-encoding"), "");
}

TEST_F(H2, NghttpMultiplexesManyStreamsOnOneConnection) {
  start();
  ToolResult r = runTool(nghttp({"-n", "-s", "-m", "40", local("/multi")}), "", 20000);
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  ASSERT_TRUE(member_.waitForRequests(40, 5000));
  EXPECT_EQ(statValue(*proxy_, "listeners", "l1", "total_connections").value_or(-1), 1);
}

TEST_F(H2, MemberConnectionsAreReusedAcrossStreamsAndConnections) {
  start(tlsConfig(port_, {memberAt("m1", member_.address(), member_.port())}, /*workers=*/1));
  for (int round = 0; round < 2; ++round) {
    H2TestClient c(port_);
    ASSERT_TRUE(c.connected()) << c.error();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(c.get("/r" + std::to_string(i)).status, 200);
  }
  ASSERT_TRUE(member_.waitForRequests(10, 2000));
  EXPECT_EQ(member_.connectionCount(), 1u);  // one idle connection, taken by each stream in turn
}

TEST_F(H2, NghttpUploadsAndDownloadsLargeBodies) {
  member_.configure([](HttpBackendOptions& o) { o.body_size = 2 << 20; });
  start();
  TempDir dir;
  std::string body = patternBody(3 << 20);
  writeFile(dir.file("up"), body);
  ToolResult r = runTool(nghttp({"-n", "-s", "-d", dir.file("up"), local("/big")}), "", 40000);
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  EXPECT_TRUE(member_.requests().back().body == body);
  H2TestClient c(port_);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.get("/big").body == patternBody(2 << 20));
}

TEST_F(H2, H2loadFinishesEveryRequest) {
  start();
  ToolResult r = runTool({"h2load", "-n", "400", "-c", "4", "-m", "10", "-T", "10", "-H",
                          ":authority: www.example.test", local("/load")},
                         "", 30000);
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("400 succeeded, 0 failed, 0 errored"), std::string::npos) << r.out;
}

TEST_F(H2, HeadersAreInsertedAndConnectionFieldsNeverReachTheMember) {
  ConfigSpec c = config();
  c.listener("l1").insert_headers = {{"X-Forwarded-For", "true"}, {"X-Forwarded-Proto", "true"},
                                     {"X-Forwarded-Port", "true"}};
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  H2StreamResult r = cl.get("/h", {{"x-forwarded-for", "203.0.113.5"},
                                   {"te", "trailers"},
                                   {"cookie", "a=1"},
                                   {"cookie", "b=2"}});
  EXPECT_EQ(r.status, 200);
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  RecordedRequest req = member_.requests().back();
  EXPECT_EQ(req.header("X-Forwarded-For"), "203.0.113.5, 127.0.0.1");
  EXPECT_EQ(req.header("X-Forwarded-Proto"), "https");
  EXPECT_EQ(req.header("X-Forwarded-Port"), std::to_string(port_));
  EXPECT_EQ(req.header("TE"), "");
  // Cookie crumbs are joined for HTTP/1.1 (RFC 9113 section 8.2.3).
  EXPECT_EQ(req.header("Cookie"), "a=1; b=2");
}

TEST_F(H2, ConnectionSpecificRequestFieldsResetTheStream) {
  start();
  H2TestClient c(port_);
  ASSERT_TRUE(c.connected()) << c.error();
  // nghttp2 on the client side would refuse to send these: TE other than
  // "trailers" is the one a client library lets through.
  int32_t id = c.submit("GET", "/te", {{"te", "gzip"}});
  ASSERT_TRUE(c.waitClosed(id, 3000));
  EXPECT_EQ(c.stream(id).status, 0);
  EXPECT_NE(c.stream(id).error_code, 0u);
  EXPECT_EQ(c.get("/after").status, 200);  // the connection lives on
  EXPECT_EQ(member_.requestCount(), 1u);
}

TEST_F(H2, HstsAndMemberHeadersComeBackLowercase) {
  member_.configure([](HttpBackendOptions& o) { o.extra_headers = {{"X-Custom", "v"}}; });
  ConfigSpec c = config();
  c.listener("l1").extra["hsts_max_age"] = "600";
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  H2StreamResult r = cl.get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(headerValue(r.headers, "strict-transport-security"), "max-age=600;");
  EXPECT_EQ(headerValue(r.headers, "x-custom"), "v");
  EXPECT_EQ(headerValue(r.headers, "x-backend"), "m1");
  for (const auto& h : r.headers) {
    EXPECT_NE(h.first, "connection");
    EXPECT_NE(h.first, "keep-alive");
  }
}

TEST_F(H2, L7RejectAndRedirectAreAnsweredOnTheStream) {
  ConfigSpec c = config();
  c.listener("l1").extra["l7policies"] = R"([
    {"id": "deny", "position": 1, "action": "REJECT",
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/deny"}]},
    {"id": "move", "position": 2, "action": "REDIRECT_PREFIX", "redirect_prefix": "https://new.example.test",
     "redirect_http_code": 301,
     "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/old"}]}])";
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  EXPECT_EQ(cl.get("/deny").status, 403);
  H2StreamResult moved = cl.get("/old/x");
  EXPECT_EQ(moved.status, 301);
  EXPECT_EQ(headerValue(moved.headers, "location"), "https://new.example.test/old/x");
  EXPECT_EQ(cl.get("/fine").status, 200);
  EXPECT_EQ(member_.requestCount(), 1u);
}

TEST_F(H2, CookiePersistenceSticksStreamsToTheirMember) {
  TestHttpBackend m2("m2", "127.0.0.42");
  ConfigSpec c = tlsConfig(port_, {memberAt("m1", member_.address(), member_.port()),
                                   memberAt("m2", m2.address(), m2.port())});
  c.pool("p1").extra["session_persistence"] = R"({"type": "HTTP_COOKIE"})";
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  H2StreamResult first = cl.get("/");
  std::string set_cookie = headerValue(first.headers, "set-cookie");
  ASSERT_FALSE(set_cookie.empty());
  std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  std::string backend = headerValue(first.headers, "x-backend");
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(headerValue(cl.get("/", {{"cookie", cookie}}).headers, "x-backend"), backend);
}

TEST_F(H2, MemberFailuresGiveTheHttp11StatusOnTheStream) {
  ConfigSpec c = config();
  c.listener("l1").timeout_member_data = 300;
  member_.configure([](HttpBackendOptions& o) {
    o.delay_ms = 2000;
    o.delay_path_prefix = "/slow";
  });
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  EXPECT_EQ(cl.get("/slow").status, 504);
  member_.stop();
  EXPECT_EQ(cl.get("/down").status, 502);  // connection refused, retries spent
}

TEST_F(H2, NoUsableMemberIs503) {
  ConfigSpec c = config();
  c.pool("p1").members.clear();
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  EXPECT_EQ(cl.get("/").status, 503);
}

TEST_F(H2, AStreamResetMidBodyLeavesTheConnectionServing) {
  start();
  H2TestClient c(port_);
  ASSERT_TRUE(c.connected()) << c.error();
  std::string part = patternBody(40000);
  int32_t id = c.submit("POST", "/cut", {{"content-length", "1000000"}}, &part, false);
  c.run([] { return false; }, 300);  // let the first bytes go
  c.reset(id);
  c.run([] { return false; }, 300);
  EXPECT_EQ(c.get("/next").status, 200);
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  for (const auto& r : member_.requests()) EXPECT_NE(r.target, "/cut");  // never completed
}

TEST_F(H2, ASlowReaderDoesNotMakeTheProxyBuffer) {
  member_.configure([](HttpBackendOptions& o) { o.body_size = 16 << 20; });
  start();
  H2ClientOptions o;
  o.consume_data = false;  // the window never opens past the first 64 KiB
  H2TestClient c(port_, o);
  ASSERT_TRUE(c.connected()) << c.error();
  int32_t id = c.submit("GET", "/huge");
  c.run([] { return false; }, 1500);
  EXPECT_LE(c.stream(id).body.size(), 65535u);
  // What the proxy took from the member is bounded by its per-stream buffers
  // (and the client's window), not by the response's 16 MiB.
  int64_t taken = statValue(*proxy_, "members", "m1", "bytes_out").value_or(-1);
  EXPECT_GT(taken, 0);
  EXPECT_LT(taken, 1 << 20);
  // Opening the window lets the rest through.
  H2ClientOptions fast;
  H2TestClient d(port_, fast);
  ASSERT_TRUE(d.connected());
  member_.configure([](HttpBackendOptions& op) { op.body_size = 100; });
  EXPECT_EQ(d.get("/small").body.size(), 100u);
}

TEST_F(H2, ConfigApplyRemovingTheListenerSendsGoaway) {
  start();
  H2TestClient c(port_);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.get("/").status, 200);
  ConfigSpec other = config();
  other.generation = 2;
  other.listener("l1").protocol_port = pickFreePort();
  other.listener("l1").id = "l2";  // l1 is gone
  ASSERT_EQ(proxy_->applyConfig(other.toJson()).status, 200);
  EXPECT_TRUE(c.run([&] { return c.goawayReceived(); }, 3000));
  EXPECT_EQ(c.goawayLastStream(), 1);
}

TEST_F(H2, DrainSendsGoawayAndFinishesTheStreamsInFlight) {
  member_.configure([](HttpBackendOptions& o) {
    o.delay_ms = 500;
    o.delay_path_prefix = "/slow";
  });
  start();
  H2TestClient c(port_);
  ASSERT_TRUE(c.connected()) << c.error();
  int32_t id = c.submit("GET", "/slow");
  ASSERT_TRUE(c.run([&] { return member_.requestCount() >= 1; }, 2000));  // in flight
  proxy_->sendSignal(SIGTERM);
  EXPECT_TRUE(c.run([&] { return c.goawayReceived() && c.stream(id).closed; }, 3000))
      << "goaway=" << c.goawayReceived() << " closed=" << c.stream(id).closed
      << " ended=" << c.connectionEnded() << " status=" << c.stream(id).status;
  EXPECT_EQ(c.goawayLastStream(), id);
  EXPECT_EQ(c.stream(id).status, 200);
  EXPECT_EQ(c.stream(id).body, "m1\n");
}

TEST_F(H2, ConnectionLimitCountsConnectionsNotStreams) {
  ConfigSpec c = config();
  c.listener("l1").connection_limit = 1;
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  std::vector<int32_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(cl.submit("GET", "/s" + std::to_string(i)));
  EXPECT_TRUE(cl.run([&] {
    for (int32_t id : ids)
      if (!cl.stream(id).closed) return false;
    return true;
  }, 5000));
  for (int32_t id : ids) EXPECT_EQ(cl.stream(id).status, 200);
}

TEST_F(H2, AccessLogHasALinePerStream) {
  TempDir dir;
  ConfigSpec c = config();
  c.access_log = dir.file("access.log");
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cl.get("/log" + std::to_string(i)).status, 200);
  std::string log;
  for (int i = 0; i < 50; ++i) {
    log = readFile(dir.file("access.log"));
    if (log.find("target=/log2") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(log.find("method=GET target=/log" + std::to_string(i) + " status=200"), std::string::npos) << log;
  EXPECT_EQ(statValue(*proxy_, "listeners", "l1", "total_connections").value_or(-1), 1);
}

}  // namespace
}  // namespace banyan::test
