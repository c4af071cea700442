#include "config/schema_error.h"

#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <utility>

namespace banyan::dp::config::detail {
namespace {

using common::Error;
using rapidjson::Value;

// Strings quoted in error messages are cut to this many bytes.
constexpr size_t kMaxQuotedBytes = 64;

Error invalid(std::string context, std::string message) {
  return common::makeError(common::ErrorCode::kInvalidArgument, std::move(message),
                           std::move(context));
}

std::string pointerString(const rapidjson::Pointer& pointer) {
  rapidjson::StringBuffer sb;
  pointer.Stringify(sb);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

std::string quote(std::string_view s) {
  bool cut = false;
  if (s.size() > kMaxQuotedBytes) {
    size_t n = kMaxQuotedBytes;
    // Back off to a code point boundary so the quoted text stays valid UTF-8.
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s = s.substr(0, n);
    cut = true;
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> writer(sb);
  writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  std::string out(sb.GetString(), sb.GetSize());
  if (cut) out.insert(out.size() - 1, "...");
  return out;
}

// A short rendering of a JSON value for error messages.
std::string render(const Value* v) {
  if (v == nullptr) return "the value";
  if (v->IsString()) return quote(std::string_view(v->GetString(), v->GetStringLength()));
  if (v->IsObject()) return "an object";
  if (v->IsArray()) return "an array";
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> writer(sb);
  v->Accept(writer);
  return std::string(sb.GetString(), sb.GetSize());
}

const Value* findMember(const Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// Turns the schema validator's verdict into "pointer: reason". RapidJSON 1.1 only
// reports the failing keyword and the two pointers, so the reason is rebuilt from
// the schema node and the offending value.
Error schemaError(const rapidjson::SchemaValidator& validator, const rapidjson::Document& doc,
                  const rapidjson::Document& schema) {
  std::string keyword =
      validator.GetInvalidSchemaKeyword() ? validator.GetInvalidSchemaKeyword() : "";
  rapidjson::Pointer doc_pointer = validator.GetInvalidDocumentPointer();
  std::string context = pointerString(doc_pointer);
  const Value* value = doc_pointer.IsValid() ? doc_pointer.Get(doc) : nullptr;
  rapidjson::Pointer schema_pointer = validator.GetInvalidSchemaPointer();
  const Value* node = schema_pointer.IsValid() ? schema_pointer.Get(schema) : nullptr;
  const Value* arg = node ? findMember(*node, keyword.c_str()) : nullptr;

  if (keyword == "type" && arg) {
    std::string types;
    if (arg->IsString()) {
      types = arg->GetString();
    } else if (arg->IsArray()) {
      for (const auto& t : arg->GetArray()) {
        if (!types.empty()) types += " or ";
        if (t.IsString()) types += t.GetString();
      }
    }
    return invalid(context, render(value) + " is not of type " + types);
  }
  if (keyword == "enum" && arg && arg->IsArray()) {
    std::string allowed;
    for (const auto& e : arg->GetArray()) {
      if (!allowed.empty()) allowed += ", ";
      allowed += e.IsString() ? std::string(e.GetString(), e.GetStringLength()) : render(&e);
    }
    return invalid(context, render(value) + " is not one of " + allowed);
  }
  if (keyword == "minimum" && arg) {
    return invalid(context, render(value) + " is less than the minimum " + render(arg));
  }
  if (keyword == "maximum" && arg) {
    return invalid(context, render(value) + " is greater than the maximum " + render(arg));
  }
  if (keyword == "minLength" && arg) {
    return invalid(context, render(value) + " is shorter than the minimum length " + render(arg));
  }
  if (keyword == "maxLength" && arg) {
    return invalid(context, render(value) + " is longer than the maximum length " + render(arg));
  }
  if (keyword == "maxItems" && arg) {
    std::string count =
        value && value->IsArray() ? std::to_string(value->Size()) + " items" : "too many items";
    // The validator stops at the first item past the limit and points at it.
    if (!value || !value->IsArray()) {
      size_t slash = context.rfind('/');
      if (slash != std::string::npos) context.resize(slash);
      const Value* parent = rapidjson::Pointer(context.c_str()).Get(doc);
      if (parent && parent->IsArray()) count = std::to_string(parent->Size()) + " items";
    }
    return invalid(context,
                   "array of " + count + " is longer than the maximum " + render(arg) + " items");
  }
  if (keyword == "required" && arg && arg->IsArray()) {
    for (const auto& name : arg->GetArray()) {
      if (name.IsString() && value && !findMember(*value, name.GetString())) {
        return invalid(context, "missing required property " + render(&name));
      }
    }
  }
  if (keyword == "additionalProperties" && node) {
    // Depending on where the validator stopped, the pointer names the object or
    // the unknown key itself; report it against the object either way.
    const Value* properties = findMember(*node, "properties");
    auto known = [&](const Value& key) {
      return properties && properties->IsObject() && properties->HasMember(key);
    };
    if (value && value->IsObject()) {
      for (const auto& m : value->GetObject()) {
        if (!known(m.name)) return invalid(context, "unknown property " + render(&m.name));
      }
    }
    if (doc_pointer.IsValid() && doc_pointer.GetTokenCount() > 0) {
      const auto& last = doc_pointer.GetTokens()[doc_pointer.GetTokenCount() - 1];
      rapidjson::Pointer parent(doc_pointer.GetTokens(), doc_pointer.GetTokenCount() - 1);
      Value key(rapidjson::StringRef(last.name, last.length));
      return invalid(pointerString(parent), "unknown property " + render(&key));
    }
  }
  return invalid(context, render(value) + " violates the schema keyword \"" + keyword + "\"");
}

}  // namespace banyan::dp::config::detail
