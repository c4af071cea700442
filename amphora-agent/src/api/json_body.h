// Reading request bodies for the API: closed objects, typed fields, and the first
// violation reported with its JSON pointer (answered as 400 {"message", "path",
// "details"}). Internal to the api module.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "banyan/common/result.h"

namespace banyan::agent::api {

bool isIpLiteral(std::string_view text);
bool isCidr(std::string_view text);
bool isMac(std::string_view text);

// Parses TEXT as one JSON object; the error names the offset.
common::Result<void> parseObject(rapidjson::Document& doc, std::string_view text);

// Field reads that remember the first error; later reads return defaults. Paths are
// JSON pointers.
class BodyReader {
 public:
  enum class Kind { kAny, kIp, kCidr, kMac };

  void closed(const rapidjson::Value& obj, const std::string& at, std::initializer_list<const char*> keys);
  std::string string(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                     Kind kind = Kind::kAny, size_t max_len = 1024);
  int64_t integer(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                  int64_t fallback, int64_t min, int64_t max);
  double number(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                double fallback, double min, double max);
  bool boolean(const rapidjson::Value& obj, const char* key, const std::string& at, bool required, bool fallback);
  // nullptr when absent (and not required) or on error.
  const rapidjson::Value* array(const rapidjson::Value& obj, const char* key, const std::string& at, bool required,
                                size_t max_items = 1024);
  const rapidjson::Value* object(const rapidjson::Value& obj, const char* key, const std::string& at, bool required);
  bool has(const rapidjson::Value& obj, const char* key) const;

  void fail(std::string message, std::string path);
  bool ok() const { return !error_; }
  const common::Error& error() const { return *error_; }

 private:
  const rapidjson::Value* field(const rapidjson::Value& obj, const char* key, const std::string& at, bool required);
  std::optional<common::Error> error_;
};

}  // namespace banyan::agent::api
