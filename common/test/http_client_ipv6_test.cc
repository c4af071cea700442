// common::HttpClient against common::HttpServer on IPv6 loopback: the bracketed URL,
// the Host header, the certificate's IP address check and mutual TLS. (The client's
// other behaviours are tested in provider/test/auth/http_client_test.cc.)
#include "banyan/common/http_client.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>

#include "banyan/common/http_server.h"
#include "tls_test_pki.h"

namespace banyan::common {
namespace {

constexpr std::chrono::milliseconds kTimeout{5000};

class HttpClientIpv6 : public TlsPki {
 protected:
  // A server on ::1 that answers with the Host header and peer it saw.
  std::unique_ptr<HttpServer> serve(std::optional<HttpServerOptions> tls_options) {
    HttpServerOptions options = tls_options.value_or(HttpServerOptions{});
    options.address = "::1";
    auto server = startHttpServer(options, [](const HttpRequest& r) {
      return HttpResponse{200, {}, "text/plain", r.header("host").value_or("-") + " " + r.peer_address};
    });
    EXPECT_TRUE(server.ok()) << server.error().message;
    return server.ok() ? std::move(server.value()) : nullptr;
  }
  std::unique_ptr<HttpClient> client(bool with_certificate) {
    HttpClientOptions options;
    options.ca_file = dir_ + "/ca.pem";
    if (with_certificate) {
      options.client_cert_file = dir_ + "/client.pem";
      options.client_key_file = dir_ + "/client.key";
    }
    auto c = makeHttpClient(options);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? std::move(c.value()) : nullptr;
  }
};

TEST_F(HttpClientIpv6, TalksPlainHttpToABracketedAddress) {
  auto server = serve(std::nullopt);
  ASSERT_NE(server, nullptr);
  auto c = client(false);
  ASSERT_NE(c, nullptr);
  std::string origin = "http://[::1]:" + std::to_string(server->port());
  auto r = c->request("GET", origin + "/info?x=1", {}, "", kTimeout);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "[::1]:" + std::to_string(server->port()) + " ::1");
  // A Host header the caller gives wins.
  auto named = c->request("GET", origin + "/", {{"Host", "api.example"}}, "", kTimeout);
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->body, "api.example ::1");
}

TEST_F(HttpClientIpv6, TalksMutualTlsToABracketedAddress) {
  auto server = serve(mtlsOptions("server"));
  ASSERT_NE(server, nullptr);
  auto c = client(true);
  ASSERT_NE(c, nullptr);
  std::string url = "https://[::1]:" + std::to_string(server->port()) + "/";
  for (int i = 0; i < 2; ++i) {  // a fresh connection, then a pooled one
    auto r = c->request("PUT", url, {{"Content-Type", "application/json"}}, "{}", kTimeout);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "[::1]:" + std::to_string(server->port()) + " ::1");
  }
}

TEST_F(HttpClientIpv6, RefusesAServerCertificateWithoutTheIpv6Address) {
  auto server = serve(mtlsOptions("server4"));  // IP:127.0.0.1 only
  ASSERT_NE(server, nullptr);
  auto c = client(true);
  ASSERT_NE(c, nullptr);
  auto r = c->request("GET", "https://[::1]:" + std::to_string(server->port()) + "/", {}, "", kTimeout);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("handshake"), std::string::npos) << r.error().message;
  // The same certificate is good for the address it names.
  HttpServerOptions v4 = mtlsOptions("server4");
  auto server4 = startHttpServer(v4, [](const HttpRequest&) { return HttpResponse{200, {}, "text/plain", "ok"}; });
  ASSERT_TRUE(server4.ok()) << server4.error().message;
  auto ok = c->request("GET", "https://127.0.0.1:" + std::to_string((*server4)->port()) + "/", {}, "", kTimeout);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->body, "ok");
}

TEST_F(HttpClientIpv6, RefusesAServerFromAnotherCa) {
  // The server's chain is checked, not only its address: a server certificate for ::1
  // from a foreign CA is refused.
  issue("foreign", "other", "-addext subjectAltName=IP:::1");
  HttpServerOptions options;
  options.tls = HttpServerTls{dir_ + "/foreign.pem", dir_ + "/foreign.key", ""};
  auto server = serve(options);
  ASSERT_NE(server, nullptr);
  auto c = client(true);
  ASSERT_NE(c, nullptr);
  auto r = c->request("GET", "https://[::1]:" + std::to_string(server->port()) + "/", {}, "", kTimeout);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("handshake"), std::string::npos) << r.error().message;
}

TEST_F(HttpClientIpv6, IsRefusedByAMutualTlsServerWithoutACertificate) {
  auto server = serve(mtlsOptions("server"));
  ASSERT_NE(server, nullptr);
  auto c = client(false);
  ASSERT_NE(c, nullptr);
  auto r = c->request("GET", "https://[::1]:" + std::to_string(server->port()) + "/", {}, "", kTimeout);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace banyan::common
