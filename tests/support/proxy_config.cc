#include "proxy_config.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <stdexcept>

namespace banyan::test {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void key(Writer& w, const char* k) { w.Key(k); }
void str(Writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

}  // namespace

std::string ConfigSpec::toJson() const {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  key(w, "generation");
  w.Uint64(generation);
  key(w, "settings");
  w.StartObject();
  key(w, "workers");
  w.Int(workers);
  key(w, "default_connection_limit");
  w.Int(default_connection_limit);
  key(w, "drain_timeout_ms");
  w.Int(drain_timeout_ms);
  key(w, "member_connect_retries");
  w.Int(member_connect_retries);
  str(w, "access_log", access_log);
  for (const auto& [k, v] : settings_extra) {
    w.Key(k.c_str());
    w.RawValue(v.c_str(), v.size(), rapidjson::kObjectType);
  }
  w.EndObject();

  key(w, "listeners");
  w.StartArray();
  for (const auto& l : listeners) {
    w.StartObject();
    str(w, "id", l.id);
    str(w, "protocol", l.protocol);
    str(w, "address", l.address);
    key(w, "additional_addresses");
    w.StartArray();
    for (const auto& a : l.additional_addresses) w.String(a.c_str());
    w.EndArray();
    key(w, "protocol_port");
    w.Int(l.protocol_port);
    key(w, "admin_state_up");
    w.Bool(l.admin_state_up);
    key(w, "connection_limit");
    w.Int64(l.connection_limit);
    key(w, "timeout_client_data");
    w.Int(l.timeout_client_data);
    key(w, "timeout_member_connect");
    w.Int(l.timeout_member_connect);
    key(w, "timeout_member_data");
    w.Int(l.timeout_member_data);
    key(w, "timeout_tcp_inspect");
    w.Int(l.timeout_tcp_inspect);
    key(w, "insert_headers");
    w.StartObject();
    for (const auto& [k, v] : l.insert_headers) str(w, k.c_str(), v);
    w.EndObject();
    str(w, "accept_proxy_protocol", l.accept_proxy_protocol);
    auto cidrs = [&](const char* name, const std::vector<std::string>& list) {
      if (list.empty()) return;
      key(w, name);
      w.StartArray();
      for (const auto& cidr : list) w.String(cidr.c_str());
      w.EndArray();
    };
    cidrs("proxy_protocol_trusted_cidrs", l.proxy_protocol_trusted_cidrs);
    cidrs("allowed_cidrs", l.allowed_cidrs);
    if (!l.default_pool_id.empty()) str(w, "default_pool_id", l.default_pool_id);
    for (const auto& [k, v] : l.extra) {
      w.Key(k.c_str());
      w.RawValue(v.c_str(), v.size(), rapidjson::kObjectType);
    }
    w.EndObject();
  }
  w.EndArray();

  key(w, "pools");
  w.StartArray();
  for (const auto& p : pools) {
    w.StartObject();
    str(w, "id", p.id);
    str(w, "protocol", p.protocol);
    str(w, "lb_algorithm", p.lb_algorithm);
    key(w, "admin_state_up");
    w.Bool(p.admin_state_up);
    key(w, "members");
    w.StartArray();
    for (const auto& m : p.members) {
      w.StartObject();
      str(w, "id", m.id);
      str(w, "address", m.address);
      key(w, "protocol_port");
      w.Int(m.protocol_port);
      key(w, "weight");
      w.Int(m.weight);
      key(w, "backup");
      w.Bool(m.backup);
      key(w, "admin_state_up");
      w.Bool(m.admin_state_up);
      if (!m.monitor_address.empty()) str(w, "monitor_address", m.monitor_address);
      if (m.monitor_port != 0) {
        key(w, "monitor_port");
        w.Int(m.monitor_port);
      }
      w.EndObject();
    }
    w.EndArray();
    for (const auto& [k, v] : p.extra) {
      w.Key(k.c_str());
      w.RawValue(v.c_str(), v.size(), rapidjson::kObjectType);
    }
    if (p.health_monitor) {
      const MonitorSpec& hm = *p.health_monitor;
      key(w, "health_monitor");
      w.StartObject();
      str(w, "id", hm.id);
      str(w, "type", hm.type);
      key(w, "delay");
      w.Double(hm.delay);
      key(w, "timeout");
      w.Double(hm.timeout);
      key(w, "max_retries");
      w.Int(hm.max_retries);
      key(w, "max_retries_down");
      w.Int(hm.max_retries_down);
      if (hm.type == "HTTP" || hm.type == "HTTPS") {
        str(w, "http_method", hm.http_method);
        str(w, "url_path", hm.url_path);
        str(w, "expected_codes", hm.expected_codes);
        str(w, "http_version", hm.http_version);
      }
      key(w, "admin_state_up");
      w.Bool(true);
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return sb.GetString();
}

ListenerSpec& ConfigSpec::listener(const std::string& id) {
  for (auto& l : listeners)
    if (l.id == id) return l;
  throw std::runtime_error("no listener " + id);
}

PoolSpec& ConfigSpec::pool(const std::string& id) {
  for (auto& p : pools)
    if (p.id == id) return p;
  throw std::runtime_error("no pool " + id);
}

ConfigSpec simpleConfig(uint16_t port, std::vector<MemberSpec> members,
                        const std::string& listener_protocol, const std::string& pool_protocol,
                        const std::string& address) {
  ConfigSpec c;
  ListenerSpec l;
  l.id = "l1";
  l.protocol = listener_protocol;
  l.address = address;
  l.protocol_port = port;
  l.default_pool_id = "p1";
  c.listeners.push_back(l);
  PoolSpec p;
  p.id = "p1";
  p.protocol = pool_protocol;
  p.members = std::move(members);
  c.pools.push_back(p);
  return c;
}

std::string jsonString(const std::string& s) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return sb.GetString();
}

}  // namespace banyan::test
