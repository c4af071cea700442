// The agent's firewall for real: banyan-agent with the kernel system driver (and its
// banyan-proxy) inside a network namespace this test creates, driven by curl as the
// controller from a management namespace, with clients in two more namespaces.
//
//   ctl   eth0 192.0.2.1/24       ── mg0   192.0.2.10/24        ┐
//   cok   eth0 198.51.100.10/25   ── vok   198.51.100.1/25      ├ amp: banyan-agent + banyan-proxy,
//   cbad  eth0 198.51.100.130/25  ── vbad  198.51.100.129/25    ┘      VIP 203.0.113.5 (on vok),
//                                                                      member 127.0.0.1:<port>
// A drop shows as curl's connect timeout (exit 28), distinct from a refusal (7) or
// the proxy closing an accepted connection (52/56).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/test_env.h"
#include "support/test_pki.h"

namespace banyan::agent {
namespace {

using testing::ProcResult;
using testing::runCommand;
using testing::writeTestFile;

constexpr char kIp[] = "/usr/sbin/ip";
constexpr char kCurl[] = "/usr/bin/curl";
constexpr char kPrefix[] = "bnyfw-";

std::string nsName(const std::string& role) {
  return kPrefix + std::to_string(::getpid()) + "-" + role;
}

// Namespaces of a test process that died (its PID is gone) are removed first, so a
// crash does not leak them into the next run.
void sweepStale() {
  ProcResult list = runCommand({kIp, "netns", "list"});
  size_t pos = 0;
  while ((pos = list.out.find(kPrefix, pos)) != std::string::npos) {
    size_t end = list.out.find_first_of(" \n", pos);
    std::string name =
        list.out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos += sizeof kPrefix - 1;
    int pid = std::atoi(name.c_str() + sizeof kPrefix - 1);
    if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH)
      runCommand({kIp, "netns", "del", name});
  }
}

class AgentFirewall : public ::testing::Test {
 protected:
  void SetUp() override {
    sweepStale();
    for (const char* role : {"amp", "ctl", "cok", "cbad"}) {
      std::string ns = nsName(role);
      runCommand({kIp, "netns", "del", ns});
      ProcResult r = runCommand({kIp, "netns", "add", ns});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      namespaces_.push_back(ns);
      ip(ns, {"link", "set", "lo", "up"});
    }
    amp_ = nsName("amp");
    link("mg0", "192.0.2.10/24", nsName("ctl"), "192.0.2.1/24", "");
    link("vok", "198.51.100.1/25", nsName("cok"), "198.51.100.10/25", "198.51.100.1");
    link("vbad", "198.51.100.129/25", nsName("cbad"), "198.51.100.130/25", "198.51.100.129");
    ASSERT_EQ(ip(amp_, {"addr", "add", "203.0.113.5/32", "dev", "vok"}).exit_code, 0);

    // The member listens on the amphora's loopback: a thread in the namespace makes
    // the socket, which stays there.
    std::thread t([&] {
      int fd = ::open(("/run/netns/" + amp_).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) return;
      ::close(fd);
      member_ = std::make_unique<testing::HttpMember>("member-says-hi");
    });
    t.join();
    ASSERT_TRUE(member_) << "could not enter " << amp_;

    const std::string& d = dir_.path();
    state_dir_ = d + "/state";
    ASSERT_EQ(::mkdir(state_dir_.c_str(), 0700), 0);
    writeTestFile(d + "/server_ca.pem", server_ca_.certPem());
    auto server = server_ca_.issue("amp-fw", true, -3600, 86400, {"192.0.2.10"}, {});
    writeTestFile(d + "/server.pem", server.cert);
    writeTestFile(d + "/server.key", server.key);
    writeTestFile(d + "/client_ca.pem", client_ca_.certPem());
    auto client = client_ca_.issue("controller", false);
    writeTestFile(d + "/client.pem", client.cert);
    writeTestFile(d + "/client.key", client.key);
    std::string conf =
        "[DEFAULT]\nlog_level = debug\n[amphora_agent]\nbind_host = 0.0.0.0\nbind_port = 0\n"
        "agent_server_cert = " +
        d + "/server.pem\nagent_server_key = " + d +
        "/server.key\n"
        "agent_server_ca = " +
        d + "/client_ca.pem\nstate_dir = " + state_dir_ +
        "\n"
        "proxy_binary = " +
        testing::proxyBinary() + "\nproxy_control_socket = " + d +
        "/proxy.sock\n"
        "amphora_id = amp-fw\nsystem_driver = kernel\nmanagement_cidrs = 192.0.2.0/24\n";
    ASSERT_TRUE(agent_.start(d, conf, state_dir_, amp_)) << testing::readTestFile(d + "/agent.log");
  }

  void TearDown() override {
    agent_.stop();
    EXPECT_EQ(agent_.lastStatus(), 0)
        << "banyan-agent did not exit cleanly on SIGTERM (sanitizer report?)";
    member_.reset();
    if (HasFailure())
      fprintf(stderr, "--- agent log ---\n%s\n",
              testing::readTestFile(dir_.path() + "/agent.log").c_str());
    for (const auto& ns : namespaces_) runCommand({kIp, "netns", "del", ns});
  }

  ProcResult ip(const std::string& ns, std::vector<std::string> args) {
    std::vector<std::string> argv = {kIp, "-n", ns};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  }

  // A veth from amp (AMP_IF, AMP_CIDR) to NS's eth0 (CIDR, default route via GW).
  void link(const std::string& amp_if, const std::string& amp_cidr, const std::string& ns,
            const std::string& cidr, const std::string& gw) {
    ProcResult r =
        ip(amp_, {"link", "add", amp_if, "type", "veth", "peer", "name", "eth0", "netns", ns});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(ip(amp_, {"addr", "add", amp_cidr, "dev", amp_if}).exit_code, 0);
    ASSERT_EQ(ip(amp_, {"link", "set", amp_if, "up"}).exit_code, 0);
    ASSERT_EQ(ip(ns, {"addr", "add", cidr, "dev", "eth0"}).exit_code, 0);
    ASSERT_EQ(ip(ns, {"link", "set", "eth0", "up"}).exit_code, 0);
    if (!gw.empty()) {
      ASSERT_EQ(ip(ns, {"route", "add", "default", "via", gw}).exit_code, 0);
    }
  }

  ProcResult inNs(const std::string& role, std::vector<std::string> argv, int timeout_ms = 20000) {
    std::vector<std::string> full = {kIp, "netns", "exec", nsName(role)};
    full.insert(full.end(), argv.begin(), argv.end());
    return runCommand(full, timeout_ms);
  }

  // curl as the controller, from the management namespace. Returns "<status>\n<body>".
  ProcResult controller(const std::string& method, const std::string& path,
                        const std::string& body = "") {
    const std::string& d = dir_.path();
    std::vector<std::string> argv = {kCurl,
                                     "-sS",
                                     "--connect-timeout",
                                     "3",
                                     "-m",
                                     "15",
                                     "--cacert",
                                     d + "/server_ca.pem",
                                     "--cert",
                                     d + "/client.pem",
                                     "--key",
                                     d + "/client.key",
                                     "-X",
                                     method,
                                     "-w",
                                     "\n%{http_code}"};
    if (!body.empty()) {
      writeTestFile(d + "/body.json", body);
      argv.insert(argv.end(), {"--data-binary", "@" + d + "/body.json", "-H",
                               "Content-Type: application/json"});
    }
    argv.push_back("https://192.0.2.10:" + std::to_string(agent_.port()) + path);
    return inNs("ctl", argv);
  }

  static std::string statusOf(const ProcResult& r) {
    auto nl = r.out.rfind('\n');
    return nl == std::string::npos ? "" : r.out.substr(nl + 1);
  }

  // A plain HTTP GET through the VIP from ROLE's namespace.
  ProcResult client(const std::string& role) {
    return inNs(role,
                {kCurl, "-sS", "--connect-timeout", "2", "-m", "5", "http://203.0.113.5:8080/"});
  }

  std::string config(uint64_t generation, const std::string& allowed) const {
    return "{\"generation\": " + std::to_string(generation) +
           ", \"listeners\": [{\"id\": \"l1\", \"protocol\": \"HTTP\", \"address\": "
           "\"203.0.113.5\", "
           "\"protocol_port\": 8080, \"default_pool_id\": \"p1\", \"allowed_cidrs\": " +
           allowed +
           "}], \"pools\": [{\"id\": \"p1\", \"protocol\": \"HTTP\", \"members\": [{\"id\": "
           "\"m1\", "
           "\"address\": \"127.0.0.1\", \"protocol_port\": " +
           std::to_string(member_->port()) + "}]}]}";
  }

  testing::TempDir dir_;
  testing::TestCa server_ca_{"server-ca"};
  testing::TestCa client_ca_{"controller-ca"};
  std::string state_dir_;
  std::string amp_;
  std::vector<std::string> namespaces_;
  std::unique_ptr<testing::HttpMember> member_;
  testing::AgentProcess agent_;
};

TEST_F(AgentFirewall, ListenerAllowedCidrsAndTheManagementNetworkAreEnforcedInTheKernel) {
  // From its start the agent guards its port: the table is there before any config.
  ProcResult ruleset = inNs("amp", {"/usr/sbin/nft", "-j", "list", "ruleset"});
  ASSERT_EQ(ruleset.exit_code, 0) << ruleset.err;
  EXPECT_NE(ruleset.out.find("\"name\": \"banyan\""), std::string::npos) << ruleset.out;
  ProcResult info = controller("GET", "/1.0/info");
  ASSERT_EQ(statusOf(info), "200") << info.out << info.err;

  ProcResult put = controller("PUT", "/1.0/config", config(1, "[\"198.51.100.0/25\"]"));
  ASSERT_EQ(statusOf(put), "200") << put.out << put.err;

  // The rules, as nft shows them: the VIP port accepted from the allowed subnet.
  ruleset = inNs("amp", {"/usr/sbin/nft", "-j", "list", "ruleset"});
  ASSERT_EQ(ruleset.exit_code, 0) << ruleset.err;
  rapidjson::Document doc;
  doc.Parse(ruleset.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << ruleset.out;
  bool listener_rule = false;
  for (const auto& item : doc["nftables"].GetArray()) {
    if (!item.HasMember("rule")) continue;
    const auto& rule = item["rule"];
    if (std::string(rule["chain"].GetString()) != "vip_in") continue;
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    rule.Accept(w);
    std::string text = sb.GetString();
    listener_rule |= text.find("\"203.0.113.5\"") != std::string::npos &&
                     text.find("8080") != std::string::npos &&
                     text.find("\"addr\":\"198.51.100.0\",\"len\":25") != std::string::npos;
  }
  EXPECT_TRUE(listener_rule) << ruleset.out;

  // The allowed client is served; the other one's SYNs are dropped.
  ProcResult ok = client("cok");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "member-says-hi");
  ProcResult bad = client("cbad");
  EXPECT_EQ(bad.exit_code, 28) << "expected a connect timeout: " << bad.err;

  // The agent port from a client network: dropped (the management network got in above).
  ProcResult agent_port =
      inNs("cbad", {kCurl, "-sS", "-k", "--connect-timeout", "2", "-m", "5",
                    "https://198.51.100.129:" + std::to_string(agent_.port()) + "/1.0/info"});
  EXPECT_EQ(agent_port.exit_code, 28) << agent_port.err;

  // /details reports what is in force.
  ProcResult details = controller("GET", "/1.0/details");
  ASSERT_EQ(statusOf(details), "200") << details.out;
  EXPECT_NE(details.out.find("\"management_cidrs\":[\"192.0.2.0/24\"]"), std::string::npos)
      << details.out;
  EXPECT_NE(details.out.find("\"allowed_cidrs\":[\"198.51.100.0/25\"]"), std::string::npos)
      << details.out;

  // Without allowed_cidrs everyone is served again.
  put = controller("PUT", "/1.0/config", config(2, "[]"));
  ASSERT_EQ(statusOf(put), "200") << put.out << put.err;
  bad = client("cbad");
  EXPECT_EQ(bad.exit_code, 0) << bad.err;
  EXPECT_EQ(bad.out, "member-says-hi");
}

TEST_F(AgentFirewall, AConfigTheProxyRefusesLeavesTheRunningRules) {
  ASSERT_EQ(statusOf(controller("PUT", "/1.0/config", config(1, "[\"198.51.100.0/25\"]"))), "200");
  std::string before = inNs("amp", {"/usr/sbin/nft", "list", "table", "inet", "banyan"}).out;
  // Valid for the firewall (it would open the listener to cbad), refused by the proxy.
  std::string refused = config(2, "[\"198.51.100.128/25\"]");
  refused.replace(refused.find("\"p1\", \"allowed"), 4, "\"p9\"");
  ProcResult put = controller("PUT", "/1.0/config", refused);
  EXPECT_EQ(statusOf(put), "400") << put.out;
  EXPECT_EQ(inNs("amp", {"/usr/sbin/nft", "list", "table", "inet", "banyan"}).out, before);
  EXPECT_EQ(client("cbad").exit_code, 28);
  ProcResult ok = client("cok");
  EXPECT_EQ(ok.out, "member-says-hi") << ok.err;
}

}  // namespace
}  // namespace banyan::agent
