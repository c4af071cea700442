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

#include "../certs/test_pki.h"
#include "api_server_fixture.h"

namespace banyan::provider::api {
namespace {

#ifdef BANYAN_API_TEST_POSTGRES
const auto* const kPostgresEnv =
    ::testing::AddGlobalTestEnvironment(new provider::testing::PostgresEnvironment);
#endif

using namespace std::chrono_literals;
using certs::test::TestPki;
using testing::ApiServer;
using testing::noopOptions;
using testing::Reply;

constexpr const char* kSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";

// The local cert manager, plus: every read first writes a record of its own to the
// store on another thread and waits (at most 2 s) for that write to commit.
class WaitingCertManager : public certs::CertManager {
 public:
  explicit WaitingCertManager(std::shared_ptr<certs::CertManager> inner)
      : inner_(std::move(inner)) {}
  void setStore(store::Store* store) { store_ = store; }
  // The other write also takes this load balancer's lock, as every child change does
  // (on PostgreSQL an advisory lock the API's transaction holds until it ends).
  void setLoadBalancer(const std::string& lb_id) {
    std::lock_guard<std::mutex> lock(threads_mu_);
    lb_id_ = lb_id;
  }
  int reads() const { return reads_.load(); }
  int readsThatSawAWrite() const { return unblocked_.load(); }

  common::Result<void> grantAccess(const certs::RequestContext& ctx,
                                   const std::string& ref) override {
    return inner_->grantAccess(ctx, ref);
  }
  common::Result<certs::TlsCertificate> getCertificate(const certs::RequestContext& ctx,
                                                       const std::string& ref) override {
    waitForAnotherWrite();
    return inner_->getCertificate(ctx, ref);
  }
  common::Result<std::string> getSecret(const certs::RequestContext& ctx,
                                        const std::string& ref) override {
    waitForAnotherWrite();
    return inner_->getSecret(ctx, ref);
  }

 private:
  void waitForAnotherWrite() {
    int n = ++reads_;
    if (store_ == nullptr) return;
    auto done = std::make_shared<std::promise<bool>>();
    auto landed = done->get_future();
    std::lock_guard<std::mutex> lock(threads_mu_);
    threads_.emplace_back([store = store_, done, n, lb_id = lb_id_] {
      auto r = store->write([&](store::Transaction& tx) -> common::Result<void> {
        if (!lb_id.empty())
          if (auto locked = tx.lockKey("loadbalancer:" + lb_id); !locked) return locked;
        store::Record rec{"probe", "probe-" + std::to_string(n), "", "", "", "{}", 0};
        return tx.insert(rec);
      });
      done->set_value(r.ok());
    });
    // Not landing in time means it waits for the API's transaction, and lands after it.
    if (landed.wait_for(2s) == std::future_status::ready && landed.get()) ++unblocked_;
  }

 public:
  // Before the store goes away.
  void joinWriters() {
    std::lock_guard<std::mutex> lock(threads_mu_);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::shared_ptr<certs::CertManager> inner_;
  store::Store* store_ = nullptr;
  std::atomic<int> reads_{0};
  std::atomic<int> unblocked_{0};
  std::mutex threads_mu_;
  std::vector<std::thread> threads_;
  std::string lb_id_;  // under threads_mu_
};

struct LocalCerts {
  TestPki& pki = certs::test::sharedPki();
  std::string dir;
  std::string tls_ref;
  LocalCerts() {
    char tmpl[] = "/tmp/banyan-api-certchk-XXXXXX";
    dir = mkdtemp(tmpl);
    auto cert = certs::fromPem(pki.read("leaf.pem"), pki.read("leaf.key"), pki.read("int.pem"), "");
    EXPECT_TRUE(cert.ok());
    auto ref = certs::storeLocalCertificate(dir, cert.value());
    EXPECT_TRUE(ref.ok()) << ref.error().message;
    tls_ref = ref.value();
    std::ofstream(dir + "/root-ca.crt") << pki.read("ca.pem");
    std::ofstream(dir + "/root-crl.crt") << pki.read("ca.crl");
  }
  ~LocalCerts() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

class ApiCertChecksOutsideTheWrite : public ::testing::Test {
 protected:
  static ApiOptions options(const std::shared_ptr<WaitingCertManager>& manager) {
    ApiOptions o = noopOptions();
    o.default_provider_driver = "noop_driver";
    o.cert_manager = manager;
    return o;
  }
  void SetUp() override { manager->setStore(&api.store()); }
  void TearDown() override { manager->joinWriters(); }

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

  LocalCerts local;
  std::shared_ptr<WaitingCertManager> manager =
      std::make_shared<WaitingCertManager>(certs::makeLocalCertManager(local.dir));
  ApiServer api{options(manager)};
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
