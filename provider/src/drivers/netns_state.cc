#include "drivers/netns_state.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void field(Writer& w, const char* name, const std::string& value) {
  w.Key(name);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void stringList(Writer& w, const char* name, const std::vector<std::string>& items) {
  w.Key(name);
  w.StartArray();
  for (const auto& i : items) w.String(i.c_str(), static_cast<rapidjson::SizeType>(i.size()));
  w.EndArray();
}

// Reads a string member; absent means "", any other type is damage.
bool getString(const rapidjson::Value& obj, const char* name, std::string& out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsString()) return false;
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

bool getStringList(const rapidjson::Value& obj, const char* name, std::vector<std::string>& out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsArray()) return false;
  for (const auto& v : it->value.GetArray()) {
    if (!v.IsString()) return false;
    out.emplace_back(v.GetString(), v.GetStringLength());
  }
  return true;
}

Result<rapidjson::Document> parseObject(std::string_view text) {
  rapidjson::Document doc;
  if (text.empty()) {
    doc.SetObject();
    return doc;
  }
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return makeError(ErrorCode::kInternal, "state file is not a JSON object");
  }
  return doc;
}

common::Error damaged(const std::string& what) {
  return makeError(ErrorCode::kInternal, "state file damaged: " + what);
}

}  // namespace

std::string toJson(const ComputeState& state) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("version");
  w.Int(1);
  w.Key("amphorae");
  w.StartArray();
  for (const auto& a : state.amphorae) {
    w.StartObject();
    field(w, "compute_id", a.compute_id);
    field(w, "amphora_id", a.amphora_id);
    field(w, "lb_id", a.lb_id);
    field(w, "lb_network_ip", a.lb_network_ip);
    field(w, "host_veth", a.host_veth);
    field(w, "dir", a.dir);
    w.Key("pid");
    w.Int(a.pid);
    w.Key("pid_start_time");
    w.Uint64(a.pid_start_time);
    w.EndObject();
  }
  w.EndArray();
  stringList(w, "bridges", state.bridges);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string toJson(const NetworkState& state) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("version");
  w.Int(1);
  w.Key("ports");
  w.StartArray();
  for (const auto& r : state.ports) {
    w.StartObject();
    field(w, "id", r.port.id);
    field(w, "network_id", r.port.network_id);
    field(w, "subnet_id", r.port.subnet_id);
    field(w, "address", r.port.address);
    field(w, "device_owner", r.port.device_owner);
    field(w, "device_id", r.port.device_id);
    field(w, "vip_port_id", r.port.vip_port_id);
    field(w, "interface", r.port.interface);
    field(w, "host_veth", r.host_veth);
    field(w, "mac_address", r.mac_address);
    w.EndObject();
  }
  w.EndArray();
  stringList(w, "bridges", state.bridges);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<ComputeState> computeStateFromJson(std::string_view text) {
  auto doc = parseObject(text);
  if (!doc) return doc.error();
  ComputeState state;
  if (!getStringList(*doc, "bridges", state.bridges)) return damaged("bridges");
  auto it = doc->FindMember("amphorae");
  if (it == doc->MemberEnd()) return state;
  if (!it->value.IsArray()) return damaged("amphorae is not a list");
  for (const auto& v : it->value.GetArray()) {
    if (!v.IsObject()) return damaged("amphora is not an object");
    AmphoraRecord a;
    bool ok = getString(v, "compute_id", a.compute_id) &&
              getString(v, "amphora_id", a.amphora_id) && getString(v, "lb_id", a.lb_id) &&
              getString(v, "lb_network_ip", a.lb_network_ip) &&
              getString(v, "host_veth", a.host_veth) && getString(v, "dir", a.dir);
    if (!ok || a.compute_id.empty()) return damaged("amphora fields");
    auto pid = v.FindMember("pid");
    if (pid != v.MemberEnd()) {
      if (!pid->value.IsInt()) return damaged("pid");
      a.pid = pid->value.GetInt();
    }
    auto start = v.FindMember("pid_start_time");
    if (start != v.MemberEnd()) {
      if (!start->value.IsUint64()) return damaged("pid_start_time");
      a.pid_start_time = start->value.GetUint64();
    }
    state.amphorae.push_back(std::move(a));
  }
  return state;
}

Result<NetworkState> networkStateFromJson(std::string_view text) {
  auto doc = parseObject(text);
  if (!doc) return doc.error();
  NetworkState state;
  if (!getStringList(*doc, "bridges", state.bridges)) return damaged("bridges");
  auto it = doc->FindMember("ports");
  if (it == doc->MemberEnd()) return state;
  if (!it->value.IsArray()) return damaged("ports is not a list");
  for (const auto& v : it->value.GetArray()) {
    if (!v.IsObject()) return damaged("port is not an object");
    PortRecord r;
    bool ok = getString(v, "id", r.port.id) && getString(v, "network_id", r.port.network_id) &&
              getString(v, "subnet_id", r.port.subnet_id) &&
              getString(v, "address", r.port.address) &&
              getString(v, "device_owner", r.port.device_owner) &&
              getString(v, "device_id", r.port.device_id) &&
              getString(v, "vip_port_id", r.port.vip_port_id) &&
              getString(v, "interface", r.port.interface) &&
              getString(v, "host_veth", r.host_veth) && getString(v, "mac_address", r.mac_address);
    if (!ok || r.port.id.empty()) return damaged("port fields");
    state.ports.push_back(std::move(r));
  }
  return state;
}

StateFile::Guard::Guard(Guard&& other) noexcept : lock_(std::move(other.lock_)), fd_(other.fd_) {
  other.fd_ = -1;
}

StateFile::Guard::~Guard() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
    close(fd_);
  }
}

Result<StateFile::Guard> StateFile::lock() {
  std::unique_lock<std::mutex> lock(mu_);
  std::string lock_path = path_ + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return makeError(ErrorCode::kUnavailable, std::string("open: ") + std::strerror(errno),
                     lock_path);
  }
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int err = errno;
      close(fd);
      return makeError(ErrorCode::kUnavailable, std::string("flock: ") + std::strerror(err),
                       lock_path);
    }
  }
  return Guard(std::move(lock), fd);
}

Result<std::string> StateFile::read(const Guard&) const {
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return makeError(ErrorCode::kUnavailable, std::string("open: ") + std::strerror(errno), path_);
  }
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = errno;
      close(fd);
      return makeError(ErrorCode::kUnavailable, std::string("read: ") + std::strerror(err), path_);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  close(fd);
  return out;
}

Result<void> StateFile::write(const Guard&, std::string_view contents) {
  return writeFileAtomic(path_, contents, 0600, durable_);
}

}  // namespace banyan::provider::drivers
