// AgentClient to an amphora whose management address is IPv6 link-local, as Octavia
// supports it: a real banyan-agent (bind_host = ::, as the controller renders it) in
// one network namespace, with a server certificate from the real Pki for fe80::a, and
// the controller's client in another, joined by a veth pair (common/test/link_local_pair.h).
// The client reaches fe80::a through [haproxy_amphora] lb_network_interface, or the
// interface the address names itself.
//
// Every AgentClient runs in a forked child inside the client's namespace (why: see
// link_local_pair.h); this process never touches cpprestsdk.
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "amphora/agent_client.h"
#include "amphora/pki.h"
#include "amphora_test_env.h"
#include "link_local_pair.h"

namespace banyan::provider::amphora {
namespace {

using common::ErrorCode;
using testing::AgentFiles;
using testing::AgentProcess;
using testing::TempDir;
using testing::writeFile;

constexpr const char* kAmphoraId = "5c0ffee0-link-local";

std::string describe(const common::Error& e) { return e.message + " [" + e.context + "]"; }

// What a call made in the client's namespace came back with.
struct Outcome {
  bool ok = false;
  std::string body;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

class AgentClientLinkLocal : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
    net_ = std::make_unique<banyan::testing::LinkLocalPair>();
    ASSERT_TRUE(net_->ok()) << net_->error();
    PkiOptions options;
    options.dir = tmp_.path() + "/pki";
    auto pki = Pki::loadOrCreate(options);
    ASSERT_TRUE(pki.ok()) << describe(pki.error());
    pki_ = std::move(*pki);
    // The certificate names the address without a zone: that is what lb_network_ip holds.
    auto server = pki_->issueServerCert(kAmphoraId, "fe80::a");
    ASSERT_TRUE(server.ok()) << describe(server.error());
    AgentFiles files;
    files.server_cert = tmp_.path() + "/server.pem";
    files.server_key = tmp_.path() + "/server.key";
    files.client_ca = pki_->caCertFile();
    writeFile(files.server_cert, server->cert_pem);
    writeFile(files.server_key, server->key_pem);
    ASSERT_TRUE(pki_->controllerClientCert().ok());
    ASSERT_TRUE(agent_.start(tmp_.path(), kAmphoraId, files, "::", net_->nsA()))
        << "agent did not start:\n" << agent_.log();
  }

  void TearDown() override {
    agent_.stop();  // by PID, also when the test failed
    if (HasFailure()) fprintf(stderr, "--- agent log ---\n%s\n", agent_.log().c_str());
    net_.reset();
  }

  // GET /1.0/info on the agent at ADDRESS, from the client's namespace, with
  // lb_network_interface = INTERFACE.
  Outcome info(const std::string& address, const std::string& interface) {
    AgentClientOptions options;
    options.ca_file = pki_->caCertFile();
    options.client_cert_file = pki_->clientCertFile();
    options.client_key_file = pki_->clientKeyFile();
    options.request_timeout = std::chrono::milliseconds(5000);
    options.lb_network_interface = interface;
    AgentEndpoint amp{address, agent_.port()};
    bool failed = false;
    std::string got = banyan::testing::runInNetns(
        net_->nsB(),
        [&]() -> std::string {
          auto client = AgentClient::make(options);
          if (!client.ok()) return "E" + std::to_string(static_cast<int>(client.error().code)) + "\n" + describe(client.error());
          auto r = (*client)->info(amp);
          if (!r.ok()) return "E" + std::to_string(static_cast<int>(r.error().code)) + "\n" + describe(r.error());
          return "R\n" + *r;
        },
        std::chrono::seconds(30), &failed);
    Outcome out;
    if (failed || got.size() < 2) {
      out.message = "the client child gave no answer";
      return out;
    }
    size_t nl = got.find('\n');
    if (got[0] == 'R') {
      out.ok = true;
      out.body = got.substr(nl + 1);
    } else {
      out.code = static_cast<ErrorCode>(std::stoi(got.substr(1, nl - 1)));
      out.message = got.substr(nl + 1);
    }
    return out;
  }

  TempDir tmp_;
  std::unique_ptr<banyan::testing::LinkLocalPair> net_;
  std::unique_ptr<Pki> pki_;
  AgentProcess agent_;
};

TEST_F(AgentClientLinkLocal, ReachesTheAgentThroughTheConfiguredInterface) {
  auto r = info("fe80::a", net_->vethB());
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_NE(r.body.find(std::string("\"amphora_id\":\"") + kAmphoraId + "\""), std::string::npos) << r.body;
}

TEST_F(AgentClientLinkLocal, AnAddressWithItsOwnZoneKeepsIt) {
  // The configured interface does not exist in the client's namespace; the address's
  // own zone is used instead.
  auto r = info("fe80::a%" + net_->vethB(), "o-hm0");
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_NE(r.body.find(kAmphoraId), std::string::npos) << r.body;
}

TEST_F(AgentClientLinkLocal, AMissingManagementInterfaceIsUnavailableSoTheFlowRetries) {
  // Octavia's default interface, absent here: like an amphora not reachable yet.
  auto r = info("fe80::a", "o-hm0");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.code, ErrorCode::kUnavailable) << r.message;
  EXPECT_NE(r.message.find("o-hm0"), std::string::npos) << r.message;
  // An interface that exists but is not the amphora's link: also unavailable.
  auto wrong = info("fe80::a", "lo");
  ASSERT_FALSE(wrong.ok);
  EXPECT_EQ(wrong.code, ErrorCode::kUnavailable) << wrong.message;
}

TEST_F(AgentClientLinkLocal, RefusesAServerCertificateForAnotherLinkLocalAddress) {
  // The agent's certificate names fe80::a; fe80::b (the client's own side, where no
  // agent listens) would fail to connect, so instead dial fe80::a with a client that
  // expects the certificate of another amphora: rotate the agent to one for fe80::b.
  auto other = pki_->issueServerCert(kAmphoraId, "fe80::b");
  ASSERT_TRUE(other.ok()) << describe(other.error());
  AgentClientOptions options;
  options.ca_file = pki_->caCertFile();
  options.client_cert_file = pki_->clientCertFile();
  options.client_key_file = pki_->clientKeyFile();
  options.request_timeout = std::chrono::milliseconds(5000);
  options.lb_network_interface = net_->vethB();
  AgentEndpoint amp{"fe80::a", agent_.port()};
  bool failed = false;
  std::string got = banyan::testing::runInNetns(
      net_->nsB(),
      [&]() -> std::string {
        auto client = AgentClient::make(options);
        if (!client.ok()) return "make: " + describe(client.error());
        const CertBundle& bundle = *other;
        auto rotated = (*client)->rotateServerCertificate(amp, bundle);
        if (!rotated.ok()) return "rotate: " + describe(rotated.error());
        // A fresh client: a fresh handshake, which now presents the fe80::b certificate.
        auto fresh = AgentClient::make(options);
        if (!fresh.ok()) return "make: " + describe(fresh.error());
        auto r = (*fresh)->info(amp);
        if (r.ok()) return "accepted";
        return "refused " + std::to_string(static_cast<int>(r.error().code)) + " " + r.error().message;
      },
      std::chrono::seconds(30), &failed);
  ASSERT_FALSE(failed) << got;
  EXPECT_EQ(got.rfind("refused " + std::to_string(static_cast<int>(ErrorCode::kUnavailable)), 0), 0u) << got;
  EXPECT_NE(got.find("handshake"), std::string::npos) << got;
}

}  // namespace
}  // namespace banyan::provider::amphora
