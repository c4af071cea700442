// Small RapidJSON helpers for the API module. Internal to provider/src/api: other
// modules see only plain strings.
#pragma once

#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace banyan::provider::api {

using JsonValue = rapidjson::Value;
using JsonDoc = rapidjson::Document;
using JsonAlloc = rapidjson::Document::AllocatorType;

// The buffer and writer of the API's answers. A type of its own (by its allocator),
// so that the writer below copies each run of characters that need no escaping in
// one piece instead of one character at a time.
struct JsonOutAllocator : rapidjson::CrtAllocator {};
using JsonOutBuffer = rapidjson::GenericStringBuffer<rapidjson::UTF8<>, JsonOutAllocator>;
using JsonOutWriter = rapidjson::Writer<JsonOutBuffer>;

// The length of the longest prefix of [p, end) that JSON needs no escape for: no '"',
// no '\\', no control character (UTF-8 bytes of 0x80 and above pass as they are).
size_t jsonPlainPrefix(const char* p, const char* end);

// Parses text; nullopt when it is not JSON.
std::optional<JsonDoc> parseJson(std::string_view text);
std::string toJson(const JsonValue& value);

inline JsonValue jstr(std::string_view s, JsonAlloc& a) {
  return JsonValue(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}
// Sets obj[key] = value, replacing an existing member.
void jset(JsonValue& obj, std::string_view key, JsonValue value, JsonAlloc& a);
void jsetStr(JsonValue& obj, std::string_view key, std::string_view value, JsonAlloc& a);
void jsetNull(JsonValue& obj, std::string_view key, JsonAlloc& a);
void jremove(JsonValue& obj, std::string_view key);

const JsonValue* jget(const JsonValue& obj, std::string_view key);
// The member when present and not null.
const JsonValue* jgetNonNull(const JsonValue& obj, std::string_view key);
bool jhas(const JsonValue& obj, std::string_view key);  // present, null or not
std::string jstring(const JsonValue& obj, std::string_view key, std::string fallback = "");
int64_t jint(const JsonValue& obj, std::string_view key, int64_t fallback = 0);
bool jbool(const JsonValue& obj, std::string_view key, bool fallback = false);
std::vector<std::string> jstrings(const JsonValue& obj, std::string_view key);
JsonValue jstringArray(const std::vector<std::string>& items, JsonAlloc& a);
// [{"id": id}, ...]
JsonValue jidArray(std::span<const std::string_view> ids, JsonAlloc& a);

// A scalar as the text a query-string filter would compare with: strings as-is,
// booleans "true"/"false", numbers in decimal, null "".
std::string jscalarText(const JsonValue& v);

}  // namespace banyan::provider::api

namespace rapidjson {
// Writer::WriteString calls this before each character: it copies the plain run ahead in
// one piece and leaves the stream on the next character that needs an escape (or at the
// end). WriteString has already reserved room for the whole string.
template <>
inline bool Writer<banyan::provider::api::JsonOutBuffer>::ScanWriteUnescapedString(StringStream& is,
                                                                                   size_t length) {
  const char* p = is.src_;
  const char* end = is.head_ + length;
  size_t n = banyan::provider::api::jsonPlainPrefix(p, end);
  if (n > 0) {
    std::memcpy(os_->PushUnsafe(n), p, n);
    is.src_ = p + n;
  }
  return is.Tell() < length;
}
}  // namespace rapidjson
