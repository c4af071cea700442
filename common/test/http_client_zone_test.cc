// common::HttpClient to an IPv6 link-local address with an RFC 6874 zone
// ("https://[fe80::a%25veth]:port/"), over real sockets: two network namespaces made by
// the test, joined by a veth pair with fe80::a/64 and fe80::b/64, a mutual-TLS
// common::HttpServer bound to fe80::a%<its veth> in one and the client in the other.
//
// Server and client each run in a forked child inside their namespace
// (link_local_pair.h says why not threads); this process never touches cpprestsdk.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include "banyan/common/http_client.h"
#include "banyan/common/http_server.h"
#include "link_local_pair.h"
#include "tls_test_pki.h"

namespace banyan::common {
namespace {

using testing::forkIntoNetns;
using testing::LinkLocalPair;
using testing::readAll;
using testing::reapChild;
using testing::runInNetns;
using testing::writeAll;

constexpr std::chrono::milliseconds kTimeout{3000};

// What a client child reports: a response, or an error's code and message.
struct Outcome {
  bool ok = false;
  int status = 0;
  std::string body;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

class HttpClientZone : public TlsPki {
 protected:
  void SetUp() override {
    TlsPki::SetUp();
    if (HasFatalFailure()) return;
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
    net_ = std::make_unique<LinkLocalPair>();
    ASSERT_TRUE(net_->ok()) << net_->error();
    ns_a_ = net_->nsA();
    ns_b_ = net_->nsB();
    veth_a_ = net_->vethA();
    veth_b_ = net_->vethB();
    issue("zone", "ca", "-addext subjectAltName=IP:fe80::a");
    issue("zoneb", "ca", "-addext subjectAltName=IP:fe80::b");
  }

  void TearDown() override {
    stopServer();
    net_.reset();
    TlsPki::TearDown();
  }

  // Starts the mutual-TLS server in namespace A on fe80::a%<veth A>, with CERT
  // ("zone": IP:fe80::a). It answers with the Host header and the peer it saw.
  void startServer(const std::string& cert = "zone") {
    int port_pipe[2], stop_pipe[2];
    ASSERT_EQ(::pipe2(port_pipe, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(stop_pipe, O_CLOEXEC), 0);
    HttpServerOptions options = mtlsOptions(cert);
    options.address = "fe80::a%" + veth_a_;
    server_pid_ = forkIntoNetns(ns_a_, [&] {
      ::close(port_pipe[0]);
      ::close(stop_pipe[1]);
      auto server = startHttpServer(options, [](const HttpRequest& r) {
        return HttpResponse{200, {}, "text/plain", r.header("host").value_or("-") + " " + r.peer_address};
      });
      if (!server.ok()) {
        writeAll(port_pipe[1], "error " + server.error().message);
        return 1;
      }
      writeAll(port_pipe[1], std::to_string((*server)->port()));
      ::close(port_pipe[1]);
      char c;
      while (::read(stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
      }
      (*server)->stop();
      return 0;
    });
    ::close(port_pipe[1]);
    ::close(stop_pipe[0]);
    stop_fd_ = stop_pipe[1];
    ASSERT_GT(server_pid_, 0);
    std::string got;
    bool done = readAll(port_pipe[0], &got, std::chrono::steady_clock::now() + std::chrono::seconds(20));
    ::close(port_pipe[0]);
    ASSERT_TRUE(done) << "the server did not start in time";
    ASSERT_FALSE(got.empty() || got.rfind("error", 0) == 0) << "server: " << got;
    port_ = static_cast<uint16_t>(std::stoi(got));
  }

  void stopServer() {
    if (stop_fd_ >= 0) ::close(stop_fd_);
    stop_fd_ = -1;
    if (server_pid_ > 0) {
      reapChild(server_pid_, std::chrono::seconds(10));
      server_pid_ = -1;
    }
  }

  // One GET of URL from namespace B with a mutual-TLS client, then
  // ROUNDS - 1 more on the same HttpClient (pooled connections); the last one is reported.
  Outcome get(const std::string& url, int rounds = 1) {
    HttpClientOptions options;
    options.ca_file = dir_ + "/ca.pem";
    options.client_cert_file = dir_ + "/client.pem";
    options.client_key_file = dir_ + "/client.key";
    bool failed = false;
    std::string got = runInNetns(
        ns_b_,
        [&]() -> std::string {
          auto client = makeHttpClient(options);
          if (!client.ok()) return "E" + std::to_string(static_cast<int>(client.error().code)) + "\n" + client.error().message;
          std::string report;
          for (int i = 0; i < rounds; ++i) {
            auto r = (*client)->request("GET", url, {}, "", kTimeout);
            if (!r.ok()) return "E" + std::to_string(static_cast<int>(r.error().code)) + "\n" + r.error().message;
            report = "R" + std::to_string(r->status) + "\n" + r->body;
          }
          return report;
        },
        kTimeout * (3 * rounds) + std::chrono::seconds(10), &failed);
    Outcome out;
    if (failed || got.size() < 2) {
      out.message = "the client child gave no answer";
      return out;
    }
    size_t nl = got.find('\n');
    std::string head = got.substr(1, nl - 1);
    std::string rest = nl == std::string::npos ? "" : got.substr(nl + 1);
    if (got[0] == 'R') {
      out.ok = true;
      out.status = std::stoi(head);
      out.body = rest;
    } else {
      out.code = static_cast<ErrorCode>(std::stoi(head));
      out.message = rest;
    }
    return out;
  }

  std::string origin(const std::string& zone) const {
    return "https://[fe80::a%" + zone + "]:" + std::to_string(port_);
  }

  std::unique_ptr<LinkLocalPair> net_;
  std::string ns_a_, ns_b_, veth_a_, veth_b_;
  pid_t server_pid_ = -1;
  int stop_fd_ = -1;
  uint16_t port_ = 0;
};

TEST_F(HttpClientZone, ReachesALinkLocalServerThroughTheInterfaceTheZoneNames) {
  ASSERT_NO_FATAL_FAILURE(startServer());
  // RFC 6874's form, twice on one client (the second request on the pooled connection).
  auto r = get(origin("25" + veth_b_) + "/1.0/info?x=1", 2);
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.status, 200);
  // The Host header names the address without the zone (it only means something here);
  // the server saw the client's own link-local address.
  EXPECT_EQ(r.body.substr(0, r.body.find(' ')), "[fe80::a]:" + std::to_string(port_));
  EXPECT_EQ(r.body.substr(r.body.find(' ') + 1, 7), "fe80::b") << r.body;
}

TEST_F(HttpClientZone, TakesTheBareZoneAndAnInterfaceIndexToo) {
  ASSERT_NO_FATAL_FAILURE(startServer());
  auto bare = get(origin(veth_b_) + "/");
  ASSERT_TRUE(bare.ok) << bare.message;
  EXPECT_EQ(bare.status, 200);
  // The veth's index in namespace B, as `ip` reports it there.
  std::string index_file = dir_ + "/index";
  ASSERT_EQ(std::system(("ip netns exec " + ns_b_ + " cat /sys/class/net/" + veth_b_ + "/ifindex > " + index_file).c_str()),
            0);
  std::string index;
  std::ifstream(index_file) >> index;
  ASSERT_FALSE(index.empty());
  auto numbered = get(origin("25" + index) + "/");
  ASSERT_TRUE(numbered.ok) << numbered.message;
  EXPECT_EQ(numbered.status, 200);
}

TEST_F(HttpClientZone, FailsCleanlyThroughAWrongOrUnknownInterface) {
  ASSERT_NO_FATAL_FAILURE(startServer());
  // An interface namespace B does not have (the server's veth lives in A).
  auto unknown = get(origin("25" + veth_a_) + "/");
  ASSERT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.code, ErrorCode::kUnavailable);
  EXPECT_NE(unknown.message.find("no network interface " + veth_a_), std::string::npos) << unknown.message;
  // An interface B has, but not the link to fe80::a: the connection fails within the
  // timeout and says so, like any unreachable peer.
  auto start = std::chrono::steady_clock::now();
  auto wrong = get(origin("25lo") + "/");
  ASSERT_FALSE(wrong.ok);
  EXPECT_EQ(wrong.code, ErrorCode::kUnavailable) << wrong.message;
  EXPECT_NE(wrong.message.find("GET https://[fe80::a%25lo]"), std::string::npos) << wrong.message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, kTimeout + std::chrono::seconds(5));
  // And the right one still works afterwards.
  auto right = get(origin("25" + veth_b_) + "/");
  EXPECT_TRUE(right.ok) << right.message;
}

TEST_F(HttpClientZone, ChecksTheCertificateAgainstTheAddressWithoutTheZone) {
  // The server's certificate names fe80::b, not the fe80::a dialled.
  ASSERT_NO_FATAL_FAILURE(startServer("zoneb"));
  auto r = get(origin("25" + veth_b_) + "/");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.code, ErrorCode::kUnavailable);
  EXPECT_NE(r.message.find("handshake"), std::string::npos) << r.message;
}

TEST_F(HttpClientZone, RefusesZonesThatCannotSelectALink) {
  // No server is needed: these never leave the client.
  struct Row {
    std::string url;
    ErrorCode code;
  } rows[] = {
      {"https://[2001:db8::1%25" + veth_b_ + "]:9443/", ErrorCode::kInvalidArgument},  // not link-local
      {"https://[::1%25lo]:9443/", ErrorCode::kInvalidArgument},
      {"https://[fe80::a]:9443/", ErrorCode::kInvalidArgument},  // link-local without a zone
      {"https://[fe80::a%25]:9443/", ErrorCode::kInvalidArgument},
      {"https://[fe80::a%25a/b]:9443/", ErrorCode::kInvalidArgument},
      {"https://[fe80::a%25abcdefghijklmnop]:9443/", ErrorCode::kInvalidArgument},  // longer than IFNAMSIZ
      {"https://[fe80::a%25nosuchif0]:9443/", ErrorCode::kUnavailable},
      {"https://[fe80::a%2599999]:9443/", ErrorCode::kUnavailable},  // no such index
  };
  for (const auto& row : rows) {
    auto r = get(row.url);
    ASSERT_FALSE(r.ok) << row.url;
    EXPECT_EQ(r.code, row.code) << row.url << ": " << r.message;
    EXPECT_EQ(r.message.find("no answer"), std::string::npos) << row.url << ": " << r.message;
  }
}

}  // namespace
}  // namespace banyan::common
