#include "drivers/netns_compute.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <set>

#include "banyan/common/logging.h"
#include "drivers/host_net.h"
#include "drivers/netlink.h"
#include "drivers/process.h"

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

std::string_view toString(ComputeStatus status) {
  switch (status) {
    case ComputeStatus::kBuilding:
      return "BUILDING";
    case ComputeStatus::kActive:
      return "ACTIVE";
    case ComputeStatus::kError:
      return "ERROR";
    case ComputeStatus::kDeleted:
      return "DELETED";
  }
  return "ERROR";
}

namespace {

// A spec file path: relative, no "..", no empty components; it lands in the
// amphora's own directory and nowhere else.
bool safeRelativePath(const std::string& path) {
  if (path.empty() || path[0] == '/' || path.size() > 255) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return path.find('\0') == std::string::npos;
}

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

std::string shortName(const std::string& prefix) {
  return prefix.substr(0, std::min<size_t>(4, prefix.size()));
}

}  // namespace

NetnsComputeDriver::NetnsComputeDriver(NetnsConfig config)
    // Not fsynced: it describes namespaces, veths and processes, none of which outlives
    // the host, while a provider crash or restart keeps it (rename is atomic).
    : config_(std::move(config)), state_(config_.options.state_dir + "/compute.json", false) {}

Result<std::unique_ptr<NetnsComputeDriver>> NetnsComputeDriver::create(
    const NetnsOptions& options) {
  auto config = validateNetnsOptions(options);
  if (!config) return config.error();
  if (auto ok = makeDirs(options.state_dir + "/amphorae", 0700); !ok) return ok.error();
  auto driver = std::unique_ptr<NetnsComputeDriver>(new NetnsComputeDriver(std::move(*config)));
  // Read the state once now: a damaged file should stop startup, not the first build.
  auto guard = driver->state_.lock();
  if (!guard) return guard.error();
  auto state = driver->load(*guard);
  if (!state) return state.error();
  return driver;
}

std::string NetnsComputeDriver::amphoraDir(const std::string& compute_id) const {
  return config_.options.state_dir + "/amphorae/" + compute_id;
}

Result<ComputeState> NetnsComputeDriver::load(const StateFile::Guard& guard) {
  auto text = state_.read(guard);
  if (!text) return text.error();
  auto state = computeStateFromJson(*text);
  if (!state) return makeError(state.error().code, state.error().message, state_.path());
  return state;
}

Result<void> NetnsComputeDriver::save(const StateFile::Guard& guard, const ComputeState& state) {
  return state_.write(guard, toJson(state));
}

Result<void> NetnsComputeDriver::ensureManagementBridge() {
  std::lock_guard<std::mutex> lock(bridge_mu_);
  if (bridge_ready_ && linkExists(config_.management.bridge)) return {};
  bool created = false;
  if (auto ok = ensureBridge(config_.management.bridge, config_.management.cidr,
                             config_.options.mtu, created);
      !ok) {
    return ok;
  }
  if (created) {
    LB_INFO("management bridge created bridge=%s cidr=%s", config_.management.bridge.c_str(),
            config_.management.cidr.toString().c_str());
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    if (std::find(state->bridges.begin(), state->bridges.end(), config_.management.bridge) ==
        state->bridges.end()) {
      state->bridges.push_back(config_.management.bridge);
    }
    if (auto ok = save(*guard, *state); !ok) return ok;
  }
  bridge_ready_ = true;
  return {};
}

Result<Instance> NetnsComputeDriver::build(const AmphoraSpec& spec) {
  reapChildren();
  if (spec.amphora_id.empty())
    return makeError(ErrorCode::kInvalidArgument, "amphora_id is required");
  for (const auto& f : spec.files) {
    if (!safeRelativePath(f.path) || f.path == "agent.conf" || f.path == "agent.log") {
      return makeError(ErrorCode::kInvalidArgument,
                       "file path must be relative to the amphora, without '..'", f.path);
    }
  }
  auto build_start = std::chrono::steady_clock::now();
  if (auto ok = ensureManagementBridge(); !ok) return ok.error();

  // Reserve a name and a management address, and record them before anything exists
  // on the system: a crash from here on leaves a record that remove()/cleanupAll() undo.
  AmphoraRecord record;
  {
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    std::set<std::string> names, addresses;
    for (const auto& a : state->amphorae) {
      names.insert(a.compute_id);
      addresses.insert(a.lb_network_ip);
    }
    std::string hex;
    for (int attempt = 0; attempt < 16 && record.compute_id.empty(); ++attempt) {
      hex = randomHex(8);
      std::string name = config_.options.name_prefix + "-amp-" + hex;
      if (!names.count(name) && !namespaceExists(name)) record.compute_id = name;
    }
    if (record.compute_id.empty())
      return makeError(ErrorCode::kInternal, "cannot pick a free namespace name");
    const AllocationPool& pool = config_.management.pool;
    for (IpAddress a = pool.start; pool.contains(a); a = a.plus(1)) {
      if (!addresses.count(a.toString())) {
        record.lb_network_ip = a.toString();
        break;
      }
    }
    if (record.lb_network_ip.empty()) {
      return makeError(ErrorCode::kUnavailable,
                       "no free management address in " + config_.management.cidr.toString() +
                           " (" + std::to_string(pool.size()) + " amphorae exist)");
    }
    record.amphora_id = spec.amphora_id;
    record.lb_id = spec.lb_id;
    record.host_veth = shortName(config_.options.name_prefix) + hex + "e0";
    record.dir = amphoraDir(record.compute_id);
    state->amphorae.push_back(record);
    if (auto ok = save(*guard, *state); !ok) return ok.error();
    std::lock_guard<std::mutex> lock(building_mu_);
    building_.insert(record.compute_id);
  }
  struct BuildDone {
    NetnsComputeDriver* self;
    std::string id;
    ~BuildDone() {
      std::lock_guard<std::mutex> lock(self->building_mu_);
      self->building_.erase(id);
    }
  } build_done{this, record.compute_id};

  auto started = startAmphora(spec, record);
  if (started) {
    auto guard = state_.lock();
    if (!guard) {
      started = guard.error();
    } else if (auto state = load(*guard); !state) {
      started = state.error();
    } else {
      for (auto& a : state->amphorae) {
        if (a.compute_id == record.compute_id) a = record;
      }
      started = save(*guard, *state);
    }
  }
  if (!started) {
    // Undo outside the state lock: stopping an agent may take its grace period.
    LB_ERROR("amphora build failed amp=%s lb=%s compute=%s: %s", spec.amphora_id.c_str(),
             spec.lb_id.c_str(), record.compute_id.c_str(), started.error().message.c_str());
    if (auto undone = teardown(record); !undone) {
      // Keep the record: cleanupAll() or a later remove() retries the teardown.
      LB_ERROR("amphora teardown after failed build failed compute=%s: %s",
               record.compute_id.c_str(), undone.error().message.c_str());
      return started.error();
    }
    auto guard = state_.lock();
    if (guard) {
      if (auto state = load(*guard)) {
        std::erase_if(state->amphorae,
                      [&](const AmphoraRecord& a) { return a.compute_id == record.compute_id; });
        (void)save(*guard, *state);
      }
    }
    return started.error();
  }
  double build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - build_start)
          .count();
  LB_INFO("amphora started amp=%s lb=%s compute=%s lb_network_ip=%s pid=%d build_ms=%.1f",
          spec.amphora_id.c_str(), spec.lb_id.c_str(), record.compute_id.c_str(),
          record.lb_network_ip.c_str(), record.pid, build_ms);
  return instanceOf(record);
}

Result<void> NetnsComputeDriver::startAmphora(const AmphoraSpec& spec, AmphoraRecord& record) {
  const std::string& ns = record.compute_id;
  if (auto ok = makeDirs(record.dir, 0700); !ok) return ok;
  std::string config_path = record.dir + "/agent.conf";
  // The controller renders the config before the amphora's directory exists, and the
  // agent wants absolute paths: "{amphora_dir}" stands for it.
  std::string agent_config = replaceAll(spec.agent_config, "{amphora_dir}", record.dir);
  if (auto ok = writeFileAtomic(config_path, agent_config, 0600, false); !ok) return ok;
  std::vector<PlacedFile> files = spec.files;
  if (spec.late_files) {
    auto late = spec.late_files(record.compute_id, record.lb_network_ip);
    if (!late) return late.error();
    for (auto& f : *late) {
      if (!safeRelativePath(f.path) || f.path == "agent.conf" || f.path == "agent.log") {
        return makeError(ErrorCode::kInvalidArgument,
                         "file path must be relative to the amphora, without '..'", f.path);
      }
      files.push_back(std::move(f));
    }
  }
  for (const auto& f : files) {
    std::string path = record.dir + "/" + f.path;
    if (auto ok = makeDirs(path.substr(0, path.rfind('/')), 0700); !ok) return ok;
    if (auto ok = writeFileAtomic(path, f.contents, f.mode & 07777, false); !ok) return ok;
  }
  if (auto ok = addNamespace(ns); !ok) return ok;
  int ns_fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0) return makeError(ErrorCode::kUnavailable, "cannot open the new namespace", ns);
  Result<void> veth = [&]() -> Result<void> {
    auto nl = RtNetlink::open();
    if (!nl) return nl.error();
    int bridge = static_cast<int>(if_nametoindex(config_.management.bridge.c_str()));
    if (bridge == 0)
      return makeError(ErrorCode::kUnavailable, "management bridge missing",
                       config_.management.bridge);
    return (*nl)->addVeth({record.host_veth, config_.options.mtu, bridge, "eth0", "", ns_fd});
  }();
  close(ns_fd);
  if (!veth) return veth;
  IpAddress address = *IpAddress::parse(record.lb_network_ip);
  int prefix_length = config_.management.cidr.prefix_length;
  auto inside = inNamespace(ns, [&]() -> Result<void> {
    auto nl = RtNetlink::open();
    if (!nl) return nl.error();
    if (auto ok = (*nl)->setUp("lo"); !ok) return ok;
    if (auto ok = (*nl)->addAddress("eth0", address, prefix_length); !ok) return ok;
    return (*nl)->setUp("eth0");
  });
  if (!inside) return inside;

  SpawnSpec spawn;
  spawn.netns = ns;
  spawn.cwd = record.dir;
  spawn.log_path = record.dir + "/agent.log";
  spawn.argv.push_back(config_.options.agent_binary);
  for (const auto& arg : config_.options.agent_args) {
    std::string a = replaceAll(arg, "{config}", config_path);
    a = replaceAll(a, "{dir}", record.dir);
    a = replaceAll(a, "{amphora_id}", record.amphora_id);
    a = replaceAll(a, "{compute_id}", record.compute_id);
    a = replaceAll(a, "{lb_network_ip}", record.lb_network_ip);
    a = replaceAll(a, "{proxy_binary}", config_.options.proxy_binary);
    spawn.argv.push_back(std::move(a));
  }
  spawn.extra_env = {"BANYAN_AMPHORA_DIR=" + record.dir, "BANYAN_AMPHORA_ID=" + record.amphora_id,
                     "BANYAN_COMPUTE_ID=" + record.compute_id,
                     "BANYAN_LB_NETWORK_IP=" + record.lb_network_ip,
                     "BANYAN_PROXY_BINARY=" + config_.options.proxy_binary};
  auto pid = spawnInNamespace(spawn);
  if (!pid) return pid.error();
  {
    std::lock_guard<std::mutex> lock(children_mu_);
    children_[pid->pid] = pid->start_time;
  }
  record.pid = pid->pid;
  record.pid_start_time = pid->start_time;
  return {};
}

Result<void> NetnsComputeDriver::teardown(const AmphoraRecord& record) {
  Result<void> first;
  auto keep = [&](Result<void> r) {
    if (!r && first.ok()) first = r;
  };
  if (record.pid > 0) {
    stopProcess({record.pid, record.pid_start_time},
                std::chrono::milliseconds(config_.options.stop_grace_ms));
  }
  if (namespaceExists(record.compute_id)) {
    // Whatever else runs in there (the proxy, keepalived, a stray shell) goes too,
    // or the namespace and its veths outlive `ip netns del`.
    keep(killNamespaceProcesses(record.compute_id));
    if (auto links = deleteNamespaceLinks(record.compute_id); !links) {
      // Not fatal: the links go with the namespace, only later (a half-made namespace
      // from a crash cannot even be entered).
      LB_WARN("cannot delete the links of amphora compute=%s: %s", record.compute_id.c_str(),
              links.error().message.c_str());
    }
    keep(deleteNamespace(record.compute_id));
  }
  if (!record.host_veth.empty()) keep(deleteLink(record.host_veth));
  if (!record.dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(record.dir, ec);
    if (ec) keep(makeError(ErrorCode::kUnavailable, "remove " + record.dir + ": " + ec.message()));
  }
  return first;
}

void NetnsComputeDriver::reapChildren() {
  std::lock_guard<std::mutex> lock(children_mu_);
  for (auto it = children_.begin(); it != children_.end();) {
    // Only PIDs this process forked, and only while the PID is still that agent (a
    // zombie keeps its start time): processAlive() may have reaped it already and the
    // PID may now be a command runCommand() waits for, whose exit status must stay
    // there. For the same reason never waitpid(-1).
    auto start = processStartTime(it->first);
    if (!start || *start != it->second) {
      it = children_.erase(it);
      continue;
    }
    pid_t r = ::waitpid(it->first, nullptr, WNOHANG);
    it = (r == it->first || (r < 0 && errno == ECHILD)) ? children_.erase(it) : std::next(it);
  }
}

Result<void> NetnsComputeDriver::remove(const std::string& compute_id) {
  reapChildren();
  AmphoraRecord record;
  {
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    auto it = std::find_if(state->amphorae.begin(), state->amphorae.end(),
                           [&](const AmphoraRecord& a) { return a.compute_id == compute_id; });
    if (it == state->amphorae.end()) return {};  // already gone: delete flows retry
    record = *it;
  }
  if (auto ok = teardown(record); !ok) {
    LB_ERROR("amphora removal failed amp=%s compute=%s: %s", record.amphora_id.c_str(),
             compute_id.c_str(), ok.error().message.c_str());
    return ok;
  }
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  std::erase_if(state->amphorae,
                [&](const AmphoraRecord& a) { return a.compute_id == compute_id; });
  if (auto ok = save(*guard, *state); !ok) return ok;
  LB_INFO("amphora removed amp=%s lb=%s compute=%s", record.amphora_id.c_str(),
          record.lb_id.c_str(), compute_id.c_str());
  return {};
}

ComputeStatus NetnsComputeDriver::statusOf(const AmphoraRecord& record) {
  if (record.pid == 0) {
    // Reserved and not started: BUILDING while this process's build() runs, ERROR when
    // the process that reserved it died (remove() cleans it up).
    std::lock_guard<std::mutex> lock(building_mu_);
    return building_.count(record.compute_id) ? ComputeStatus::kBuilding : ComputeStatus::kError;
  }
  if (!namespaceExists(record.compute_id)) return ComputeStatus::kError;
  if (!processAlive({record.pid, record.pid_start_time})) return ComputeStatus::kError;
  if (config_.options.health_port != 0 &&
      !tcpAnswers(record.lb_network_ip, config_.options.health_port,
                  std::chrono::milliseconds(200))) {
    return ComputeStatus::kBuilding;
  }
  return ComputeStatus::kActive;
}

Instance NetnsComputeDriver::instanceOf(const AmphoraRecord& record) {
  return Instance{record.compute_id, record.amphora_id, record.lb_id, record.lb_network_ip,
                  statusOf(record)};
}

Result<ComputeStatus> NetnsComputeDriver::status(const std::string& compute_id) {
  auto instance = get(compute_id);
  if (!instance) {
    if (instance.error().code == ErrorCode::kNotFound) return ComputeStatus::kDeleted;
    return instance.error();
  }
  return instance->status;
}

Result<Instance> NetnsComputeDriver::get(const std::string& compute_id) {
  reapChildren();
  AmphoraRecord record;
  {
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    auto it = std::find_if(state->amphorae.begin(), state->amphorae.end(),
                           [&](const AmphoraRecord& a) { return a.compute_id == compute_id; });
    if (it == state->amphorae.end())
      return makeError(ErrorCode::kNotFound, "no such amphora", compute_id);
    record = *it;
  }
  return instanceOf(record);
}

Result<std::vector<Instance>> NetnsComputeDriver::list() {
  reapChildren();
  ComputeState snapshot;
  {
    auto guard = state_.lock();
    if (!guard) return guard.error();
    auto state = load(*guard);
    if (!state) return state.error();
    snapshot = std::move(*state);
  }
  std::vector<Instance> out;
  for (const auto& a : snapshot.amphorae) out.push_back(instanceOf(a));
  return out;
}

Result<void> NetnsComputeDriver::cleanupAll() {
  // Lock order everywhere: bridge_mu_, then the state file.
  std::lock_guard<std::mutex> bridge_lock(bridge_mu_);
  bridge_ready_ = false;
  auto guard = state_.lock();
  if (!guard) return guard.error();
  auto state = load(*guard);
  if (!state) return state.error();
  Result<void> first;
  ComputeState left;
  for (const auto& a : state->amphorae) {
    if (auto ok = teardown(a); !ok) {
      if (first.ok()) first = ok;
      left.amphorae.push_back(a);
    }
  }
  deleteLinks(state->bridges, left.bridges, first);
  if (auto ok = save(*guard, left); !ok && first.ok()) first = ok;
  return first;
}

std::vector<std::string> NetnsComputeDriver::managementCidrs() const {
  return {config_.management.cidr.toString()};
}

}  // namespace banyan::provider::drivers
