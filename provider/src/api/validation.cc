#include "api/validation.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>
#include <regex>

#include "api/api_error.h"
#include "banyan/common/ids.h"

namespace banyan::provider::api {
namespace {

std::string shown(const JsonValue& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  return toJson(v);
}

std::string typeName(FieldType t) {
  switch (t) {
    case FieldType::kBool: return "<class 'bool'>";
    case FieldType::kInt: return "<class 'int'>";
    case FieldType::kFloat: return "<class 'float'>";
    case FieldType::kStringList: return "<class 'list'>";
    case FieldType::kList: return "<class 'list'>";
    case FieldType::kObject:
    case FieldType::kDict: return "<class 'dict'>";
    default: return "<class 'str'>";
  }
}

std::string jsonTypeName(const JsonValue& v) {
  if (v.IsString()) return "<class 'str'>";
  if (v.IsBool()) return "<class 'bool'>";
  if (v.IsInt64()) return "<class 'int'>";
  if (v.IsNumber()) return "<class 'float'>";
  if (v.IsArray()) return "<class 'list'>";
  if (v.IsObject()) return "<class 'dict'>";
  return "<class 'NoneType'>";
}

[[noreturn]] void wrongType(const FieldSpec& spec, const JsonValue& v) {
  throwInvalidField(spec.name, shown(v),
                    "Wrong type. Expected '" + typeName(spec.type) + "', got '" + jsonTypeName(v) + "'");
}

std::string joinChoices(const std::vector<std::string>& c) {
  std::string s;
  for (size_t i = 0; i < c.size(); ++i) s += (i ? ", " : "") + c[i];
  return s;
}

void checkString(const FieldSpec& spec, const JsonValue& v) {
  if (!v.IsString()) wrongType(spec, v);
  if (v.GetStringLength() > spec.max_len)
    throwInvalidField(spec.name, shown(v),
                      "Value should have a maximum character requirement of " + std::to_string(spec.max_len));
}

void checkChoice(const FieldSpec& spec, const JsonValue& v) {
  if (!v.IsString()) wrongType(spec, v);
  std::string s(v.GetString(), v.GetStringLength());
  for (const auto& c : spec.choices)
    if (c == s) return;
  throwInvalidField(spec.name, s, "Value should be one of: " + joinChoices(spec.choices));
}

void checkField(const FieldSpec& spec, JsonValue& v, JsonAlloc& a) {
  switch (spec.type) {
    case FieldType::kString:
      checkString(spec, v);
      break;
    case FieldType::kBool:
      if (v.IsString()) {
        // WSME accepts the usual boolean spellings from JSON strings.
        std::string s(v.GetString(), v.GetStringLength());
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (s == "true" || s == "1" || s == "yes" || s == "on" || s == "t" || s == "y") {
          v.SetBool(true);
        } else if (s == "false" || s == "0" || s == "no" || s == "off" || s == "f" || s == "n") {
          v.SetBool(false);
        } else {
          wrongType(spec, v);
        }
      }
      if (!v.IsBool()) wrongType(spec, v);
      break;
    case FieldType::kInt: {
      if (v.IsString()) {
        // octaviaclient sends connection_limit as a JSON string; WSME coerces it.
        std::string s(v.GetString(), v.GetStringLength());
        try {
          size_t used = 0;
          long long n = std::stoll(s, &used);
          if (used != s.size() || s.empty()) throw std::invalid_argument("x");
          v.SetInt64(n);
        } catch (const std::exception&) {
          throwInvalidField(spec.name, s, "Wrong type. Expected '<class 'int'>', got '<class 'str'>'");
        }
      } else if (v.IsDouble()) {
        double d = v.GetDouble();
        if (d != static_cast<double>(static_cast<int64_t>(d))) wrongType(spec, v);
        v.SetInt64(static_cast<int64_t>(d));
      }
      if (!v.IsInt64()) wrongType(spec, v);
      int64_t n = v.GetInt64();
      if (n < spec.min)
        throwInvalidField(spec.name, std::to_string(n),
                          "Value should be greater or equal to " + std::to_string(spec.min));
      if (n > spec.max)
        throwInvalidField(spec.name, std::to_string(n),
                          "Value should be lower or equal to " + std::to_string(spec.max));
      break;
    }
    case FieldType::kFloat:
      if (v.IsString()) {
        std::string s(v.GetString(), v.GetStringLength());
        try {
          size_t used = 0;
          double d = std::stod(s, &used);
          if (used != s.size()) throw std::invalid_argument("x");
          v.SetDouble(d);
        } catch (const std::exception&) {
          wrongType(spec, v);
        }
      }
      if (!v.IsNumber()) wrongType(spec, v);
      if (!v.IsDouble()) v.SetDouble(v.GetDouble());
      if (!spec.choices.empty()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", v.GetDouble());
        bool ok = false;
        for (const auto& c : spec.choices) ok = ok || c == buf;
        if (!ok) throwInvalidField(spec.name, buf, "Value should be one of: " + joinChoices(spec.choices));
      }
      break;
    case FieldType::kUuid:
      if (!v.IsString()) wrongType(spec, v);
      if (!isUuidLike(std::string_view(v.GetString(), v.GetStringLength())))
        throwInvalidField(spec.name, shown(v), "Value should be UUID format");
      break;
    case FieldType::kIpAddress:
      if (!v.IsString()) wrongType(spec, v);
      if (!isIpAddress(std::string_view(v.GetString(), v.GetStringLength())))
        throwInvalidField(spec.name, shown(v), "Value should be IPv4 or IPv6 format");
      break;
    case FieldType::kEnum:
      checkChoice(spec, v);
      break;
    case FieldType::kStringList:
      if (!v.IsArray()) wrongType(spec, v);
      for (auto& item : v.GetArray()) {
        FieldSpec item_spec = spec;
        item_spec.type = spec.choices.empty() ? FieldType::kString : FieldType::kEnum;
        if (item_spec.type == FieldType::kString) checkString(item_spec, item);
        else checkChoice(item_spec, item);
      }
      break;
    case FieldType::kObject:
      if (!v.IsObject()) wrongType(spec, v);
      break;
    case FieldType::kList:
      if (!v.IsArray()) wrongType(spec, v);
      for (auto& item : v.GetArray())
        if (!item.IsObject()) wrongType(spec, item);
      break;
    case FieldType::kDict:
      if (!v.IsObject()) wrongType(spec, v);
      for (auto& m : v.GetObject()) {
        if (m.value.IsBool()) m.value = JsonValue(m.value.GetBool() ? "true" : "false", a);
        if (!m.value.IsString()) wrongType(spec, m.value);
        if (m.value.GetStringLength() > spec.max_len) checkString(spec, m.value);
      }
      break;
  }
}

}  // namespace

void validateBody(JsonValue& obj, const std::vector<FieldSpec>& specs, BodyMode mode,
                  const std::string& argument, JsonAlloc& alloc) {
  if (!obj.IsObject())
    throwInvalidField(argument, shown(obj), "Wrong type. Expected '<class 'dict'>', got '" +
                                                jsonTypeName(obj) + "'");
  std::string unknown;
  for (auto& m : obj.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    const FieldSpec* spec = nullptr;
    for (const auto& s : specs)
      if (s.name == name) spec = &s;
    if (!spec || (mode == BodyMode::kPost && !spec->on_post) ||
        (mode == BodyMode::kPut && !spec->on_put)) {
      unknown += (unknown.empty() ? "" : ", ") + name;
      continue;
    }
    if (m.value.IsNull()) continue;
    checkField(*spec, m.value, alloc);
  }
  if (!unknown.empty()) throwApi(400, "Unknown attribute for argument " + argument + ": " + unknown);
  if (mode == BodyMode::kPost) {
    for (const auto& s : specs) {
      if (!s.required) continue;
      const JsonValue* v = jget(obj, s.name);
      if (!v || v->IsNull()) throwInvalidField(s.name, "None", "Mandatory field missing.");
    }
  }
}

JsonDoc parseRootBody(std::string_view body, const std::string& root_key) {
  auto doc = parseJson(body);
  if (!doc) throwApi(400, "Invalid input for field/attribute " + root_key +
                              ". Value: 'None'. The request body is not valid JSON");
  if (!doc->IsObject())
    throwApi(400, "Invalid input for field/attribute " + root_key + ". Value: '" + toJson(*doc) +
                      "'. Wrong type. Expected a JSON object");
  const JsonValue* root = jget(*doc, root_key);
  std::string unknown;
  for (auto& m : doc->GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (name != root_key) unknown += (unknown.empty() ? "" : ", ") + name;
  }
  if (!unknown.empty()) throwApi(400, "Unknown attribute for argument " + root_key + ": " + unknown);
  if (!root || root->IsNull()) throwInvalidField(root_key, "None", "Mandatory field missing.");
  if (!root->IsObject())
    throwInvalidField(root_key, toJson(*root), "Wrong type. Expected '<class 'dict'>', got '" +
                                                   jsonTypeName(*root) + "'");
  JsonDoc out;
  out.CopyFrom(*root, out.GetAllocator());
  return out;
}

bool isUuidLike(std::string_view s) {
  // WSME's UuidType accepts any UUID text uuid.UUID() parses; we take the canonical
  // 8-4-4-4-12 form and the 32-hex-digit form.
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  if (s.size() == 32) {
    for (char c : s)
      if (!hex(c)) return false;
    return true;
  }
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!hex(s[i])) {
      return false;
    }
  }
  return true;
}

bool isIpAddress(std::string_view s) {
  std::string str(s);
  unsigned char buf[16];
  return inet_pton(AF_INET, str.c_str(), buf) == 1 || inet_pton(AF_INET6, str.c_str(), buf) == 1;
}

bool isIpv6(std::string_view s) {
  std::string str(s);
  unsigned char buf[16];
  return inet_pton(AF_INET6, str.c_str(), buf) == 1;
}

std::optional<std::string> normalizeCidr(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string addr(s.substr(0, slash)), len_text(s.substr(slash + 1));
  if (len_text.empty() || len_text.size() > 3) return std::nullopt;
  for (char c : len_text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  int len = std::stoi(len_text);
  unsigned char buf[16] = {};
  int family = AF_INET;
  size_t bytes = 4;
  if (inet_pton(AF_INET, addr.c_str(), buf) != 1) {
    if (inet_pton(AF_INET6, addr.c_str(), buf) != 1) return std::nullopt;
    family = AF_INET6;
    bytes = 16;
  }
  if (len > static_cast<int>(bytes * 8)) return std::nullopt;
  for (size_t i = 0; i < bytes; ++i) {
    int keep = std::max(0, std::min(8, len - static_cast<int>(i * 8)));
    buf[i] &= static_cast<unsigned char>(keep == 0 ? 0 : (0xFF << (8 - keep)) & 0xFF);
  }
  char out[INET6_ADDRSTRLEN];
  inet_ntop(family, buf, out, sizeof out);
  return std::string(out) + "/" + std::to_string(len);
}

bool isValidHostname(std::string_view s) {
  // DOMAIN_NAME_REGEX without lookbehind: labels of [A-Za-z0-9-_]{1,63}, not starting or
  // ending with '-', total length <= 253 (a trailing dot allowed).
  std::string str(s);
  if (!str.empty() && str.back() == '.') str.pop_back();
  if (str.empty() || str.size() > 253) return false;
  size_t start = 0;
  while (start <= str.size()) {
    size_t end = str.find('.', start);
    if (end == std::string::npos) end = str.size();
    std::string label = str.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    start = end + 1;
  }
  return true;
}

bool isValidUrl(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  size_t scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) return false;
  std::string_view scheme = s.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  std::string_view rest = s.substr(scheme_end + 3);
  size_t host_end = rest.find_first_of("/?#");
  std::string_view host = rest.substr(0, host_end);
  return !host.empty();
}

bool isValidUrlPath(std::string_view s) {
  if (s.empty() || s.front() != '/') return false;
  if (s.size() > 1 && s[1] == '/') return false;  // "//host/..." names a host
  for (char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  return true;
}

bool isValidExpectedCodes(std::string_view s) {
  static const std::regex list(R"(^(\d{3}(\s*,\s*\d{3})*)$)");
  static const std::regex range(R"(^(\d{3}-\d{3})$)");
  std::string str(s);
  return std::regex_match(str, list) || std::regex_match(str, range);
}

bool isValidCookieName(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == 0x7f) return false;
    if (std::string_view("\"(),/:;<=>?@[\\]{}").find(c) != std::string_view::npos) return false;
  }
  return true;
}

bool isValidCipherString(std::string_view s) {
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("-+!:@=_.").find(c) == std::string_view::npos)
      return false;
  return true;
}

std::string nowTimestamp() { return common::utcTimestamp(); }

std::string newUuid() { return common::newUuid(); }

}  // namespace banyan::provider::api
