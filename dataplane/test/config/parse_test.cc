#include "config/parse.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace banyan::dp::config {
namespace {

using common::ErrorCode;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The document of the task brief, every field set to a non-default value where
// the model allows it, so a field read into the wrong place shows up.
std::string monitorPortZeroDocument() {
  return R"({"pools": [{"id": "p", "members": [{"id": "m", "address": "127.0.0.11", "protocol_port": 81,
             "monitor_port": 0}]}]})";
}

constexpr const char* kFullDocument = R"({
  "generation": 7,
  "settings": {"workers": 2, "default_connection_limit": 40000, "max_request_line": 4096,
               "max_header_bytes": 32768, "max_headers": 50, "drain_timeout_ms": 1000,
               "member_connect_retries": 1, "access_log": "stdout"},
  "listeners": [{"id": "l1", "name": "web", "protocol": "HTTP", "address": "127.0.0.1",
     "additional_addresses": ["::1", "127.0.0.2"],
     "protocol_port": 8080, "admin_state_up": false, "connection_limit": 1000,
     "timeout_client_data": 1000, "timeout_member_connect": 2000, "timeout_member_data": 3000,
     "timeout_tcp_inspect": 4000,
     "insert_headers": {"X-Forwarded-For": "true", "X-Forwarded-Port": "TRUE", "X-Forwarded-Proto": true,
                        "Forwarded": "false"},
     "accept_proxy_protocol": "v2", "default_pool_id": "p1"}],
  "pools": [{"id": "p1", "name": "pool one", "protocol": "PROXY", "lb_algorithm": "SOURCE_IP_PORT",
     "admin_state_up": false,
     "members": [{"id": "m1", "name": "first", "address": "127.0.0.11", "protocol_port": 9001, "weight": 7,
                  "backup": true, "admin_state_up": false, "monitor_address": "127.0.0.21", "monitor_port": 9101},
                 {"id": "m2", "address": "::1", "protocol_port": 9002}],
     "health_monitor": {"id": "hm1", "type": "HTTP", "delay": 2, "timeout": 0.25, "max_retries": 4,
        "max_retries_down": 6, "http_method": "HEAD", "url_path": "/health?full=1", "expected_codes": "200,202",
        "domain_name": "app.example.com", "http_version": "1.1", "admin_state_up": false}}]
})";

TEST(ParseConfig, FullDocumentFillsEveryModelField) {
  auto result = parseConfig(kFullDocument);
  ASSERT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
  const Config& c = *result;
  EXPECT_EQ(c.generation, 7u);
  EXPECT_EQ(c.settings.workers, 2u);
  EXPECT_EQ(c.settings.default_connection_limit, 40000u);
  EXPECT_EQ(c.settings.max_request_line, 4096u);
  EXPECT_EQ(c.settings.max_header_bytes, 32768u);
  EXPECT_EQ(c.settings.max_headers, 50u);
  EXPECT_EQ(c.settings.drain_timeout_ms, 1000u);
  EXPECT_EQ(c.settings.member_connect_retries, 1u);
  EXPECT_EQ(c.settings.access_log, "stdout");

  ASSERT_EQ(c.listeners.size(), 1u);
  const Listener& l = c.listeners[0];
  EXPECT_EQ(l.id, "l1");
  EXPECT_EQ(l.protocol, ListenerProtocol::kHttp);
  EXPECT_EQ(l.address, "127.0.0.1");
  EXPECT_EQ(l.additional_addresses, (std::vector<std::string>{"::1", "127.0.0.2"}));
  EXPECT_EQ(l.protocol_port, 8080);
  EXPECT_FALSE(l.admin_state_up);
  EXPECT_EQ(l.connection_limit, 1000);
  EXPECT_EQ(l.timeout_client_data_ms, 1000u);
  EXPECT_EQ(l.timeout_member_connect_ms, 2000u);
  EXPECT_EQ(l.timeout_member_data_ms, 3000u);
  EXPECT_EQ(l.timeout_tcp_inspect_ms, 4000u);
  EXPECT_TRUE(l.insert_headers.x_forwarded_for);
  EXPECT_TRUE(l.insert_headers.x_forwarded_port);
  EXPECT_TRUE(l.insert_headers.x_forwarded_proto);
  EXPECT_FALSE(l.insert_headers.forwarded);
  EXPECT_EQ(l.accept_proxy, AcceptProxy::kV2);
  EXPECT_EQ(l.default_pool_id, "p1");

  ASSERT_EQ(c.pools.size(), 1u);
  const Pool& p = c.pools[0];
  EXPECT_EQ(p.id, "p1");
  EXPECT_EQ(p.protocol, PoolProtocol::kProxy);
  EXPECT_EQ(p.lb_algorithm, LbAlgorithm::kSourceIpPort);
  EXPECT_FALSE(p.admin_state_up);
  ASSERT_EQ(p.members.size(), 2u);
  const Member& m = p.members[0];
  EXPECT_EQ(m.id, "m1");
  EXPECT_EQ(m.address, "127.0.0.11");
  EXPECT_EQ(m.protocol_port, 9001);
  EXPECT_EQ(m.weight, 7u);
  EXPECT_TRUE(m.backup);
  EXPECT_FALSE(m.admin_state_up);
  EXPECT_EQ(m.monitor_address, "127.0.0.21");
  EXPECT_EQ(m.monitor_port, 9101);
  EXPECT_EQ(p.members[1].address, "::1");

  ASSERT_TRUE(p.health_monitor.has_value());
  const HealthMonitor& hm = *p.health_monitor;
  EXPECT_EQ(hm.id, "hm1");
  EXPECT_EQ(hm.type, MonitorType::kHttp);
  EXPECT_EQ(hm.delay_ms, 2000u);
  EXPECT_EQ(hm.timeout_ms, 250u);
  EXPECT_EQ(hm.max_retries, 4u);
  EXPECT_EQ(hm.max_retries_down, 6u);
  EXPECT_EQ(hm.http_method, "HEAD");
  EXPECT_EQ(hm.url_path, "/health?full=1");
  EXPECT_EQ(hm.expected_codes, (std::vector<uint16_t>{200, 202}));
  EXPECT_EQ(hm.domain_name, "app.example.com");
  EXPECT_EQ(hm.http_version, "1.1");
  EXPECT_FALSE(hm.admin_state_up);
  EXPECT_EQ(c.findPool("p1"), &p);
}

TEST(ParseConfig, OmittedFieldsTakeTheModelDefaults) {
  auto result = parseConfig(R"({
    "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80}],
    "pools": [{"id": "p", "members": [{"id": "m", "address": "127.0.0.11", "protocol_port": 81}],
               "health_monitor": {"id": "h"}}]})");
  ASSERT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
  const Config& c = *result;
  const Settings defaults_settings;
  EXPECT_EQ(c.generation, 0u);
  EXPECT_EQ(c.settings.workers, defaults_settings.workers);
  EXPECT_EQ(c.settings.default_connection_limit, 50000u);
  EXPECT_EQ(c.settings.max_request_line, 8192u);
  EXPECT_EQ(c.settings.max_header_bytes, 65536u);
  EXPECT_EQ(c.settings.max_headers, 100u);
  EXPECT_EQ(c.settings.drain_timeout_ms, 30000u);
  EXPECT_EQ(c.settings.member_connect_retries, 3u);
  EXPECT_EQ(c.settings.access_log, "");

  const Listener& l = c.listeners.at(0);
  EXPECT_EQ(l.protocol, ListenerProtocol::kHttp);
  EXPECT_TRUE(l.additional_addresses.empty());
  EXPECT_TRUE(l.admin_state_up);
  EXPECT_EQ(l.connection_limit, -1);
  EXPECT_EQ(l.timeout_client_data_ms, 50000u);
  EXPECT_EQ(l.timeout_member_connect_ms, 5000u);
  EXPECT_EQ(l.timeout_member_data_ms, 50000u);
  EXPECT_EQ(l.timeout_tcp_inspect_ms, 0u);
  EXPECT_FALSE(l.insert_headers.x_forwarded_for || l.insert_headers.x_forwarded_port ||
               l.insert_headers.x_forwarded_proto || l.insert_headers.forwarded);
  EXPECT_EQ(l.accept_proxy, AcceptProxy::kNone);
  EXPECT_EQ(l.default_pool_id, "");

  const Pool& p = c.pools.at(0);
  EXPECT_EQ(p.protocol, PoolProtocol::kHttp);
  EXPECT_EQ(p.lb_algorithm, LbAlgorithm::kRoundRobin);
  EXPECT_TRUE(p.admin_state_up);
  const Member& m = p.members.at(0);
  EXPECT_EQ(m.weight, 1u);
  EXPECT_FALSE(m.backup);
  EXPECT_TRUE(m.admin_state_up);
  EXPECT_EQ(m.monitor_address, "");
  EXPECT_EQ(m.monitor_port, 0);

  const HealthMonitor& hm = p.health_monitor.value();
  EXPECT_EQ(hm.type, MonitorType::kTcp);
  EXPECT_EQ(hm.delay_ms, 5000u);
  EXPECT_EQ(hm.timeout_ms, 5000u);
  EXPECT_EQ(hm.max_retries, 3u);
  EXPECT_EQ(hm.max_retries_down, 3u);
  EXPECT_EQ(hm.http_method, "GET");
  EXPECT_EQ(hm.url_path, "/");
  EXPECT_EQ(hm.expected_codes, (std::vector<uint16_t>{200}));
  EXPECT_EQ(hm.domain_name, "");
  EXPECT_EQ(hm.http_version, "1.0");
  EXPECT_TRUE(hm.admin_state_up);
}

TEST(ParseConfig, EmptyObjectIsAnEmptyConfig) {
  auto result = parseConfig("{}");
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->listeners.empty());
  EXPECT_TRUE(result->pools.empty());
}

TEST(ParseConfig, TrustedProxySourcesAreKeptInOrder) {
  auto result =
      parseConfig(R"({"listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80,
      "accept_proxy_protocol": "any",
      "proxy_protocol_trusted_cidrs": ["192.0.2.0/24", "2001:db8::/32", "203.0.113.9"]}]})");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->listeners.at(0).proxy_protocol_trusted_cidrs,
            (std::vector<std::string>{"192.0.2.0/24", "2001:db8::/32", "203.0.113.9"}));
}

TEST(ParseConfig, AllowedCidrsAreKeptAndNullMeansEveryone) {
  auto result =
      parseConfig(R"({"listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80,
      "allowed_cidrs": ["192.0.2.0/24", "2001:db8::/32"]},
      {"id": "m", "address": "127.0.0.1", "protocol_port": 81, "allowed_cidrs": null}]})");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->listeners.at(0).allowed_cidrs,
            (std::vector<std::string>{"192.0.2.0/24", "2001:db8::/32"}));
  EXPECT_TRUE(result->listeners.at(1).allowed_cidrs.empty());
}

TEST(ParseConfig, PrometheusListenerKeepsItsConnectionOptionsAndHasNoTlsWithoutACertificate) {
  auto r = parseConfig(R"({"listeners": [{"id": "prom", "protocol": "PROMETHEUS", "address": "127.0.0.1",
      "protocol_port": 9100, "connection_limit": 5, "timeout_client_data": 3000,
      "allowed_cidrs": ["192.0.2.0/24"]}]})");
  ASSERT_TRUE(r.ok()) << r.error().context << ": " << r.error().message;
  const Listener& l = r.value().listeners.at(0);
  EXPECT_EQ(l.protocol, ListenerProtocol::kPrometheus);
  EXPECT_EQ(l.connection_limit, 5);
  EXPECT_EQ(l.timeout_client_data_ms, 3000u);
  EXPECT_EQ(l.allowed_cidrs, std::vector<std::string>{"192.0.2.0/24"});
  EXPECT_TRUE(l.default_pool_id.empty());
  EXPECT_FALSE(l.terminatesTls());
}

TEST(ParseConfig, PrometheusListenerWithACertificateTerminatesTlsLikeTerminatedHttps) {
  auto r = parseConfig(R"({"listeners": [{"id": "prom", "protocol": "PROMETHEUS", "address": "127.0.0.1",
      "protocol_port": 9443, "default_tls_certificate": "/certs/a.pem", "alpn_protocols": ["http/1.1"],
      "tls_versions": ["TLSv1.3"]}]})");
  ASSERT_TRUE(r.ok()) << r.error().context << ": " << r.error().message;
  const Listener& l = r.value().listeners.at(0);
  EXPECT_TRUE(l.terminatesTls());
  EXPECT_EQ(l.tls.default_certificate, "/certs/a.pem");
  EXPECT_EQ(l.tls.versions, kTlsV13);
  EXPECT_EQ(l.tls.alpn_protocols, std::vector<std::string>{"http/1.1"});
}

TEST(ParseConfig, ZeroListenerTimeoutsMeanOctaviaDefaults) {
  auto result =
      parseConfig(R"({"listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80,
      "timeout_client_data": 0, "timeout_member_connect": 0, "timeout_member_data": 0,
      "timeout_tcp_inspect": 0}]})");
  ASSERT_TRUE(result.ok()) << result.error().message;
  const Listener& l = result->listeners.at(0);
  EXPECT_EQ(l.timeout_client_data_ms, 50000u);
  EXPECT_EQ(l.timeout_member_connect_ms, 5000u);
  EXPECT_EQ(l.timeout_member_data_ms, 50000u);
  EXPECT_EQ(l.timeout_tcp_inspect_ms, 0u);
}

TEST(ParseConfig, FractionalMonitorSecondsBecomeMilliseconds) {
  auto result = parseConfig(
      R"({"pools": [{"id": "p", "health_monitor": {"id": "h", "delay": 0.05, "timeout": 0.01}}]})");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->pools[0].health_monitor->delay_ms, 50u);
  EXPECT_EQ(result->pools[0].health_monitor->timeout_ms, 10u);
}

TEST(ParseConfig, MonitorTimeoutLongerThanDelayIsAllowedLikeOctavia) {
  auto result = parseConfig(
      R"({"pools": [{"id": "p", "health_monitor": {"id": "h", "delay": 1, "timeout": 10}}]})");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->pools[0].health_monitor->timeout_ms, 10000u);
}

TEST(ParseConfig, NullOptionalFieldsReadAsAbsent) {
  auto result = parseConfig(R"({
    "listeners": [{"id": "l", "name": null, "address": "127.0.0.1", "protocol_port": 80, "default_pool_id": null}],
    "pools": [{"id": "p", "health_monitor": null,
               "members": [{"id": "m", "address": "127.0.0.11", "protocol_port": 81,
                            "monitor_address": null, "monitor_port": null}]}]})");
  ASSERT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
  EXPECT_EQ(result->listeners[0].default_pool_id, "");
  EXPECT_FALSE(result->pools[0].health_monitor.has_value());
  EXPECT_EQ(result->pools[0].members[0].monitor_address, "");
  EXPECT_EQ(result->pools[0].members[0].monitor_port, 0);
}

TEST(ParseConfig, InsertHeaderFlagsAcceptStringsInAnyCaseAndBooleans) {
  auto result =
      parseConfig(R"({"listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80,
      "insert_headers": {"X-Forwarded-For": "True", "X-Forwarded-Port": false, "X-Forwarded-Proto": "FALSE",
                         "Forwarded": true}}]})");
  ASSERT_TRUE(result.ok()) << result.error().message;
  const InsertHeaders& h = result->listeners[0].insert_headers;
  EXPECT_TRUE(h.x_forwarded_for);
  EXPECT_FALSE(h.x_forwarded_port);
  EXPECT_FALSE(h.x_forwarded_proto);
  EXPECT_TRUE(h.forwarded);
}

TEST(ParseConfig, ExampleDocumentParses) {
  auto result = loadConfigFile(std::string(BANYAN_SOURCE_DIR) + "/examples/proxy.json");
  ASSERT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
  ASSERT_EQ(result->listeners.size(), 2u);
  EXPECT_EQ(result->listeners[0].protocol, ListenerProtocol::kHttp);
  EXPECT_EQ(result->listeners[0].protocol_port, 8080);
  EXPECT_EQ(result->listeners[1].protocol, ListenerProtocol::kTcp);
  EXPECT_EQ(result->listeners[1].protocol_port, 8090);
  for (const Listener& l : result->listeners) {
    const Pool* pool = result->findPool(l.default_pool_id);
    ASSERT_NE(pool, nullptr);
    ASSERT_EQ(pool->members.size(), 2u);
    EXPECT_EQ(pool->members[0].address, "127.0.0.11");
    EXPECT_EQ(pool->members[0].protocol_port, 9001);
    EXPECT_EQ(pool->members[1].address, "127.0.0.12");
    EXPECT_EQ(pool->members[1].protocol_port, 9002);
  }
  ASSERT_TRUE(result->findPool(result->listeners[0].default_pool_id)->health_monitor.has_value());
  EXPECT_EQ(result->findPool(result->listeners[0].default_pool_id)->health_monitor->type,
            MonitorType::kHttp);
}

// Under ctest every test is its own process, so this also races the schema's
// first, lazy compilation (meaningful under TSan).
TEST(ParseConfig, ManyThreadsCanParseAtOnce) {
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (size_t t = 0; t < ok.size(); ++t) {
    threads.emplace_back([&ok, t] {
      for (int i = 0; i < 20; ++i) {
        auto good = parseConfig(kFullDocument);
        auto bad = parseConfig(R"({"pools": [{"id": "p", "lb_algorithm": "FOO"}]})");
        if (good.ok() && !bad.ok() && bad.error().context == "/pools/0/lb_algorithm") ++ok[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int n : ok) EXPECT_EQ(n, 20);
}

TEST(ParseConfig, MonitorPortZeroMeansTheMemberPort) {
  auto result = parseConfig(monitorPortZeroDocument());
  ASSERT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
  EXPECT_EQ(result->pools[0].members[0].monitor_port, 0);
}

TEST(ParseConfig, ReferenceDocumentExampleIsTheExampleFile) {
  const std::string reference = readFile(std::string(BANYAN_SOURCE_DIR) + "/docs/proxy-config.md");
  const std::string fence = "```json\n";
  size_t begin = reference.find(fence);
  ASSERT_NE(begin, std::string::npos);
  begin += fence.size();
  size_t end = reference.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(reference.substr(begin, end - begin),
            readFile(std::string(BANYAN_SOURCE_DIR) + "/examples/proxy.json"));
}

TEST(SchemaText, IsTheRepositorySchemaByteForByte) {
  std::string on_disk = readFile(std::string(BANYAN_SOURCE_DIR) +
                                 "/dataplane/src/config/schema/proxy-config.schema.json");
  ASSERT_FALSE(on_disk.empty());
  EXPECT_EQ(schemaText(), on_disk);
}

TEST(LoadConfigFile, MissingFileIsNotFoundWithThePathAsContext) {
  const std::string path = "/nonexistent/banyan/proxy.json";
  auto result = loadConfigFile(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(result.error().context, path);
  EXPECT_NE(result.error().message.find("No such file"), std::string::npos)
      << result.error().message;
}

TEST(LoadConfigFile, DirectoryIsAnIoErrorWithThePathAsContext) {
  auto result = loadConfigFile("/");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(result.error().context, "/");
}

TEST(LoadConfigFile, InvalidContentReportsTheJsonPointerNotThePath) {
  char path[] = "/tmp/banyan-config-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text =
      R"({"listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 0}]})";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  auto result = loadConfigFile(path);
  unlink(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().context, "/listeners/0/protocol_port");
  EXPECT_EQ(result.error().message, "0 is less than the minimum 1");
}

TEST(ParseConfig, SyntaxErrorNamesLineAndColumn) {
  auto result = parseConfig("{\n  \"generation\": 1,\n  \"listeners\": [}\n");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.error().context, "");
  EXPECT_NE(result.error().message.find("line 3, column 17"), std::string::npos)
      << result.error().message;
}

TEST(ParseConfig, EmptyInputIsASyntaxError) {
  auto result = parseConfig("");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().context, "");
  EXPECT_NE(result.error().message.find("invalid JSON"), std::string::npos);
}

TEST(ParseConfig, InvalidUtf8IsRejected) {
  auto result = parseConfig(
      "{\"listeners\": [{\"id\": \"\xff\", \"address\": \"127.0.0.1\", \"protocol_port\": 1}]}");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("invalid JSON"), std::string::npos);
}

TEST(ParseConfig, Utf8ByteOrderMarkIsIgnored) {
  auto result = parseConfig("\xEF\xBB\xBF{\"generation\": 3}");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->generation, 3u);
}

// Found by config_fuzz: RapidJSON's stream wrapper skipped a lone 0xEF as if it
// were a byte order mark.
TEST(ParseConfig, PartialByteOrderMarkIsASyntaxError) {
  auto result = parseConfig("\xEF{}");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("invalid JSON"), std::string::npos)
      << result.error().message;
}

TEST(ParseConfig, DeepNestingIsRejectedWithoutExhaustingTheStack) {
  std::string deep = "{\"listeners\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  auto result = parseConfig(deep);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().context, "/listeners/0");
}

// ---------------------------------------------------------------------------
// Rejections: one described row per case, with the exact pointer and reason.

struct Rejection {
  const char* name;
  std::string document;
  std::string context;
  std::string message;
};

void PrintTo(const Rejection& r, std::ostream* os) { *os << r.name; }

class Rejects : public testing::TestWithParam<Rejection> {};

TEST_P(Rejects, WithPointerAndReason) {
  const Rejection& row = GetParam();
  auto result = parseConfig(row.document);
  ASSERT_FALSE(result.ok()) << "accepted: " << row.document;
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.error().context, row.context);
  EXPECT_EQ(result.error().message, row.message);
}

std::string rowName(const testing::TestParamInfo<Rejection>& info) { return info.param.name; }

// Builders for small documents.
std::string listener(const std::string& extra, const std::string& id = "l1", int port = 8080,
                     const std::string& address = "127.0.0.1") {
  return R"({"id": ")" + id + R"(", "address": ")" + address + R"(", "protocol_port": )" +
         std::to_string(port) + extra + "}";
}
std::string member(const std::string& extra, const std::string& id = "m1", int port = 9001) {
  return R"({"id": ")" + id + R"(", "address": "127.0.0.11", "protocol_port": )" +
         std::to_string(port) + extra + "}";
}
std::string pool(const std::string& extra, const std::string& id = "p1") {
  return R"({"id": ")" + id + "\"" + extra + "}";
}
std::string doc(const std::string& listeners, const std::string& pools = "") {
  return R"({"listeners": [)" + listeners + R"(], "pools": [)" + pools + "]}";
}
std::string monitor(const std::string& extra) {
  return doc("", pool(R"(, "health_monitor": {"id": "hm1")" + extra + "}"));
}

INSTANTIATE_TEST_SUITE_P(
    SchemaErrors, Rejects,
    testing::Values(
        Rejection{"RootNotAnObject", "[]", "", "an array is not of type object"},
        Rejection{"PortAboveMaximum", doc(listener("", "l1", 70000)), "/listeners/0/protocol_port",
                  "70000 is greater than the maximum 65535"},
        Rejection{"PortZero", doc(listener("", "l1", 0)), "/listeners/0/protocol_port",
                  "0 is less than the minimum 1"},
        Rejection{"PortAsString",
                  doc(R"({"id": "l1", "address": "127.0.0.1", "protocol_port": "80"})"),
                  "/listeners/0/protocol_port", "\"80\" is not of type integer"},
        Rejection{"PortFractional",
                  doc(R"({"id": "l1", "address": "127.0.0.1", "protocol_port": 80.5})"),
                  "/listeners/0/protocol_port", "80.5 is not of type integer"},
        Rejection{
            "UnknownLbAlgorithm",
            doc("", pool("") + "," + pool(R"(, "lb_algorithm": "FOO")", "p2")),
            "/pools/1/lb_algorithm",
            "\"FOO\" is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP, SOURCE_IP_PORT"},
        Rejection{"MissingProtocolPort", doc(R"({"id": "l1", "address": "127.0.0.1"})"),
                  "/listeners/0", "missing required property \"protocol_port\""},
        Rejection{"MissingMemberAddress",
                  doc("", pool(R"(, "members": [{"id": "m", "protocol_port": 1}])")),
                  "/pools/0/members/0", "missing required property \"address\""},
        Rejection{"MissingPoolId", doc("", "{}"), "/pools/0", "missing required property \"id\""},
        Rejection{
            "MisspelledMemberProperty",
            doc("", pool(", \"members\": [" + member("", "m1", 1) + "," + member("", "m2", 2) +
                         "," + member(R"(, "wieght": 2)", "m3", 3) + "]")),
            "/pools/0/members/2", "unknown property \"wieght\""},
        Rejection{"UnknownRootProperty", R"({"generation": 1, "listener": []})", "",
                  "unknown property \"listener\""},
        Rejection{"UnknownSettingsProperty", R"({"settings": {"workers": 1, "threads": 4}})",
                  "/settings", "unknown property \"threads\""},
        Rejection{"UnknownInsertHeader", doc(listener(R"(, "insert_headers": {"X-Foo": "true"})")),
                  "/listeners/0/insert_headers", "unknown property \"X-Foo\""},
        Rejection{"InsertHeaderValueNumber",
                  doc(listener(R"(, "insert_headers": {"X-Forwarded-For": 1})")),
                  "/listeners/0/insert_headers/X-Forwarded-For",
                  "1 is not of type string or boolean"},
        Rejection{"EmptyId", doc(listener("", "")), "/listeners/0/id",
                  "\"\" is shorter than the minimum length 1"},
        Rejection{"LongId", doc(listener("", std::string(256, 'a'))), "/listeners/0/id",
                  "\"" + std::string(64, 'a') + "...\" is longer than the maximum length 255"},
        Rejection{"WeightAboveMaximum",
                  doc("", pool(", \"members\": [" + member(R"(, "weight": 257)") + "]")),
                  "/pools/0/members/0/weight", "257 is greater than the maximum 256"},
        Rejection{"ConnectionLimitBelowMinusOne", doc(listener(R"(, "connection_limit": -2)")),
                  "/listeners/0/connection_limit", "-2 is less than the minimum -1"},
        Rejection{"TimeoutAboveADay", doc(listener(R"(, "timeout_client_data": 86400001)")),
                  "/listeners/0/timeout_client_data",
                  "86400001 is greater than the maximum 86400000"},
        Rejection{"MonitorDelayTooSmall", monitor(R"(, "delay": 0.001)"),
                  "/pools/0/health_monitor/delay", "0.001 is less than the minimum 0.01"},
        Rejection{"MonitorTimeoutZero", monitor(R"(, "timeout": 0)"),
                  "/pools/0/health_monitor/timeout", "0 is less than the minimum 0.01"},
        Rejection{"MonitorMaxRetriesAboveTen", monitor(R"(, "max_retries": 11)"),
                  "/pools/0/health_monitor/max_retries", "11 is greater than the maximum 10"},
        Rejection{"MonitorMaxRetriesDownZero", monitor(R"(, "max_retries_down": 0)"),
                  "/pools/0/health_monitor/max_retries_down", "0 is less than the minimum 1"},
        Rejection{
            "UnknownHttpMethod", monitor(R"(, "http_method": "FETCH")"),
            "/pools/0/health_monitor/http_method",
            "\"FETCH\" is not one of GET, HEAD, POST, PUT, DELETE, TRACE, OPTIONS, PATCH, CONNECT"},
        Rejection{"UnknownHttpVersion", monitor(R"(, "http_version": "2")"),
                  "/pools/0/health_monitor/http_version", "\"2\" is not one of 1.0, 1.1"},
        Rejection{"UnknownMonitorType", monitor(R"(, "type": "ICMP")"),
                  "/pools/0/health_monitor/type",
                  "\"ICMP\" is not one of TCP, HTTP, HTTPS, PING, TLS-HELLO, UDP-CONNECT, SCTP"},
        Rejection{
            "UnknownListenerProtocol", doc(listener(R"(, "protocol": "FTP")")),
            "/listeners/0/protocol",
            "\"FTP\" is not one of HTTP, TCP, HTTPS, TERMINATED_HTTPS, UDP, SCTP, PROMETHEUS"},
        Rejection{"UnknownAcceptProxy", doc(listener(R"(, "accept_proxy_protocol": "v3")")),
                  "/listeners/0/accept_proxy_protocol", "\"v3\" is not one of none, v1, v2, any"},
        Rejection{"NegativeGeneration", R"({"generation": -1})", "/generation",
                  "-1 is less than the minimum 0"},
        Rejection{"AdditionalAddressesNotAnArray",
                  doc(listener(R"(, "additional_addresses": "::1")")),
                  "/listeners/0/additional_addresses", "\"::1\" is not of type array"},
        Rejection{"AdminStateAsString", doc(listener(R"(, "admin_state_up": "yes")")),
                  "/listeners/0/admin_state_up", "\"yes\" is not of type boolean"},
        Rejection{"ListenersNotAnArray", R"({"listeners": {}})", "/listeners",
                  "an object is not of type array"}),
    rowName);

INSTANTIATE_TEST_SUITE_P(
    SemanticErrors, Rejects,
    testing::Values(
        Rejection{"DuplicateListenerId", doc(listener("") + "," + listener("", "l1", 8081)),
                  "/listeners/1/id", "duplicate listener id \"l1\" (first at /listeners/0)"},
        Rejection{"DuplicatePoolId", doc("", pool("") + "," + pool("")), "/pools/1/id",
                  "duplicate pool id \"p1\" (first at /pools/0)"},
        Rejection{
            "DuplicateMemberIdAcrossPools",
            doc("",
                pool(", \"members\": [" + member("") + "]") + "," +
                    pool(", \"members\": [" + member("", "m2", 1) + "," + member("") + "]", "p2")),
            "/pools/1/members/1/id", "duplicate member id \"m1\" (first at /pools/0/members/0)"},
        Rejection{"DuplicateMonitorId",
                  doc("", pool(R"(, "health_monitor": {"id": "h"})") + "," +
                              pool(R"(, "health_monitor": {"id": "h"})", "p2")),
                  "/pools/1/health_monitor/id",
                  "duplicate health monitor id \"h\" (first at /pools/0/health_monitor)"},
        Rejection{"MissingDefaultPool", doc(listener(R"(, "default_pool_id": "nope")")),
                  "/listeners/0/default_pool_id", "pool \"nope\" does not exist"},
        Rejection{"HttpListenerWithTcpPool",
                  doc(listener(R"(, "default_pool_id": "p1")"), pool(R"(, "protocol": "TCP")")),
                  "/listeners/0/default_pool_id",
                  "HTTP listener cannot use TCP pool \"p1\" (allowed pool protocols: HTTP, PROXY, "
                  "PROXYV2)"},
        Rejection{"HttpListenerWithHttpsPool",
                  doc(listener(R"(, "default_pool_id": "p1")"), pool(R"(, "protocol": "HTTPS")")),
                  "/listeners/0/default_pool_id",
                  "HTTP listener cannot use HTTPS pool \"p1\" (allowed pool protocols: HTTP, "
                  "PROXY, PROXYV2)"},
        Rejection{"HostnameAsListenerAddress", doc(listener("", "l1", 80, "localhost")),
                  "/listeners/0/address", "\"localhost\" is not an IPv4 or IPv6 address literal"},
        Rejection{"BracketedIpv6Address", doc(listener("", "l1", 80, "[::1]")),
                  "/listeners/0/address", "\"[::1]\" is not an IPv4 or IPv6 address literal"},
        Rejection{"BadAdditionalAddress",
                  doc(listener(R"(, "additional_addresses": ["::1", "1.2.3"])")),
                  "/listeners/0/additional_addresses/1",
                  "\"1.2.3\" is not an IPv4 or IPv6 address literal"},
        Rejection{
            "BadMemberAddress",
            doc("",
                pool(R"(, "members": [{"id": "m", "address": "192.0.2.256", "protocol_port": 1}])")),
            "/pools/0/members/0/address", "\"192.0.2.256\" is not an IPv4 or IPv6 address literal"},
        Rejection{"AllowedCidrThatIsNotAPrefix",
                  doc(listener(R"(, "allowed_cidrs": ["192.0.2.0/24", "example.org"])")),
                  "/listeners/0/allowed_cidrs/1",
                  "\"example.org\" is not an IP prefix like 192.0.2.0/24 or 2001:db8::/32 "
                  "(host bits after the prefix must be zero)"},
        Rejection{"TrustedCidrWithHostBits",
                  doc(listener(R"(, "accept_proxy_protocol": "v2",
                      "proxy_protocol_trusted_cidrs": ["192.0.2.0/24", "198.51.100.1/24"])")),
                  "/listeners/0/proxy_protocol_trusted_cidrs/1",
                  "\"198.51.100.1/24\" is not an IP prefix like 192.0.2.0/24 or 2001:db8::/32 "
                  "(host bits after the prefix must be zero)"},
        Rejection{"BadMonitorAddress",
                  doc("", pool(", \"members\": [" + member(R"(, "monitor_address": "x")") + "]")),
                  "/pools/0/members/0/monitor_address",
                  "\"x\" is not an IPv4 or IPv6 address literal"},
        Rejection{"SameAddressAndPortTwice", doc(listener("") + "," + listener("", "l2")),
                  "/listeners/1/address",
                  "127.0.0.1:8080 is already bound by listener \"l1\" (/listeners/0/address)"},
        Rejection{"AdditionalAddressCollides",
                  doc(listener(R"(, "additional_addresses": ["::1"])") + "," +
                      listener("", "l2", 8080, "0:0:0:0:0:0:0:1")),
                  "/listeners/1/address",
                  "[0:0:0:0:0:0:0:1]:8080 is already bound by listener \"l1\" "
                  "(/listeners/0/additional_addresses/0)"},
        Rejection{"AdditionalAddressRepeatsOwnAddress",
                  doc(listener(R"(, "additional_addresses": ["127.0.0.1"])")),
                  "/listeners/0/additional_addresses/0",
                  "127.0.0.1:8080 is already bound by listener \"l1\" (/listeners/0/address)"},
        Rejection{"WildcardOverlapsSpecificAddress",
                  doc(listener("") + "," + listener("", "l2", 8080, "0.0.0.0")),
                  "/listeners/1/address",
                  "0.0.0.0:8080 is already bound by listener \"l1\" (/listeners/0/address)"},
        Rejection{"SpecificAddressUnderWildcard",
                  doc(listener("", "l1", 8080, "::") + "," + listener("", "l2", 8080, "::1")),
                  "/listeners/1/address",
                  "[::1]:8080 is already bound by listener \"l1\" (/listeners/0/address)"},
        Rejection{
            "SameMemberEndpointTwiceInAPool",
            doc("", pool(", \"members\": [" + member("") + "," + member("", "m2") + "]")),
            "/pools/0/members/1",
            "another member of pool \"p1\" already uses 127.0.0.11:9001 (/pools/0/members/0)"},
        Rejection{"MalformedExpectedCodes", monitor(R"(, "expected_codes": "2xx")"),
                  "/pools/0/health_monitor/expected_codes",
                  "\"2xx\" is not a status code, a comma-separated list (\"200,202\") or a range "
                  "(\"200-204\")"},
        Rejection{"ExpectedCodeOutOfRange", monitor(R"(, "expected_codes": "200,600")"),
                  "/pools/0/health_monitor/expected_codes", "status code 600 is outside 100-599"},
        Rejection{"ExpectedCodesRangeReversed", monitor(R"(, "expected_codes": "204-200")"),
                  "/pools/0/health_monitor/expected_codes",
                  "range 204-200 has its low end above its high end"},
        Rejection{"DomainNameWithHttp10",
                  monitor(R"(, "type": "HTTP", "domain_name": "example.com")"),
                  "/pools/0/health_monitor/domain_name",
                  "domain_name needs http_version \"1.1\" (the Host header is HTTP/1.1)"},
        Rejection{"DomainNameWithSpace",
                  monitor(R"(, "domain_name": "a b", "http_version": "1.1")"),
                  "/pools/0/health_monitor/domain_name", "\"a b\" is not a valid domain name"},
        Rejection{"UrlPathWithoutSlash", monitor(R"(, "url_path": "health")"),
                  "/pools/0/health_monitor/url_path", "\"health\" does not start with \"/\""},
        Rejection{"UrlPathWithSpace", monitor(R"(, "url_path": "/a b")"),
                  "/pools/0/health_monitor/url_path",
                  "\"/a b\" contains a space, control or non-ASCII character"},
        Rejection{"SctpMonitorType", monitor(R"(, "type": "SCTP")"),
                  "/pools/0/health_monitor/type",
                  "SCTP is not supported by banyan-proxy (no SCTP listeners, pools or health "
                  "monitors); use TCP or UDP"},
        Rejection{"SctpListenerProtocol", doc(listener(R"(, "protocol": "SCTP")")),
                  "/listeners/0/protocol",
                  "SCTP is not supported by banyan-proxy (no SCTP listeners, pools or health "
                  "monitors); use TCP or UDP"},
        Rejection{"SctpPoolProtocol", doc("", pool(R"(, "protocol": "SCTP")")),
                  "/pools/0/protocol",
                  "SCTP is not supported by banyan-proxy (no SCTP listeners, pools or health "
                  "monitors); use TCP or UDP"},
        Rejection{"PrometheusListenerWithADefaultPool",
                  doc(listener(R"(, "protocol": "PROMETHEUS", "default_pool_id": "p1")"), pool("")),
                  "/listeners/0/default_pool_id",
                  "a PROMETHEUS listener has no pools (it serves the proxy's metrics itself)"},
        Rejection{"PrometheusListenerWithL7Policies",
                  doc(listener(R"(, "protocol": "PROMETHEUS", "l7policies": [{"id": "r1", )"
                               R"("action": "REJECT", "rules": [{"type": "PATH", )"
                               R"("compare_type": "STARTS_WITH", "value": "/"}]}])")),
                  "/listeners/0/l7policies",
                  "a PROMETHEUS listener has no L7 policies (it serves the proxy's metrics itself)"},
        Rejection{"PrometheusTlsOptionWithoutACertificate",
                  doc(listener(R"(, "protocol": "PROMETHEUS", "tls_versions": ["TLSv1.3"])")),
                  "/listeners/0/tls_versions",
                  "tls_versions needs default_tls_certificate on a PROMETHEUS listener"},
        Rejection{"PrometheusListenerInsertingHeaders",
                  doc(listener(R"(, "protocol": "PROMETHEUS", "insert_headers": {"X-Forwarded-For": "true"})")),
                  "/listeners/0/insert_headers/X-Forwarded-For",
                  "inserting X-Forwarded-For needs an HTTP listener, not PROMETHEUS"},
        Rejection{"InsertHeaderNotTrueOrFalse",
                  doc(listener(R"(, "insert_headers": {"Forwarded": "yes"})")),
                  "/listeners/0/insert_headers/Forwarded", "\"yes\" is not \"true\" or \"false\""},
        Rejection{
            "InsertHeaderOnTcpListener",
            doc(listener(R"(, "protocol": "TCP", "insert_headers": {"X-Forwarded-For": "true"})")),
            "/listeners/0/insert_headers/X-Forwarded-For",
            "inserting X-Forwarded-For needs an HTTP listener, not TCP"},
        Rejection{"DuplicateJsonProperty",
                  doc(R"({"id": "l1", "address": "127.0.0.1", "protocol_port": 80, "id": "l2"})"),
                  "/listeners/0", "duplicate property \"id\""},
        Rejection{"RelativeAccessLogPath", R"({"settings": {"access_log": "proxy.log"}})",
                  "/settings/access_log",
                  "\"proxy.log\" is not \"\", \"stderr\", \"stdout\" or an absolute file path"}),
    rowName);

// ---------------------------------------------------------------------------
// Listener/pool protocol compatibility (Octavia's matrix).

struct Pairing {
  const char* listener;
  const char* pool;
  bool allowed;
};

class ProtocolPairing : public testing::TestWithParam<Pairing> {};

TEST_P(ProtocolPairing, FollowsOctaviasMatrix) {
  const Pairing& row = GetParam();
  std::string cert = std::string(row.listener) == "TERMINATED_HTTPS"
                         ? R"(, "default_tls_certificate": "/etc/banyan/cert.pem")"
                         : "";
  auto result = parseConfig(doc(
      listener(std::string(R"(, "protocol": ")") + row.listener + R"(", "default_pool_id": "p1")" +
               cert),
      pool(std::string(R"(, "protocol": ")") + row.pool + "\"")));
  EXPECT_EQ(result.ok(), row.allowed) << (result.ok() ? "accepted" : result.error().message);
}

INSTANTIATE_TEST_SUITE_P(
    All, ProtocolPairing,
    testing::Values(Pairing{"HTTP", "HTTP", true}, Pairing{"HTTP", "PROXY", true},
                    Pairing{"HTTP", "PROXYV2", true}, Pairing{"HTTP", "TCP", false},
                    Pairing{"HTTP", "HTTPS", false}, Pairing{"TCP", "TCP", true},
                    Pairing{"TCP", "HTTP", true}, Pairing{"TCP", "HTTPS", true},
                    Pairing{"TCP", "PROXY", true}, Pairing{"TCP", "PROXYV2", true},
                    Pairing{"HTTPS", "HTTPS", true}, Pairing{"HTTPS", "TCP", true},
                    Pairing{"HTTPS", "PROXY", true}, Pairing{"HTTPS", "PROXYV2", true},
                    Pairing{"HTTPS", "HTTP", false}, Pairing{"TERMINATED_HTTPS", "HTTP", true},
                    Pairing{"TERMINATED_HTTPS", "PROXY", true},
                    Pairing{"TERMINATED_HTTPS", "PROXYV2", true},
                    Pairing{"TERMINATED_HTTPS", "TCP", false},
                    Pairing{"TERMINATED_HTTPS", "HTTPS", false}, Pairing{"UDP", "UDP", true},
                    Pairing{"UDP", "TCP", false}, Pairing{"UDP", "HTTP", false},
                    Pairing{"TCP", "UDP", false}, Pairing{"HTTP", "UDP", false},
                    Pairing{"HTTPS", "UDP", false}, Pairing{"TERMINATED_HTTPS", "UDP", false}),
    [](const testing::TestParamInfo<Pairing>& info) {
      return std::string(info.param.listener) + "ListenerWith" + info.param.pool + "Pool";
    });

TEST(ParseConfig, DistinctAddressesOrFamiliesMayShareAPort) {
  auto result = parseConfig(doc(listener("") + "," + listener("", "l2", 8080, "127.0.0.2") + "," +
                                listener("", "l3", 8080, "::") + "," + listener("", "l4", 8081)));
  EXPECT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
}

TEST(ParseConfig, SameMemberEndpointInTwoPoolsIsAllowed) {
  auto result = parseConfig(doc("", pool(", \"members\": [" + member("") + "]") + "," +
                                        pool(", \"members\": [" + member("", "m2") + "]", "p2")));
  EXPECT_TRUE(result.ok()) << result.error().context << ": " << result.error().message;
}

// ---------------------------------------------------------------------------
// expected_codes forms.

struct CodesRow {
  const char* name;
  const char* text;
  std::vector<uint16_t> codes;  // empty: must be rejected
};

class ExpectedCodes : public testing::TestWithParam<CodesRow> {};

TEST_P(ExpectedCodes, ParseLikeOctavia) {
  const CodesRow& row = GetParam();
  auto result = parseExpectedCodes(row.text);
  if (row.codes.empty()) {
    EXPECT_FALSE(result.ok()) << "accepted \"" << row.text << "\"";
  } else {
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_EQ(*result, row.codes);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Forms, ExpectedCodes,
    testing::Values(CodesRow{"Single", "200", {200}}, CodesRow{"List", "200,202", {200, 202}},
                    CodesRow{"ListIsSortedAndDeduplicated", "302,200,302", {200, 302}},
                    CodesRow{"ListWithSpacesAroundCommas", "200 ,\t202", {200, 202}},
                    CodesRow{"Range", "200-204", {200, 201, 202, 203, 204}},
                    CodesRow{"OneCodeRange", "404-404", {404}},
                    CodesRow{"WholeRange", "100-599",
                             [] {
                               std::vector<uint16_t> all;
                               for (uint16_t c = 100; c <= 599; ++c) all.push_back(c);
                               return all;
                             }()},
                    CodesRow{"Empty", "", {}}, CodesRow{"TwoDigits", "20", {}},
                    CodesRow{"FourDigits", "2000", {}}, CodesRow{"Below100", "099", {}},
                    CodesRow{"Above599", "600", {}}, CodesRow{"OpenRange", "200-", {}},
                    CodesRow{"RangeAndList", "200-204,206", {}},
                    CodesRow{"ReversedRange", "204-200", {}}, CodesRow{"TrailingComma", "200,", {}},
                    CodesRow{"LeadingSpace", " 200", {}}, CodesRow{"TrailingSpace", "200 ", {}},
                    CodesRow{"Letters", "2xx", {}}, CodesRow{"SpacedRange", "200 - 204", {}}),
    [](const testing::TestParamInfo<CodesRow>& info) { return std::string(info.param.name); });

TEST(ParseConfig, ExpectedCodesRangeIsExpandedIntoTheModel) {
  auto result = parseConfig(monitor(R"(, "type": "HTTP", "expected_codes": "200-202")"));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->pools[0].health_monitor->expected_codes,
            (std::vector<uint16_t>{200, 201, 202}));
}

}  // namespace
}  // namespace banyan::dp::config
