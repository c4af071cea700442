#include "banyan/common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace banyan::common {
namespace {

// One plain HTTP/1.1 exchange over a socket, the whole response as text.
std::string exchange(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return "";
  }
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(HttpServer, HandsTheHandlerMethodDecodedPathQueryHeadersAndBody) {
  HttpRequest seen;
  auto server = startHttpServer({}, [&](const HttpRequest& r) {
    seen = r;
    return HttpResponse{201, {{"X-Openstack-Request-Id", "req-1"}}, "application/json", R"({"ok": true})"};
  });
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_NE((*server)->port(), 0);
  std::string reply = exchange((*server)->port(),
                               "PUT /v2/lbaas/a%20b?limit=2&tags=x%2Cy&fields=id&fields=name HTTP/1.1\r\n"
                               "Host: x\r\nX-Auth-Token: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody");
  EXPECT_NE(reply.find("HTTP/1.1 201"), std::string::npos) << reply;
  EXPECT_NE(reply.find("X-Openstack-Request-Id: req-1"), std::string::npos) << reply;
  EXPECT_NE(reply.find("{\"ok\": true}"), std::string::npos);
  EXPECT_EQ(seen.method, "PUT");
  EXPECT_EQ(seen.path, "/v2/lbaas/a b");
  EXPECT_EQ(seen.body, "body");
  EXPECT_EQ(seen.header("x-auth-token").value_or(""), "t");
  ASSERT_EQ(seen.query_params.size(), 4u);
  EXPECT_EQ(seen.query_params[1], (std::pair<std::string, std::string>{"tags", "x,y"}));
  EXPECT_EQ(seen.query_params[3].second, "name");
  EXPECT_EQ(seen.peer_address, "127.0.0.1");
}

TEST(HttpServer, RefusesAnIpv6LiteralWithAClearError) {
  // cpprestsdk's listener splits "host:port" at the first colon, so it cannot bind an
  // IPv6 literal; the facade says so instead of passing on "resolve: Service not found".
  for (const char* address : {"::1", "::", "[::1]"}) {
    HttpServerOptions opts;
    opts.address = address;
    auto server = startHttpServer(opts, [](const HttpRequest&) { return HttpResponse{}; });
    ASSERT_FALSE(server.ok()) << address;
    EXPECT_EQ(server.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(server.error().message.find("IPv6"), std::string::npos) << server.error().message;
  }
}

TEST(HttpServer, AnswersConnectionCloseWhenTheClientAskedForIt) {
  auto server = startHttpServer(HttpServerOptions{}, [](const HttpRequest&) {
    return HttpResponse{200, {}, "text/plain", "ok"};
  });
  ASSERT_TRUE(server.ok());
  std::string closing = exchange(server.value()->port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(closing.find("\r\nConnection: close\r\n"), std::string::npos) << closing;
  // A kept-alive exchange says nothing about the connection (exchange() reads until
  // the server's close, so this one asks for close in another spelling).
  std::string spelled = exchange(server.value()->port(), "GET / HTTP/1.1\r\nHost: x\r\nconnection: Close\r\n\r\n");
  EXPECT_NE(spelled.find("\r\nConnection: close\r\n"), std::string::npos) << spelled;
}

TEST(HttpServer, RefusesAnOversizedBodyWithoutCallingTheHandler) {
  std::atomic<int> calls{0};
  HttpServerOptions options;
  options.max_body_bytes = 16;
  auto server = startHttpServer(options, [&](const HttpRequest&) {
    ++calls;
    return HttpResponse{};
  });
  ASSERT_TRUE(server);
  std::string reply = exchange((*server)->port(),
                               "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\nConnection: close\r\n\r\n"
                               "0123456789abcdefg");
  EXPECT_NE(reply.find("HTTP/1.1 413"), std::string::npos) << reply;
  EXPECT_EQ(calls.load(), 0);
}

// More clients than cpprestsdk has pool threads (40) each send a head and keep
// their body back. A blocking body read would hold every thread; nothing else
// would be answered until they sent it.
TEST(HttpServer, ClientsHoldingBackTheirBodiesDoNotStopOtherRequests) {
  std::atomic<int> posts{0};
  auto server = startHttpServer({}, [&](const HttpRequest& r) {
    if (r.method == "POST") ++posts;
    return HttpResponse{200, {}, "text/plain", r.method == "POST" ? r.body : "get"};
  });
  ASSERT_TRUE(server);
  uint16_t port = (*server)->port();
  std::vector<int> slow;
  for (int i = 0; i < 60; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    std::string head = "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    slow.push_back(fd);
  }
  std::string reply = exchange(port, "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << "a GET waited behind the held bodies: " << reply;
  EXPECT_EQ(posts.load(), 0);
  // The held requests complete once their bodies come.
  for (int fd : slow) ASSERT_EQ(::send(fd, "hello", 5, MSG_NOSIGNAL), 5);
  for (int fd : slow) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string out;
    char buf[1024];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    EXPECT_NE(out.find("HTTP/1.1 200"), std::string::npos) << out;
    EXPECT_NE(out.find("hello"), std::string::npos) << out;
    ::close(fd);
  }
  EXPECT_EQ(posts.load(), 60);
}

TEST(HttpServer, AnEmptyBodyCarriesExactlyOneContentLength) {
  auto server = startHttpServer({}, [](const HttpRequest&) { return HttpResponse{202, {}, "application/json", ""}; });
  ASSERT_TRUE(server);
  std::string reply = exchange((*server)->port(), "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_NE(reply.find("HTTP/1.1 202"), std::string::npos) << reply;
  auto first = reply.find("Content-Length:");
  ASSERT_NE(first, std::string::npos) << reply;
  EXPECT_EQ(reply.find("Content-Length:", first + 1), std::string::npos) << reply;
  EXPECT_EQ(reply.find("Content-Length: 0,"), std::string::npos) << reply;
}

TEST(HttpServer, AThrowingHandlerGetsA500AndTheServerKeepsServing) {
  auto server = startHttpServer({}, [&](const HttpRequest& r) -> HttpResponse {
    if (r.path == "/boom") throw std::runtime_error("boom");
    return HttpResponse{200, {}, "text/plain", "fine"};
  });
  ASSERT_TRUE(server);
  EXPECT_NE(exchange((*server)->port(), "GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .find("HTTP/1.1 500"),
            std::string::npos);
  EXPECT_NE(exchange((*server)->port(), "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").find("fine"),
            std::string::npos);
}

}  // namespace
}  // namespace banyan::common

namespace banyan::common {
namespace {

// A throwaway PKI made with the openssl CLI: a CA, a server certificate for 127.0.0.1,
// a client certificate from the CA and one from a foreign CA.
class TlsPki : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/banyan-http-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ca "
                  "-keyout ca.key -out ca.pem"), 0);
    ASSERT_EQ(run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other "
                  "-keyout other.key -out other.pem"), 0);
    issue("server", "ca", "-addext subjectAltName=IP:127.0.0.1");
    issue("server2", "ca", "-addext subjectAltName=IP:127.0.0.1");
    issue("client", "ca", "");
    issue("stranger", "other", "");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int run(const std::string& cmd) {
    return std::system(("cd " + dir_ + " && " + cmd + " >/dev/null 2>&1").c_str());
  }
  void issue(const std::string& name, const std::string& ca, const std::string& ext) {
    ASSERT_EQ(run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + name + " " + ext +
                  " -keyout " + name + ".key -out " + name + ".csr"), 0);
    ASSERT_EQ(run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
                  ".key -CAcreateserial -days 1 -copy_extensions copy -out " + name + ".pem"), 0);
  }
  // curl's exit code; 0 means the request got a response.
  int curl(uint16_t port, const std::string& client) {
    std::string cert = client.empty() ? "" : " --cert " + client + ".pem --key " + client + ".key";
    return run("curl -sS --max-time 5 --cacert ca.pem" + cert + " https://127.0.0.1:" + std::to_string(port) + "/");
  }
  std::string servedSubject(uint16_t port) {
    std::string cmd = "cd " + dir_ + " && echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                      " -cert client.pem -key client.key 2>/dev/null | openssl x509 -noout -subject";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (p && std::fgets(buf, sizeof(buf), p)) out += buf;
    if (p) ::pclose(p);
    return out;
  }
  HttpServerOptions mtlsOptions() {
    HttpServerOptions o;
    o.tls = HttpServerTls{dir_ + "/server.pem", dir_ + "/server.key", dir_ + "/ca.pem"};
    return o;
  }

  std::string dir_;
};

TEST_F(TlsPki, MutualTlsAcceptsOnlyClientsWithACertificateFromTheConfiguredCa) {
  auto server = startHttpServer(mtlsOptions(), [](const HttpRequest&) { return HttpResponse{200, {}, "text/plain", "hi"}; });
  ASSERT_TRUE(server) << server.error().message;
  uint16_t port = (*server)->port();
  EXPECT_EQ(curl(port, "client"), 0);
  EXPECT_NE(curl(port, ""), 0);
  EXPECT_NE(curl(port, "stranger"), 0);
}

TEST_F(TlsPki, ReloadTlsServesTheNewCertificateWithoutARestart) {
  auto options = mtlsOptions();
  auto server = startHttpServer(options, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_TRUE(server) << server.error().message;
  uint16_t port = (*server)->port();
  EXPECT_NE(servedSubject(port).find("CN = server"), std::string::npos);
  std::filesystem::copy_file(dir_ + "/server2.pem", dir_ + "/server.pem",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(dir_ + "/server2.key", dir_ + "/server.key",
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE((*server)->reloadTls());
  EXPECT_NE(servedSubject(port).find("CN = server2"), std::string::npos);
  EXPECT_EQ(curl(port, "client"), 0);
}

TEST_F(TlsPki, RefusesAKeyThatDoesNotMatchItsCertificate) {
  HttpServerOptions o;
  o.tls = HttpServerTls{dir_ + "/server.pem", dir_ + "/client.key", ""};
  auto server = startHttpServer(o, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(server);
  EXPECT_NE(server.error().message.find("does not match"), std::string::npos) << server.error().message;
}

}  // namespace
}  // namespace banyan::common
