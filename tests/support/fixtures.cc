#include "fixtures.h"

namespace banyan::test {

MemberSpec memberOf(const TestHttpBackend& backend, int weight) {
  MemberSpec m;
  m.id = backend.name();
  m.address = backend.address();
  m.protocol_port = backend.port();
  m.weight = weight;
  return m;
}

MemberSpec memberOf(const TestTcpBackend& backend, int weight) {
  MemberSpec m;
  m.id = backend.name();
  m.address = backend.address();
  m.protocol_port = backend.port();
  m.weight = weight;
  return m;
}

std::optional<int64_t> statValue(const ProxyProcess& proxy, const std::string& section,
                                 const std::string& id, const std::string& field) {
  ControlResponse resp = proxy.get("/stats");
  if (resp.status != 200) return std::nullopt;
  rapidjson::Document doc = resp.json();
  if (!doc.IsObject() || !doc.HasMember(section.c_str()) || !doc[section.c_str()].IsArray())
    return std::nullopt;
  for (const auto& entry : doc[section.c_str()].GetArray()) {
    if (!entry.IsObject() || !entry.HasMember("id") || !entry["id"].IsString()) continue;
    if (id != entry["id"].GetString()) continue;
    if (!entry.HasMember(field.c_str()) || !entry[field.c_str()].IsNumber()) return std::nullopt;
    return entry[field.c_str()].GetInt64();
  }
  return std::nullopt;
}

std::string healthStatus(const ProxyProcess& proxy, const std::string& member_id) {
  ControlResponse resp = proxy.get("/health");
  if (resp.status != 200) return "";
  rapidjson::Document doc = resp.json();
  if (!doc.IsObject() || !doc.HasMember("members") || !doc["members"].IsArray()) return "";
  for (const auto& m : doc["members"].GetArray()) {
    if (!m.IsObject() || !m.HasMember("member_id") || !m["member_id"].IsString()) continue;
    if (member_id != m["member_id"].GetString()) continue;
    if (m.HasMember("status") && m["status"].IsString()) return m["status"].GetString();
  }
  return "";
}

bool waitHealth(const ProxyProcess& proxy, const std::string& member_id, const std::string& status,
                int timeout_ms) {
  return waitUntil([&] { return healthStatus(proxy, member_id) == status; }, Millis(timeout_ms),
                   Millis(50));
}

}  // namespace banyan::test
