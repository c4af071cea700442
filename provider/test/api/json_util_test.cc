// The API's own JSON writer (json_util.h) against RapidJSON's plain one: the same text
// for every string, whatever it holds and wherever its escapes fall.
#include "api/json_util.h"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace banyan::provider::api {
namespace {

std::string plainWriter(const JsonValue& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

TEST(JsonPlainPrefix, StopsAtTheFirstCharacterThatNeedsAnEscape) {
  auto prefix = [](const std::string& s) { return jsonPlainPrefix(s.data(), s.data() + s.size()); };
  EXPECT_EQ(prefix(""), 0u);
  EXPECT_EQ(prefix("abc"), 3u);
  EXPECT_EQ(prefix("0123456789abcdef0123456789abcdef"), 32u);
  EXPECT_EQ(prefix("0123456789abcdef\"x"), 16u);
  EXPECT_EQ(prefix("0123456789abcde\\"), 15u);
  EXPECT_EQ(prefix(std::string("0123456789abcdef012\x1f") + "zz"), 19u);
  EXPECT_EQ(prefix(std::string("ab\0cd", 5)), 2u);
  EXPECT_EQ(prefix("\x7f\xc3\xa9\xe2\x82\xac 0123456789abcdef"), 23u);  // DEL and UTF-8 pass
}

TEST(JsonOutWriter, WritesEveryStringAsRapidJsonDoes) {
  std::mt19937 rng(20261123);
  const std::string alphabet = std::string("abcXYZ019 -_/:.{}[]") + "\"\\\n\t\r\b\f" + std::string(1, '\0') +
                               "\x01\x1f\x7f" + "\xc3\xa9\xe2\x82\xac";
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    size_t len = rng() % 70;
    for (size_t i = 0; i < len; ++i) {
      // Mostly plain runs, so that escapes land at every offset of a 16-byte block.
      s += rng() % 8 ? static_cast<char>('a' + rng() % 26) : alphabet[rng() % alphabet.size()];
    }
    JsonDoc doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    doc.AddMember(jstr(s, a), jstr(s, a), a);
    EXPECT_EQ(toJson(doc), plainWriter(doc)) << "round " << round;
  }
}

}  // namespace
}  // namespace banyan::provider::api
