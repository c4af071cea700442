// The TLS fields of listeners and pools: Octavia's defaults, parsed values,
// and the refusals (each with its JSON pointer).
#include <gtest/gtest.h>

#include <string>

#include "config/parse.h"

namespace banyan::dp::config {
namespace {

std::string terminated(const std::string& extra) {
  return R"({"listeners": [{"id": "l1", "protocol": "TERMINATED_HTTPS", "address": "127.0.0.1",
            "protocol_port": 8443, "default_tls_certificate": "/etc/banyan/default.pem")" +
         extra + "}]}";
}

std::string httpListener(const std::string& extra) {
  return R"({"listeners": [{"id": "l1", "address": "127.0.0.1", "protocol_port": 8080)" + extra +
         "}]}";
}

std::string pool(const std::string& extra) {
  return R"({"pools": [{"id": "p1", "protocol": "HTTP")" + extra + "}]}";
}

TEST(TlsConfig, ListenerAlpnMayOfferH2InTheConfiguredOrder) {
  auto r = parseConfig(terminated(R"(, "alpn_protocols": ["http/1.1", "h2", "http/1.1"])"));
  ASSERT_TRUE(r.ok()) << r.error().context << ": " << r.error().message;
  EXPECT_EQ(r->listeners[0].tls.alpn_protocols, (std::vector<std::string>{"http/1.1", "h2"}));
}

TEST(TlsConfig, TerminatedHttpsTakesOctaviasDefaults) {
  auto r = parseConfig(terminated(""));
  ASSERT_TRUE(r.ok()) << r.error().context << ": " << r.error().message;
  const ListenerTls& t = r->listeners[0].tls;
  EXPECT_EQ(r->listeners[0].protocol, ListenerProtocol::kTerminatedHttps);
  EXPECT_EQ(t.default_certificate, "/etc/banyan/default.pem");
  EXPECT_TRUE(t.sni_certificates.empty());
  EXPECT_EQ(t.client_authentication, ClientAuth::kNone);
  EXPECT_EQ(t.versions, kTlsV12 | kTlsV13);
  EXPECT_EQ(t.ciphers, kDefaultTlsCiphers);
  EXPECT_EQ(t.alpn_protocols, (std::vector<std::string>{"h2", "http/1.1", "http/1.0"}));
  EXPECT_FALSE(t.hsts_max_age);
  EXPECT_TRUE(t.session_resumption);
  EXPECT_EQ(r->settings.tls_ticket_key_rotation_s, 3600u);
}

TEST(TlsConfig, EveryListenerTlsFieldIsRead) {
  auto r = parseConfig(terminated(R"(,
      "sni_certificates": ["/a.pem", "/b.pem"], "client_ca_certificate": "/ca.pem",
      "client_crl": "/ca.crl", "client_authentication": "OPTIONAL",
      "tls_versions": ["TLSv1.1", "TLSv1.3"], "tls_ciphers": "ECDHE-RSA-AES128-GCM-SHA256",
      "alpn_protocols": ["http/1.0"], "hsts_max_age": 600, "hsts_include_subdomains": true,
      "hsts_preload": true, "tls_session_resumption": false,
      "insert_headers": {"X-SSL-Client-CN": "true", "X-SSL-Client-Verify": true})"));
  ASSERT_TRUE(r.ok()) << r.error().context << ": " << r.error().message;
  const Listener& l = r->listeners[0];
  EXPECT_EQ(l.tls.sni_certificates, (std::vector<std::string>{"/a.pem", "/b.pem"}));
  EXPECT_EQ(l.tls.client_ca_certificate, "/ca.pem");
  EXPECT_EQ(l.tls.client_crl, "/ca.crl");
  EXPECT_EQ(l.tls.client_authentication, ClientAuth::kOptional);
  EXPECT_EQ(l.tls.versions, kTlsV11 | kTlsV13);
  EXPECT_EQ(l.tls.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(l.tls.alpn_protocols, (std::vector<std::string>{"http/1.0"}));
  EXPECT_EQ(l.tls.hsts_max_age, 600u);
  EXPECT_TRUE(l.tls.hsts_include_subdomains);
  EXPECT_TRUE(l.tls.hsts_preload);
  EXPECT_FALSE(l.tls.session_resumption);
  EXPECT_TRUE(l.insert_headers.ssl_client_cn);
  EXPECT_TRUE(l.insert_headers.ssl_client_verify);
  EXPECT_FALSE(l.insert_headers.ssl_client_dn);
}

TEST(TlsConfig, PoolTlsFieldsAreRead) {
  auto r = parseConfig(pool(R"(, "tls_enabled": true, "ca_certificate": "/ca.pem",
      "crl": "/ca.crl", "tls_certificate": "/client.pem", "tls_versions": ["TLSv1.3"],
      "tls_ciphers": "TLS_AES_128_GCM_SHA256", "alpn_protocols": ["http/1.1"])"));
  ASSERT_TRUE(r.ok()) << r.error().context << ": " << r.error().message;
  const Pool& p = r->pools[0];
  EXPECT_TRUE(p.tls_enabled);
  EXPECT_EQ(p.ca_certificate, "/ca.pem");
  EXPECT_EQ(p.crl, "/ca.crl");
  EXPECT_EQ(p.tls_certificate, "/client.pem");
  EXPECT_EQ(p.tls_versions, kTlsV13);
  EXPECT_EQ(p.tls_ciphers, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(p.alpn_protocols, (std::vector<std::string>{"http/1.1"}));
}

TEST(TlsConfig, PoolTlsDefaultsAreOctavias) {
  auto r = parseConfig(pool(R"(, "tls_enabled": true)"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pools[0].tls_versions, kDefaultTlsVersions);
  EXPECT_EQ(r->pools[0].tls_ciphers, kDefaultTlsCiphers);
  EXPECT_TRUE(r->pools[0].ca_certificate.empty());
}

TEST(TlsConfig, PoolAlpnMayOfferH2ToMembers) {
  auto r = parseConfig(pool(R"(, "tls_enabled": true, "alpn_protocols": ["h2", "http/1.1"])"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pools[0].alpn_protocols, (std::vector<std::string>{"h2", "http/1.1"}));
}

TEST(TlsConfig, PoolAlpnWithH2IsKeptButUnusedWithoutTls) {
  // Octavia stores a pool's ALPN list whatever tls_enabled says; without a
  // handshake nothing negotiates it (no cleartext h2c to members).
  auto r = parseConfig(pool(R"(, "alpn_protocols": ["h2"])"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->pools[0].tls_enabled);
  EXPECT_EQ(r->pools[0].alpn_protocols, (std::vector<std::string>{"h2"}));
}

TEST(TlsConfig, HttpsListenersAreTcpPassthrough) {
  auto r = parseConfig(R"({"listeners": [{"id": "l1", "protocol": "HTTPS",
      "address": "127.0.0.1", "protocol_port": 443}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->listeners[0].protocol, ListenerProtocol::kHttps);
}

TEST(TlsConfig, NullTlsFieldsMeanTheDefaults) {
  auto r = parseConfig(terminated(R"(, "tls_versions": null, "tls_ciphers": null,
      "alpn_protocols": null, "hsts_max_age": null, "client_ca_certificate": null)"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->listeners[0].tls.versions, kDefaultTlsVersions);
  EXPECT_FALSE(r->listeners[0].tls.hsts_max_age);
}

struct TlsRejection {
  const char* name;
  std::string document;
  const char* context;
  const char* words;  // a part of the message
};

class TlsRejects : public testing::TestWithParam<TlsRejection> {};

TEST_P(TlsRejects, WithPointerAndReason) {
  const TlsRejection& row = GetParam();
  auto r = parseConfig(row.document);
  ASSERT_FALSE(r.ok()) << "accepted";
  EXPECT_EQ(r.error().context, row.context) << r.error().message;
  EXPECT_NE(r.error().message.find(row.words), std::string::npos) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Rows, TlsRejects,
    testing::Values(
        TlsRejection{"NoDefaultCertificate",
                     R"({"listeners": [{"id": "l1", "protocol": "TERMINATED_HTTPS",
                        "address": "127.0.0.1", "protocol_port": 443}]})",
                     "/listeners/0", "needs default_tls_certificate"},
        TlsRejection{"RelativeCertificatePath",
                     R"({"listeners": [{"id": "l1", "protocol": "TERMINATED_HTTPS",
                        "address": "127.0.0.1", "protocol_port": 443,
                        "default_tls_certificate": "cert.pem"}]})",
                     "/listeners/0/default_tls_certificate", "absolute file path"},
        TlsRejection{"RelativeSniPath", terminated(R"(, "sni_certificates": ["/a.pem", "b.pem"])"),
                     "/listeners/0/sni_certificates/1", "absolute file path"},
        TlsRejection{"CertificateOnHttpListener",
                     httpListener(R"(, "default_tls_certificate": "/c.pem")"),
                     "/listeners/0/default_tls_certificate",
                     "needs a TERMINATED_HTTPS listener, not HTTP"},
        TlsRejection{"TlsVersionsOnTcpListener",
                     httpListener(R"(, "protocol": "TCP", "tls_versions": ["TLSv1.2"])"),
                     "/listeners/0/tls_versions", "needs a TERMINATED_HTTPS listener, not TCP"},
        TlsRejection{"XSslHeaderOnHttpListener",
                     httpListener(R"(, "insert_headers": {"X-SSL-Client-DN": "true"})"),
                     "/listeners/0/insert_headers/X-SSL-Client-DN",
                     "needs a TERMINATED_HTTPS listener, not HTTP"},
        TlsRejection{"InsertHeadersOnHttpsPassthrough",
                     R"({"listeners": [{"id": "l1", "protocol": "HTTPS", "address": "127.0.0.1",
                        "protocol_port": 443, "insert_headers": {"X-Forwarded-For": "true"}}]})",
                     "/listeners/0/insert_headers/X-Forwarded-For", "needs an HTTP listener"},
        TlsRejection{"ClientAuthWithoutCa", terminated(R"(, "client_authentication": "MANDATORY")"),
                     "/listeners/0/client_authentication", "needs client_ca_certificate"},
        TlsRejection{"CrlWithoutCa", terminated(R"(, "client_crl": "/c.crl")"),
                     "/listeners/0/client_crl", "needs client_ca_certificate"},
        TlsRejection{"UnknownClientAuthentication",
                     terminated(R"(, "client_authentication": "SOMETIMES")"),
                     "/listeners/0/client_authentication", "is not one of"},
        TlsRejection{"UnknownTlsVersion", terminated(R"(, "tls_versions": ["TLSv1.4"])"),
                     "/listeners/0/tls_versions/0", "is not one of"},
        TlsRejection{"EmptyTlsVersions", terminated(R"(, "tls_versions": [])"),
                     "/listeners/0/tls_versions", ""},
        TlsRejection{"CipherWithForbiddenCharacter", terminated(R"(, "tls_ciphers": "AES;rm")"),
                     "/listeners/0/tls_ciphers", "character outside"},
        TlsRejection{"UnknownAlpn", terminated(R"(, "alpn_protocols": ["spdy/3"])"),
                     "/listeners/0/alpn_protocols/0", "is not one of"},
        TlsRejection{"HstsPreloadWithoutMaxAge", terminated(R"(, "hsts_preload": true)"),
                     "/listeners/0/hsts_preload", "need hsts_max_age"},
        TlsRejection{"NegativeHstsMaxAge", terminated(R"(, "hsts_max_age": -1)"),
                     "/listeners/0/hsts_max_age", ""},
        TlsRejection{"TlsOnProxyPool",
                     R"({"pools": [{"id": "p1", "protocol": "PROXY", "tls_enabled": true}]})",
                     "/pools/0/tls_enabled", "HTTP pools only"},
        TlsRejection{"PoolCrlWithoutCa", pool(R"(, "tls_enabled": true, "crl": "/c.crl")"),
                     "/pools/0/crl", "needs ca_certificate"},
        TlsRejection{"ZeroTicketRotation", R"({"settings": {"tls_ticket_key_rotation_s": 0}})",
                     "/settings/tls_ticket_key_rotation_s", ""}),
    [](const testing::TestParamInfo<TlsRejection>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace banyan::dp::config
