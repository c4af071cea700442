// HTTP/2 to members: pools with tls_enabled whose alpn_protocols allow "h2"
// speak HTTP/2 to members whose handshake selects it (nghttpd here), from
// HTTP/1.1 and HTTP/2 clients alike, multiplexing requests over shared member
// connections; gRPC works end to end (python3-grpcio member and client).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "h2_client.h"
#include "tls_helpers.h"

namespace banyan::test {
namespace {

// A child process with stdout and stderr in a file; killed (by its pid) on destruction.
class Spawned {
 public:
  Spawned(std::vector<std::string> args, std::string log) : log_(std::move(log)) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Spawned() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string output() const {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// nghttpd over TLS with the test PKI's member certificate; -v logs every
// frame (connection ids and request fields), --echo-upload answers a body
// with itself.
class NghttpdMember {
 public:
  NghttpdMember() : port_(pickFreePort()) {
    std::ofstream(dir_.file("index.html")) << "hello from h2";
    start();
  }
  void start() {
    const TestPki& pki = testPki();
    proc_ = std::make_unique<Spawned>(
        std::vector<std::string>{"/usr/sbin/nghttpd", "-v", "--echo-upload", "-d", dir_.path(),
                                 "--address=127.0.0.1", std::to_string(port_), pki.member_bundle,
                                 pki.member_bundle},
        dir_.file("nghttpd-" + std::to_string(++runs_) + ".log"));
    waitUntil([this] { return isPortListening(port_); }, Millis(5000));
  }
  void stop() { proc_->stop(); }
  uint16_t port() const { return port_; }
  std::string log() const { return proc_->output(); }
  // Distinct HTTP/2 connections the member saw.
  size_t connections() const {
    std::set<std::string> ids;
    std::string l = log();
    for (size_t p = l.find("[id="); p != std::string::npos; p = l.find("[id=", p + 1))
      ids.insert(l.substr(p, l.find(']', p) - p));
    return ids.size();
  }
  size_t requests() const {
    size_t n = 0;
    std::string l = log();
    for (size_t p = l.find(":method:"); p != std::string::npos; p = l.find(":method:", p + 1)) ++n;
    return n;
  }

 private:
  TempDir dir_;
  uint16_t port_;
  int runs_ = 0;
  std::unique_ptr<Spawned> proc_;
};

class H2Upstream : public ::testing::Test {
 protected:
  // TERMINATED_HTTPS "l1" (HTTP/2 or HTTP/1.1 clients) and HTTP "l2" -> pool
  // p1 (tls_enabled, ALPN h2 then http/1.1) -> the member.
  ConfigSpec config(uint16_t member_port, const std::string& alpn = R"(["h2", "http/1.1"])",
                    const std::string& member_address = "127.0.0.1") {
    ConfigSpec c = tlsConfig(port_, {memberAt("m1", member_address, member_port)}, 1);
    c.pool("p1").extra["tls_enabled"] = "true";
    c.pool("p1").extra["alpn_protocols"] = alpn;
    ListenerSpec plain;
    plain.id = "l2";
    plain.protocol = "HTTP";
    plain.protocol_port = http_port_;
    plain.default_pool_id = "p1";
    c.listeners.push_back(plain);
    return c;
  }
  void start(const ConfigSpec& c, ProxyRunOptions run = {}) {
    proxy_ = std::make_unique<ProxyProcess>(c.toJson(), std::move(run));
  }
  std::optional<HttpResponse> fetch(const std::string& target = "/index.html") {
    return tryFetchOnce("127.0.0.1", http_port_, target);
  }

  uint16_t port_ = pickFreePort();
  uint16_t http_port_ = pickFreePort();
  std::unique_ptr<ProxyProcess> proxy_;
};

// HTTPS monitors of a tls_enabled pool offer the pool's ALPN list, as its
// traffic does, and speak HTTP/2 to a member that picks h2: an HTTP/2-only
// member (nghttpd) passes, and its status codes count as HTTP/1.1 ones do.
TEST_F(H2Upstream, HttpsMonitorsCheckMembersThatPickHttp2OverHttp2) {
  NghttpdMember member;
  ConfigSpec c = config(member.port());
  MonitorSpec hm;
  hm.type = "HTTPS";
  hm.url_path = "/index.html";
  hm.http_version = "1.1";
  c.pool("p1").health_monitor = hm;
  start(c);
  // A monitored member starts ONLINE; the checks then keep it there.
  auto checked = [&](const std::string& detail) {
    return waitUntil([&] { return proxy_->get("/health").body.find(detail) != std::string::npos; },
                     Millis(5000), Millis(50));
  };
  ASSERT_TRUE(checked("status 200 (HTTP/2)")) << proxy_->get("/health").body;
  EXPECT_EQ(healthStatus(*proxy_, "m1"), "ONLINE");
  EXPECT_GE(member.requests(), 1u);
  EXPECT_NE(member.log().find(":path: /index.html"), std::string::npos);

  hm.url_path = "/missing";
  c.pool("p1").health_monitor = hm;
  c.generation = 2;
  ASSERT_EQ(proxy_->applyConfig(c.toJson()).status, 200);
  ASSERT_TRUE(waitHealth(*proxy_, "m1", "ERROR", 5000)) << proxy_->get("/health").body;
  EXPECT_TRUE(checked("status 404 (HTTP/2)")) << proxy_->get("/health").body;
}

// Without h2 in the pool's ALPN list the check stays HTTP/1.1, which an
// HTTP/2-only member cannot answer.
TEST_F(H2Upstream, HttpsMonitorsOfPoolsWithoutH2InTheirAlpnSpeakHttp11) {
  NghttpdMember member;
  ConfigSpec c = config(member.port(), R"(["http/1.1"])");
  MonitorSpec hm;
  hm.type = "HTTPS";
  hm.url_path = "/index.html";
  c.pool("p1").health_monitor = hm;
  start(c);
  ASSERT_TRUE(waitHealth(*proxy_, "m1", "ERROR", 5000)) << proxy_->get("/health").body;
  EXPECT_EQ(proxy_->get("/health").body.find("(HTTP/2)"), std::string::npos);
}

TEST_F(H2Upstream, Http11ClientsShareOneHttp2MemberConnection) {
  NghttpdMember member;
  ConfigSpec c = config(member.port());
  c.listener("l2").insert_headers = {{"X-Forwarded-For", "true"}};
  start(c);
  for (int i = 0; i < 5; ++i) {
    auto r = fetch();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello from h2");
    EXPECT_EQ(r->header("server").rfind("nghttpd", 0), 0u);
  }
  EXPECT_EQ(member.requests(), 5u);
  EXPECT_EQ(member.connections(), 1u);
  std::string log = member.log();
  EXPECT_NE(log.find("x-forwarded-for: 127.0.0.1"), std::string::npos);
  EXPECT_NE(log.find(":scheme: https"), std::string::npos);
  EXPECT_NE(log.find(":authority: "), std::string::npos);  // from Host
  EXPECT_EQ(log.find("connection:"), std::string::npos);  // hop-by-hop fields stay behind
}

TEST_F(H2Upstream, ConcurrentHttp2StreamsAreMultiplexedOnFewMemberConnections) {
  NghttpdMember member;
  start(config(member.port()));
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  // One connection to the member exists (a burst before it does waits for
  // the first handshake: see H2Coalescing).
  ASSERT_EQ(cl.get("/index.html").status, 200);
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(cl.submit("GET", "/index.html"));
  ASSERT_TRUE(cl.run([&] {
    for (int32_t id : ids)
      if (!cl.stream(id).closed) return false;
    return true;
  }, 10000));
  for (int32_t id : ids) {
    EXPECT_EQ(cl.stream(id).status, 200);
    EXPECT_EQ(cl.stream(id).body, "hello from h2");
  }
  EXPECT_EQ(member.requests(), 41u);
  EXPECT_EQ(member.connections(), 1u);
}

TEST_F(H2Upstream, LargeBodiesPassBothWaysWithBoundedWindows) {
  NghttpdMember member;
  start(config(member.port()));
  std::string body(3 << 20, 'x');
  for (size_t i = 0; i < body.size(); i += 997) body[i] = static_cast<char>('a' + i % 26);
  // HTTP/2 client -> HTTP/2 member: the member echoes the upload.
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  int32_t id = cl.submit("POST", "/up", {}, &body);
  ASSERT_TRUE(cl.waitClosed(id, 20000));
  EXPECT_EQ(cl.stream(id).status, 200);
  EXPECT_TRUE(cl.stream(id).body == body) << cl.stream(id).body.size();
  // HTTP/1.1 client with a chunked upload.
  ToolResult r = runTool({"curl", "-s", "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
                          "http://127.0.0.1:" + std::to_string(http_port_) + "/up"},
                         body, 20000);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_TRUE(r.out == body) << r.out.size();
}

TEST_F(H2Upstream, CurlOverHttp2AndHttp11GetsTheMembersAnswer) {
  NghttpdMember member;
  start(config(member.port()));
  for (const char* mode : {"--http2", "--http1.1"}) {
    ToolResult r = runTool({"curl", "-s", "-k", mode, "-o", "-", "-w", "%{http_version}",
                            "https://127.0.0.1:" + std::to_string(port_) + "/index.html"});
    EXPECT_EQ(r.exit_status, 0) << mode;
    EXPECT_EQ(r.out, std::string("hello from h2") + (mode[6] == '2' ? "2" : "1.1")) << mode;
  }
  EXPECT_EQ(member.connections(), 1u);
}

TEST_F(H2Upstream, AMemberThatClosedItsConnectionGetsTheNextRequestOnANewOne) {
  NghttpdMember member;
  ConfigSpec c = config(member.port());
  c.member_connect_retries = 0;
  start(c);
  ASSERT_EQ(fetch()->status, 200);
  member.stop();  // the shared connection dies with it
  member.start();
  for (int i = 0; i < 3; ++i) {
    auto r = fetch();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(member.connections(), 1u);  // the restarted member's log
  member.stop();
  auto r = fetch();  // nobody listens: the same 502 as for an HTTP/1.1 member
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
}

TEST_F(H2Upstream, PersistenceCookiesAndHstsWorkOnHttp2Answers) {
  NghttpdMember member;
  ConfigSpec c = config(member.port());
  c.pool("p1").extra["session_persistence"] = R"({"type": "HTTP_COOKIE"})";
  c.listener("l1").extra["hsts_max_age"] = "100";
  start(c);
  H2TestClient cl(port_);
  ASSERT_TRUE(cl.connected()) << cl.error();
  H2StreamResult r = cl.get("/index.html");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello from h2");
  EXPECT_NE(headerValue(r.headers, "set-cookie").find("SRV="), std::string::npos)
      << headerValue(r.headers, "set-cookie");
  EXPECT_EQ(headerValue(r.headers, "strict-transport-security"), "max-age=100;");
}

TEST_F(H2Upstream, AMemberThatOnlySpeaksHttp11KeepsGettingHttp11) {
  TestTlsMember m("tm", "127.0.0.35", {testPki().member_bundle, "", 0, {}});
  start(config(m.port(), R"(["h2", "http/1.1"])", m.address()));
  for (int i = 0; i < 3; ++i) {
    auto r = fetch("/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  ASSERT_TRUE(m.backend().waitForRequests(3, 2000));
  EXPECT_EQ(m.backend().requests().back().target, "/plain");
}

TEST_F(H2Upstream, GrpcCallsWorkEndToEnd) {
  if (access("/usr/bin/python3", X_OK) != 0 ||
      runTool({"/usr/bin/python3", "-c", "import grpc"}).exit_status != 0)
    GTEST_SKIP() << "python3-grpcio is not installed";
  const TestPki& pki = testPki();
  uint16_t grpc_port = pickFreePort();
  TempDir dir;
  std::string script = std::string(BANYAN_SOURCE_DIR) + "/tests/support/grpc_echo.py";
  Spawned server({"/usr/bin/python3", script, "serve", std::to_string(grpc_port), pki.member_bundle,
                  pki.member_bundle},
                 dir.file("grpc.log"));
  ASSERT_TRUE(waitUntil([&] { return isPortListening(grpc_port); }, Millis(10000)))
      << server.output();
  start(config(grpc_port, R"(["h2"])"));
  ToolResult r = runTool({"/usr/bin/python3", script, "call", std::to_string(port_), pki.root_ca,
                          "www.example.test"},
                         "", 60000);
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("unary hello OK member=grpc-echo"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("fail INVALID_ARGUMENT refused: -please"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("large ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stream ok count=20 OK"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stream-large ok"), std::string::npos) << r.out;
}

// ---- coalescing of the first member connections -----------------------------

// The first requests of a burst against a cold proxy (one worker: see config())
// arrive while the first member handshake is under way; they wait for it
// instead of each opening a connection. Both I/O modes.
class H2Coalescing : public H2Upstream, public ::testing::WithParamInterface<bool> {
 protected:
  void startProxy(const ConfigSpec& c) {
    ProxyRunOptions run;
    if (!GetParam()) run.extra_args = {"--no-io-batching"};
    start(c, std::move(run));
  }
  // `n` clients on the HTTP listener connect first, then all send their
  // request at once (the first one reaches the proxy well before any member
  // handshake can finish); the statuses (0: no response), in client order.
  // `abandon`: these clients close right after sending, without reading.
  std::vector<int> burst(size_t n, const std::string& target, std::set<size_t> abandon = {}) {
    std::vector<std::unique_ptr<HttpClient>> clients;
    for (size_t i = 0; i < n; ++i) {
      ConnectOptions options;
      options.timeout_ms = 10000;
      clients.push_back(std::make_unique<HttpClient>("127.0.0.1", http_port_, options));
      clients.back()->connect();
    }
    std::string req = HttpClient::buildRequest("GET", target, {{"Connection", "close"}}, "");
    for (auto& c : clients) c->sendRaw(req);
    for (size_t i : abandon) clients[i]->closeAbortively();
    std::vector<int> statuses;
    for (size_t i = 0; i < n; ++i) {
      if (abandon.count(i)) {
        statuses.push_back(0);
        continue;
      }
      try {
        HttpResponse r = clients[i]->readResponse();
        statuses.push_back(r.status);
        if (r.status == 200 && target == "/index.html") {
          EXPECT_EQ(r.body, "hello from h2") << i;
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "client " << i << ": " << e.what();
        statuses.push_back(0);
      }
    }
    return statuses;
  }
};

TEST_P(H2Coalescing, ABurstOfColdClientsSharesTheFirstHttp2MemberConnection) {
  NghttpdMember member;
  startProxy(config(member.port()));
  std::vector<int> statuses = burst(16, "/index.html");
  EXPECT_EQ(statuses, std::vector<int>(16, 200));
  EXPECT_EQ(member.requests(), 16u);
  // Without the wait each request would have opened its own connection.
  EXPECT_EQ(member.connections(), 1u);
  // The connection stays shared afterwards.
  ASSERT_EQ(fetch()->status, 200);
  EXPECT_EQ(member.connections(), 1u);
}

TEST_P(H2Coalescing, WaitingClientsThatLeaveDoNotDisturbTheOthers) {
  NghttpdMember member;
  startProxy(config(member.port()));
  std::vector<int> statuses = burst(16, "/index.html", {1, 3, 5, 7, 9, 11, 13, 15});
  for (size_t i = 0; i < statuses.size(); i += 2) EXPECT_EQ(statuses[i], 200) << i;
  auto r = fetch();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(member.connections(), 1u);
  EXPECT_TRUE(proxy_->running());
}

// A member that picks HTTP/1.1: the clients that waited for the first handshake
// connect themselves as soon as it is done, not once its response came back.
TEST_P(H2Coalescing, ClientsWaitingForAMemberThatPicksHttp11ConnectRightAfterTheHandshake) {
  TestTlsMember m("tm", "127.0.0.36", {testPki().member_bundle, "", 0, {"http/1.1"}});
  constexpr int kDelayMs = 1000;
  m.backend().configure([](HttpBackendOptions& o) { o.delay_ms = kDelayMs; });
  startProxy(config(m.port(), R"(["h2", "http/1.1"])", m.address()));
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> statuses = burst(16, "/slow");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(statuses, std::vector<int>(16, 200));
  // Waiting until the first response (or the 1 s connect timeout) would take
  // twice the member's delay.
  EXPECT_LT(took, std::chrono::milliseconds(kDelayMs * 18 / 10))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  // Each request needed a connection of its own: the member was busy on all.
  EXPECT_EQ(m.handshakeCount(), 16u);
  for (const auto& h : m.handshakes()) EXPECT_EQ(h.alpn, "http/1.1");
  // The member is known to pick HTTP/1.1: the next burst uses the idle connections.
  m.backend().configure([](HttpBackendOptions& o) { o.delay_ms = 0; });
  statuses = burst(8, "/again");
  EXPECT_EQ(statuses, std::vector<int>(8, 200));
  EXPECT_TRUE(m.backend().waitForRequests(24, 2000));
}

// A member that refuses the handshake: every client gets the 502 it gets
// without coalescing, without waiting for a timeout.
TEST_P(H2Coalescing, AMemberThatRefusesTheHandshakeFailsEveryClientPromptly) {
  TestTlsMember m("tm", "127.0.0.37", {testPki().member_bundle, "", TLS1_2_VERSION, {"h2"}});
  ConfigSpec c = config(m.port(), R"(["h2", "http/1.1"])", m.address());
  c.pool("p1").extra["tls_versions"] = jsonList({"TLSv1.3"});
  startProxy(c);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> statuses = burst(16, "/refused");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(statuses, std::vector<int>(16, 502));
  // The connect timeout is 1 s (ConfigSpec).
  EXPECT_LT(took, std::chrono::milliseconds(900))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  EXPECT_EQ(m.backend().requestCount(), 0u);
}

// A member that accepts connections but never answers the handshake: the
// first request's handshake runs under the member data timeout (504), the
// others stop waiting for it at their connect timeout (1 s) and connect
// themselves, as they would have without coalescing.
TEST_P(H2Coalescing, AWaitLastsAtMostTheConnectTimeout) {
  uint16_t member_port = pickFreePort("127.0.0.38");
  Fd member = listenOn("127.0.0.38", member_port);  // never accepts: TLS stalls
  ConfigSpec c = config(member_port, R"(["h2", "http/1.1"])", "127.0.0.38");
  constexpr int kDataTimeoutMs = 3000;
  c.listener("l2").timeout_member_data = kDataTimeoutMs;
  startProxy(c);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> statuses = burst(4, "/stalled");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(statuses, std::vector<int>(4, 504));
  // Connect timeout + data timeout; waiting for the first request's failure
  // would take two data timeouts.
  EXPECT_LT(took, std::chrono::milliseconds(kDataTimeoutMs * 5 / 3))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  // One connection per request reached the member's queue.
  ASSERT_EQ(fcntl(member.get(), F_SETFL, O_NONBLOCK), 0);
  size_t queued = 0;
  for (;;) {
    int fd = ::accept(member.get(), nullptr, nullptr);
    if (fd < 0) break;
    ::close(fd);
    ++queued;
  }
  EXPECT_EQ(queued, 4u);
}

INSTANTIATE_TEST_SUITE_P(IoModes, H2Coalescing, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Batched" : "NoIoBatching";
                         });

}  // namespace
}  // namespace banyan::test
