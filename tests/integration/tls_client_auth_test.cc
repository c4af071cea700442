// TERMINATED_HTTPS client authentication (NONE / OPTIONAL / MANDATORY, client
// CA, CRL) and the X-SSL-* headers members receive, in haproxy's formats as
// Octavia renders them.
#include <gtest/gtest.h>

#include <memory>

#include "tls_helpers.h"

namespace banyan::test {
namespace {

const std::map<std::string, std::string> kAllSslHeaders = {
    {"X-SSL-Client-Verify", "true"}, {"X-SSL-Client-Has-Cert", "true"},
    {"X-SSL-Client-DN", "true"},     {"X-SSL-Client-CN", "true"},
    {"X-SSL-Issuer", "true"},        {"X-SSL-Client-SHA1", "true"},
    {"X-SSL-Client-Not-Before", "true"}, {"X-SSL-Client-Not-After", "true"}};

class TlsClientAuth : public ::testing::Test {
 protected:
  void start(const std::string& mode, bool crl = false) {
    const TestPki& pki = testPki();
    ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
    ListenerSpec& l = c.listener("l1");
    l.extra["client_ca_certificate"] = jsonString(pki.client_ca);
    l.extra["client_authentication"] = jsonString(mode);
    if (crl) l.extra["client_crl"] = jsonString(pki.client_crl);
    l.insert_headers = kAllSslHeaders;
    proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  }
  TlsClientOptions withCert(const std::string& cert, const std::string& key) {
    TlsClientOptions o;
    o.cert = cert;
    o.key = key;
    return o;
  }
  // One request; the member's view of it, or nullopt when the proxy refused.
  std::optional<RecordedRequest> request(TlsClientOptions o, const HeaderList& headers = {}) {
    TlsTestClient c("127.0.0.1", port_, o);
    if (!c.handshakeOk()) return std::nullopt;
    size_t before = member_.requestCount();
    try {
      if (c.get("/", headers).status != 200) return std::nullopt;
    } catch (const std::exception&) {
      return std::nullopt;  // TLS 1.3: a refused certificate shows after the handshake
    }
    if (!member_.waitForRequests(before + 1, 2000)) return std::nullopt;
    return member_.requests().back();
  }

  uint16_t port_ = pickFreePort();
  TestHttpBackend member_{"m1", "127.0.0.33"};
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(TlsClientAuth, MandatoryRefusesAClientWithoutCertificate) {
  start("MANDATORY");
  EXPECT_FALSE(request({}));
  ToolResult r = runTool({"curl", "-sSk", "https://127.0.0.1:" + std::to_string(port_) + "/"});
  EXPECT_NE(r.exit_status, 0);
  EXPECT_EQ(member_.requestCount(), 0u);
}

TEST_F(TlsClientAuth, MandatoryAcceptsACertificateFromTheClientCa) {
  start("MANDATORY");
  const TestPki& pki = testPki();
  ToolResult r = runTool({"curl", "-sSk", "--cert", pki.client_cert, "--key", pki.client_key,
                          "https://127.0.0.1:" + std::to_string(port_) + "/", "-o", "/dev/null",
                          "-w", "%{http_code}"});
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_EQ(r.out, "200");
  ASSERT_TRUE(member_.waitForRequests(1, 2000));
  EXPECT_EQ(member_.requests().back().header("X-SSL-Client-CN"), "\"client.example.test\"");
}

TEST_F(TlsClientAuth, MandatoryRefusesACertificateFromAnUnknownCa) {
  start("MANDATORY");
  const TestPki& pki = testPki();
  EXPECT_FALSE(request(withCert(pki.stranger_cert, pki.stranger_key)));
  ToolResult r = sClient(port_, {"-cert", pki.stranger_cert, "-key", pki.stranger_key});
  EXPECT_FALSE(contains(r.out, "HTTP/1.1 200")) << r.out;
  EXPECT_EQ(member_.requestCount(), 0u);
}

TEST_F(TlsClientAuth, OptionalAcceptsAClientWithoutCertificate) {
  start("OPTIONAL");
  auto req = request({});
  ASSERT_TRUE(req);
  EXPECT_EQ(req->header("X-SSL-Client-Has-Cert"), "0");
  EXPECT_EQ(req->header("X-SSL-Client-Verify"), "0");
  EXPECT_EQ(req->header("X-SSL-Client-CN"), "\"\"");
}

TEST_F(TlsClientAuth, OptionalStillRefusesAnInvalidCertificate) {
  start("OPTIONAL");
  const TestPki& pki = testPki();
  EXPECT_FALSE(request(withCert(pki.stranger_cert, pki.stranger_key)));
  auto ok = request(withCert(pki.client_cert, pki.client_key));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->header("X-SSL-Client-Has-Cert"), "1");
}

TEST_F(TlsClientAuth, TheCrlRefusesARevokedCertificate) {
  start("MANDATORY", true);
  const TestPki& pki = testPki();
  EXPECT_FALSE(request(withCert(pki.revoked_cert, pki.revoked_key)));
  ToolResult r = runTool({"curl", "-sSk", "--cert", pki.revoked_cert, "--key", pki.revoked_key,
                          "https://127.0.0.1:" + std::to_string(port_) + "/"});
  EXPECT_NE(r.exit_status, 0);
  EXPECT_TRUE(request(withCert(pki.client_cert, pki.client_key)));
}

TEST_F(TlsClientAuth, NoneDoesNotAskForACertificate) {
  start("NONE");
  const TestPki& pki = testPki();
  auto req = request(withCert(pki.client_cert, pki.client_key));
  ASSERT_TRUE(req);
  EXPECT_EQ(req->header("X-SSL-Client-Has-Cert"), "0");
}

TEST_F(TlsClientAuth, XSslHeadersDescribeTheClientCertificate) {
  start("MANDATORY");
  const TestPki& pki = testPki();
  auto req = request(withCert(pki.client_cert, pki.client_key));
  ASSERT_TRUE(req);
  EXPECT_EQ(req->header("X-SSL-Client-Verify"), "0");
  EXPECT_EQ(req->header("X-SSL-Client-Has-Cert"), "1");
  EXPECT_EQ(req->header("X-SSL-Client-DN"), "\"/C=US/O=Banyan Test/CN=client.example.test\"");
  EXPECT_EQ(req->header("X-SSL-Client-CN"), "\"client.example.test\"");
  EXPECT_EQ(req->header("X-SSL-Issuer"), "\"/C=US/O=Banyan Test/CN=Banyan Test Client CA\"");
  EXPECT_EQ(req->header("X-SSL-Client-SHA1"), "\"" + certificateSha1Hex(pki.client_cert) + "\"");
  EXPECT_EQ(req->header("X-SSL-Client-Not-Before"),
            "\"" + certificateNotBefore(pki.client_cert) + "\"");
  EXPECT_EQ(req->header("X-SSL-Client-Not-After"),
            "\"" + certificateNotAfter(pki.client_cert) + "\"");
  EXPECT_EQ(req->header("X-SSL-Client-Not-After").size(), 15u);  // "YYMMDDhhmmssZ"
}

TEST_F(TlsClientAuth, ClientSuppliedXSslHeadersAreReplaced) {
  start("OPTIONAL");
  auto req = request({}, {{"X-SSL-Client-CN", "\"admin\""}, {"X-SSL-Client-Verify", "0"},
                          {"x-ssl-client-has-cert", "1"}});
  ASSERT_TRUE(req);
  EXPECT_EQ(headerCount(req->headers, "X-SSL-Client-CN"), 1u);
  EXPECT_EQ(req->header("X-SSL-Client-CN"), "\"\"");
  EXPECT_EQ(headerCount(req->headers, "X-SSL-Client-Has-Cert"), 1u);
  EXPECT_EQ(req->header("X-SSL-Client-Has-Cert"), "0");
}

TEST_F(TlsClientAuth, OnlyTheRequestedHeadersAreInserted) {
  const TestPki& pki = testPki();
  ConfigSpec c = tlsConfig(port_, {memberOf(member_)});
  ListenerSpec& l = c.listener("l1");
  l.extra["client_ca_certificate"] = jsonString(pki.client_ca);
  l.extra["client_authentication"] = jsonString("MANDATORY");
  l.insert_headers = {{"X-SSL-Client-CN", "true"}};
  proxy_ = std::make_unique<ProxyProcess>(c.toJson());
  auto req = request(withCert(pki.client_cert, pki.client_key), {{"X-SSL-Issuer", "kept"}});
  ASSERT_TRUE(req);
  EXPECT_EQ(req->header("X-SSL-Client-CN"), "\"client.example.test\"");
  EXPECT_FALSE(headerCount(req->headers, "X-SSL-Client-DN"));
  // Headers not enabled are not Banyan's: they pass as the client sent them.
  EXPECT_EQ(req->header("X-SSL-Issuer"), "kept");
}

TEST_F(TlsClientAuth, AResumedSessionKeepsTheClientCertificate) {
  start("MANDATORY");
  const TestPki& pki = testPki();
  TlsTestClient first("127.0.0.1", port_, withCert(pki.client_cert, pki.client_key));
  ASSERT_TRUE(first.handshakeOk()) << first.error();
  first.get("/");
  TlsClientOptions o = withCert(pki.client_cert, pki.client_key);
  o.session = first.sessionDer();
  TlsTestClient again("127.0.0.1", port_, o);
  ASSERT_TRUE(again.handshakeOk()) << again.error();
  EXPECT_TRUE(again.resumed());
  EXPECT_EQ(again.get("/").status, 200);
  ASSERT_TRUE(member_.waitForRequests(2, 2000));
  EXPECT_EQ(member_.requests().back().header("X-SSL-Client-CN"), "\"client.example.test\"");
}

}  // namespace
}  // namespace banyan::test
