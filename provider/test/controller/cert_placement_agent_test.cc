// Certificate placement against a real banyan-agent (system_driver = noop, with the
// real banyan-proxy it supervises) on 127.0.0.1, reached over mutual TLS through the
// real AgentClient: the agent's own listing (sha256 of the stored files) is what decides
// that an unchanged push sends nothing, and the proxy loads the files at the paths the
// agent answered. The load balancer is created with the fake agent of the fixture, then
// its amphora record is pointed at the real agent.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <fstream>

#include "amphora_test_env.h"
#include "certs/placement.h"
#include "certs/tls_certificate.h"
#include "controller_fixture.h"

namespace banyan::provider::controller::testing {
namespace {

using certs::test::sharedPki;
namespace amp_testing = amphora::testing;

// The real client, recording the names PUT and DELETEd.
class RecordingAmphoraClient : public AmphoraClient {
 public:
  explicit RecordingAmphoraClient(amphora::AgentClient& real) : real_(makeAgentAmphoraClient(real)) {}
  std::vector<std::string> takePuts() { return take(puts_); }
  std::vector<std::string> takeDeletes() { return take(deletes_); }
  int configs() {
    std::lock_guard<std::mutex> lock(mu_);
    return configs_;
  }

  Result<std::string> info(const Endpoint& amp) override { return real_->info(amp); }
  Result<amphora::PutConfigResult> putConfig(const Endpoint& amp, const std::string& document) override {
    auto r = real_->putConfig(amp, document);
    std::lock_guard<std::mutex> lock(mu_);
    if (r.ok()) ++configs_;
    return r;
  }
  Result<void> putAgentConfig(const Endpoint& amp, const std::vector<std::string>& targets, double interval,
                              const std::string& key, const std::vector<std::string>& management_cidrs) override {
    return real_->putAgentConfig(amp, targets, interval, key, management_cidrs);
  }
  Result<std::string> putCertificate(const Endpoint& amp, std::string_view name, const std::string& pem) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      puts_.emplace_back(name);
    }
    return real_->putCertificate(amp, name, pem);
  }
  Result<std::map<std::string, StoredCertificate>> listCertificates(const Endpoint& amp) override {
    return real_->listCertificates(amp);
  }
  Result<void> deleteCertificate(const Endpoint& amp, std::string_view name) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      deletes_.emplace_back(name);
    }
    return real_->deleteCertificate(amp, name);
  }
  Result<void> rotateServerCertificate(const Endpoint& amp, const amphora::CertBundle& bundle) override {
    return real_->rotateServerCertificate(amp, bundle);
  }
  Result<std::string> plugVip(const Endpoint& amp, const amphora::AgentClient::PlugVip& plug) override {
    return real_->plugVip(amp, plug);
  }
  Result<std::string> plugNetwork(const Endpoint& amp, const amphora::AgentClient::PlugNetwork& plug) override {
    return real_->plugNetwork(amp, plug);
  }
  Result<void> putVrrp(const Endpoint& amp, const amphora::AgentClient::Vrrp& vrrp) override {
    return real_->putVrrp(amp, vrrp);
  }

 private:
  std::vector<std::string> take(std::vector<std::string>& list) { return takeAll(mu_, list); }
  std::unique_ptr<AmphoraClient> real_;
  std::mutex mu_;
  std::vector<std::string> puts_, deletes_;
  int configs_ = 0;
};

class CertPlacementOnARealAgent : public ControllerFixture {
 protected:
  void SetUp() override {
    ControllerFixture::SetUp();
    if (HasFatalFailure()) return;
    storeListenerCertificates();
    if (HasFatalFailure()) return;

    // A load balancer whose one amphora is the real agent on 127.0.0.1; its listeners
    // bind there too (the proxy runs on this host).
    lb_ = activeLoadBalancer();
    std::string amphora_id;
    auto moved = store_->write([&](store::Transaction& tx) -> Result<void> {
      store::Query q;
      q.kind = "amphora";
      q.load_balancer_id = lb_;
      auto amps = tx.list(q);
      if (!amps.ok()) return amps.error();
      if (amps->size() != 1) return makeError(ErrorCode::kInternal, "expected one amphora");
      amphora_id = (*amps)[0].id;
      if (auto ok = setField(tx, "amphora", amphora_id, "lb_network_ip", "127.0.0.1"); !ok) return ok;
      return setField(tx, "loadbalancer", lb_, "vip_address", "127.0.0.1");
    });
    ASSERT_TRUE(moved.ok()) << moved.error().message;

    auto server = pki_->issueServerCert(amphora_id, "127.0.0.1");
    ASSERT_TRUE(server.ok()) << server.error().message;
    ASSERT_TRUE(pki_->controllerClientCert().ok());
    amp_testing::AgentFiles files;
    files.server_cert = agent_dir_.path() + "/server.pem";
    files.server_key = agent_dir_.path() + "/server.key";
    files.client_ca = pki_->caCertFile();
    amp_testing::writeFile(files.server_cert, server->cert_pem);
    amp_testing::writeFile(files.server_key, server->key_pem);
    ASSERT_TRUE(agent_process_.start(agent_dir_.path(), amphora_id, files))
        << "agent did not start:\n" << agent_process_.log();

    amphora::AgentClientOptions client_options;
    client_options.ca_file = pki_->caCertFile();
    client_options.client_cert_file = pki_->clientCertFile();
    client_options.client_key_file = pki_->clientKeyFile();
    auto client = amphora::AgentClient::make(client_options);
    ASSERT_TRUE(client.ok()) << client.error().message;
    agent_client_ = std::move(*client);
    recording_ = std::make_unique<RecordingAmphoraClient>(*agent_client_);
    options_.agent_port = agent_process_.port();
    controller_ = std::make_unique<Controller>(*store_, compute_, network_, *recording_, *pki_, options_, sleeper_);
    endpoint_ = {"127.0.0.1", agent_process_.port()};
  }

  void TearDown() override {
    agent_process_.stop();  // by PID, also when the test failed
    if (HasFailure()) fprintf(stderr, "--- agent log ---\n%s\n", agent_process_.log().c_str());
    ControllerFixture::TearDown();
  }

  static Result<void> setField(store::Transaction& tx, const std::string& kind, const std::string& id,
                               const char* key, const std::string& value) {
    auto rec = tx.get(kind, id);
    if (!rec.ok()) return rec.error();
    if (!rec->has_value()) return makeError(ErrorCode::kNotFound, kind + " " + id);
    store::Record record = **rec;
    rapidjson::Document d;
    d.Parse(record.body.c_str());
    d.RemoveMember(key);
    d.AddMember(rapidjson::Value(key, d.GetAllocator()), rapidjson::Value(value.c_str(), d.GetAllocator()),
                d.GetAllocator());
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    d.Accept(w);
    record.body = b.GetString();
    return tx.update(record);
  }

  // The tls-/pem- files the agent holds, by name -> sha256.
  std::map<std::string, std::string> placedOnAgent() {
    std::map<std::string, std::string> out;
    auto listed = agent_client_->listCertificates(endpoint_);
    EXPECT_TRUE(listed.ok()) << listed.error().message;
    if (!listed.ok()) return out;
    for (const auto& [name, stored] : *listed) {
      if (name.rfind("tls-", 0) == 0 || name.rfind("pem-", 0) == 0) out[name] = stored.sha256;
    }
    return out;
  }
  std::string lb_;
  amp_testing::TempDir agent_dir_;
  amp_testing::AgentProcess agent_process_;
  std::unique_ptr<amphora::AgentClient> agent_client_;
  std::unique_ptr<RecordingAmphoraClient> recording_;
  AmphoraClient::Endpoint endpoint_;
};

TEST_F(CertPlacementOnARealAgent, OnlyChangedFilesArePutAndUnusedOnesAreDeleted) {
  const std::string tls_file = certs::placedName(tls_ref_, true);
  const std::string ca_file = certs::placedName(kCaRef, false);
  int port = amp_testing::unusedPort();
  std::string listener = tlsListener(lb_, port);
  drain();
  ASSERT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_EQ(sorted(recording_->takePuts()), sorted({tls_file, ca_file}));
  auto placed = placedOnAgent();
  ASSERT_EQ(placed.size(), 2u);
  EXPECT_EQ(placed[ca_file], common::sha256Hex(sharedPki().read("ca.pem")));
  // The proxy took the document: it listens with the placed certificate.
  auto served = amp_testing::runCommand({"/usr/bin/openssl", "s_client", "-connect",
                                         "127.0.0.1:" + std::to_string(port), "-servername", "www.example.com"},
                                        10000);
  EXPECT_NE(served.out.find("CN = www.example.com"), std::string::npos) << served.out << served.err;

  // Unchanged: the agent's listing matches, nothing is sent again.
  int configs = recording_->configs();
  rename(listener, "unchanged");
  drain();
  EXPECT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_TRUE(recording_->takePuts().empty());
  EXPECT_EQ(recording_->configs(), configs + 1);

  // The CA behind the reference changes: exactly that file goes.
  writeSecret(kCaRef, sharedPki().read("int.pem"));
  rename(listener, "rotated");
  drain();
  EXPECT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_EQ(recording_->takePuts(), std::vector<std::string>{ca_file});
  EXPECT_EQ(placedOnAgent()[ca_file], common::sha256Hex(sharedPki().read("int.pem")));

  // The last TLS listener goes: so do its files.
  call("DELETE", "/v2/lbaas/listeners/" + listener, "", 204);
  drain();
  EXPECT_FALSE(exists("listener", listener));
  EXPECT_EQ(sorted(recording_->takeDeletes()), sorted({tls_file, ca_file}));
  EXPECT_TRUE(placedOnAgent().empty());
  EXPECT_EQ(status("loadbalancer", lb_), "ACTIVE");
}

}  // namespace
}  // namespace banyan::provider::controller::testing
