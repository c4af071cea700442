// WSME-style body validation (validation.h): one described row per case.
#include "api/validation.h"

#include <gtest/gtest.h>

#include "api/api_error.h"

namespace banyan::provider::api {
namespace {

const std::vector<FieldSpec>& specs() {
  static const std::vector<FieldSpec> s = {
      {.name = "name"},
      {.name = "protocol", .type = FieldType::kEnum, .on_put = false, .required = true, .choices = {"TCP", "HTTP"}},
      {.name = "protocol_port", .type = FieldType::kInt, .on_put = false, .required = true, .min = 1, .max = 65535},
      {.name = "enabled", .type = FieldType::kBool},
      {.name = "subnet_id", .type = FieldType::kUuid},
      {.name = "address", .type = FieldType::kIpAddress},
      {.name = "tags", .type = FieldType::kStringList},
  };
  return s;
}

struct Row {
  const char* what;
  const char* body;
  BodyMode mode;
  const char* error;  // nullptr: accepted
};

TEST(Validation, BodiesAreCheckedLikeWsme) {
  const Row rows[] = {
      {"valid create", R"({"protocol":"TCP","protocol_port":80})", BodyMode::kPost, nullptr},
      {"numeric string is coerced", R"({"protocol":"TCP","protocol_port":"80"})", BodyMode::kPost, nullptr},
      {"missing required", R"({"protocol":"TCP"})", BodyMode::kPost,
       "Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."},
      {"bad enum", R"({"protocol":"FTP","protocol_port":80})", BodyMode::kPost,
       "Invalid input for field/attribute protocol. Value: 'FTP'. Value should be one of: TCP, HTTP"},
      {"out of range", R"({"protocol":"TCP","protocol_port":70000})", BodyMode::kPost,
       "Invalid input for field/attribute protocol_port. Value: '70000'. Value should be lower or equal to 65535"},
      {"below range", R"({"protocol":"TCP","protocol_port":0})", BodyMode::kPost,
       "Invalid input for field/attribute protocol_port. Value: '0'. Value should be greater or equal to 1"},
      {"unknown attribute", R"({"protocol":"TCP","protocol_port":80,"color":"red"})", BodyMode::kPost,
       "Unknown attribute for argument thing: color"},
      {"create-only field on PUT", R"({"protocol":"TCP"})", BodyMode::kPut, "Unknown attribute for argument thing: protocol"},
      {"wrong type", R"({"name":5})", BodyMode::kPut,
       "Invalid input for field/attribute name. Value: '5'. Wrong type. Expected '<class 'str'>', got '<class 'int'>'"},
      {"bad uuid", R"({"subnet_id":"xyz"})", BodyMode::kPut,
       "Invalid input for field/attribute subnet_id. Value: 'xyz'. Value should be UUID format"},
      {"bad ip", R"({"address":"192.0.2.300"})", BodyMode::kPut,
       "Invalid input for field/attribute address. Value: '192.0.2.300'. Value should be IPv4 or IPv6 format"},
      {"ipv6 ok", R"({"address":"2001:db8::1"})", BodyMode::kPut, nullptr},
      {"null means unset", R"({"name":null,"enabled":null})", BodyMode::kPut, nullptr},
      {"bool from string", R"({"enabled":"true"})", BodyMode::kPut, nullptr},
      {"list of non-strings", R"({"tags":[1]})", BodyMode::kPut,
       "Invalid input for field/attribute tags. Value: '1'. Wrong type. Expected '<class 'str'>', got '<class 'int'>'"},
  };
  for (const auto& row : rows) {
    JsonDoc doc = std::move(*parseJson(row.body));
    try {
      validateBody(doc, specs(), row.mode, "thing", doc.GetAllocator());
      EXPECT_EQ(row.error, nullptr) << row.what;
    } catch (const ApiError& e) {
      ASSERT_NE(row.error, nullptr) << row.what << ": " << e.message();
      EXPECT_EQ(e.status(), 400) << row.what;
      EXPECT_EQ(e.message(), row.error) << row.what;
    }
  }
}

TEST(Validation, RootBodyMustBeJsonWithTheRootKey) {
  EXPECT_THROW(parseRootBody("{not json", "pool"), ApiError);
  EXPECT_THROW(parseRootBody("{}", "pool"), ApiError);
  EXPECT_THROW(parseRootBody(R"({"pool":[]})", "pool"), ApiError);
  EXPECT_THROW(parseRootBody(R"({"pool":{},"x":1})", "pool"), ApiError);
  EXPECT_EQ(parseRootBody(R"({"pool":{"a":1}})", "pool").MemberCount(), 1u);
}

TEST(Validation, ValueCheckersFollowOctavia) {
  EXPECT_EQ(normalizeCidr("198.51.100.77/25").value_or(""), "198.51.100.0/25");
  EXPECT_EQ(normalizeCidr("2001:db8::1/32").value_or(""), "2001:db8::/32");
  EXPECT_FALSE(normalizeCidr("192.0.2.0/33"));
  EXPECT_FALSE(normalizeCidr("192.0.2.0"));
  EXPECT_TRUE(isValidExpectedCodes("200"));
  EXPECT_TRUE(isValidExpectedCodes("200, 202"));
  EXPECT_TRUE(isValidExpectedCodes("200-204"));
  EXPECT_FALSE(isValidExpectedCodes("20"));
  EXPECT_FALSE(isValidExpectedCodes("200-"));
  EXPECT_TRUE(isValidUrlPath("/health?x=1"));
  EXPECT_FALSE(isValidUrlPath("http://x/"));
  EXPECT_FALSE(isValidUrlPath("/a b"));
  EXPECT_TRUE(isValidUrl("https://example.com/x"));
  EXPECT_FALSE(isValidUrl("ftp://example.com"));
  EXPECT_FALSE(isValidUrl("http:///nohost"));
  EXPECT_TRUE(isValidHostname("www.example.com"));
  EXPECT_FALSE(isValidHostname("-bad.example.com"));
  EXPECT_TRUE(isValidCookieName("SESSION_ID"));
  EXPECT_FALSE(isValidCookieName("a;b"));
  EXPECT_TRUE(isUuidLike(newUuid()));
  EXPECT_FALSE(isUuidLike("not-a-uuid"));
}

}  // namespace
}  // namespace banyan::provider::api
