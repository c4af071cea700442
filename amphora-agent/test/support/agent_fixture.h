// A running banyan-agent (with its real banyan-proxy child) behind mutual TLS, for
// the process tests: test PKI in a temp dir, a config file, curl helpers that present
// the controller's client certificate.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "support/test_env.h"
#include "support/test_pki.h"

namespace banyan::agent::testing {

class AgentFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    const std::string& d = dir_->path();
    state_dir_ = d + "/state";
    ASSERT_EQ(::mkdir(state_dir_.c_str(), 0700), 0);
    writeTestFile(d + "/server_ca.pem", server_ca_.certPem());
    auto server = server_ca_.issue(amphora_id_, true, -3600, 86400, {"127.0.0.1", "::1"});
    writeTestFile(d + "/server.pem", server.cert);
    writeTestFile(d + "/server.key", server.key);
    writeTestFile(d + "/client_ca.pem", client_ca_.certPem());
    auto client = client_ca_.issue("controller", false);
    writeTestFile(d + "/client.pem", client.cert);
    writeTestFile(d + "/client.key", client.key);
    ASSERT_TRUE(agent_.start(d, configText(), state_dir_)) << "agent did not start; log:\n"
                                                            << readTestFile(d + "/agent.log");
  }

  void TearDown() override {
    agent_.stop();
    EXPECT_EQ(agent_.lastStatus(), 0) << "banyan-agent did not exit cleanly on SIGTERM (sanitizer report?)";
    if (HasFailure()) fprintf(stderr, "--- agent log ---\n%s\n", readTestFile(dir_->path() + "/agent.log").c_str());
  }

  virtual std::string extraConfig() const { return ""; }
  // The address the agent listens on and the tests call: "127.0.0.1" or "::1".
  virtual std::string bindHost() const { return "127.0.0.1"; }

  std::string configText() const {
    const std::string& d = dir_->path();
    return "[DEFAULT]\nlog_level = debug\n[amphora_agent]\nbind_host = " + bindHost() + "\nbind_port = 0\n"
           "agent_server_cert = " + d + "/server.pem\nagent_server_key = " + d + "/server.key\n"
           "agent_server_ca = " + d + "/client_ca.pem\nmax_body_bytes = 65536\n"
           "state_dir = " + state_dir_ + "\nproxy_binary = " + proxyBinary() + "\n"
           "proxy_control_socket = " + d + "/proxy.sock\namphora_id = " + amphora_id_ + "\n"
           // Never the kernel driver here: plug requests would reconfigure the host.
           "system_driver = noop\n" + extraConfig();
  }

  std::string url(const std::string& path) const {
    std::string host = bindHost().find(':') == std::string::npos ? bindHost() : "[" + bindHost() + "]";
    return "https://" + host + ":" + std::to_string(agent_.port()) + path;
  }

  // curl as the controller: the agent's CA, the controller's client certificate.
  CurlResult call(const std::string& method, const std::string& path, const std::string& body = "",
                  const std::vector<std::string>& extra = {}) const {
    const std::string& d = dir_->path();
    std::vector<std::string> args = {"-g", "--cacert", d + "/server_ca.pem", "--cert", d + "/client.pem", "--key",
                                     d + "/client.key", "-X", method};
    if (!body.empty() || method == "PUT" || method == "POST") {
      writeTestFile(d + "/body", body);
      args.insert(args.end(), {"--data-binary", "@" + d + "/body", "-H", "Content-Type: application/json"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url(path));
    return curl(args);
  }

  std::string amphora_id_ = "8d3c1a2b-amphora";
  TestCa server_ca_{"server-ca"};
  TestCa client_ca_{"controller-ca"};
  std::unique_ptr<TempDir> dir_;
  std::string state_dir_;
  AgentProcess agent_;
};

}  // namespace banyan::agent::testing
