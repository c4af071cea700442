#include "api/json_util.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <rapidjson/error/en.h>

namespace banyan::provider::api {

std::optional<JsonDoc> parseJson(std::string_view text) {
  JsonDoc doc;
  // kParseStopWhenDoneFlag is not set: trailing garbage after the value is an error.
  doc.Parse<rapidjson::kParseDefaultFlags>(text.data(), text.size());
  if (doc.HasParseError()) return std::nullopt;
  return doc;
}

std::string toJson(const JsonValue& value) {
  JsonOutBuffer buf;
  JsonOutWriter w(buf);
  value.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

size_t jsonPlainPrefix(const char* p, const char* end) {
  const char* start = p;
#ifdef __SSE2__
  // Sixteen bytes at a time: a byte needs an escape when it is '"' or '\\', or when it
  // is below 0x20 (unsigned), i.e. when max(byte, 0x1f) is 0x1f.
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control_max = _mm_set1_epi8(0x1f);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                               _mm_cmpeq_epi8(_mm_max_epu8(v, control_max), control_max));
    int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return static_cast<size_t>(p - start) + static_cast<size_t>(__builtin_ctz(mask));
    p += 16;
  }
#endif
  while (p < end) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == '"' || c == '\\') break;
    ++p;
  }
  return static_cast<size_t>(p - start);
}

void jset(JsonValue& obj, std::string_view key, JsonValue value, JsonAlloc& a) {
  auto it = obj.FindMember(JsonValue(rapidjson::StringRef(key.data(), key.size())));
  if (it != obj.MemberEnd()) {
    it->value = std::move(value);
    return;
  }
  obj.AddMember(jstr(key, a), std::move(value), a);
}

void jsetStr(JsonValue& obj, std::string_view key, std::string_view value, JsonAlloc& a) {
  jset(obj, key, jstr(value, a), a);
}

void jsetNull(JsonValue& obj, std::string_view key, JsonAlloc& a) { jset(obj, key, JsonValue(), a); }

void jremove(JsonValue& obj, std::string_view key) {
  obj.RemoveMember(JsonValue(rapidjson::StringRef(key.data(), key.size())));
}

const JsonValue* jget(const JsonValue& obj, std::string_view key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(JsonValue(rapidjson::StringRef(key.data(), key.size())));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

const JsonValue* jgetNonNull(const JsonValue& obj, std::string_view key) {
  const JsonValue* v = jget(obj, key);
  return (v && !v->IsNull()) ? v : nullptr;
}

bool jhas(const JsonValue& obj, std::string_view key) { return jget(obj, key) != nullptr; }

std::string jstring(const JsonValue& obj, std::string_view key, std::string fallback) {
  const JsonValue* v = jget(obj, key);
  if (!v || !v->IsString()) return fallback;
  return std::string(v->GetString(), v->GetStringLength());
}

int64_t jint(const JsonValue& obj, std::string_view key, int64_t fallback) {
  const JsonValue* v = jget(obj, key);
  if (!v || !v->IsInt64()) return fallback;
  return v->GetInt64();
}

bool jbool(const JsonValue& obj, std::string_view key, bool fallback) {
  const JsonValue* v = jget(obj, key);
  if (!v || !v->IsBool()) return fallback;
  return v->GetBool();
}

std::vector<std::string> jstrings(const JsonValue& obj, std::string_view key) {
  std::vector<std::string> out;
  const JsonValue* v = jget(obj, key);
  if (!v || !v->IsArray()) return out;
  for (const auto& item : v->GetArray())
    if (item.IsString()) out.emplace_back(item.GetString(), item.GetStringLength());
  return out;
}

JsonValue jstringArray(const std::vector<std::string>& items, JsonAlloc& a) {
  JsonValue arr(rapidjson::kArrayType);
  for (const auto& s : items) arr.PushBack(jstr(s, a), a);
  return arr;
}

JsonValue jidArray(std::span<const std::string_view> ids, JsonAlloc& a) {
  JsonValue arr(rapidjson::kArrayType);
  for (const auto& id : ids) {
    JsonValue o(rapidjson::kObjectType);
    o.AddMember("id", jstr(id, a), a);
    arr.PushBack(std::move(o), a);
  }
  return arr;
}

std::string jscalarText(const JsonValue& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  if (v.IsNumber()) return toJson(v);
  if (v.IsNull()) return "";
  return toJson(v);
}

}  // namespace banyan::provider::api
