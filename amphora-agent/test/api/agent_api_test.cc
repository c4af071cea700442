// The agent's REST API as the controller sees it: a real banyan-agent process over
// mutual TLS, driven with curl; good and bad input for every route.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"
#include "support/agent_fixture.h"
#include "banyan/common/digest.h"

namespace banyan::agent {
namespace {

using testing::CurlResult;
using testing::PemPair;
using testing::TestCa;
using testing::writeTestFile;

class AgentApi : public testing::AgentFixture {
 protected:
  // curl with an explicit client certificate (or none).
  CurlResult callAs(const std::string& cert, const std::string& key, const std::string& path) {
    std::vector<std::string> args = {"-g", "--cacert", dir_->path() + "/server_ca.pem"};
    if (!cert.empty()) args.insert(args.end(), {"--cert", cert, "--key", key});
    args.push_back(url(path));
    return testing::curl(args);
  }
  std::string writePair(const std::string& name, const PemPair& pair) {
    std::string base = dir_->path() + "/" + name;
    writeTestFile(base + ".pem", pair.cert);
    writeTestFile(base + ".key", pair.key);
    return base;
  }
  // The subject of the certificate the agent serves now.
  std::string servedSubject() {
    const std::string& d = dir_->path();
    auto r = testing::runCommand({"/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(agent_.port()),
                                  "-CAfile", d + "/server_ca.pem", "-cert", d + "/client.pem", "-key", d + "/client.key"},
                                 10000);
    auto at = r.out.find("subject=");
    return at == std::string::npos ? "" : r.out.substr(at, r.out.find('\n', at) - at);
  }
};

TEST_F(AgentApi, MutualTlsAcceptsTheControllersCertificate) {
  auto r = call("GET", "/1.0/info");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"api_version\":\"1.0\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"proxy_version\":\"0.1.0\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"hostname\":"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"keepalived_version\":"), std::string::npos) << r.body;
}

TEST_F(AgentApi, MutualTlsRefusesMissingForeignAndExpiredClientCertificates) {
  TestCa other_ca("someone-else");
  std::string foreign = writePair("foreign", other_ca.issue("controller", false));
  std::string expired = writePair("expired", client_ca_.issue("controller", false, -10 * 86400, -86400));
  std::string valid = writePair("valid", client_ca_.issue("controller", false));

  auto none = callAs("", "", "/1.0/info");
  EXPECT_NE(none.exit_code, 0) << "no client certificate";
  EXPECT_EQ(none.status, 0);
  auto wrong_ca = callAs(foreign + ".pem", foreign + ".key", "/1.0/info");
  EXPECT_NE(wrong_ca.exit_code, 0) << "certificate from another CA";
  EXPECT_EQ(wrong_ca.status, 0);
  auto old = callAs(expired + ".pem", expired + ".key", "/1.0/info");
  EXPECT_NE(old.exit_code, 0) << "expired certificate";
  EXPECT_EQ(old.status, 0);
  // Same CA, fresh certificate: the refusals above were about the certificates.
  EXPECT_EQ(callAs(valid + ".pem", valid + ".key", "/1.0/info").status, 200);
}

// The same agent on an IPv6 management address (Octavia's agent listens on "::").
class AgentApiOnIpv6 : public AgentApi {
 protected:
  std::string bindHost() const override { return "::1"; }
};

TEST_F(AgentApiOnIpv6, ServesTheControllerOverMutualTlsAndRefusesOthers) {
  ASSERT_EQ(url("/"), "https://[::1]:" + std::to_string(agent_.port()) + "/");
  auto info = call("GET", "/1.0/info");
  ASSERT_EQ(info.exit_code, 0) << info.body;
  EXPECT_EQ(info.status, 200);
  EXPECT_NE(info.body.find("\"api_version\":\"1.0\""), std::string::npos) << info.body;
  auto put = call("PUT", "/1.0/agent-config", R"({"heartbeat_interval": 7, "heartbeat_key": "k"})");
  EXPECT_EQ(put.status, 200) << put.body;

  TestCa other_ca("someone-else");
  std::string foreign = writePair("foreign", other_ca.issue("controller", false));
  auto none = callAs("", "", "/1.0/info");
  EXPECT_NE(none.exit_code, 0) << "no client certificate";
  EXPECT_EQ(none.status, 0);
  auto wrong_ca = callAs(foreign + ".pem", foreign + ".key", "/1.0/info");
  EXPECT_NE(wrong_ca.exit_code, 0) << "certificate from another CA";
  EXPECT_EQ(wrong_ca.status, 0);
  // Only the configured address: nothing answers on IPv4 loopback at that port.
  auto v4 = testing::curl({"--cacert", dir_->path() + "/server_ca.pem", "--cert", dir_->path() + "/client.pem",
                           "--key", dir_->path() + "/client.key",
                           "https://127.0.0.1:" + std::to_string(agent_.port()) + "/1.0/info"});
  EXPECT_NE(v4.exit_code, 0);
  EXPECT_EQ(v4.status, 0);
}

TEST_F(AgentApi, VersionDiscoveryDetailsAndErrorsHaveTheirShapes) {
  auto root = call("GET", "/");
  EXPECT_EQ(root.status, 200);
  EXPECT_NE(root.body.find("\"api_version\":\"1.0\""), std::string::npos);

  auto details = call("GET", "/1.0/details");
  ASSERT_EQ(details.status, 200);
  for (const char* key : {"\"interfaces\":", "\"name\":\"lo\"", "127.0.0.1/8", "\"load\":[", "\"memory\":{",
                          "\"total\":", "\"disk\":{", "\"listeners\":[", "\"topology\":\"SINGLE\"",
                          "\"role\":\"STANDALONE\"", "\"proxy_running\":true"}) {
    EXPECT_NE(details.body.find(key), std::string::npos) << key << " in " << details.body;
  }

  auto missing = call("GET", "/1.0/nothing-here");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("\"message\""), std::string::npos);
  EXPECT_EQ(call("GET", "/2.0/info").status, 404);
  EXPECT_EQ(call("DELETE", "/1.0/info").status, 405);
  EXPECT_EQ(call("POST", "/1.0/config", "{}").status, 405);
  EXPECT_EQ(call("DELETE", "/1.0/agent-config").status, 405);
  EXPECT_EQ(call("GET", "/1.0/certificate").status, 405);
  EXPECT_EQ(call("GET", "/1.0/plug/network").status, 405);
}

TEST_F(AgentApi, OversizedBodiesAre413AndChangeNothing) {
  std::string before = call("GET", "/1.0/config").body;
  std::string big = "{\"generation\": 1, \"pad\": \"" + std::string(70000, 'x') + "\"}";
  EXPECT_EQ(call("PUT", "/1.0/config", big).status, 413);
  EXPECT_EQ(call("PUT", "/1.0/certificates/big", big).status, 413);
  EXPECT_EQ(call("GET", "/1.0/config").body, before);
  EXPECT_EQ(call("GET", "/1.0/certificates/big").status, 404);
}

TEST_F(AgentApi, CertificatesAreStoredPrivatelyAndValidated) {
  TestCa ca("tls-ca");
  PemPair leaf = ca.issue("www.example.org", true);
  PemPair other = ca.issue("other.example.org", true);
  std::string bundle = leaf.cert + ca.certPem() + leaf.key;

  auto put = call("PUT", "/1.0/certificates/listener-1.pem", bundle);
  ASSERT_EQ(put.status, 200) << put.body;
  std::string stored = state_dir_ + "/certs/listener-1.pem.pem";
  struct stat st;
  ASSERT_EQ(::stat(stored.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(testing::readTestFile(stored), bundle);

  auto get = call("GET", "/1.0/certificates/listener-1.pem");
  EXPECT_EQ(get.status, 200);
  EXPECT_NE(get.body.find(common::sha256Hex(bundle)), std::string::npos) << get.body;
  EXPECT_EQ(get.body.find("PRIVATE KEY"), std::string::npos) << "the key never leaves the amphora";

  struct Bad {
    const char* what;
    std::string body;
  };
  const Bad bad[] = {{"key of another certificate", leaf.cert + other.key},
                     {"key without certificate", leaf.key},
                     {"not PEM", "hello"},
                     {"empty", ""}};
  for (const auto& b : bad) {
    auto r = call("PUT", "/1.0/certificates/bad", b.body);
    EXPECT_EQ(r.status, 400) << b.what << ": " << r.body;
  }
  EXPECT_EQ(call("GET", "/1.0/certificates/bad").status, 404);
  // A refused replacement leaves the stored bundle.
  EXPECT_EQ(call("PUT", "/1.0/certificates/listener-1.pem", leaf.cert + other.key).status, 400);
  EXPECT_EQ(testing::readTestFile(stored), bundle);

  EXPECT_EQ(call("DELETE", "/1.0/certificates/listener-1.pem").status, 200);
  EXPECT_EQ(call("DELETE", "/1.0/certificates/listener-1.pem").status, 200) << "idempotent";
  EXPECT_EQ(call("GET", "/1.0/certificates/listener-1.pem").status, 404);
}

// What banyan-proxy verifies peers with (client CA and CRL files, a pool's CA and
// CRL) has no key: certificates only, CRLs only, or both. The answer says where the
// file is, and GET /1.0/certificates lists what is stored.
TEST_F(AgentApi, CaAndCrlFilesAreStoredWithTheirPathAndListed) {
  const std::string d = dir_->path();
  auto made = testing::runCommand(
      {"/bin/sh", "-c",
       "cd " + d + " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout crl-ca.key "
       "-out crl-ca.pem -days 2 -subj /CN=crl-ca && : > index.txt && printf '[ca]\\ndefault_ca=d\\n[d]\\n"
       "database=index.txt\\ndefault_md=sha256\\ndefault_crl_days=2\\n' > ca.cnf && "
       "openssl ca -gencrl -keyfile crl-ca.key -cert crl-ca.pem -out crl-ca.crl -config ca.cnf"});
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  const std::string ca = testing::readTestFile(d + "/crl-ca.pem");
  const std::string crl = testing::readTestFile(d + "/crl-ca.crl");
  ASSERT_NE(crl.find("BEGIN X509 CRL"), std::string::npos);
  TestCa tls("tls-ca");
  PemPair leaf = tls.issue("www.example.org", true);

  std::vector<std::string> names;
  for (const auto& [name, body] : std::vector<std::pair<std::string, std::string>>{
           {"pem-ca", ca}, {"pem-crl", crl}, {"pem-both", ca + crl}, {"tls-bundle", leaf.cert + leaf.key}}) {
    auto put = call("PUT", "/1.0/certificates/" + name, body);
    ASSERT_EQ(put.status, 200) << name << ": " << put.body;
    std::string path = state_dir_ + "/certs/" + name + ".pem";
    EXPECT_NE(put.body.find("\"path\":\"" + path + "\""), std::string::npos) << put.body;
    EXPECT_EQ(testing::readTestFile(path), body);
    auto get = call("GET", "/1.0/certificates/" + name);
    EXPECT_NE(get.body.find("\"path\":\"" + path + "\""), std::string::npos) << get.body;
    names.push_back(name);
  }
  EXPECT_NE(call("GET", "/1.0/certificates/pem-both").body.find("\"crls\":1"), std::string::npos);
  // A key belongs with its certificate, never with revocation lists.
  EXPECT_EQ(call("PUT", "/1.0/certificates/bad", leaf.cert + leaf.key + crl).status, 400);
  std::string broken_crl = crl;
  broken_crl.erase(broken_crl.find('\n') + 1, 8);
  EXPECT_EQ(call("PUT", "/1.0/certificates/bad", broken_crl).status, 400);

  auto list = call("GET", "/1.0/certificates");
  ASSERT_EQ(list.status, 200) << list.body;
  for (const auto& name : names) EXPECT_NE(list.body.find("\"name\":\"" + name + "\""), std::string::npos) << list.body;
  EXPECT_NE(list.body.find(common::sha256Hex(ca + crl)), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("\"bad\""), std::string::npos);
  EXPECT_EQ(call("DELETE", "/1.0/certificates/pem-ca").status, 200);
  EXPECT_EQ(call("GET", "/1.0/certificates").body.find("\"pem-ca\""), std::string::npos);
  EXPECT_EQ(call("PUT", "/1.0/certificates", ca).status, 405);
}

TEST_F(AgentApi, CertificateNamesCannotLeaveTheDirectory) {
  TestCa ca("tls-ca");
  PemPair leaf = ca.issue("www.example.org", true);
  const std::string bundle = leaf.cert + leaf.key;
  const std::string too_long(129, 'a');
  for (const std::string& name : {std::string(".."), std::string("."), std::string("..%2Fescape"),
                                  std::string("..%2F..%2Fescape"), std::string("a%2Fb"), std::string("%2E%2E"),
                                  std::string("a%00b"), std::string("a%20b"), too_long}) {
    for (const char* method : {"PUT", "GET", "DELETE"}) {
      auto r = call(method, "/1.0/certificates/" + name, std::string(method) == "PUT" ? bundle : "",
                    {"--path-as-is"});
      EXPECT_TRUE(r.status == 400 || r.status == 404) << method << " " << name << " -> " << r.status;
    }
  }
  struct stat st;
  EXPECT_NE(::stat((state_dir_ + "/escape.pem").c_str(), &st), 0);
  EXPECT_NE(::stat((dir_->path() + "/escape.pem").c_str(), &st), 0);
  EXPECT_NE(::stat((state_dir_ + "/certs/a").c_str(), &st), 0);
  // The encoded traversal reaches the handler and is refused by the name rule.
  EXPECT_EQ(call("PUT", "/1.0/certificates/..%2Fescape", bundle, {"--path-as-is"}).status, 400);
}

TEST_F(AgentApi, ServerCertificateRotatesWithoutARestart) {
  EXPECT_NE(servedSubject().find(amphora_id_), std::string::npos) << servedSubject();
  pid_t pid_before = agent_.pid();

  // Refused: the key does not match; the old certificate keeps being served.
  PemPair a = server_ca_.issue("rotated-amphora", true);
  PemPair b = server_ca_.issue("unrelated", true);
  auto bad = call("PUT", "/1.0/certificate", a.cert + b.key);
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(servedSubject().find(amphora_id_), std::string::npos);

  auto r = call("PUT", "/1.0/certificate", a.cert + a.key);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(servedSubject().find("rotated-amphora"), std::string::npos) << servedSubject();
  EXPECT_EQ(agent_.pid(), pid_before);
  EXPECT_EQ(::kill(agent_.pid(), 0), 0);
  EXPECT_EQ(call("GET", "/1.0/info").status, 200);
  EXPECT_EQ(testing::readTestFile(dir_->path() + "/server.pem").find("PRIVATE KEY"), std::string::npos);
}

TEST_F(AgentApi, VrrpAndPlugRoutesValidateTheirBodies) {
  const std::string vrrp = R"({"interface": "eth1", "vip": "203.0.113.10", "priority": 100, "local_address": "198.51.100.5",
                               "peer_addresses": ["198.51.100.6"], "auth_pass": "secret1", "virtual_router_id": 1})";
  EXPECT_EQ(call("GET", "/1.0/vrrp").status, 404) << "not configured yet";
  auto put = call("PUT", "/1.0/vrrp", vrrp);
  ASSERT_EQ(put.status, 200) << put.body;
  auto got = call("GET", "/1.0/vrrp");
  ASSERT_EQ(got.status, 200);
  EXPECT_NE(got.body.find("203.0.113.10"), std::string::npos) << got.body;
  EXPECT_EQ(got.body.find("secret1"), std::string::npos) << "the VRRP password is not echoed";
  EXPECT_NE(call("GET", "/1.0/details").body.find("\"topology\":\"ACTIVE_STANDBY\""), std::string::npos);

  struct Row {
    const char* method;
    std::string path;
    std::string body;
    const char* pointer;
  };
  const Row rows[] = {
      {"PUT", "/1.0/vrrp", R"({"interface": "eth1", "vip": "nope", "priority": 100, "local_address": "198.51.100.5", "peer_addresses": []})", "/vip"},
      {"PUT", "/1.0/vrrp", R"({"interface": "eth1", "vip": "203.0.113.10", "priority": "high", "local_address": "198.51.100.5", "peer_addresses": []})", "/priority"},
      {"PUT", "/1.0/vrrp", R"({"interface": "eth1", "vip": "203.0.113.10", "priority": 300, "local_address": "198.51.100.5", "peer_addresses": []})", "/priority"},
      {"PUT", "/1.0/vrrp", R"({"interface": "eth1", "vip": "203.0.113.10", "priority": 100, "local_address": "198.51.100.5", "peer_addresses": [7]})", "/peer_addresses/0"},
      {"PUT", "/1.0/vrrp", R"({"vip": "203.0.113.10", "priority": 100, "local_address": "198.51.100.5", "peer_addresses": []})", ""},
      {"PUT", "/1.0/vrrp", R"({"interface": "eth1", "vip": "203.0.113.10", "priority": 100, "local_address": "198.51.100.5", "peer_addresses": [], "extra": 1})", "/extra"},
      {"PUT", "/1.0/plug/vip/203.0.113.10", R"({"subnet_cidr": "203.0.113.0/24", "mac_address": "zz:16:3e:00:00:01"})", "/mac_address"},
      {"PUT", "/1.0/plug/vip/203.0.113.10", R"({"subnet_cidr": "203.0.113.0/33", "mac_address": "fa:16:3e:00:00:01"})", "/subnet_cidr"},
      {"PUT", "/1.0/plug/vip/203.0.113.10", R"({"subnet_cidr": "203.0.113.0/24", "mac_address": "fa:16:3e:00:00:01", "mtu": "1500"})", "/mtu"},
      {"PUT", "/1.0/plug/vip/203.0.113.10", R"({"subnet_cidr": "203.0.113.0/24", "mac_address": "fa:16:3e:00:00:01", "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "x"}]})", "/host_routes/0/nexthop"},
      {"PUT", "/1.0/plug/network", R"({"mac_address": "fa:16:3e:00:00:02", "fixed_ips": [{"ip_address": "192.0.2.5"}]})", "/fixed_ips/0"},
      {"PUT", "/1.0/plug/network", R"({"fixed_ips": []})", ""},
      {"PUT", "/1.0/plug/network", R"(["fa:16:3e:00:00:02"])", ""},
  };
  for (const auto& row : rows) {
    auto r = call(row.method, row.path, row.body);
    EXPECT_EQ(r.status, 400) << row.path << " " << row.body << " -> " << r.body;
    EXPECT_NE(r.body.find(std::string("\"path\":\"") + row.pointer + "\""), std::string::npos)
        << row.body << " -> " << r.body;
  }
  EXPECT_EQ(call("PUT", "/1.0/plug/vip/not-an-ip", R"({"subnet_cidr": "203.0.113.0/24", "mac_address": "fa:16:3e:00:00:01"})").status, 400);
  // The stored VRRP settings survived every refusal.
  EXPECT_EQ(call("GET", "/1.0/vrrp").body, got.body);

  auto vip = call("PUT", "/1.0/plug/vip/203.0.113.10",
                  R"({"subnet_cidr": "203.0.113.0/24", "gateway": "203.0.113.1", "mac_address": "fa:16:3e:00:00:01", "vrrp_ip": "203.0.113.5", "mtu": 1450,
                      "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "203.0.113.1"}],
                      "additional_vips": [{"ip_address": "2001:db8::10", "subnet_cidr": "2001:db8::/64"}]})");
  EXPECT_EQ(vip.status, 202) << vip.body;
  auto net = call("POST", "/1.0/plug/network",
                  R"({"mac_address": "fa:16:3e:00:00:02", "fixed_ips": [{"ip_address": "192.0.2.5", "subnet_cidr": "192.0.2.0/24"}], "mtu": 1500})");
  EXPECT_EQ(net.status, 202) << net.body;
}

}  // namespace
}  // namespace banyan::agent
