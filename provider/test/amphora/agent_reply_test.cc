// How the agent's answers map to the errors the controller's flows act on: one row per case.
#include "amphora/agent_reply.h"

#include <gtest/gtest.h>

namespace banyan::provider::amphora {
namespace {

using common::ErrorCode;

struct StatusCase {
  const char* why;
  int status;
  const char* body;
  bool ok;
  ErrorCode code;
  const char* context;
  const char* in_message;
};

TEST(CheckAgentStatus, MapsEachStatusToWhatTheFlowsRetryOrGiveUpOn) {
  const StatusCase cases[] = {
      {"200 is success", 200, R"({"message": "OK"})", true, ErrorCode::kInternal, "", ""},
      {"202 (plug) is success", 202, "", true, ErrorCode::kInternal, "", ""},
      {"400 carries message, path and details", 400,
       R"({"message": "Invalid configuration", "path": "/listeners/0/protocol_port", "details": "70000 is greater than the maximum 65535"})",
       false, ErrorCode::kInvalidArgument, "/listeners/0/protocol_port",
       "400 Invalid configuration: 70000 is greater than the maximum 65535 (at /listeners/0/protocol_port)"},
      {"400 without a JSON body", 400, "garbage", false, ErrorCode::kInvalidArgument, "", "400: garbage"},
      {"409 is a conflict", 409, R"({"message": "Conflict", "path": "", "details": "in use"})", false,
       ErrorCode::kConflict, "", "in use"},
      {"500 is worth a retry", 500, R"({"message": "Internal Server Error"})", false, ErrorCode::kUnavailable, "",
       "500"},
      {"503 is worth a retry", 503, R"({"message": "Service Unavailable", "details": "disk full"})", false,
       ErrorCode::kUnavailable, "", "disk full"},
      {"404 for a NIC not visible yet is worth a retry", 404,
       R"({"message": "Not Found", "path": "fa:16:3e:00:00:01", "details": "No suitable network interface found"})",
       false, ErrorCode::kUnavailable, "fa:16:3e:00:00:01", "No suitable network interface found"},
      {"404 for an unknown path is ours to fix", 404, R"({"message": "Not Found", "path": "/1.0/nope"})", false,
       ErrorCode::kInternal, "/1.0/nope", "404"},
      {"405 is ours to fix", 405, R"({"message": "Method Not Allowed"})", false, ErrorCode::kInternal, "", "405"},
      {"413 is ours to fix", 413, "", false, ErrorCode::kInternal, "", "413"},
      {"a body with control characters stays on one line", 400, "{\"message\": \"a\\nb\"}", false,
       ErrorCode::kInvalidArgument, "", "400 a b"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    auto r = checkAgentStatus("PUT /1.0/x on amphora 192.0.2.5:9443", c.status, c.body);
    ASSERT_EQ(r.ok(), c.ok);
    if (c.ok) continue;
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_EQ(r.error().context, c.context);
    EXPECT_NE(r.error().message.find(c.in_message), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.rfind("PUT /1.0/x on amphora 192.0.2.5:9443: ", 0), 0u) << r.error().message;
  }
}

TEST(CheckAgentStatus, CutsHugeErrorBodies) {
  std::string body(100000, 'x');
  auto r = checkAgentStatus("GET /", 500, body);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message.size(), 1000u);
}

TEST(ParsePutConfigReply, ReadsTheFieldsAndRefusesMissingOnes) {
  auto r = parsePutConfigReply(
      R"({"message": "OK", "generation": 7, "sha256": "ab", "delta": true, "unchanged": false})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->generation, 7);
  EXPECT_EQ(r->sha256, "ab");
  EXPECT_TRUE(r->delta);
  EXPECT_FALSE(r->unchanged);
  EXPECT_FALSE(parsePutConfigReply(R"({"sha256": "ab"})").ok());
  EXPECT_FALSE(parsePutConfigReply(R"({"generation": "7", "sha256": "ab"})").ok());
  EXPECT_FALSE(parsePutConfigReply(R"({"generation": 7})").ok());
  EXPECT_FALSE(parsePutConfigReply("[]").ok());
  EXPECT_FALSE(parsePutConfigReply("").ok());
}

TEST(StringField, ReadsAStringMemberOnly) {
  EXPECT_EQ(stringField(R"({"interface": "eth1"})", "interface").value(), "eth1");
  EXPECT_FALSE(stringField(R"({"interface": 1})", "interface").ok());
  EXPECT_FALSE(stringField(R"({})", "interface").ok());
  EXPECT_FALSE(stringField("nope", "interface").ok());
}

}  // namespace
}  // namespace banyan::provider::amphora
