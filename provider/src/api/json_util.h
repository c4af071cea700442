// Small RapidJSON helpers for the API module. Internal to provider/src/api: other
// modules see only plain strings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

namespace banyan::provider::api {

using JsonValue = rapidjson::Value;
using JsonDoc = rapidjson::Document;
using JsonAlloc = rapidjson::Document::AllocatorType;

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
JsonValue jidArray(const std::vector<std::string_view>& ids, JsonAlloc& a);

// A scalar as the text a query-string filter would compare with: strings as-is,
// booleans "true"/"false", numbers in decimal, null "".
std::string jscalarText(const JsonValue& v);

}  // namespace banyan::provider::api
