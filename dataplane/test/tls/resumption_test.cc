// Session resumption against the listener contexts, over socketpairs and the
// module's own non-blocking I/O (what a ClientSession drives). The client
// behaves like wrk: one SSL per connection slot, SSL_shutdown + SSL_clear
// between connections (so it offers the previous connection's session) and a
// client session cache. Such an OpenSSL client marks a TLS 1.3 session it
// resumed as not resumable, so it can only resume again with a ticket the
// resumed connection itself sent.
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_pki.h"
#include "tls/context.h"
#include "tls/tls_io.h"

namespace banyan::dp::tls {
namespace {

using test::testPki;

config::Listener listenerFor(uint32_t versions) {
  config::Listener l;
  l.id = "l1";
  l.protocol = config::ListenerProtocol::kTerminatedHttps;
  l.tls.default_certificate = testPki().default_bundle;
  l.tls.versions = versions;
  return l;
}

// What one connection showed on each side.
struct Outcome {
  bool ok = false;
  bool server_resumed = false;  // the proxy's view: SSL_session_reused
  bool client_resumed = false;
  bool new_ticket = false;      // the client's session changed: a ticket arrived
};

class WrkLikeClient {
 public:
  explicit WrkLikeClient(int version, std::string sni = "") : sni_(std::move(sni)) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_min_proto_version(ctx_, version);
    SSL_CTX_set_max_proto_version(ctx_, version);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT);
    ssl_ = SSL_new(ctx_);
  }
  ~WrkLikeClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  // One connection to `server`: handshake, a request and its response (the
  // client reads TLS 1.3 tickets before the response), then close_notify
  // both ways and SSL_clear, as wrk does for `Connection: close`.
  Outcome connect(const ServerContext& server) {
    Outcome out;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return out;
    SSL* srv = server.newSsl(sv[1]);
    SSL_SESSION* offered = SSL_get_session(ssl_);
    SSL_set_fd(ssl_, sv[0]);
    if (!sni_.empty()) SSL_set_tlsext_host_name(ssl_, sni_.c_str());
    SSL_set_connect_state(ssl_);
    out.ok = run(srv);
    out.server_resumed = SSL_session_reused(srv) == 1;
    out.client_resumed = SSL_session_reused(ssl_) == 1;
    out.new_ticket = SSL_get_session(ssl_) != offered;
    closeAndFree(srv);
    SSL_shutdown(ssl_);
    SSL_clear(ssl_);
    ::close(sv[0]);
    ::close(sv[1]);
    return out;
  }

 private:
  bool run(SSL* srv) {
    bool client_done = false, server_done = false;
    for (int i = 0; i < 100 && !(client_done && server_done); ++i) {
      if (!client_done) {
        int r = SSL_do_handshake(ssl_);
        if (r == 1) {
          client_done = true;
        } else if (SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
          return false;
        }
      }
      if (!server_done) {
        IoResult r = handshake(srv);
        if (r.status == IoStatus::kDone) {
          server_done = true;
        } else if (r.status != IoStatus::kWantRead) {
          return false;
        }
      }
    }
    if (!client_done || !server_done) return false;
    const std::string request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    if (SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) return false;
    char buf[4096];
    IoResult got{};
    for (int i = 0; i < 100 && got.status != IoStatus::kDone; ++i) got = read(srv, buf, sizeof buf);
    if (got.status != IoStatus::kDone) return false;
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    if (write(srv, response.data(), response.size()).status != IoStatus::kDone) return false;
    for (int i = 0; i < 100; ++i) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) return true;
      if (SSL_get_error(ssl_, n) != SSL_ERROR_WANT_READ) return false;
    }
    return false;
  }

  std::string sni_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

class SessionResumption : public testing::TestWithParam<int> {};

TEST_P(SessionResumption, AClientReusingItsSslObjectResumesEveryConnectionAfterTheFirst) {
  TlsContextProvider provider;
  auto server = provider.serverContext(listenerFor(config::kTlsV12 | config::kTlsV13), "/listeners/0");
  ASSERT_TRUE(server.ok()) << server.error().message;
  WrkLikeClient client(GetParam());
  Outcome first = client.connect(**server);
  ASSERT_TRUE(first.ok);
  EXPECT_FALSE(first.server_resumed);
  for (int i = 1; i < 8; ++i) {
    Outcome o = client.connect(**server);
    ASSERT_TRUE(o.ok) << "connection " << i;
    EXPECT_TRUE(o.server_resumed) << "connection " << i;
    EXPECT_TRUE(o.client_resumed) << "connection " << i;
  }
  HandshakeCounts counts = (*server)->handshakes();
  EXPECT_EQ(counts.completed, 8u);
  EXPECT_EQ(counts.resumed, 7u);
}

INSTANTIATE_TEST_SUITE_P(Versions, SessionResumption,
                         testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const testing::TestParamInfo<int>& p) {
                           return p.param == TLS1_3_VERSION ? std::string("Tls13")
                                                            : std::string("Tls12");
                         });

TEST(SessionResumptionTickets, EveryResumedTls13ConnectionCarriesAFreshTicket) {
  TlsContextProvider provider;
  auto server = provider.serverContext(listenerFor(config::kTlsV13), "/listeners/0");
  ASSERT_TRUE(server.ok()) << server.error().message;
  WrkLikeClient client(TLS1_3_VERSION);
  ASSERT_TRUE(client.connect(**server).new_ticket);
  for (int i = 1; i < 4; ++i) {
    Outcome o = client.connect(**server);
    ASSERT_TRUE(o.ok);
    EXPECT_TRUE(o.server_resumed) << "connection " << i;
    EXPECT_TRUE(o.new_ticket) << "connection " << i;
  }
}

TEST(SessionResumptionTickets, ATls12TicketSealedWithTheCurrentKeyIsNotReissued) {
  TlsContextProvider provider;
  auto server = provider.serverContext(listenerFor(config::kTlsV12), "/listeners/0");
  ASSERT_TRUE(server.ok()) << server.error().message;
  WrkLikeClient client(TLS1_2_VERSION);
  ASSERT_TRUE(client.connect(**server).new_ticket);
  Outcome again = client.connect(**server);
  ASSERT_TRUE(again.ok);
  EXPECT_TRUE(again.server_resumed);
  EXPECT_FALSE(again.new_ticket);
}

TEST(SessionResumptionTickets, HandshakesOnSniCertificatesAreCountedWithTheListener) {
  TlsContextProvider provider;
  config::Listener l = listenerFor(config::kTlsV13);
  l.tls.sni_certificates = {testPki().www_bundle};
  auto server = provider.serverContext(l, "/listeners/0");
  ASSERT_TRUE(server.ok()) << server.error().message;
  WrkLikeClient www(TLS1_3_VERSION, "www.example.test");
  WrkLikeClient plain(TLS1_3_VERSION);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(www.connect(**server).ok);
    ASSERT_TRUE(plain.connect(**server).ok);
  }
  HandshakeCounts counts = (*server)->handshakes();
  EXPECT_EQ(counts.completed, 6u);
  EXPECT_EQ(counts.resumed, 4u);
}

TEST(SessionResumptionTickets, TicketsIssuedBeforeAConfigApplyOpenAfterIt) {
  // Each apply builds new contexts from the same provider (one ticket key
  // ring, one session id context per listener id); every worker shares them.
  TlsContextProvider provider;
  auto before = provider.serverContext(listenerFor(config::kTlsV13), "/listeners/0");
  auto after = provider.serverContext(listenerFor(config::kTlsV13), "/listeners/0");
  ASSERT_TRUE(before.ok() && after.ok());
  WrkLikeClient client(TLS1_3_VERSION);
  ASSERT_TRUE(client.connect(**before).ok);
  for (int i = 0; i < 3; ++i) {
    Outcome o = client.connect(i % 2 ? **before : **after);
    ASSERT_TRUE(o.ok);
    EXPECT_TRUE(o.server_resumed) << "connection " << i;
  }
}

TEST(SessionResumptionTickets, AnotherListenersTicketIsNotResumed) {
  TlsContextProvider provider;
  config::Listener other = listenerFor(config::kTlsV13);
  other.id = "l2";
  auto l1 = provider.serverContext(listenerFor(config::kTlsV13), "/listeners/0");
  auto l2 = provider.serverContext(other, "/listeners/1");
  ASSERT_TRUE(l1.ok() && l2.ok());
  WrkLikeClient client(TLS1_3_VERSION);
  ASSERT_TRUE(client.connect(**l1).ok);
  Outcome o = client.connect(**l2);
  ASSERT_TRUE(o.ok);
  EXPECT_FALSE(o.server_resumed);
}

}  // namespace
}  // namespace banyan::dp::tls
