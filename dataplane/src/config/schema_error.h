// Internal to the config module: turning RapidJSON values and schema-validator
// verdicts into the "pointer: reason" errors of parse.h.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include <string>
#include <string_view>

#include "banyan/common/result.h"

namespace banyan::dp::config::detail {

// A JSON string literal for messages, cut to 64 bytes (on a code point boundary).
std::string quote(std::string_view s);

// A short rendering of a JSON value: literals as JSON, "an object", "an array",
// "the value" for nullptr.
std::string render(const rapidjson::Value* v);

// The member `name` of `obj`, or nullptr (also when `obj` is not an object).
const rapidjson::Value* findMember(const rapidjson::Value& obj, const char* name);

// The validator's first error as context = JSON pointer of the offending value
// (the object, for missing or unknown properties) and message = the reason.
// `schema` is the document the validator's SchemaDocument was built from.
common::Error schemaError(const rapidjson::SchemaValidator& validator,
                          const rapidjson::Document& doc, const rapidjson::Document& schema);

}  // namespace banyan::dp::config::detail
