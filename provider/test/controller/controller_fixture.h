// The controller's flows end to end in one process, with the real parts that need no
// host changes and fakes at the seams that do (STYLE.md §9):
//   real: the Octavia API (ApiService, "amphora" provider: it writes objects and queues
//         jobs), SQLite in a per-test temp dir, the controller and its flows and
//         statuses, the local cert manager on a PKI made with the openssl CLI, the
//         deployment PKI;
//   fake: compute and network drivers (fake_drivers.h) and the amphora's agent
//         (FakeAmphoraClient below: certificates and documents kept in memory, every
//         call recorded).
// Jobs are run by drain(), as a worker would: claim, runJob, finish.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "../certs/test_pki.h"
#include "amphora/pki.h"
#include "api/api_service.h"
#include "auth/noauth.h"
#include "auth/policy.h"
#include "banyan/common/digest.h"
#include "certs/cert_manager.h"
#include "certs/placement.h"
#include "certs/tls_certificate.h"
#include "controller/amphora_client.h"
#include "controller/controller.h"
#include "fake_drivers.h"
#include "store/store.h"

namespace banyan::provider::controller::testing {

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Empties `list` under `mu` and returns what it held (the recording fakes).
inline std::vector<std::string> takeAll(std::mutex& mu, std::vector<std::string>& list) {
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> out;
  out.swap(list);
  return out;
}

using common::ErrorCode;
using common::makeError;
using common::Result;

// An amphora agent in memory, keyed by the management address the controller dials.
// Certificates are stored and listed as the agent does (name -> sha256 of the file and
// its absolute path); calls are recorded so tests can say exactly what was sent.
class FakeAmphoraClient : public AmphoraClient {
 public:
  struct AgentConfigPush {
    std::vector<std::string> controller_ip_port_list;
    double heartbeat_interval = 0;
    std::string heartbeat_key;
    std::vector<std::string> management_cidrs;
  };
  struct Amphora {
    std::vector<AgentConfigPush> agent_configs;       // every PUT /1.0/agent-config, in order
    std::map<std::string, std::string> certificates;  // name -> PEM
    std::vector<std::string> documents;               // every PUT /1.0/config, in order
    std::vector<std::string> plugged_macs;            // PUT /1.0/plug/network
  };

  // An agent older than GET /1.0/certificates: the listing answers 404, which
  // AgentClient reports as kInternal.
  void setListingMissing(bool missing) {
    std::lock_guard<std::mutex> lock(mu_);
    listing_missing_ = missing;
  }
  // A new amphora that got the address of a deleted one starts with nothing.
  void forget(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    amps_.erase(address);
  }
  // The names PUT and DELETEd since the last call, on every amphora.
  std::vector<std::string> takePuts() { return take(puts_); }
  std::vector<std::string> takeDeletes() { return take(deletes_); }
  Amphora amphora(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    return amps_[address];
  }
  static std::string pathOf(const Endpoint& amp, std::string_view name) {
    return "/amphorae/" + amp.address + "/state/certs/" + std::string(name) + ".pem";
  }

  Result<std::string> info(const Endpoint&) override { return std::string("{\"api_version\":\"1.0\"}"); }
  Result<amphora::PutConfigResult> putConfig(const Endpoint& amp, const std::string& document) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& a = amps_[amp.address];
    amphora::PutConfigResult r;
    r.unchanged = !a.documents.empty() && a.documents.back() == document;
    a.documents.push_back(document);
    r.generation = static_cast<int64_t>(a.documents.size());
    r.sha256 = common::sha256Hex(document);
    return r;
  }
  Result<void> putAgentConfig(const Endpoint& amp, const std::vector<std::string>& targets, double interval,
                              const std::string& key, const std::vector<std::string>& management_cidrs) override {
    std::lock_guard<std::mutex> lock(mu_);
    amps_[amp.address].agent_configs.push_back(AgentConfigPush{targets, interval, key, management_cidrs});
    return {};
  }
  Result<std::string> putCertificate(const Endpoint& amp, std::string_view name, const std::string& pem) override {
    std::lock_guard<std::mutex> lock(mu_);
    amps_[amp.address].certificates[std::string(name)] = pem;
    puts_.emplace_back(name);
    return pathOf(amp, name);
  }
  Result<std::map<std::string, StoredCertificate>> listCertificates(const Endpoint& amp) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (listing_missing_)
      return makeError(ErrorCode::kInternal, "GET /1.0/certificates: 404 Not Found", "/1.0/certificates");
    std::map<std::string, StoredCertificate> out;
    for (const auto& [name, pem] : amps_[amp.address].certificates)
      out[name] = StoredCertificate{common::sha256Hex(pem), pathOf(amp, name)};
    return out;
  }
  Result<void> deleteCertificate(const Endpoint& amp, std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    amps_[amp.address].certificates.erase(std::string(name));
    deletes_.emplace_back(name);
    return {};
  }
  Result<void> rotateServerCertificate(const Endpoint&, const amphora::CertBundle&) override { return {}; }
  Result<std::string> plugVip(const Endpoint&, const amphora::AgentClient::PlugVip&) override {
    return std::string("eth1");
  }
  Result<std::string> plugNetwork(const Endpoint& amp, const amphora::AgentClient::PlugNetwork& plug) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& macs = amps_[amp.address].plugged_macs;
    macs.push_back(plug.mac_address);
    return "eth" + std::to_string(1 + macs.size());
  }
  Result<void> putVrrp(const Endpoint&, const amphora::AgentClient::Vrrp&) override { return {}; }

 private:
  std::vector<std::string> take(std::vector<std::string>& list) { return takeAll(mu_, list); }
  std::mutex mu_;
  bool listing_missing_ = false;
  std::map<std::string, Amphora> amps_;
  std::vector<std::string> puts_, deletes_;
};

// The controller's cert manager: forwards to the real one and counts the reads.
class CountingCertManager : public certs::CertManager {
 public:
  explicit CountingCertManager(std::shared_ptr<certs::CertManager> inner) : inner_(std::move(inner)) {}
  int reads() const { return reads_.load(); }
  Result<void> grantAccess(const certs::RequestContext& ctx, const std::string& ref) override {
    return inner_->grantAccess(ctx, ref);
  }
  Result<certs::TlsCertificate> getCertificate(const certs::RequestContext& ctx, const std::string& ref) override {
    ++reads_;
    return inner_->getCertificate(ctx, ref);
  }
  Result<std::string> getSecret(const certs::RequestContext& ctx, const std::string& ref) override {
    ++reads_;
    return inner_->getSecret(ctx, ref);
  }

 private:
  std::shared_ptr<certs::CertManager> inner_;
  std::atomic<int> reads_{0};
};

// The fake compute driver, knowing its management network (as the netns driver does).
class ManagedComputeDriver : public drivers::FakeComputeDriver {
 public:
  void setManagementCidrs(std::vector<std::string> cidrs) {
    std::lock_guard<std::mutex> lock(mu_);
    cidrs_ = std::move(cidrs);
  }
  std::vector<std::string> managementCidrs() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return cidrs_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> cidrs_;
};

class NoSleep : public Sleeper {
 public:
  void sleep(std::chrono::milliseconds) override {}
};

inline std::string tempDir(const char* what) {
  std::string tmpl = std::string("/tmp/banyan-") + what + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

class ControllerFixture : public ::testing::Test {
 protected:
  static constexpr const char* kVipSubnet = "5f6a7b8c-1d2e-4f30-8a9b-0c1d2e3f4a5b";

  // The API service on store_ (noauth, project-a by default, the fixture's cert manager).
  void makeApi() {
    api::ApiOptions o;
    o.noauth_project_id = "project-a";
    o.default_listener_ciphers = api::kOwaspSuiteBCiphers;
    o.default_pool_ciphers = api::kOwaspSuiteBCiphers;
    o.cert_manager = cert_manager_;
    api_ = std::make_unique<api::ApiService>(*store_, *authenticator_, *policy_, o);
  }

  void SetUp() override {
    dir_ = tempDir("controller-test");
    ASSERT_FALSE(dir_.empty());
    cert_dir_ = dir_ + "/certificates";
    std::filesystem::create_directories(cert_dir_);
    auto store = store::openStore("sqlite:///" + dir_ + "/banyan.sqlite");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store.value());
    cert_manager_ = certs::makeLocalCertManager(cert_dir_);

    authenticator_ = auth::makeNoauthAuthenticator();
    auto policy = auth::makeOctaviaPolicy("", true);
    ASSERT_TRUE(policy.ok()) << policy.error().message;
    policy_ = std::move(policy.value());
    makeApi();

    amphora::PkiOptions pki_options;
    pki_options.dir = dir_ + "/pki";
    auto pki = amphora::Pki::loadOrCreate(pki_options);
    ASSERT_TRUE(pki.ok()) << pki.error().message;
    pki_ = std::move(pki.value());

    counting_ = std::make_shared<CountingCertManager>(cert_manager_);
    options_.cert_manager = counting_;
    options_.retry.max_attempts = 2;
    options_.retry.initial_backoff = std::chrono::milliseconds(1);
    options_.amp_active_wait = std::chrono::milliseconds(1000);
    options_.clock = [this] { return now_; };
    remakeController();
  }

  // A new controller with options_ (a restarted worker: nothing cached).
  void remakeController() {
    controller_.reset();
    controller_ = std::make_unique<Controller>(*store_, compute_, network_, agent_, *pki_, options_, sleeper_);
  }

  void TearDown() override {
    controller_.reset();
    api_.reset();
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Calls the API in process; fails the test unless it answers EXPECT.
  rapidjson::Document call(const std::string& method, const std::string& path, const std::string& body,
                           int expect) {
    common::HttpRequest r;
    r.method = method;
    r.path = path.substr(0, path.find('?'));
    r.raw_path = r.path;
    if (auto q = path.find('?'); q != std::string::npos) {
      r.query = path.substr(q + 1);
      auto eq = r.query.find('=');
      r.query_params.emplace_back(r.query.substr(0, eq), eq == std::string::npos ? "" : r.query.substr(eq + 1));
    }
    r.body = body;
    r.peer_address = "127.0.0.1";
    r.headers = {{"Accept", "application/json"}, {"Content-Type", "application/json"}, {"Host", "localhost"}};
    if (!project_.empty()) r.headers.emplace_back("X-Project-Id", project_);
    common::HttpResponse resp = api_->handle(r);
    EXPECT_EQ(resp.status, expect) << method << " " << path << " " << body << " -> " << resp.body;
    rapidjson::Document d;
    d.Parse(resp.body.c_str());
    return d;
  }
  // POSTs {"<root>": {<fields>}}; returns the new object's id.
  std::string create(const std::string& path, const std::string& root, const std::string& fields) {
    auto d = call("POST", path, "{\"" + root + "\":{" + fields + "}}", 201);
    if (!d.IsObject() || !d.HasMember(root.c_str())) return "";
    return d[root.c_str()]["id"].GetString();
  }

  // Runs every queued job, as a worker does. Returns how many ran.
  int drain() {
    int ran = 0;
    for (int guard = 0; guard < 50; ++guard) {
      auto job = store_->claimJob("test-worker", std::chrono::seconds(30));
      EXPECT_TRUE(job.ok()) << job.error().message;
      if (!job.ok() || !job->has_value()) break;
      auto outcome = controller_->runJob(**job);
      EXPECT_TRUE(outcome.ok()) << outcome.error().message;
      EXPECT_TRUE(store_->finishJob((*job)->id, "test-worker").ok());
      ++ran;
    }
    return ran;
  }

  // A stored object's body field ("" when absent or the object is gone).
  std::string field(const std::string& kind, const std::string& id, const char* key) {
    std::string out;
    auto r = store_->read([&](store::Transaction& tx) -> Result<void> {
      auto rec = tx.get(kind, id);
      if (!rec.ok()) return rec.error();
      if (!rec->has_value()) return {};
      rapidjson::Document d;
      d.Parse((*rec)->body.c_str());
      if (d.IsObject() && d.HasMember(key) && d[key].IsString()) out = d[key].GetString();
      return {};
    });
    EXPECT_TRUE(r.ok());
    return out;
  }
  std::string status(const std::string& kind, const std::string& id) {
    return field(kind, id, "provisioning_status");
  }
  bool exists(const std::string& kind, const std::string& id) {
    bool found = false;
    auto r = store_->read([&](store::Transaction& tx) -> Result<void> {
      auto rec = tx.get(kind, id);
      if (!rec.ok()) return rec.error();
      found = rec->has_value();
      return {};
    });
    EXPECT_TRUE(r.ok());
    return found;
  }
  // Stores the test PKI's leaf (chain and key) in the local cert manager as tls_ref_
  // and its CA as kCaRef: what a TERMINATED_HTTPS listener with client auth names.
  void storeListenerCertificates() {
    auto& pki = certs::test::sharedPki();
    auto cert = certs::fromPem(pki.read("leaf.pem"), pki.read("leaf.key"), pki.read("int.pem"), "");
    ASSERT_TRUE(cert.ok()) << cert.error().message;
    auto ref = certs::storeLocalCertificate(cert_dir_, cert.value());
    ASSERT_TRUE(ref.ok()) << ref.error().message;
    tls_ref_ = ref.value();
    writeSecret(kCaRef, pki.read("ca.pem"));
  }
  // The local manager's CA/CRL reference is <ref>.crt in storage_path.
  void writeSecret(const std::string& ref, const std::string& pem) {
    std::ofstream(cert_dir_ + "/" + ref + ".crt", std::ios::trunc) << pem;
  }
  // A TERMINATED_HTTPS listener with the default certificate and client CA stored above.
  std::string tlsListener(const std::string& lb, int port = 443) {
    return create("/v2/lbaas/listeners", "listener",
                  "\"loadbalancer_id\":\"" + lb + "\",\"protocol\":\"TERMINATED_HTTPS\",\"protocol_port\":" +
                      std::to_string(port) + ",\"default_tls_container_ref\":\"" + tls_ref_ +
                      "\",\"client_authentication\":\"MANDATORY\",\"client_ca_tls_container_ref\":\"" + kCaRef +
                      "\"");
  }
  void rename(const std::string& listener, const std::string& name) {
    call("PUT", "/v2/lbaas/listeners/" + listener, "{\"listener\":{\"name\":\"" + name + "\"}}", 200);
  }

  // A string field of each of the load balancer's amphorae.
  std::vector<std::string> amphoraField(const std::string& lb_id, const char* field) {
    std::vector<std::string> out;
    auto r = store_->read([&](store::Transaction& tx) -> Result<void> {
      store::Query q;
      q.kind = "amphora";
      q.load_balancer_id = lb_id;
      auto amps = tx.list(q);
      if (!amps.ok()) return amps.error();
      for (const auto& a : *amps) {
        rapidjson::Document d;
        d.Parse(a.body.c_str());
        if (d.IsObject() && d.HasMember(field) && d[field].IsString()) out.push_back(d[field].GetString());
      }
      return {};
    });
    EXPECT_TRUE(r.ok());
    return out;
  }
  // The management addresses of the load balancer's amphorae.
  std::vector<std::string> amphoraAddresses(const std::string& lb_id) { return amphoraField(lb_id, "lb_network_ip"); }
  // The compute ids of the load balancer's amphorae.
  std::vector<std::string> computeIds(const std::string& lb_id) { return amphoraField(lb_id, "compute_id"); }

  // A load balancer created through the API and brought ACTIVE by the controller.
  std::string activeLoadBalancer() {
    std::string lb = create("/v2/lbaas/loadbalancers", "loadbalancer",
                            std::string("\"vip_subnet_id\":\"") + kVipSubnet + "\"");
    drain();
    EXPECT_EQ(status("loadbalancer", lb), "ACTIVE");
    return lb;
  }

  static constexpr const char* kCaRef = "client-ca";
  std::string dir_, cert_dir_;
  std::string tls_ref_;  // set by storeListenerCertificates
  std::string project_;  // X-Project-Id of API calls; "" = the noauth default (project-a)
  ControllerOptions options_;
  std::shared_ptr<CountingCertManager> counting_;
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};  // the cache's clock
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<certs::CertManager> cert_manager_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<auth::Policy> policy_;
  std::unique_ptr<api::ApiService> api_;
  std::unique_ptr<amphora::Pki> pki_;
  ManagedComputeDriver compute_;
  drivers::FakeNetworkDriver network_;
  FakeAmphoraClient agent_;
  NoSleep sleeper_;
  std::unique_ptr<Controller> controller_;
};

}  // namespace banyan::provider::controller::testing
