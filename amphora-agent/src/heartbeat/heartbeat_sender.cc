#include "heartbeat/heartbeat_sender.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

#include <rapidjson/document.h>

#include "banyan/common/logging.h"

namespace banyan::agent::heartbeat {

using common::ErrorCode;
using common::makeError;
using common::Result;

Result<Target> parseTarget(std::string_view text) {
  auto fail = [&] {
    return makeError(ErrorCode::kInvalidArgument, "not an IP:port pair", std::string(text));
  };
  Target t;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return fail();
    t.address = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, t.address.c_str(), &a6) != 1) return fail();
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail();
    t.address = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    in_addr a4;
    if (inet_pton(AF_INET, t.address.c_str(), &a4) != 1) return fail();
  }
  if (port_text.empty() || port_text.size() > 5) return fail();
  unsigned port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return fail();
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) return fail();
  t.port = static_cast<uint16_t>(port);
  return t;
}

Result<void> validateSettings(const HeartbeatSettings& settings) {
  for (const auto& t : settings.targets) {
    auto r = parseTarget(t);
    if (!r) return r.error();
  }
  if (!(settings.interval_s >= 0.01 && settings.interval_s <= 3600)) {
    return makeError(ErrorCode::kInvalidArgument, "heartbeat_interval must be between 0.01 and 3600 seconds",
                     "heartbeat_interval");
  }
  if (settings.key.empty()) return makeError(ErrorCode::kInvalidArgument, "heartbeat_key must not be empty", "heartbeat_key");
  return {};
}

namespace {

struct ListenerCounters {
  uint64_t bytes_in = 0, bytes_out = 0, active = 0, total = 0, errors = 0;
};

uint64_t u64(const rapidjson::Value& obj, const char* key, uint64_t fallback = 0) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : fallback;
}
int64_t i64(const rapidjson::Value& obj, const char* key, int64_t fallback) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : fallback;
}
bool boolean(const rapidjson::Value& obj, const char* key, bool fallback) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsBool() ? it->value.GetBool() : fallback;
}
std::string str(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString()) : std::string();
}
const rapidjson::Value* array(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsArray() ? &it->value : nullptr;
}

Result<void> parseJson(rapidjson::Document& d, std::string_view text, const char* what) {
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    return makeError(ErrorCode::kInternal, std::string("banyan-proxy sent an unreadable ") + what);
  }
  return {};
}

}  // namespace

Result<common::Heartbeat> buildHeartbeat(std::string_view amphora_id, uint64_t sequence, uint64_t proxy_epoch,
                                         std::string_view config_doc, std::string_view stats_json,
                                         std::string_view health_json) {
  rapidjson::Document config, stats, health;
  if (auto r = parseJson(config, config_doc, "config"); !r) return r.error();
  if (auto r = parseJson(stats, stats_json, "stats"); !r) return r.error();
  if (auto r = parseJson(health, health_json, "health"); !r) return r.error();

  std::map<std::string, ListenerCounters> counters;
  if (const auto* ls = array(stats, "listeners")) {
    for (const auto& l : ls->GetArray()) {
      if (!l.IsObject()) continue;
      counters[str(l, "id")] = ListenerCounters{u64(l, "bytes_in"), u64(l, "bytes_out"), u64(l, "active_connections"),
                                                u64(l, "total_connections"), u64(l, "request_errors")};
    }
  }
  // Keyed by pool and member: a member id is unique in a document, but the pool
  // keeps a stale entry from resolving to the wrong pool during an apply.
  std::map<std::pair<std::string, std::string>, std::string> member_health;
  if (const auto* ms = array(health, "members")) {
    for (const auto& m : ms->GetArray()) {
      if (m.IsObject()) member_health[{str(m, "pool_id"), str(m, "member_id")}] = str(m, "status");
    }
  }

  common::Heartbeat hb;
  hb.amphora_id = std::string(amphora_id);
  hb.sequence = sequence;
  hb.proxy_epoch = proxy_epoch;
  hb.generation = u64(config, "generation");
  int64_t default_limit = 50000;
  auto settings = config.FindMember("settings");
  if (settings != config.MemberEnd() && settings->value.IsObject()) {
    default_limit = i64(settings->value, "default_connection_limit", 50000);
  }
  if (const auto* ls = array(config, "listeners")) {
    for (const auto& l : ls->GetArray()) {
      if (!l.IsObject()) continue;
      common::HeartbeatListener out;
      out.id = str(l, "id");
      auto c = counters[out.id];
      out.bytes_in = c.bytes_in;
      out.bytes_out = c.bytes_out;
      out.active_connections = c.active;
      out.total_connections = c.total;
      out.request_errors = c.errors;
      int64_t limit = i64(l, "connection_limit", -1);
      if (limit < 0) limit = default_limit;
      if (!boolean(l, "admin_state_up", true)) {
        out.status = "OFFLINE";
      } else if (c.active >= static_cast<uint64_t>(limit)) {
        out.status = "DEGRADED";  // Octavia's FULL
      } else {
        out.status = "ONLINE";
      }
      hb.listeners.push_back(std::move(out));
    }
  }
  if (const auto* ps = array(config, "pools")) {
    for (const auto& p : ps->GetArray()) {
      if (!p.IsObject()) continue;
      common::HeartbeatPool pool;
      pool.id = str(p, "id");
      int usable = 0, down = 0;
      if (const auto* ms = array(p, "members")) {
        for (const auto& m : ms->GetArray()) {
          if (!m.IsObject()) continue;
          common::HeartbeatMember member;
          member.id = str(m, "id");
          auto h = member_health.find({pool.id, member.id});
          std::string checked = h == member_health.end() ? "NO_MONITOR" : h->second;
          if (!boolean(m, "admin_state_up", true)) {
            member.status = "OFFLINE";
          } else {
            ++usable;
            if (checked == "ERROR") {
              ++down;
              member.status = "ERROR";
            } else if (i64(m, "weight", 1) == 0) {
              member.status = "DRAINING";
            } else {
              member.status = checked.empty() ? "NO_MONITOR" : checked;
            }
          }
          pool.members.push_back(std::move(member));
        }
      }
      if (!boolean(p, "admin_state_up", true)) {
        pool.status = "OFFLINE";
      } else if (usable > 0 && down == usable) {
        pool.status = "ERROR";
      } else if (down > 0) {
        pool.status = "DEGRADED";
      } else {
        pool.status = "ONLINE";
      }
      hb.pools.push_back(std::move(pool));
    }
  }
  return hb;
}

HeartbeatSender::HeartbeatSender(std::string amphora_id, const proxy_control::ProxyControl& control,
                                 std::function<uint64_t()> proxy_epoch, HeartbeatSettings settings)
    : amphora_id_(std::move(amphora_id)),
      control_(control),
      proxy_epoch_(std::move(proxy_epoch)),
      settings_(std::move(settings)) {}

HeartbeatSender::~HeartbeatSender() { stop(); }

void HeartbeatSender::start() {
  std::lock_guard<std::mutex> lock(mu_);
  LB_CHECK(!thread_.joinable(), "start() is called once");
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void HeartbeatSender::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

Result<void> HeartbeatSender::update(HeartbeatSettings settings) {
  auto valid = validateSettings(settings);
  if (!valid) return valid;
  std::lock_guard<std::mutex> lock(mu_);
  settings_ = std::move(settings);
  settings_changed_ = true;
  cv_.notify_all();
  return {};
}

HeartbeatSettings HeartbeatSender::settings() const {
  std::lock_guard<std::mutex> lock(mu_);
  return settings_;
}

Result<void> HeartbeatSender::beatOnce() {
  HeartbeatSettings settings = this->settings();
  if (settings.key.empty() || settings.targets.empty()) {
    return makeError(ErrorCode::kUnavailable, "no heartbeat key or no health manager configured");
  }
  auto config = control_.get("/config");
  if (!config || config->status != 200) return makeError(ErrorCode::kUnavailable, "banyan-proxy does not answer");
  auto stats = control_.get("/stats");
  if (!stats || stats->status != 200) return makeError(ErrorCode::kUnavailable, "banyan-proxy does not answer");
  auto health = control_.get("/health");
  if (!health || health->status != 200) return makeError(ErrorCode::kUnavailable, "banyan-proxy does not answer");
  uint64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = sequence_++;
  }
  auto hb = buildHeartbeat(amphora_id_, seq, proxy_epoch_ ? proxy_epoch_() : 0, config->body, stats->body,
                           health->body);
  if (!hb) return hb.error();
  std::vector<uint8_t> datagram = common::encodeHeartbeat(hb.value(), settings.key);
  if (datagram.size() > common::kHeartbeatMaxDatagram) {
    return makeError(ErrorCode::kInternal, "heartbeat does not fit one datagram: " + std::to_string(datagram.size()));
  }
  Result<void> last;
  for (const auto& text : settings.targets) {
    auto target = parseTarget(text);
    if (!target) continue;  // validated on update; a bad INI value is reported at startup
    bool v6 = target->address.find(':') != std::string::npos;
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(target->port);
      inet_pton(AF_INET6, target->address.c_str(), &sa->sin6_addr);
      len = sizeof *sa;
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(target->port);
      inet_pton(AF_INET, target->address.c_str(), &sa->sin_addr);
      len = sizeof *sa;
    }
    int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = makeError(ErrorCode::kUnavailable, std::string("socket: ") + std::strerror(errno));
      continue;
    }
    ssize_t n = ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
    int err = errno;
    ::close(fd);
    if (n < 0) {
      last = makeError(ErrorCode::kUnavailable, std::string("sendto: ") + std::strerror(err), text);
      continue;
    }
    sent_++;
  }
  return last;
}

void HeartbeatSender::run() {
  bool warned = false;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto r = beatOnce();
    if (!r && !warned) {
      // Once per outage: a silent amphora is what the health manager acts on.
      LB_WARN("Heartbeat not sent. amp=%s error=%s", amphora_id_.c_str(), r.error().message.c_str());
    }
    warned = !r;
    lock.lock();
    auto interval = std::chrono::duration<double>(settings_.interval_s);
    settings_changed_ = false;
    cv_.wait_for(lock, interval, [this] { return stopping_ || settings_changed_; });
  }
}

}  // namespace banyan::agent::heartbeat
