// buildHeartbeat: the status roll-up from the proxy's /config, /stats and /health.
#include <gtest/gtest.h>

#include "heartbeat/heartbeat_sender.h"

namespace banyan::agent::heartbeat {
namespace {

constexpr char kConfig[] = R"({
  "generation": 9,
  "settings": {"default_connection_limit": 100},
  "listeners": [
    {"id": "l-up", "address": "127.0.0.1", "protocol_port": 8080, "default_pool_id": "p1"},
    {"id": "l-full", "address": "127.0.0.1", "protocol_port": 8081, "connection_limit": 2},
    {"id": "l-down", "address": "127.0.0.1", "protocol_port": 8082, "admin_state_up": false}
  ],
  "pools": [
    {"id": "p1", "members": [
      {"id": "m-ok", "address": "127.0.0.1", "protocol_port": 1},
      {"id": "m-err", "address": "127.0.0.1", "protocol_port": 2},
      {"id": "m-drain", "address": "127.0.0.1", "protocol_port": 3, "weight": 0},
      {"id": "m-admin", "address": "127.0.0.1", "protocol_port": 4, "admin_state_up": false}]},
    {"id": "p-all-down", "members": [{"id": "m-x", "address": "127.0.0.1", "protocol_port": 5}]},
    {"id": "p-nomon", "members": [{"id": "m-n", "address": "127.0.0.1", "protocol_port": 6}]},
    {"id": "p-off", "admin_state_up": false, "members": []}
  ]})";

constexpr char kStats[] = R"({"generation": 9, "listeners": [
  {"id": "l-up", "bytes_in": 10, "bytes_out": 20, "active_connections": 1, "total_connections": 30, "request_errors": 2},
  {"id": "l-full", "bytes_in": 0, "bytes_out": 0, "active_connections": 2, "total_connections": 2, "request_errors": 0}],
  "members": []})";

constexpr char kHealth[] = R"({"members": [
  {"pool_id": "p1", "member_id": "m-ok", "status": "ONLINE"},
  {"pool_id": "p1", "member_id": "m-err", "status": "ERROR"},
  {"pool_id": "p1", "member_id": "m-drain", "status": "ONLINE"},
  {"pool_id": "p1", "member_id": "m-admin", "status": "OFFLINE"},
  {"pool_id": "p-all-down", "member_id": "m-x", "status": "ERROR"}]})";

TEST(BuildHeartbeat, RollsUpOctaviaOperatingStatuses) {
  auto hb = buildHeartbeat("amp", 3, 77, kConfig, kStats, kHealth);
  ASSERT_TRUE(hb.ok()) << hb.error().message;
  EXPECT_EQ(hb->amphora_id, "amp");
  EXPECT_EQ(hb->sequence, 3u);
  EXPECT_EQ(hb->proxy_epoch, 77u);
  EXPECT_EQ(hb->generation, 9u);
  ASSERT_EQ(hb->listeners.size(), 3u);
  EXPECT_EQ(hb->listeners[0].status, "ONLINE");
  EXPECT_EQ(hb->listeners[0].bytes_in, 10u);
  EXPECT_EQ(hb->listeners[0].bytes_out, 20u);
  EXPECT_EQ(hb->listeners[0].total_connections, 30u);
  EXPECT_EQ(hb->listeners[0].request_errors, 2u);
  EXPECT_EQ(hb->listeners[1].status, "DEGRADED") << "at its connection limit";
  EXPECT_EQ(hb->listeners[2].status, "OFFLINE");
  ASSERT_EQ(hb->pools.size(), 4u);
  const auto& p1 = hb->pools[0];
  EXPECT_EQ(p1.status, "DEGRADED");
  ASSERT_EQ(p1.members.size(), 4u);
  EXPECT_EQ(p1.members[0].status, "ONLINE");
  EXPECT_EQ(p1.members[1].status, "ERROR");
  EXPECT_EQ(p1.members[2].status, "DRAINING");
  EXPECT_EQ(p1.members[3].status, "OFFLINE");
  EXPECT_EQ(hb->pools[1].status, "ERROR");
  EXPECT_EQ(hb->pools[2].status, "ONLINE");
  EXPECT_EQ(hb->pools[2].members[0].status, "NO_MONITOR");
  EXPECT_EQ(hb->pools[3].status, "OFFLINE");
}

TEST(BuildHeartbeat, UnreadableProxyAnswerIsAnError) {
  EXPECT_FALSE(buildHeartbeat("amp", 0, 0, "{", kStats, kHealth).ok());
  EXPECT_FALSE(buildHeartbeat("amp", 0, 0, kConfig, "[]", kHealth).ok());
}

TEST(ParseTarget, AcceptsIpv4AndBracketedIpv6Only) {
  struct Case {
    const char* text;
    bool ok;
    const char* address;
    uint16_t port;
  };
  const Case cases[] = {
      {"127.0.0.1:5555", true, "127.0.0.1", 5555},
      {"[::1]:5555", true, "::1", 5555},
      {"[2001:db8::1]:1", true, "2001:db8::1", 1},
      {"::1:5555", false, "", 0},
      {"127.0.0.1", false, "", 0},
      {"127.0.0.1:0", false, "", 0},
      {"127.0.0.1:65536", false, "", 0},
      {"localhost:5555", false, "", 0},
      {"127.0.0.1:55a", false, "", 0},
      {"[::1]5555", false, "", 0},
      {"", false, "", 0},
  };
  for (const auto& c : cases) {
    auto r = parseTarget(c.text);
    EXPECT_EQ(r.ok(), c.ok) << c.text;
    if (r.ok() && c.ok) {
      EXPECT_EQ(r->address, c.address);
      EXPECT_EQ(r->port, c.port);
    }
  }
}

TEST(ValidateSettings, RefusesEmptyKeyAndOutOfRangeInterval) {
  EXPECT_TRUE(validateSettings({{"127.0.0.1:1"}, 1, "k"}).ok());
  EXPECT_FALSE(validateSettings({{"127.0.0.1:1"}, 1, ""}).ok());
  EXPECT_FALSE(validateSettings({{"127.0.0.1:1"}, 0, "k"}).ok());
  EXPECT_FALSE(validateSettings({{"nope"}, 1, "k"}).ok());
}

}  // namespace
}  // namespace banyan::agent::heartbeat
