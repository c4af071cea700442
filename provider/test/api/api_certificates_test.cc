// Certificate references through the API (octavia/api/v2/controllers listener.py and
// pool.py with base.py's _validate_tls_refs / _validate_client_ca_and_crl_refs): the
// real API over HTTP with the local cert manager on a PKI the test makes with openssl.
#include <gtest/gtest.h>

#include <fstream>

#include "../certs/test_pki.h"
#include "api_server_fixture.h"
#include "local_certs.h"

namespace banyan::provider::api {
namespace {

using testing::ApiServer;
using testing::LocalCerts;
using testing::noopOptions;
using testing::Reply;

constexpr const char* kSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";

std::string str(const JsonValue& v, const char* key) { return jstring(v, key); }


ApiOptions withCerts(const LocalCerts& local, const std::string& provider = "noop_driver") {
  ApiOptions o = noopOptions();
  o.default_provider_driver = provider;
  o.cert_manager = certs::makeLocalCertManager(local.dir);
  return o;
}

class ApiCertificates : public ::testing::Test {
 protected:
  LocalCerts local;
  ApiServer api{withCerts(local)};

  std::string createLb() {
    Reply r = api.call("POST", "/v2/lbaas/loadbalancers",
                       std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"}}");
    EXPECT_EQ(r.status, 201) << r.body;
    return str(r.json["loadbalancer"], "id");
  }
  Reply postListener(const std::string& lb, int port, const std::string& extra) {
    return api.call("POST", "/v2/lbaas/listeners",
                    R"({"listener":{"loadbalancer_id":")" + lb +
                        R"(","protocol":"TERMINATED_HTTPS","protocol_port":)" + std::to_string(port) + extra + "}}");
  }
  Reply postPool(const std::string& lb, const std::string& extra) {
    return api.call("POST", "/v2/lbaas/pools",
                    R"({"pool":{"loadbalancer_id":")" + lb +
                        R"(","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN","tls_enabled":true)" + extra + "}}");
  }
};

TEST_F(ApiCertificates, StoredCertificateCaAndCrlAreAccepted) {
  std::string lb = createLb();
  Reply r = postListener(lb, 443,
                         R"(,"default_tls_container_ref":")" + local.tls_ref + R"(","sni_container_refs":[")" +
                             local.tls_ref + R"("],"client_authentication":"MANDATORY",)"
                             R"("client_ca_tls_container_ref":"root-ca","client_crl_container_ref":"root-crl")");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(str(r.json["listener"], "default_tls_container_ref"), local.tls_ref);
  EXPECT_EQ(str(r.json["listener"], "client_crl_container_ref"), "root-crl");
}

TEST_F(ApiCertificates, UnreadableReferencesAreListedInOctaviasOrder) {
  std::string lb = createLb();
  Reply r = postListener(lb, 443,
                         R"(,"default_tls_container_ref":"no-such-default","sni_container_refs":[")" + local.tls_ref +
                             R"(","no-such-sni","../escape"])");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(str(r.json, "faultstring"),
            "Could not retrieve certificate: ['no-such-sni', '../escape', 'no-such-default']");
  // A CA file holds no certificate with a key: it is no TLS certificate.
  Reply ca_as_tls = postListener(lb, 443, R"(,"default_tls_container_ref":"root-ca")");
  EXPECT_EQ(ca_as_tls.status, 400) << ca_as_tls.body;
  EXPECT_EQ(str(ca_as_tls.json, "faultstring"), "Could not retrieve certificate: ['root-ca']");
  Reply missing_ca = postListener(lb, 443,
                                  R"(,"default_tls_container_ref":")" + local.tls_ref +
                                      R"(","client_ca_tls_container_ref":"no-ca","client_crl_container_ref":"no-crl")");
  EXPECT_EQ(missing_ca.status, 400);
  EXPECT_EQ(str(missing_ca.json, "faultstring"), "Could not retrieve certificate: ['no-ca', 'no-crl']");
  // Nothing was stored by the refused requests.
  EXPECT_EQ(api.call("GET", "/v2/lbaas/listeners").json["listeners"].Size(), 0u);
}

TEST_F(ApiCertificates, ACaThatIsNoCertificateAndACrlOfAnotherCaAre400) {
  std::string lb = createLb();
  std::string tls = R"(,"default_tls_container_ref":")" + local.tls_ref + "\"";
  Reply not_ca = postListener(lb, 443, tls + R"(,"client_ca_tls_container_ref":"root-crl")");
  EXPECT_EQ(not_ca.status, 400);
  EXPECT_EQ(str(not_ca.json, "faultstring")
                .rfind("Validation failure: The client authentication CA certificate is invalid. It must be a "
                       "valid x509 PEM format certificate. Error: ",
                       0),
            0u)
      << not_ca.body;
  Reply foreign_crl =
      postListener(lb, 443, tls + R"(,"client_ca_tls_container_ref":"root-ca","client_crl_container_ref":"int-crl")");
  EXPECT_EQ(foreign_crl.status, 400);
  EXPECT_EQ(str(foreign_crl.json, "faultstring"),
            "Validation failure: The CRL specified is not valid for client certificate authority reference "
            "supplied.");
  Reply crl_as_crl_ok =
      postListener(lb, 443, tls + R"(,"client_ca_tls_container_ref":"int-ca","client_crl_container_ref":"int-crl")");
  EXPECT_EQ(crl_as_crl_ok.status, 201) << crl_as_crl_ok.body;
}

TEST_F(ApiCertificates, ListenerUpdateChecksWhatItNamesAndTheCaItKeeps) {
  std::string lb = createLb();
  Reply created = postListener(lb, 443,
                               R"(,"default_tls_container_ref":")" + local.tls_ref +
                                   R"(","client_ca_tls_container_ref":"root-ca")");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string id = str(created.json["listener"], "id");
  std::string path = "/v2/lbaas/listeners/" + id;
  Reply bad_default = api.call("PUT", path, R"({"listener":{"default_tls_container_ref":"gone"}})");
  EXPECT_EQ(bad_default.status, 400);
  EXPECT_EQ(str(bad_default.json, "faultstring"), "Could not retrieve certificate: ['gone']");
  Reply bad_sni = api.call("PUT", path, R"({"listener":{"sni_container_refs":["gone-sni"]}})");
  EXPECT_EQ(str(bad_sni.json, "faultstring"), "Could not retrieve certificate: ['gone-sni']");
  Reply foreign_crl = api.call("PUT", path, R"({"listener":{"client_crl_container_ref":"int-crl"}})");
  EXPECT_EQ(foreign_crl.status, 400);
  EXPECT_EQ(str(foreign_crl.json, "faultstring"),
            "Validation failure: The CRL specified is not valid for client certificate authority reference "
            "supplied.");
  EXPECT_EQ(str(api.call("GET", path).json["listener"], "client_crl_container_ref"), "");
  Reply crl = api.call("PUT", path, R"({"listener":{"client_crl_container_ref":"root-crl"}})");
  EXPECT_EQ(crl.status, 200) << crl.body;
  Reply renamed = api.call("PUT", path, R"({"listener":{"name":"web"}})");
  EXPECT_EQ(renamed.status, 200) << renamed.body;
  // The stored CA is checked again on a later update: once it is gone, updates say so.
  std::filesystem::remove(local.dir + "/root-ca.crt");
  Reply after = api.call("PUT", path, R"({"listener":{"name":"web2"}})");
  EXPECT_EQ(after.status, 400);
  EXPECT_EQ(str(after.json, "faultstring"), "Could not retrieve certificate: ['root-ca']");
}

TEST_F(ApiCertificates, PoolCreateAndUpdateCheckTheirReferences) {
  std::string lb = createLb();
  Reply missing = postPool(lb, R"(,"tls_container_ref":"no-client-cert")");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(str(missing.json, "faultstring"), "Could not retrieve certificate: ['no-client-cert']");
  Reply bad_ca = postPool(lb, R"(,"ca_tls_container_ref":"root-crl")");
  EXPECT_EQ(bad_ca.status, 400);
  EXPECT_EQ(str(bad_ca.json, "faultstring").rfind("Validation failure: The client authentication CA certificate", 0),
            0u);
  Reply bad_crl = postPool(lb, R"(,"ca_tls_container_ref":"root-ca","crl_container_ref":"int-crl")");
  EXPECT_EQ(bad_crl.status, 400);
  Reply ok = postPool(lb, R"(,"tls_container_ref":")" + local.tls_ref +
                              R"(","ca_tls_container_ref":"root-ca","crl_container_ref":"root-crl")");
  ASSERT_EQ(ok.status, 201) << ok.body;
  std::string path = "/v2/lbaas/pools/" + str(ok.json["pool"], "id");
  Reply put_bad_cert = api.call("PUT", path, R"({"pool":{"tls_container_ref":"gone"}})");
  EXPECT_EQ(put_bad_cert.status, 400);
  EXPECT_EQ(str(put_bad_cert.json, "faultstring"), "Could not retrieve certificate: ['gone']");
  Reply put_foreign_crl = api.call("PUT", path, R"({"pool":{"crl_container_ref":"int-crl"}})");
  EXPECT_EQ(put_foreign_crl.status, 400);
  Reply put_ca = api.call("PUT", path, R"({"pool":{"ca_tls_container_ref":"int-ca","crl_container_ref":"int-crl"}})");
  EXPECT_EQ(put_ca.status, 200) << put_ca.body;
  EXPECT_EQ(str(api.call("GET", path).json["pool"], "ca_tls_container_ref"), "int-ca");
}

TEST_F(ApiCertificates, FullGraphCreateChecksListenerAndPoolReferences) {
  const std::string head = std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","listeners":[)";
  Reply bad = api.call("POST", "/v2/lbaas/loadbalancers",
                       head + R"({"protocol":"TERMINATED_HTTPS","protocol_port":443,)"
                              R"("default_tls_container_ref":"nope"}]}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(str(bad.json, "faultstring"), "Could not retrieve certificate: ['nope']");
  Reply bad_pool = api.call("POST", "/v2/lbaas/loadbalancers",
                            head + R"({"protocol":"HTTP","protocol_port":80,"default_pool":{"name":"p","protocol":"HTTP",)"
                                   R"("lb_algorithm":"ROUND_ROBIN","tls_enabled":true,"ca_tls_container_ref":"nope"}}]}})");
  EXPECT_EQ(bad_pool.status, 400);
  EXPECT_EQ(str(bad_pool.json, "faultstring"), "Could not retrieve certificate: ['nope']");
  EXPECT_EQ(api.call("GET", "/v2/lbaas/loadbalancers").json["loadbalancers"].Size(), 0u);
}

// The amphora provider no longer answers 501 for TLS: the controller places the
// certificates; the API only checks them.
TEST(ApiCertificatesBanyanProvider, TerminatedHttpsAndReencryptingPoolsAreQueued) {
  LocalCerts local;
  ApiServer api(withCerts(local, "amphora"));
  const std::string head = std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + R"(","listeners":[)";
  Reply r = api.call("POST", "/v2/lbaas/loadbalancers",
                     head + R"({"protocol":"TERMINATED_HTTPS","protocol_port":443,"default_tls_container_ref":")" +
                         local.tls_ref +
                         R"(","client_authentication":"OPTIONAL","client_ca_tls_container_ref":"root-ca",)"
                         R"("client_crl_container_ref":"root-crl","default_pool":{"name":"p","protocol":"HTTP",)"
                         R"("lb_algorithm":"ROUND_ROBIN","tls_enabled":true,"tls_container_ref":")" +
                         local.tls_ref + R"(","ca_tls_container_ref":"int-ca","members":[{"address":"192.0.2.10",)"
                                         R"("protocol_port":443}]}}]}})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto pending = api.store().pendingJobs();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending.value(), 1);
  // What the amphorae cannot run is still refused.
  Reply sctp = api.call("POST", "/v2/lbaas/loadbalancers", head + R"({"protocol":"SCTP","protocol_port":53}]}})");
  EXPECT_EQ(sctp.status, 501) << sctp.body;
}

// Without a cert manager the references are stored unchecked (as before the wiring).
TEST(ApiCertificatesNone, WithoutACertManagerReferencesAreNotChecked) {
  ApiServer api(noopOptions());
  Reply lb = api.call("POST", "/v2/lbaas/loadbalancers",
                      std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"}}");
  ASSERT_EQ(lb.status, 201);
  Reply r = api.call("POST", "/v2/lbaas/listeners",
                     R"({"listener":{"loadbalancer_id":")" + str(lb.json["loadbalancer"], "id") +
                         R"(","protocol":"TERMINATED_HTTPS","protocol_port":443,"default_tls_container_ref":"x"}})");
  EXPECT_EQ(r.status, 201) << r.body;
}

}  // namespace
}  // namespace banyan::provider::api
