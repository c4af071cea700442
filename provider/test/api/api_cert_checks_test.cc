// Certificate references are read with no store transaction open (api/cert_checks.h):
// a cert manager that, inside every read, waits for another write to the same store,
// taking the load balancer's lock as child changes do, to go through. With the read
// inside the API's write transaction that other write waits for the SQLite write lock
// (PostgreSQL, built with BANYAN_API_TEST_POSTGRES: for the load balancer's advisory
// lock), so the read times out; outside it, the other write lands at once. The
// answers are unchanged, and a request refused before its certificate checks reads
// nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "cert_checks_fixture.h"

namespace banyan::provider::api {
namespace {

#ifdef BANYAN_API_TEST_POSTGRES
const auto* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new provider::testing::PostgresEnvironment);
#endif

using namespace std::chrono_literals;
using testing::Reply;

constexpr const char* kSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";

class ApiCertChecksOutsideTheWrite : public cert_checks_test::CertChecksFixture {
 protected:

  std::string createLb() {
    Reply r = api.call("POST", "/v2/lbaas/loadbalancers",
                       std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet + "\"}}");
    EXPECT_EQ(r.status, 201) << r.body;
    std::string id = jstring(r.json["loadbalancer"], "id");
    manager->setLoadBalancer(id);
    return id;
  }
  std::string tlsFields() const {
    return R"(,"default_tls_container_ref":")" + local.tls_ref +
           R"(","client_authentication":"MANDATORY","client_ca_tls_container_ref":"root-ca",)"
           R"("client_crl_container_ref":"root-crl")";
  }
};

TEST_F(ApiCertChecksOutsideTheWrite,
       ListenerAndPoolCreateAndUpdateReadCertificatesWithNoTransactionOpen) {
  std::string lb = createLb();
  Reply listener =
      api.call("POST", "/v2/lbaas/listeners",
               R"({"listener":{"loadbalancer_id":")" + lb +
                   R"(","protocol":"TERMINATED_HTTPS","protocol_port":443)" + tlsFields() + "}}");
  ASSERT_EQ(listener.status, 201) << listener.body;
  std::string listener_id = jstring(listener.json["listener"], "id");
  Reply renamed =
      api.call("PUT", "/v2/lbaas/listeners/" + listener_id,
               R"({"listener":{"name":"x","sni_container_refs":[")" + local.tls_ref + R"("]}})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  Reply pool =
      api.call("POST", "/v2/lbaas/pools",
               R"({"pool":{"loadbalancer_id":")" + lb +
                   R"(","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN","tls_enabled":true,)"
                   R"("tls_container_ref":")" +
                   local.tls_ref + R"(","ca_tls_container_ref":"root-ca"}})");
  ASSERT_EQ(pool.status, 201) << pool.body;
  Reply pool_put = api.call("PUT", "/v2/lbaas/pools/" + jstring(pool.json["pool"], "id"),
                            R"({"pool":{"crl_container_ref":"root-crl"}})");
  ASSERT_EQ(pool_put.status, 200) << pool_put.body;

  EXPECT_GT(manager->reads(), 4);
  EXPECT_EQ(manager->readsThatSawAWrite(), manager->reads())
      << "a certificate was read while the API's write transaction held the store";
}

TEST_F(ApiCertChecksOutsideTheWrite, ABadReferenceGetsTheSame400) {
  std::string lb = createLb();
  Reply r = api.call(
      "POST", "/v2/lbaas/listeners",
      R"({"listener":{"loadbalancer_id":")" + lb +
          R"(","protocol":"TERMINATED_HTTPS","protocol_port":443,)"
          R"("default_tls_container_ref":"no-such-ref","sni_container_refs":["root-ca"]}})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(jstring(r.json, "faultstring"),
            "Could not retrieve certificate: ['root-ca', 'no-such-ref']");
  EXPECT_EQ(manager->readsThatSawAWrite(), manager->reads());
  EXPECT_EQ(api.call("GET", "/v2/lbaas/listeners").json["listeners"].Size(), 0u);
}

TEST_F(ApiCertChecksOutsideTheWrite, ARequestRefusedBeforeItsCertificateChecksReadsNothing) {
  // 404: no such load balancer (checked before the references, as Octavia does).
  Reply missing =
      api.call("POST", "/v2/lbaas/listeners",
               R"({"listener":{"loadbalancer_id":"7f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b",)"
               R"("protocol":"TERMINATED_HTTPS","protocol_port":443)" +
                   tlsFields() + "}}");
  EXPECT_EQ(missing.status, 404) << missing.body;
  // 404: no such pool.
  Reply no_pool = api.call("PUT", "/v2/lbaas/pools/7f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b",
                           R"({"pool":{"ca_tls_container_ref":"root-ca"}})");
  EXPECT_EQ(no_pool.status, 404) << no_pool.body;
  EXPECT_EQ(manager->reads(), 0);
}

}  // namespace
}  // namespace banyan::provider::api
