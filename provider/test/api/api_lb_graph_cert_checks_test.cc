// The load balancer full-graph create reads the certificate references of its
// listeners and pools with no store transaction open (api/cert_checks.h), as listener
// and pool create/update do: a cert manager that, inside every read, waits (at most
// 2 s) for another write to the same store to commit. Inside the API's SQLite write
// transaction that write would wait for the write lock; outside it, it lands at once.
// Octavia's answers, and which error comes first, are unchanged.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "cert_checks_fixture.h"

namespace banyan::provider::api {
namespace {

using namespace std::chrono_literals;
using testing::Reply;

constexpr const char* kSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";

class LbGraphCertChecks : public cert_checks_test::CertChecksFixture {
 protected:

  // A graph: a TLS pool named "p" and TERMINATED_HTTPS listeners using it, one per
  // default_tls_container_ref in LISTENER_REFS (ports 443, 444, ...).
  std::string graph(const std::vector<std::string>& listener_refs, const std::string& pool_extra = "") const {
    std::string listeners;
    int port = 443;
    for (const auto& ref : listener_refs) {
      if (!listeners.empty()) listeners += ",";
      listeners += R"({"protocol":"TERMINATED_HTTPS","protocol_port":)" + std::to_string(port++) +
                   R"(,"default_tls_container_ref":")" + ref +
                   R"(","client_authentication":"MANDATORY","client_ca_tls_container_ref":"root-ca",)"
                   R"("default_pool":{"name":"p"}})";
    }
    return std::string(R"({"loadbalancer":{"vip_subnet_id":")") + kSubnet +
           R"(","pools":[{"name":"p","protocol":"HTTP","lb_algorithm":"ROUND_ROBIN","tls_enabled":true,)"
           R"("tls_container_ref":")" +
           local.tls_ref + R"(","ca_tls_container_ref":"root-ca")" + pool_extra + R"(}],"listeners":[)" +
           listeners + "]}}";
  }
  size_t loadBalancers() { return api.call("GET", "/v2/lbaas/loadbalancers").json["loadbalancers"].Size(); }
};

TEST_F(LbGraphCertChecks, AFullGraphCreateReadsCertificatesWithNoTransactionOpen) {
  Reply r = api.call("POST", "/v2/lbaas/loadbalancers", graph({local.tls_ref, local.tls_ref}));
  ASSERT_EQ(r.status, 201) << r.body;
  const auto& lb = r.json["loadbalancer"];
  ASSERT_EQ(lb["listeners"].Size(), 2u) << r.body;
  ASSERT_EQ(lb["pools"].Size(), 1u) << r.body;
  EXPECT_EQ(jstring(lb["listeners"][0], "default_pool_id"), jstring(lb["pools"][0], "id"));
  EXPECT_EQ(jstring(lb["listeners"][1], "default_tls_container_ref"), local.tls_ref);
  // The certificate and the CA, each checked once for the whole request (the same
  // reference gets the same answer wherever the graph names it).
  EXPECT_EQ(manager->reads(), 2);
  EXPECT_EQ(manager->readsThatSawAWrite(), manager->reads())
      << "a certificate was read while the API's write transaction held the store";
  EXPECT_EQ(loadBalancers(), 1u) << "the graph was created once";
  EXPECT_EQ(api.call("GET", "/v2/lbaas/listeners").json["listeners"].Size(), 2u);
  EXPECT_EQ(api.call("GET", "/v2/lbaas/pools").json["pools"].Size(), 1u);
}

TEST_F(LbGraphCertChecks, TheFirstBadReferenceOfTheGraphGetsOctaviasErrorAndNothingIsCreated) {
  // The second listener's reference is bad: the pool's and the first listener's checks
  // pass, and the answer is the second listener's error.
  Reply r = api.call("POST", "/v2/lbaas/loadbalancers", graph({local.tls_ref, "no-such-ref"}));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(jstring(r.json, "faultstring"), "Could not retrieve certificate: ['no-such-ref']") << r.body;
  EXPECT_EQ(manager->readsThatSawAWrite(), manager->reads());
  EXPECT_EQ(loadBalancers(), 0u);
  // The pool comes first in the graph, so its bad CRL is the error even though a
  // listener's reference is bad too.
  Reply pool_first =
      api.call("POST", "/v2/lbaas/loadbalancers", graph({"no-such-ref"}, R"(,"crl_container_ref":"no-such-crl")"));
  EXPECT_EQ(pool_first.status, 400) << pool_first.body;
  EXPECT_NE(jstring(pool_first.json, "faultstring").find("no-such-crl"), std::string::npos) << pool_first.body;
  EXPECT_EQ(jstring(pool_first.json, "faultstring").find("no-such-ref"), std::string::npos) << pool_first.body;
  EXPECT_EQ(loadBalancers(), 0u);
}

TEST_F(LbGraphCertChecks, AGraphRefusedBeforeItsCertificateChecksReadsNothing) {
  // An unnamed pool is refused before any listener or pool is made.
  std::string body = graph({local.tls_ref});
  body.replace(body.find(R"("name":"p","protocol")"), 11, "");
  Reply r = api.call("POST", "/v2/lbaas/loadbalancers", body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(jstring(r.json, "faultstring"),
            "Validation failure: Pools must be named when creating a fully populated loadbalancer.")
      << r.body;
  EXPECT_EQ(manager->reads(), 0);
  EXPECT_EQ(loadBalancers(), 0u);
}

}  // namespace
}  // namespace banyan::provider::api
