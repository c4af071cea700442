#include "api/json_body.h"

#include <arpa/inet.h>

#include <rapidjson/error/en.h>

namespace banyan::agent::api {

using common::ErrorCode;
using common::makeError;
using common::Result;

bool isIpLiteral(std::string_view text) {
  if (text.empty() || text.size() > 45) return false;
  std::string s(text);
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool isCidr(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return false;
  std::string addr(text.substr(0, slash));
  std::string_view len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3) return false;
  int bits = 0;
  for (char c : len) {
    if (c < '0' || c > '9') return false;
    bits = bits * 10 + (c - '0');
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) return bits <= 32;
  if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) return bits <= 128;
  return false;
}

bool isMac(std::string_view text) {
  if (text.size() != 17) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

Result<void> parseObject(rapidjson::Document& doc, std::string_view text) {
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError()) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string("invalid JSON at offset ") + std::to_string(doc.GetErrorOffset()) + ": " +
                         rapidjson::GetParseError_En(doc.GetParseError()),
                     "");
  }
  if (!doc.IsObject()) return makeError(ErrorCode::kInvalidArgument, "the body must be a JSON object", "");
  return {};
}

void BodyReader::fail(std::string message, std::string path) {
  if (!error_) error_ = makeError(ErrorCode::kInvalidArgument, std::move(message), std::move(path));
}

void BodyReader::closed(const rapidjson::Value& obj, const std::string& at, std::initializer_list<const char*> keys) {
  if (error_) return;
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    bool known = false;
    for (const char* k : keys) known = known || name == k;
    if (!known) return fail("unknown property \"" + std::string(name) + "\"", at + "/" + std::string(name));
  }
}

bool BodyReader::has(const rapidjson::Value& obj, const char* key) const {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && !it->value.IsNull();
}

const rapidjson::Value* BodyReader::field(const rapidjson::Value& obj, const char* key, const std::string& at,
                                          bool required) {
  if (error_) return nullptr;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) {
    if (required) fail(std::string("missing required property \"") + key + "\"", at);
    return nullptr;
  }
  return &it->value;
}

std::string BodyReader::string(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                               Kind kind, size_t max_len) {
  const auto* v = field(obj, key, at, required);
  if (!v) return {};
  std::string path = at + "/" + key;
  if (!v->IsString()) {
    fail("must be a string", path);
    return {};
  }
  std::string s(v->GetString(), v->GetStringLength());
  if (s.size() > max_len) {
    fail("longer than " + std::to_string(max_len) + " characters", path);
    return {};
  }
  bool good = true;
  const char* what = "";
  switch (kind) {
    case Kind::kAny:
      break;
    case Kind::kIp:
      good = isIpLiteral(s);
      what = "an IP address";
      break;
    case Kind::kCidr:
      good = isCidr(s);
      what = "a CIDR";
      break;
    case Kind::kMac:
      good = isMac(s);
      what = "a MAC address";
      break;
  }
  if (!good) {
    fail("\"" + s + "\" is not " + what, path);
    return {};
  }
  return s;
}

int64_t BodyReader::integer(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                            int64_t fallback, int64_t min, int64_t max) {
  const auto* v = field(obj, key, at, required);
  if (!v) return fallback;
  std::string path = at + "/" + key;
  if (!v->IsInt64()) {
    fail("must be an integer", path);
    return fallback;
  }
  int64_t n = v->GetInt64();
  if (n < min || n > max) {
    fail(std::to_string(n) + " is not between " + std::to_string(min) + " and " + std::to_string(max), path);
    return fallback;
  }
  return n;
}

double BodyReader::number(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                          double fallback, double min, double max) {
  const auto* v = field(obj, key, at, required);
  if (!v) return fallback;
  std::string path = at + "/" + key;
  if (!v->IsNumber()) {
    fail("must be a number", path);
    return fallback;
  }
  double n = v->GetDouble();
  if (!(n >= min && n <= max)) {
    fail("must be between " + std::to_string(min) + " and " + std::to_string(max), path);
    return fallback;
  }
  return n;
}

bool BodyReader::boolean(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                         bool fallback) {
  const auto* v = field(obj, key, at, required);
  if (!v) return fallback;
  if (!v->IsBool()) {
    fail("must be a boolean", at + "/" + key);
    return fallback;
  }
  return v->GetBool();
}

const rapidjson::Value* BodyReader::array(const rapidjson::Value& obj, const char* key, const std::string& at,
                                          bool required, size_t max_items) {
  const auto* v = field(obj, key, at, required);
  if (!v) return nullptr;
  if (!v->IsArray()) {
    fail("must be an array", at + "/" + key);
    return nullptr;
  }
  if (v->Size() > max_items) {
    fail("more than " + std::to_string(max_items) + " items", at + "/" + key);
    return nullptr;
  }
  return v;
}

const rapidjson::Value* BodyReader::object(const rapidjson::Value& obj, const char* key, const std::string& at,
                                           bool required) {
  const auto* v = field(obj, key, at, required);
  if (!v) return nullptr;
  if (!v->IsObject()) {
    fail("must be an object", at + "/" + key);
    return nullptr;
  }
  return v;
}

}  // namespace banyan::agent::api
