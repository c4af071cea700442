// Stored objects as the controller reads and writes them: a store::Record with its JSON
// body parsed. Internal to the controller module (RapidJSON stays out of other headers).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "banyan/common/result.h"
#include "store/store.h"

namespace banyan::provider::controller {

using common::Result;

struct Obj {
  store::Record rec;
  rapidjson::Document doc;

  const std::string& id() const { return rec.id; }
  std::string str(std::string_view key) const;  // "" when absent, null or not a string
  bool boolean(std::string_view key, bool fallback) const;
  int64_t integer(std::string_view key, int64_t fallback) const;
  std::vector<std::string> strings(std::string_view key) const;
  bool has(std::string_view key) const;  // present and not null

  void set(std::string_view key, std::string_view value);
  void setInt(std::string_view key, int64_t value);
  void setBool(std::string_view key, bool value);
  void setNull(std::string_view key);
  void touch();  // updated_at = now, as every Octavia row update does
  std::string body() const;
};

Result<Obj> parseObj(store::Record rec);
// An object built from nothing (kind, id, body "{}").
Obj newObj(std::string kind, std::string id);
Result<std::optional<Obj>> loadObj(store::Transaction& tx, std::string_view kind, std::string_view id);
Result<std::vector<Obj>> loadObjs(store::Transaction& tx, const store::Query& query);
Result<void> saveObj(store::Transaction& tx, Obj& obj);    // update
Result<void> insertObj(store::Transaction& tx, Obj& obj);  // insert

std::string nowTimestamp();  // "2017-02-28T00:41:44", UTC, as the API writes
std::string newUuid();

// A JSON object's member as a string / bool, for payloads parsed once.
std::string jsonString(const rapidjson::Value& obj, std::string_view key);

}  // namespace banyan::provider::controller
