// Request-body validation the way Octavia's WSME types do it: each resource declares its
// fields (type, range, choices, required on POST, accepted on PUT); a body is checked
// against the table, numeric strings are coerced like WSME does, and the first problem
// is thrown as ApiError 400 with WSME's wording. Also the value checks of
// octavia/common/validate.py that several resources share. Pure, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/json_util.h"

namespace banyan::provider::api {

enum class FieldType {
  kString,      // max_len
  kBool,
  kInt,         // min/max; numeric strings are coerced
  kFloat,
  kUuid,        // any string of a UUID's shape
  kIpAddress,
  kEnum,        // choices
  kStringList,  // each item max_len (choices if any)
  kObject,      // checked by the caller
  kList,        // list of objects, checked by the caller
  kDict,        // string -> string
};

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::kString;
  bool on_post = true;
  bool on_put = true;
  bool required = false;  // on POST
  int64_t min = INT64_MIN;
  int64_t max = INT64_MAX;
  size_t max_len = 255;
  std::vector<std::string> choices;
};

enum class BodyMode { kPost, kPut };

// Validates obj (a JSON object, the value under the root key) against specs. Mutates obj
// only to coerce types (numeric strings to numbers, boolean strings to booleans).
// argument names the WSME argument in "Unknown attribute" errors.
void validateBody(JsonValue& obj, const std::vector<FieldSpec>& specs, BodyMode mode,
                  const std::string& argument, JsonAlloc& alloc);

// Extracts {"<root>": {...}} from a request body; 400 for malformed JSON or a missing root.
JsonDoc parseRootBody(std::string_view body, const std::string& root_key);

bool isUuidLike(std::string_view s);
bool isIpAddress(std::string_view s);
bool isIpv6(std::string_view s);
// "198.51.100.77/25" -> "198.51.100.0/25"; nullopt when not a CIDR.
std::optional<std::string> normalizeCidr(std::string_view s);
bool isValidHostname(std::string_view s);  // Octavia's DOMAIN_NAME_REGEX
// http(s)://host[...] with no whitespace or control characters.
bool isValidUrl(std::string_view s);
// url_path: starts with '/', no whitespace, no scheme or host.
bool isValidUrlPath(std::string_view s);
bool isValidExpectedCodes(std::string_view s);
bool isValidCookieName(std::string_view s);
bool isValidCipherString(std::string_view s);
std::string nowTimestamp();  // "2017-02-28T00:41:44", UTC
std::string newUuid();

}  // namespace banyan::provider::api
