// banyan::common::HttpClient against the real banyan::common::HttpServer on loopback,
// with certificates made by the openssl command line.
#include "banyan/common/http_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

namespace banyan::common {
namespace {

using namespace std::chrono_literals;

int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// A CA, a server certificate for 127.0.0.1, a client certificate from the same CA, and
// an unrelated CA, in a fresh directory removed at the end.
class Pki {
 public:
  Pki() {
    dir_ = std::filesystem::temp_directory_path() /
           ("banyan-httpc-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    ok_ = makeCa("ca") && makeCa("rogue") &&
          makeLeaf("server", "ca", "subjectAltName=IP:127.0.0.1") &&
          makeLeaf("client", "ca", "extendedKeyUsage=clientAuth");
  }
  ~Pki() { std::filesystem::remove_all(dir_); }
  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  bool makeCa(const std::string& name) {
    return run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name +
               "-ca -keyout " + path(name + ".key") + " -out " + path(name + ".pem")) == 0;
  }
  bool makeLeaf(const std::string& name, const std::string& ca, const std::string& ext) {
    std::string extfile = path(name + ".ext");
    std::ofstream(extfile) << ext << "\n";
    return run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " +
               path(name + ".key") + " -out " + path(name + ".csr")) == 0 &&
           run("openssl x509 -req -days 2 -in " + path(name + ".csr") + " -CA " +
               path(ca + ".pem") + " -CAkey " + path(ca + ".key") + " -CAcreateserial -extfile " +
               extfile + " -out " + path(name + ".pem")) == 0;
  }
  static inline std::atomic<int> counter_{0};
  std::filesystem::path dir_;
  bool ok_ = false;
};

HttpResponse echo(const HttpRequest& r) {
  HttpResponse resp;
  resp.status = r.path == "/missing" ? 404 : 200;
  resp.content_type = "text/plain";
  resp.headers.emplace_back("X-Method", r.method);
  resp.headers.emplace_back("X-Seen-Token", r.header("X-Auth-Token").value_or(""));
  resp.headers.emplace_back("X-Seen-Type", r.header("Content-Type").value_or(""));
  resp.headers.emplace_back("X-Seen-Query", r.query);
  resp.body = r.path + "|" + r.body;
  return resp;
}

std::string base(uint16_t port, const char* scheme = "http") {
  return std::string(scheme) + "://127.0.0.1:" + std::to_string(port);
}

TEST(HttpClient, SendsMethodHeadersQueryAndBodyAndReturnsTheResponse) {
  auto server = startHttpServer({}, echo);
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto client = makeHttpClient();
  ASSERT_TRUE(client.ok());
  auto resp = (*client)->request("POST", base((*server)->port()) + "/v3/auth/tokens?nocatalog=1",
                                 {{"X-Auth-Token", "tok"}, {"Content-Type", "application/json"}},
                                 R"({"a":1})", 5s);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "/v3/auth/tokens|{\"a\":1}");
  EXPECT_EQ(resp->header("x-method").value_or(""), "POST");
  EXPECT_EQ(resp->header("X-SEEN-TOKEN").value_or(""), "tok");
  EXPECT_EQ(resp->header("X-Seen-Type").value_or(""), "application/json");
  EXPECT_EQ(resp->header("X-Seen-Query").value_or(""), "nocatalog=1");
  EXPECT_FALSE(resp->header("X-Absent").has_value());
}

TEST(HttpClient, AnErrorStatusIsAResponseNotAFailure) {
  auto server = startHttpServer({}, echo);
  ASSERT_TRUE(server.ok());
  auto client = makeHttpClient();
  ASSERT_TRUE(client.ok());
  auto resp = (*client)->request("GET", base((*server)->port()) + "/missing", {}, "", 5s);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 404);
}

TEST(HttpClient, ARefusedConnectionIsUnavailable) {
  // Bind and close a socket to learn a port nobody listens on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  auto client = makeHttpClient();
  ASSERT_TRUE(client.ok());
  auto resp = (*client)->request("GET", base(ntohs(sa.sin_port)) + "/x?secret=1", {}, "", 5s);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(resp.error().message.find("GET http://127.0.0.1:"), std::string::npos)
      << resp.error().message;
  EXPECT_EQ(resp.error().message.find("secret"), std::string::npos) << "the query is not logged";
}

TEST(HttpClient, ASlowServerTimesOutAsUnavailable) {
  std::atomic<bool> release{false};
  auto server = startHttpServer({}, [&](const HttpRequest&) {
    // Bounded at 10 s; released as soon as the client gave up. The margin to the
    // client's 300 ms timeout keeps the test meaningful on a loaded machine.
    for (int i = 0; i < 1000 && !release; ++i) std::this_thread::sleep_for(10ms);
    return HttpResponse{};
  });
  ASSERT_TRUE(server.ok());
  auto client = makeHttpClient();
  ASSERT_TRUE(client.ok());
  auto start = std::chrono::steady_clock::now();
  auto resp = (*client)->request("GET", base((*server)->port()) + "/slow", {}, "", 300ms);
  auto took = std::chrono::steady_clock::now() - start;
  release = true;
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kUnavailable);
  EXPECT_LT(took, 8s);
}

TEST(HttpClient, MalformedUrlsAndMethodsAreInvalidArguments) {
  auto client = makeHttpClient();
  ASSERT_TRUE(client.ok());
  for (const char* url : {"not a url", "ftp://127.0.0.1/x", "/relative/path", "http://"}) {
    auto resp = (*client)->request("GET", url, {}, "", 1s);
    ASSERT_FALSE(resp.ok()) << url;
    EXPECT_EQ(resp.error().code, ErrorCode::kInvalidArgument)
        << url << ": " << resp.error().message;
  }
  auto resp = (*client)->request("G T", "http://127.0.0.1:1/", {}, "", 1s);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kInvalidArgument);
}

TEST(HttpClient, ManyThreadsShareOneClient) {
  auto server = startHttpServer({}, echo);
  ASSERT_TRUE(server.ok());
  auto client = makeHttpClient();
  ASSERT_TRUE(client.ok());
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string body = std::to_string(t) + "-" + std::to_string(i);
        auto resp = (*client)->request("PUT", base((*server)->port()) + "/p", {}, body, 5s);
        if (resp.ok() && resp->body == "/p|" + body) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good, 40);
}

// A raw TCP server on 127.0.0.1, for what HttpServer cannot be made to do: `handle`
// gets each accepted connection in turn (one at a time) and closes it.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::function<void(int)> handle) : handle_(std::move(handle)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0 && ::listen(fd_, 16) == 0;
    socklen_t len = sizeof(sa);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void serve() {
    while (!stop_) {
      int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) return;
      ++accepted_;
      timeval tv{2, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      handle_(conn);
      ::close(conn);
    }
  }

  std::function<void(int)> handle_;
  int fd_ = -1;
  bool ok_ = false;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Answers one request per connection and then closes it, without saying
// "Connection: close" (as uwsgi's http-socket does in front of Keystone).
class OneShotServer {
 public:
  bool ok() const { return server_.ok(); }
  uint16_t port() const { return server_.port(); }
  int served() const { return served_; }

 private:
  void answerOne(int conn) {
    std::string request;
    char buf[4096];
    // Read the head, then Content-Length bytes of body (bounded by the timeout).
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    size_t head_end = request.find("\r\n\r\n");
    if (head_end == std::string::npos) return;
    size_t want = 0;
    std::string head = request.substr(0, head_end);
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t cl = head.find("content-length:");
    if (cl != std::string::npos) want = std::stoul(head.substr(cl + 15));
    while (request.size() < head_end + 4 + want) {
      ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    const std::string reply = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    ::send(conn, reply.data(), reply.size(), MSG_NOSIGNAL);
    ++served_;
  }

  std::atomic<int> served_{0};
  LoopbackServer server_{[this](int conn) { answerOne(conn); }};
};

TEST(HttpClient, SurvivesAServerThatClosesKeptAliveConnections) {
  OneShotServer server;
  ASSERT_TRUE(server.ok());
  auto client = makeHttpClient();
  ASSERT_TRUE(client.ok());
  // A body large enough not to fit in one write before the peer's reset is noticed.
  std::string body(256 * 1024, 'x');
  for (int i = 0; i < 5; ++i) {
    auto resp = (*client)->request("POST", base(server.port()) + "/v3/auth/tokens",
                                   {{"Content-Type", "application/json"}}, body, 5s);
    ASSERT_TRUE(resp.ok()) << "request " << i << ": " << resp.error().message;
    EXPECT_EQ(resp->status, 201);
    EXPECT_EQ(resp->body, "ok");
    std::this_thread::sleep_for(50ms);  // let the server's close arrive before the next request
  }
  EXPECT_EQ(server.served(), 5);
}

// Keeps connections alive, answering bodiless requests until the peer closes or goes
// quiet: a client that reuses its pooled connection is accepted once.
void answerWhileOpen(int conn) {
  std::string pending;
  char buf[4096];
  for (;;) {
    size_t end = pending.find("\r\n\r\n");
    if (end != std::string::npos) {
      pending.erase(0, end + 4);
      const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      ::send(conn, reply.data(), reply.size(), MSG_NOSIGNAL);
      continue;
    }
    ssize_t n = ::recv(conn, buf, sizeof(buf), 0);
    if (n <= 0) return;
    pending.append(buf, static_cast<size_t>(n));
  }
}

TEST(HttpClient, PoolsOfTheLeastRecentlyUsedOriginsAreDroppedBeyondTheLimit) {
  LoopbackServer a(answerWhileOpen), b(answerWhileOpen);
  ASSERT_TRUE(a.ok() && b.ok());
  auto get = [](HttpClient& c, const LoopbackServer& s) {
    auto r = c.request("GET", base(s.port()) + "/", {}, "", 5s);
    return r.ok() && r->status == 200;
  };
  HttpClientOptions one;
  one.max_pooled_origins = 1;
  auto small = makeHttpClient(one);
  ASSERT_TRUE(small.ok());
  ASSERT_TRUE(get(**small, a));
  ASSERT_TRUE(get(**small, b));  // drops a's pool
  ASSERT_TRUE(get(**small, a));
  EXPECT_EQ(a.accepted(), 2) << "a's connection was made again";

  LoopbackServer c(answerWhileOpen);
  auto roomy = makeHttpClient();  // the default keeps both
  ASSERT_TRUE(roomy.ok());
  ASSERT_TRUE(get(**roomy, c));
  ASSERT_TRUE(get(**roomy, b));
  // cpprestsdk puts a connection back into its pool just after it hands the answer
  // over; on a loaded machine the next request can come first and open another.
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(get(**roomy, c));
  EXPECT_EQ(c.accepted(), 1) << "c's pooled connection was reused";
}

class HttpClientTls : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(pki_.ok()) << "openssl failed to make test certificates"; }
  Result<std::unique_ptr<HttpServer>> start(bool mutual) {
    HttpServerOptions options;
    options.tls = HttpServerTls{pki_.path("server.pem"), pki_.path("server.key"),
                                mutual ? pki_.path("ca.pem") : std::string()};
    return startHttpServer(options, echo);
  }
  Pki pki_;
};

TEST_F(HttpClientTls, VerifiesTheServerAgainstTheGivenCa) {
  auto server = start(false);
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto client = makeHttpClient({.ca_file = pki_.path("ca.pem")});
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto resp = (*client)->request("GET", base((*server)->port(), "https") + "/x", {}, "", 5s);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->body, "/x|");
}

TEST_F(HttpClientTls, RefusesAServerSignedByAnotherCa) {
  auto server = start(false);
  ASSERT_TRUE(server.ok());
  auto client = makeHttpClient({.ca_file = pki_.path("rogue.pem")});
  ASSERT_TRUE(client.ok());
  auto resp = (*client)->request("GET", base((*server)->port(), "https") + "/x", {}, "", 5s);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code, ErrorCode::kUnavailable);
}

TEST_F(HttpClientTls, InsecureModeAcceptsAnyServerCertificate) {
  auto server = start(false);
  ASSERT_TRUE(server.ok());
  auto client = makeHttpClient({.ca_file = pki_.path("rogue.pem"), .verify = false});
  ASSERT_TRUE(client.ok());
  auto resp = (*client)->request("GET", base((*server)->port(), "https") + "/x", {}, "", 5s);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
}

TEST_F(HttpClientTls, MutualTlsNeedsTheClientCertificate) {
  auto server = start(true);
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto anonymous = makeHttpClient({.ca_file = pki_.path("ca.pem")});
  ASSERT_TRUE(anonymous.ok());
  auto refused = (*anonymous)->request("GET", base((*server)->port(), "https") + "/x", {}, "", 5s);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);

  auto client = makeHttpClient({.ca_file = pki_.path("ca.pem"),
                                .client_cert_file = pki_.path("client.pem"),
                                .client_key_file = pki_.path("client.key")});
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto resp = (*client)->request("GET", base((*server)->port(), "https") + "/x", {}, "", 5s);
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->status, 200);
}

TEST_F(HttpClientTls, BadTlsFilesAreRefusedWhenTheClientIsMade) {
  auto missing_ca = makeHttpClient({.ca_file = pki_.path("absent.pem")});
  ASSERT_FALSE(missing_ca.ok());
  EXPECT_EQ(missing_ca.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(missing_ca.error().context, pki_.path("absent.pem"));
  auto mismatched = makeHttpClient(
      {.client_cert_file = pki_.path("client.pem"), .client_key_file = pki_.path("server.key")});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(mismatched.error().context, pki_.path("server.key")) << mismatched.error().message;
  auto half = makeHttpClient({.client_cert_file = pki_.path("client.pem")});
  ASSERT_FALSE(half.ok());
}

}  // namespace
}  // namespace banyan::common
