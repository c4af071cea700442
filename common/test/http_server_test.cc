#include "banyan/common/http_server.h"

#include "banyan/common/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tls_test_pki.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace banyan::common {
namespace {

// A connected TCP socket to address:port ("127.0.0.1", "::1"), or -1.
int connectTo(const std::string& address, uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(*v4);
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(*v6);
  } else {
    return -1;
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Everything the peer sends until it closes (or 5 s of silence).
std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// One plain HTTP/1.1 exchange over a socket, the whole response as text. half_close:
// shut down the sending side after the request, as some clients do.
std::string exchangeWith(const std::string& address, uint16_t port, const std::string& request,
                         bool half_close = false) {
  int fd = connectTo(address, port);
  if (fd < 0) return "";
  size_t off = 0;
  while (off < request.size()) {
    ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out = readAll(fd);
  ::close(fd);
  return out;
}

std::string exchange(uint16_t port, const std::string& request) { return exchangeWith("127.0.0.1", port, request); }

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

TEST(HttpServer, RefusesAMalformedIpv6LiteralWithAClearError) {
  for (const char* address : {"2001:db8::zz", "1::2::3", "::1:", ":::", "[::1", "[::1]:9443", "127.0.0.1:80"}) {
    HttpServerOptions opts;
    opts.address = address;
    auto server = startHttpServer(opts, [](const HttpRequest&) { return HttpResponse{}; });
    ASSERT_FALSE(server.ok()) << address;
    EXPECT_EQ(server.error().code, ErrorCode::kInvalidArgument) << address;
    EXPECT_NE(server.error().message.find("not an IPv6 address"), std::string::npos) << server.error().message;
    EXPECT_EQ(server.error().context, address);
  }
}

TEST(HttpServer, ServesPlainHttpOnIpv6LoopbackWithAPickedPortAndReportsThePeer) {
  HttpRequest seen;
  HttpServerOptions opts;
  opts.address = "::1";
  auto server = startHttpServer(opts, [&](const HttpRequest& r) {
    seen = r;
    return HttpResponse{200, {}, "text/plain", "v6 " + r.body};
  });
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_NE((*server)->port(), 0);
  std::string reply = exchangeWith("::1", (*server)->port(),
                                   "POST /v2/x?a=1 HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 5\r\n"
                                   "Connection: close\r\n\r\nhello");
  EXPECT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << reply;
  EXPECT_NE(reply.find("v6 hello"), std::string::npos) << reply;
  EXPECT_EQ(seen.peer_address, "::1");
  EXPECT_EQ(seen.path, "/v2/x");
  EXPECT_EQ(seen.header("host").value_or(""), "[::1]");
  // Only the IPv6 address is served.
  EXPECT_LT(connectTo("127.0.0.1", (*server)->port()), 0);
}

TEST(HttpServer, ServesOnTheGivenPortOfABracketedIpv6Literal) {
  // A port that was free a moment ago.
  int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  socklen_t len = sizeof(sa);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&sa), len), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  ::close(probe);
  uint16_t port = ntohs(sa.sin6_port);
  HttpServerOptions opts;
  opts.address = "[::1]";
  opts.port = port;
  auto server = startHttpServer(opts, [](const HttpRequest&) { return HttpResponse{200, {}, "text/plain", "ok"}; });
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ((*server)->port(), port);
  EXPECT_NE(exchangeWith("::1", port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").find("ok"),
            std::string::npos);
  // A second server cannot take the same address and port.
  auto again = startHttpServer(opts, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);
}

TEST(HttpServer, EveryAddressAcceptsIpv4AndIpv6ClientsAndNamesEach) {
  std::mutex mu;
  std::vector<std::string> peers;
  HttpServerOptions opts;
  opts.address = "::";
  auto server = startHttpServer(opts, [&](const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    peers.push_back(r.peer_address);
    return HttpResponse{200, {}, "text/plain", "ok"};
  });
  ASSERT_TRUE(server) << server.error().message;
  uint16_t port = (*server)->port();
  const std::string get = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_NE(exchangeWith("127.0.0.1", port, get).find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(exchangeWith("::1", port, get).find("HTTP/1.1 200"), std::string::npos);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(peers, (std::vector<std::string>{"127.0.0.1", "::1"}));
}

// The loopback ports this process listens on, from /proc: the relay's cpprestsdk
// listener is the one that appears when an IPv6 server starts.
std::set<uint16_t> ownLoopbackListeners() {
  std::set<std::string> inodes;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::set<uint16_t> ports;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);
  while (std::getline(tcp, line)) {
    std::istringstream in(line);
    std::string slot, local, remote, state, queues, timer, retrans, uid, timeout, inode;
    in >> slot >> local >> remote >> state >> queues >> timer >> retrans >> uid >> timeout >> inode;
    if (state == "0A" && local.rfind("0100007F:", 0) == 0 && inodes.count(inode)) {
      ports.insert(static_cast<uint16_t>(std::stoul(local.substr(9), nullptr, 16)));
    }
  }
  return ports;
}

TEST(HttpServer, RefusesRequestsThatGoAroundTheIpv6Address) {
  std::atomic<int> calls{0};
  auto before = ownLoopbackListeners();
  HttpServerOptions opts;
  opts.address = "::1";
  auto server = startHttpServer(opts, [&](const HttpRequest&) {
    ++calls;
    return HttpResponse{200, {}, "text/plain", "ok"};
  });
  ASSERT_TRUE(server) << server.error().message;
  std::vector<uint16_t> added;
  for (uint16_t p : ownLoopbackListeners()) {
    if (!before.count(p)) added.push_back(p);
  }
  ASSERT_EQ(added.size(), 1u) << "expected the relay's loopback listener";
  std::string reply = exchangeWith("127.0.0.1", added[0], "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(reply.find("HTTP/1.1 403"), std::string::npos) << reply;
  EXPECT_EQ(calls.load(), 0);
  EXPECT_NE(exchangeWith("::1", (*server)->port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .find("HTTP/1.1 200"),
            std::string::npos);
  EXPECT_EQ(calls.load(), 1);
}

TEST(HttpServer, RelaysLargeBodiesKeptAliveRequestsAndHalfClosedClients) {
  HttpServerOptions opts;
  opts.address = "::1";
  opts.max_body_bytes = 4 << 20;
  auto server = startHttpServer(opts, [](const HttpRequest& r) { return HttpResponse{200, {}, "text/plain", r.body}; });
  ASSERT_TRUE(server) << server.error().message;
  int fd = connectTo("::1", (*server)->port());
  ASSERT_GE(fd, 0);
  std::string big(3 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  std::string first = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big;
  for (size_t off = 0; off < first.size();) {
    ssize_t n = ::send(fd, first.data() + off, first.size() - off, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
  // The answer on a kept-alive connection: read until the whole echoed body is in.
  std::string reply;
  char buf[65536];
  while (reply.size() < big.size() || reply.find(big) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << "the connection ended after " << reply.size() << " bytes";
    reply.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u);
  // A second request on the same connection, then the client's half-close: the answer
  // still comes, and then the close.
  std::string second = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nend";
  ASSERT_EQ(::send(fd, second.data(), second.size(), MSG_NOSIGNAL), static_cast<ssize_t>(second.size()));
  ::shutdown(fd, SHUT_WR);
  std::string last = readAll(fd);
  ::close(fd);
  EXPECT_NE(last.find("HTTP/1.1 200"), std::string::npos) << last;
  EXPECT_EQ(last.rfind("end"), last.size() - 3) << last;
}

TEST(HttpServer, StoppingAnIpv6ServerClosesItsConnectionsAndFreesThePort) {
  HttpServerOptions opts;
  opts.address = "::1";
  auto server = startHttpServer(opts, [](const HttpRequest&) { return HttpResponse{200, {}, "text/plain", "ok"}; });
  ASSERT_TRUE(server) << server.error().message;
  uint16_t port = (*server)->port();
  int idle = connectTo("::1", port);
  ASSERT_GE(idle, 0);
  std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(idle, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  char buf[512];
  ASSERT_GT(::recv(idle, buf, sizeof(buf), 0), 0);  // answered, kept alive
  auto start = std::chrono::steady_clock::now();
  (*server)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(::recv(idle, buf, sizeof(buf), 0), 0);  // closed, not timed out
  ::close(idle);
  EXPECT_LT(connectTo("::1", port), 0);
  opts.port = port;
  auto again = startHttpServer(opts, [](const HttpRequest&) { return HttpResponse{}; });
  EXPECT_TRUE(again.ok()) << again.error().message;
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

// handler_threads: requests wait for one of the server's own threads; no more
// handlers than that run at once, and every request is answered.
TEST(HttpServer, HandlerThreadsBoundHowManyHandlersRunAtOnce) {
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  HttpServerOptions options;
  options.handler_threads = 2;
  auto server = startHttpServer(options, [&](const HttpRequest& r) -> HttpResponse {
    int now = ++running;
    for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    --running;
    return HttpResponse{200, {}, "text/plain", "done " + r.path + " " + r.body};
  });
  ASSERT_TRUE(server);
  const uint16_t port = (*server)->port();
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      std::string body = "b" + std::to_string(i);
      std::string request = i % 2 == 0 ? "GET /g" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                       : "POST /p" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      std::string want = i % 2 == 0 ? "done /g" + std::to_string(i) + " " : "done /p" + std::to_string(i) + " " + body;
      if (exchangeWith("127.0.0.1", port, request).find(want) != std::string::npos) ++answered;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), 8);
  EXPECT_EQ(most.load(), 2);
}

// write_handler_threads: a read is answered while every write thread and a write
// waiting for one are held, as when writes queue for the database's commit.
TEST(HttpServer, ReadsAreAnsweredWhileWritesHoldTheirOwnThreads) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int writes_held = 0;
  HttpServerOptions options;
  options.handler_threads = 1;
  options.write_handler_threads = 1;
  auto server = startHttpServer(options, [&](const HttpRequest& r) -> HttpResponse {
    if (r.method != "GET") {
      std::unique_lock<std::mutex> lock(mu);
      ++writes_held;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    }
    return HttpResponse{200, {}, "text/plain", "done " + r.method + " " + r.path};
  });
  ASSERT_TRUE(server);
  const uint16_t port = (*server)->port();
  std::vector<std::thread> writers;
  std::atomic<int> writes_answered{0};
  for (int i = 0; i < 2; ++i)
    writers.emplace_back([&, i] {
      std::string request = "DELETE /w" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      if (exchangeWith("127.0.0.1", port, request).find("done DELETE /w") != std::string::npos) ++writes_answered;
    });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return writes_held == 1; }));
  }
  // The read runs in a thread of its own: on shared threads it would wait for the
  // release below, and the test would then see it unanswered at the deadline.
  std::promise<std::string> read_answer;
  auto answered = read_answer.get_future();
  std::thread reader([&] {
    read_answer.set_value(exchange(port, "GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  });
  const bool read_in_time = answered.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  reader.join();
  for (auto& t : writers) t.join();
  ASSERT_TRUE(read_in_time);
  EXPECT_NE(answered.get().find("done GET /r"), std::string::npos);
  EXPECT_EQ(writes_answered.load(), 2);
  EXPECT_EQ(writes_held, 2);  // the second write waited for the one write thread
}

// A handler on the server's own threads may wait for an HTTP call of its own (as the
// API waits for Keystone): the call's I/O runs on cpprestsdk's threads, so even one
// handler thread, busy with such a call, cannot hold it up.
TEST(HttpServer, AHandlerThreadWaitingForAnHttpCallIsNotAWaitOnItself) {
  auto backend = startHttpServer({}, [](const HttpRequest&) { return HttpResponse{200, {}, "text/plain", "inner"}; });
  ASSERT_TRUE(backend);
  auto client = makeHttpClient({});
  ASSERT_TRUE(client);
  const std::string url = "http://127.0.0.1:" + std::to_string((*backend)->port()) + "/";
  HttpServerOptions options;
  options.handler_threads = 1;
  auto server = startHttpServer(options, [&](const HttpRequest&) -> HttpResponse {
    auto r = (*client)->request("GET", url, {}, "", std::chrono::milliseconds(5000));
    return HttpResponse{200, {}, "text/plain", r ? "outer+" + r->body : "outer failed"};
  });
  ASSERT_TRUE(server);
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int i = 0; i < 4; ++i)
    clients.emplace_back([&] {
      if (exchange((*server)->port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
              .find("outer+inner") != std::string::npos)
        ++answered;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), 4);
}

}  // namespace
}  // namespace banyan::common

namespace banyan::common {
namespace {

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

TEST_F(TlsPki, MutualTlsOnIpv6LoopbackVerifiesClientsAndReportsThePeer) {
  std::mutex mu;
  std::string peer;
  auto options = mtlsOptions();
  options.address = "::1";
  auto server = startHttpServer(options, [&](const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    peer = r.peer_address;
    return HttpResponse{200, {}, "text/plain", "hi"};
  });
  ASSERT_TRUE(server) << server.error().message;
  uint16_t port = (*server)->port();
  EXPECT_EQ(curl(port, "client", "[::1]"), 0);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(peer, "::1");
    peer.clear();
  }
  // The handshake is the listener's own, through the relay: refused without a
  // certificate from the CA, and the handler never runs.
  EXPECT_NE(curl(port, "", "[::1]"), 0);
  EXPECT_NE(curl(port, "stranger", "[::1]"), 0);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(peer, "");
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
