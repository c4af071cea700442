// AgentClient against a real banyan-agent (system_driver = noop, the real banyan-proxy)
// on 127.0.0.1, with certificates from the real Pki: the controller's calls as the
// worker makes them, and the TLS checks on both sides.
#include "amphora/agent_client.h"
#include "banyan/common/digest.h"

#include <gtest/gtest.h>

#include "amphora/pki.h"
#include "amphora_test_env.h"

namespace banyan::provider::amphora {
namespace {

using common::ErrorCode;
using testing::runCommand;
using testing::TempDir;
using testing::unusedPort;
using testing::writeFile;

constexpr const char* kAmphoraId = "2f1e6a0c-amphora";

std::string describe(const common::Error& e) { return e.message + " [" + e.context + "]"; }

class AgentClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PkiOptions options;
    options.dir = tmp_.path() + "/pki";
    auto pki = Pki::loadOrCreate(options);
    ASSERT_TRUE(pki.ok()) << describe(pki.error());
    pki_ = std::move(*pki);
    auto server = pki_->issueServerCert(kAmphoraId, "127.0.0.1");
    ASSERT_TRUE(server.ok()) << describe(server.error());
    agent_files_.server_cert = tmp_.path() + "/server.pem";
    agent_files_.server_key = tmp_.path() + "/server.key";
    agent_files_.client_ca = pki_->caCertFile();
    writeFile(agent_files_.server_cert, server->cert_pem);
    writeFile(agent_files_.server_key, server->key_pem);
    ASSERT_TRUE(pki_->controllerClientCert().ok());
    ASSERT_TRUE(agent_.start(tmp_.path(), kAmphoraId, agent_files_)) << "agent did not start:\n" << agent_.log();
    amp_.address = "127.0.0.1";
    amp_.port = agent_.port();
    client_ = makeClient();
    ASSERT_NE(client_, nullptr);
  }

  void TearDown() override {
    agent_.stop();  // by PID, also when the test failed
    if (HasFailure()) fprintf(stderr, "--- agent log ---\n%s\n", agent_.log().c_str());
  }

  std::unique_ptr<AgentClient> makeClient(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    AgentClientOptions options;
    options.ca_file = pki_->caCertFile();
    options.client_cert_file = pki_->clientCertFile();
    options.client_key_file = pki_->clientKeyFile();
    options.request_timeout = timeout;
    auto client = AgentClient::make(options);
    EXPECT_TRUE(client.ok()) << describe(client.error());
    return client.ok() ? std::move(*client) : nullptr;
  }

  // The subject the agent presents on a fresh handshake, as openssl s_client sees it.
  std::string servedSubject() {
    auto r = runCommand({"/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(amp_.port),
                         "-CAfile", pki_->caCertFile(), "-cert", pki_->clientCertFile(), "-key",
                         pki_->clientKeyFile(), "-verify_return_error", "-verify_ip", "127.0.0.1"},
                        10000);
    auto at = r.out.find("subject=");
    return at == std::string::npos ? "" : r.out.substr(at, r.out.find('\n', at) - at);
  }

  // A small valid proxy document: an HTTP listener on a free port, a pool, one member.
  std::string document(int generation) {
    if (listener_port_ == 0) listener_port_ = unusedPort();
    return R"({"generation": )" + std::to_string(generation) +
           R"(, "settings": {"workers": 1}, "listeners": [{"id": "listener-1", "protocol": "HTTP", )"
           R"("address": "127.0.0.1", "protocol_port": )" +
           std::to_string(listener_port_) +
           R"(, "default_pool_id": "pool-1"}], "pools": [{"id": "pool-1", "protocol": "HTTP", "lb_algorithm": )"
           R"("ROUND_ROBIN", "members": [{"id": "member-1", "address": "127.0.0.1", "protocol_port": )" +
           std::to_string(unusedPort()) + "}]}]}";
  }

  TempDir tmp_;
  std::unique_ptr<Pki> pki_;
  testing::AgentFiles agent_files_;
  testing::AgentProcess agent_;
  AgentEndpoint amp_;
  std::unique_ptr<AgentClient> client_;
  uint16_t listener_port_ = 0;
};

TEST_F(AgentClientTest, InfoAndDetailsComeBackOverMutualTls) {
  auto info = client_->info(amp_);
  ASSERT_TRUE(info.ok()) << describe(info.error());
  EXPECT_NE(info->find("\"api_version\":\"1.0\""), std::string::npos) << *info;
  EXPECT_NE(info->find(std::string("\"amphora_id\":\"") + kAmphoraId + "\""), std::string::npos) << *info;
  auto details = client_->details(amp_);
  ASSERT_TRUE(details.ok()) << describe(details.error());
  EXPECT_NE(details->find("\"interfaces\":"), std::string::npos) << *details;
}

TEST_F(AgentClientTest, PutConfigAppliesThenReportsUnchangedAndRefusesABadDocument) {
  std::string doc = document(1);
  auto first = client_->putConfig(amp_, doc);
  ASSERT_TRUE(first.ok()) << describe(first.error());
  EXPECT_EQ(first->generation, 1);
  EXPECT_EQ(first->sha256.size(), 64u);
  EXPECT_FALSE(first->unchanged);

  auto again = client_->putConfig(amp_, doc);
  ASSERT_TRUE(again.ok()) << describe(again.error());
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->sha256, first->sha256);

  std::string bad = R"({"generation": 2, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 70000}]})";
  auto refused = client_->putConfig(amp_, bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused.error().context, "/listeners/0/protocol_port");
  EXPECT_NE(refused.error().message.find("400"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("70000"), std::string::npos) << refused.error().message;

  // The refusal left the first document in place.
  auto still = client_->putConfig(amp_, doc);
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(still->unchanged);
}

TEST_F(AgentClientTest, PutAgentConfigIsAcceptedAndValidatedByTheAgent) {
  auto ok = client_->putAgentConfig(amp_, {"127.0.0.1:" + std::to_string(unusedPort()), "[::1]:5555"}, 0.5,
                                    "heartbeat-secret-1");
  ASSERT_TRUE(ok.ok()) << describe(ok.error());
  auto bad = client_->putAgentConfig(amp_, {"127.0.0.1:5555"}, 0.5, "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message.find("heartbeat-secret-1"), std::string::npos);
  EXPECT_EQ(agent_.log().find("heartbeat-secret-1"), std::string::npos) << "the agent logged the heartbeat key";
}

TEST_F(AgentClientTest, PutAgentConfigCarriesManagementCidrsToTheAgentsFirewall) {
  auto ok = client_->putAgentConfig(amp_, {}, 5, "heartbeat-secret-2", {"127.0.0.0/8", "::1"});
  ASSERT_TRUE(ok.ok()) << describe(ok.error());
  // The agent's firewall (the noop driver records it) took them; /details says so.
  auto details = client_->details(amp_);
  ASSERT_TRUE(details.ok()) << describe(details.error());
  EXPECT_NE(details->find("\"management_cidrs\":[\"127.0.0.0/8\",\"::1\"]"), std::string::npos) << *details;
  // None given: the field is left out and the agent keeps the ones it has.
  ASSERT_TRUE(client_->putAgentConfig(amp_, {}, 6, "heartbeat-secret-2").ok());
  details = client_->details(amp_);
  ASSERT_TRUE(details.ok());
  EXPECT_NE(details->find("\"management_cidrs\":[\"127.0.0.0/8\",\"::1\"]"), std::string::npos) << *details;
  auto bad = client_->putAgentConfig(amp_, {}, 5, "heartbeat-secret-2", {"127.0.0.0/8", "localhost"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().context, "/management_cidrs/1") << bad.error().message;
}

TEST_F(AgentClientTest, PutCertificateStoresABundleAndRefusesBadNamesAndBadPem) {
  auto tls = pki_->issueServerCert("www.example.com", "203.0.113.10");
  ASSERT_TRUE(tls.ok());
  auto ok = client_->putCertificate(amp_, "listener-1.pem-bundle", tls->cert_pem + tls->key_pem);
  ASSERT_TRUE(ok.ok()) << describe(ok.error());
  EXPECT_EQ(ok->front(), '/') << *ok;
  EXPECT_EQ(ok->substr(ok->size() - 26), "/listener-1.pem-bundle.pem") << *ok;
  // A CA file (no key) is stored too; the listing names both with digest and path.
  auto ca = client_->putCertificate(amp_, "pem-ca", tls->cert_pem);
  ASSERT_TRUE(ca.ok()) << describe(ca.error());
  auto listed = client_->listCertificates(amp_);
  ASSERT_TRUE(listed.ok()) << describe(listed.error());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->at("pem-ca").sha256, common::sha256Hex(tls->cert_pem));
  EXPECT_EQ(listed->at("listener-1.pem-bundle").path, *ok);
  ASSERT_TRUE(client_->deleteCertificate(amp_, "pem-ca").ok());
  EXPECT_EQ(client_->listCertificates(amp_)->count("pem-ca"), 0u);

  auto bad_name = client_->putCertificate(amp_, "../escape", tls->cert_pem + tls->key_pem);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().code, ErrorCode::kInvalidArgument);
  auto no_key = client_->putCertificate(amp_, "nokey", tls->key_pem);
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.error().code, ErrorCode::kInvalidArgument) << describe(no_key.error());
}

TEST_F(AgentClientTest, RotatedServerCertificateIsServedOnTheNextHandshake) {
  EXPECT_NE(servedSubject().find(kAmphoraId), std::string::npos);
  auto rotated = pki_->issueServerCert("rotated-amphora", "127.0.0.1");
  ASSERT_TRUE(rotated.ok());
  auto r = client_->rotateServerCertificate(amp_, *rotated);
  ASSERT_TRUE(r.ok()) << describe(r.error());
  EXPECT_NE(servedSubject().find("rotated-amphora"), std::string::npos) << servedSubject();
  // A new client (no pooled connection) handshakes with the new certificate.
  auto fresh = makeClient();
  ASSERT_NE(fresh, nullptr);
  auto info = fresh->info(amp_);
  EXPECT_TRUE(info.ok()) << describe(info.error());

  // A bundle whose key is not the certificate's is refused and the old one kept.
  auto other = pki_->issueServerCert("other", "127.0.0.1");
  ASSERT_TRUE(other.ok());
  CertBundle mismatched{rotated->cert_pem, other->key_pem, rotated->not_after};
  auto refused = client_->rotateServerCertificate(amp_, mismatched);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(servedSubject().find("rotated-amphora"), std::string::npos);
}

TEST_F(AgentClientTest, PlugVipAndPlugNetworkWithTheNoopDriver) {
  AgentClient::PlugVip vip;
  vip.vip = "203.0.113.10";
  vip.subnet_cidr = "203.0.113.0/24";
  vip.gateway = "203.0.113.1";
  vip.mac_address = "fa:16:3e:00:00:01";
  vip.vrrp_ip = "203.0.113.5";
  vip.mtu = 1450;
  vip.host_routes = {{"192.0.2.0/24", "203.0.113.254"}};
  auto iface = client_->plugVip(amp_, vip);
  ASSERT_TRUE(iface.ok()) << describe(iface.error());
  EXPECT_FALSE(iface->empty());

  AgentClient::PlugNetwork net;
  net.mac_address = "fa:16:3e:00:00:02";
  net.fixed_ips = {{"198.51.100.5", "198.51.100.0/24", ""}};
  auto net_iface = client_->plugNetwork(amp_, net);
  ASSERT_TRUE(net_iface.ok()) << describe(net_iface.error());
  EXPECT_FALSE(net_iface->empty());

  vip.mac_address = "not-a-mac";
  auto bad = client_->plugVip(amp_, vip);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().context, "/mac_address");
  vip.vip = "203.0.113.10/../../config";
  EXPECT_EQ(client_->plugVip(amp_, vip).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(AgentClientTest, PutVrrpThenItsStateIsReadable) {
  auto before = client_->vrrpState(amp_);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.error().code, ErrorCode::kNotFound) << describe(before.error());

  AgentClient::Vrrp vrrp;
  vrrp.interface = "eth1";
  vrrp.vip = "203.0.113.10";
  vrrp.local_address = "198.51.100.5";
  vrrp.peer_addresses = {"198.51.100.6"};
  vrrp.priority = 150;
  vrrp.auth_pass = "s3cret";
  vrrp.nopreempt = true;
  auto put = client_->putVrrp(amp_, vrrp);
  ASSERT_TRUE(put.ok()) << describe(put.error());
  auto state = client_->vrrpState(amp_);
  ASSERT_TRUE(state.ok()) << describe(state.error());
  EXPECT_TRUE(*state == "MASTER" || *state == "BACKUP" || *state == "FAULT" || *state == "UNKNOWN") << *state;

  vrrp.priority = 255;
  auto bad = client_->putVrrp(amp_, vrrp);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().context, "/priority");
}

TEST_F(AgentClientTest, ClientCertificateFromAnotherCaIsRefusedInTheHandshake) {
  PkiOptions foreign_options;
  foreign_options.dir = tmp_.path() + "/foreign";
  auto foreign = Pki::loadOrCreate(foreign_options);
  ASSERT_TRUE(foreign.ok());
  ASSERT_TRUE((*foreign)->controllerClientCert().ok());
  AgentClientOptions options;
  options.ca_file = pki_->caCertFile();  // trusts the agent
  options.client_cert_file = (*foreign)->clientCertFile();
  options.client_key_file = (*foreign)->clientKeyFile();
  auto client = AgentClient::make(options);
  ASSERT_TRUE(client.ok());
  auto info = (*client)->info(amp_);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, ErrorCode::kUnavailable) << describe(info.error());
}

TEST_F(AgentClientTest, AnAmphoraServerCertificateCannotActAsTheControllersClientCertificate) {
  // Same CA, but serverAuth only: a compromised amphora cannot use its own certificate
  // to drive another amphora.
  AgentClientOptions options;
  options.ca_file = pki_->caCertFile();
  options.client_cert_file = agent_files_.server_cert;
  options.client_key_file = agent_files_.server_key;
  auto client = AgentClient::make(options);
  ASSERT_TRUE(client.ok());
  auto info = (*client)->info(amp_);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, ErrorCode::kUnavailable);
}

TEST_F(AgentClientTest, ServerCertificateForAnotherAddressOrCaIsRefusedByTheClient) {
  // The agent presents a certificate for 127.0.0.2 while we dial 127.0.0.1.
  auto wrong_ip = pki_->issueServerCert(kAmphoraId, "127.0.0.2");
  ASSERT_TRUE(wrong_ip.ok());
  ASSERT_TRUE(client_->rotateServerCertificate(amp_, *wrong_ip).ok());
  auto fresh = makeClient();
  ASSERT_NE(fresh, nullptr);
  auto info = fresh->info(amp_);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, ErrorCode::kUnavailable) << describe(info.error());

  // A client that trusts another CA refuses the agent's (correctly addressed) certificate.
  PkiOptions other_options;
  other_options.dir = tmp_.path() + "/other";
  auto other = Pki::loadOrCreate(other_options);
  ASSERT_TRUE(other.ok());
  AgentClientOptions options;
  options.ca_file = (*other)->caCertFile();
  options.client_cert_file = pki_->clientCertFile();
  options.client_key_file = pki_->clientKeyFile();
  auto distrustful = AgentClient::make(options);
  ASSERT_TRUE(distrustful.ok());
  auto refused = (*distrustful)->info(amp_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
}

TEST_F(AgentClientTest, AgentNotRunningIsUnavailableQuickly) {
  agent_.stop();
  auto start = std::chrono::steady_clock::now();
  auto info = client_->info(amp_);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, ErrorCode::kUnavailable) << describe(info.error());
  EXPECT_LT(took, std::chrono::seconds(3));

  AgentEndpoint nobody{"127.0.0.1", unusedPort()};
  start = std::chrono::steady_clock::now();
  auto put = client_->putConfig(nobody, document(1));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code, ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// An `openssl s_server` on ::1 stands in for the agent here (it demands a client
// certificate from the CA and answers any GET with 200): the client's side of IPv6, the
// bracketed URL, the IPv6 IP SAN check and mutual TLS. (cpprestsdk resolves a bracketed
// host as it is; common::HttpClient works around that, see http_client.cc.)
TEST(AgentClient, TalksMutualTlsToAnIpv6Address) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  auto pki = Pki::loadOrCreate(options);
  ASSERT_TRUE(pki.ok());
  auto server = (*pki)->issueServerCert(kAmphoraId, "::1");
  ASSERT_TRUE(server.ok());
  writeFile(tmp.path() + "/server.pem", server->cert_pem);
  writeFile(tmp.path() + "/server.key", server->key_pem);
  ASSERT_TRUE((*pki)->controllerClientCert().ok());
  testing::BackgroundProcess s_server;
  ASSERT_TRUE(s_server.start({"/usr/bin/openssl", "s_server", "-accept", "[::1]:0", "-cert", tmp.path() + "/server.pem",
                              "-key", tmp.path() + "/server.key", "-CAfile", (*pki)->caCertFile(), "-Verify", "1",
                              "-verify_return_error", "-www"},
                             tmp.path() + "/s_server.out"));
  std::string accept = s_server.waitForOutput("ACCEPT [::1]:", std::chrono::seconds(10));
  ASSERT_FALSE(accept.empty()) << testing::readFile(tmp.path() + "/s_server.out");
  uint16_t port = static_cast<uint16_t>(std::stoi(accept.substr(accept.rfind(':') + 1)));

  AgentClientOptions client_options{(*pki)->caCertFile(), (*pki)->clientCertFile(), (*pki)->clientKeyFile()};
  auto client = AgentClient::make(client_options);
  ASSERT_TRUE(client.ok());
  auto info = (*client)->info(AgentEndpoint{"::1", port});
  ASSERT_TRUE(info.ok()) << describe(info.error()) << "\n" << testing::readFile(tmp.path() + "/s_server.out");
  EXPECT_NE(info->find("s_server"), std::string::npos) << *info;
  s_server.stop();
}

TEST(AgentClient, RefusesMissingFilesAndNonIpAddresses) {
  AgentClientOptions none;
  auto r = AgentClient::make(none);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  auto pki = Pki::loadOrCreate(options);
  ASSERT_TRUE(pki.ok());
  ASSERT_TRUE((*pki)->controllerClientCert().ok());
  AgentClientOptions missing;
  missing.ca_file = tmp.path() + "/absent.pem";
  missing.client_cert_file = (*pki)->clientCertFile();
  missing.client_key_file = (*pki)->clientKeyFile();
  auto m = AgentClient::make(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument);

  AgentClientOptions good = missing;
  good.ca_file = (*pki)->caCertFile();
  auto client = AgentClient::make(good);
  ASSERT_TRUE(client.ok());
  for (const char* address : {"amphora.example", "127.0.0.1/path", "", "[::1]", "2001:db8::5%eth0"}) {
    auto info = (*client)->info(AgentEndpoint{address, 9443});
    ASSERT_FALSE(info.ok()) << address;
    EXPECT_EQ(info.error().code, ErrorCode::kInvalidArgument) << address;
  }

  // [haproxy_amphora] lb_network_interface must be usable as a URL zone; "" is allowed
  // (then only link-local addresses with their own zone are reachable).
  for (const char* interface : {"o hm0", "eth0]", "abcdefghijklmnop", "o-hm0%25"}) {
    AgentClientOptions bad = good;
    bad.lb_network_interface = interface;
    auto r = AgentClient::make(bad);
    ASSERT_FALSE(r.ok()) << interface;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << interface;
  }
  AgentClientOptions none_set = good;
  none_set.lb_network_interface = "";
  auto without = AgentClient::make(none_set);
  ASSERT_TRUE(without.ok()) << describe(without.error());
  auto unzoned = (*without)->info(AgentEndpoint{"fe80::5", 9443});
  ASSERT_FALSE(unzoned.ok());
  EXPECT_EQ(unzoned.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(unzoned.error().message.find("lb_network_interface"), std::string::npos) << unzoned.error().message;
}

}  // namespace
}  // namespace banyan::provider::amphora
