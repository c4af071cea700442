// The heartbeat codec (common/heartbeat.h): one described row per refusal, each with
// its own message, and a round trip that keeps every field.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

#include "banyan/common/heartbeat.h"

namespace banyan::common {
namespace {

constexpr char kKey[] = "insecure-test-key";

Heartbeat sample() {
  Heartbeat hb;
  hb.amphora_id = "5a6f7c2e-0d3b-4c39-9f6a-1b2c3d4e5f60";
  hb.sequence = 42;
  hb.proxy_epoch = 1700000000123;
  hb.generation = 7;
  hb.listeners.push_back({"listener-1", "ONLINE", 100, 2000, 3, 40, 5});
  hb.listeners.push_back({"listener-2", "DEGRADED", 0, 0, 50000, 50000, 0});
  hb.pools.push_back({"pool-1", "DEGRADED", {{"member-1", "ONLINE"}, {"member-2", "ERROR"}}});
  hb.pools.push_back({"pool-2", "ONLINE", {}});
  return hb;
}

// Re-signs BYTES (everything but the last 32) with KEY, for rows that test what comes
// after the signature check.
void resign(std::vector<uint8_t>& bytes, std::string_view key) {
  unsigned int len = 32;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes.data(), bytes.size() - 32,
       bytes.data() + bytes.size() - 32, &len);
}

TEST(HeartbeatCodec, RoundTripKeepsEveryField) {
  auto bytes = encodeHeartbeat(sample(), kKey);
  auto decoded = decodeHeartbeat(bytes, kKey);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), sample());
}

TEST(HeartbeatCodec, BodyIsCompressed) {
  Heartbeat hb = sample();
  for (int i = 0; i < 200; ++i) hb.pools[1].members.push_back({"member-" + std::to_string(i), "ONLINE"});
  auto bytes = encodeHeartbeat(hb, kKey);
  // ~200 members of ~40 bytes of JSON each compress far below their plain size.
  EXPECT_LT(bytes.size(), 3000u);
  EXPECT_EQ(decodeHeartbeat(bytes, kKey).value(), hb);
}

struct Row {
  const char* what;
  std::function<void(std::vector<uint8_t>&)> mutate;
  const char* key;
  const char* message_part;
};

TEST(HeartbeatCodec, RefusalsHaveDistinctMessages) {
  const std::vector<Row> rows = {
      {"wrong key", [](auto&) {}, "another-key", "signature mismatch"},
      {"one flipped body byte", [](auto& b) { b[20] ^= 1; }, kKey, "signature mismatch"},
      {"one flipped signature byte", [](auto& b) { b.back() ^= 1; }, kKey, "signature mismatch"},
      {"cut to the header", [](auto& b) { b.resize(10); }, kKey, "truncated: 10 bytes"},
      {"empty", [](auto& b) { b.clear(); }, kKey, "truncated: 0 bytes"},
      {"last byte missing", [](auto& b) { b.pop_back(); }, kKey, "truncated: header announces"},
      {"extra byte", [](auto& b) { b.push_back(0); }, kKey, "truncated: header announces"},
      {"bad magic", [](auto& b) { b[0] = 'X'; }, kKey, "bad magic"},
      {"oversize datagram", [](auto& b) { b.resize(kHeartbeatMaxDatagram + 1); }, kKey, "too large"},
      {"version 2, correctly signed",
       [](auto& b) {
         b[4] = 2;
         resign(b, kKey);
       },
       kKey, "unsupported heartbeat format version 2"},
      {"reserved bits, correctly signed",
       [](auto& b) {
         b[6] = 1;
         resign(b, kKey);
       },
       kKey, "reserved bits"},
      {"announced body over the limit, correctly signed",
       [](auto& b) {
         b[8] = 0x7f;
         resign(b, kKey);
       },
       kKey, "body too large"},
      {"announced body shorter than it is, correctly signed",
       [](auto& b) {
         b[8] = b[9] = b[10] = 0;
         b[11] = 5;
         resign(b, kKey);
       },
       kKey, "does not decompress"},
  };
  for (const auto& row : rows) {
    auto bytes = encodeHeartbeat(sample(), kKey);
    row.mutate(bytes);
    auto r = decodeHeartbeat(bytes, row.key);
    ASSERT_FALSE(r.ok()) << row.what;
    EXPECT_NE(r.error().message.find(row.message_part), std::string::npos)
        << row.what << ": got \"" << r.error().message << "\"";
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << row.what;
  }
}

TEST(HeartbeatCodec, EmptyKeyIsRefusedOnDecode) {
  auto bytes = encodeHeartbeat(sample(), kKey);
  auto r = decodeHeartbeat(bytes, "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no heartbeat key"), std::string::npos);
}

}  // namespace
}  // namespace banyan::common
