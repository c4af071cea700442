#include "system/keepalived.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "banyan/common/logging.h"
#include "system/ip_prefix.h"

namespace banyan::agent::system {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

bool allOf(const std::string& s, bool (*ok)(char)) { return std::all_of(s.begin(), s.end(), ok); }
bool nameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
bool ifnameChar(char c) { return nameChar(c) || c == '.'; }
// keepalived.conf has no escaping: a quote, a brace, a comment sign or a line
// break in a value would end it and let the rest be read as configuration.
bool commandChar(char c) {
  return c >= 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '{' && c != '}' && c != '#' &&
         c != '!' && c != '\\';
}
bool passChar(char c) { return c > 0x20 && c < 0x7f && commandChar(c); }

Result<void> invalid(const std::string& why, const std::string& field) {
  return makeError(ErrorCode::kInvalidArgument, why, field);
}

Result<void> checkCommand(const std::string& cmd, const std::string& field) {
  if (cmd.empty()) return {};
  if (cmd.size() > 1024 || !allOf(cmd, commandChar)) {
    return invalid("command has characters keepalived.conf cannot carry", field);
  }
  if (cmd[0] != '/') return invalid("command must start with an absolute path", field);
  return {};
}

Result<void> checkRange(int v, int lo, int hi, const std::string& field) {
  if (v < lo || v > hi)
    return invalid("must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", field);
  return {};
}

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Result<void> writeSynced(const std::string& path, const std::string& content, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return makeError(ErrorCode::kUnavailable, std::string("open failed: ") + strerror(errno), path);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return makeError(ErrorCode::kUnavailable, std::string("write failed: ") + strerror(err),
                       path);
    }
    off += static_cast<size_t>(n);
  }
  if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return makeError(ErrorCode::kUnavailable, std::string("fsync failed: ") + strerror(err), path);
  }
  if (close(fd) != 0)
    return makeError(ErrorCode::kUnavailable, std::string("close failed: ") + strerror(errno),
                     path);
  return {};
}

Result<void> renameSynced(const std::string& from, const std::string& to, const std::string& dir) {
  if (rename(from.c_str(), to.c_str()) != 0) {
    return makeError(ErrorCode::kUnavailable, std::string("rename failed: ") + strerror(errno), to);
  }
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);  // the rename itself must survive a crash
    close(dfd);
  }
  return {};
}

// Writes via .next + rename so a reader never sees half a file.
Result<void> writeAtomic(const std::string& dir, const std::string& name,
                         const std::string& content, mode_t mode) {
  std::string path = dir + "/" + name;
  auto r = writeSynced(path + ".next", content, mode);
  if (!r) return r;
  return renameSynced(path + ".next", path, dir);
}

void closeFrom(int lowfd) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, lowfd, ~0U, 0) == 0) return;
#endif
  for (int fd = lowfd; fd < 1024; ++fd) close(fd);
}

int64_t nowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct RunResult {
  int rc = -1;
  std::string output;
};

// fork/exec with stdout+stderr captured, bounded by timeout_ms (then SIGKILL).
// Everything the child needs is prepared before fork: after fork in a threaded
// process only async-signal-safe calls are allowed.
RunResult runCapture(const std::vector<std::string>& args, int timeout_ms) {
  RunResult res;
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    res.output = std::string("pipe failed: ") + strerror(errno);
    return res;
  }
  pid_t pid = fork();
  if (pid < 0) {
    res.output = std::string("fork failed: ") + strerror(errno);
    close(pipefd[0]);
    close(pipefd[1]);
    return res;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    closeFrom(3);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipefd[1]);
  int64_t deadline = nowMs() + timeout_ms;
  char buf[4096];
  bool killed = false;
  while (true) {
    int left = static_cast<int>(deadline - nowMs());
    if (left <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t got = read(pipefd[0], buf, sizeof buf);
    if (got <= 0) break;
    if (res.output.size() < 64 * 1024) res.output.append(buf, static_cast<size_t>(got));
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.rc = killed ? -1 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  if (killed) res.output += "\n(timed out)";
  return res;
}

bool processAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

}  // namespace

const char* toString(VrrpState state) {
  switch (state) {
    case VrrpState::kMaster:
      return "MASTER";
    case VrrpState::kBackup:
      return "BACKUP";
    case VrrpState::kFault:
      return "FAULT";
    case VrrpState::kUnknown:
      return "UNKNOWN";
  }
  return "UNKNOWN";
}

Result<void> validateVrrpConfig(const VrrpConfig& c) {
  if (c.instance_name.empty() || c.instance_name.size() > 64 || !allOf(c.instance_name, nameChar)) {
    return invalid("instance name must be 1-64 of [A-Za-z0-9_-]", "instance_name");
  }
  if (c.interface.empty() || c.interface.size() > 15 || !allOf(c.interface, ifnameChar)) {
    return invalid("bad interface name", "interface");
  }
  auto vip = parseIpAddress(c.vip);
  if (!vip) return invalid(vip.error().message, "vip");
  if (auto r = checkRange(c.vip_prefix, 1, vip->maxPrefix(), "vip_prefix"); !r) return r;
  if (auto r = checkRange(c.virtual_router_id, 1, 255, "virtual_router_id"); !r) return r;
  if (auto r = checkRange(c.priority, 1, 254, "priority"); !r) return r;
  if (auto r = checkRange(c.advert_interval_s, 1, 255, "advert_interval_s"); !r) return r;
  auto local = parseIpAddress(c.local_address);
  if (!local) return invalid(local.error().message, "local_address");
  for (size_t i = 0; i < c.peer_addresses.size(); ++i) {
    auto p = parseIpAddress(c.peer_addresses[i]);
    const std::string field = "peer_addresses/" + std::to_string(i);
    if (!p) return invalid(p.error().message, field);
    if (p->family != local->family) return invalid("peer and local address families differ", field);
  }
  if (!c.auth_pass.empty() && (c.auth_pass.size() > 8 || !allOf(c.auth_pass, passChar))) {
    return invalid(
        "auth_pass must be 1-8 printable characters without quotes, braces or comment signs",
        "auth_pass");
  }
  if (auto r = checkCommand(c.check_command, "check_command"); !r) return r;
  if (auto r = checkCommand(c.notify_command, "notify_command"); !r) return r;
  if (auto r = checkRange(c.check_interval_s, 1, 3600, "check_interval_s"); !r) return r;
  if (auto r = checkRange(c.check_fall, 1, 100, "check_fall"); !r) return r;
  if (auto r = checkRange(c.check_rise, 1, 100, "check_rise"); !r) return r;
  if (auto r = checkRange(c.garp_master_delay_s, 0, 255, "garp_master_delay_s"); !r) return r;
  if (auto r = checkRange(c.garp_master_repeat, 1, 255, "garp_master_repeat"); !r) return r;
  if (auto r = checkRange(c.garp_master_refresh_s, 0, 86400, "garp_master_refresh_s"); !r) return r;
  if (auto r = checkRange(c.garp_master_refresh_repeat, 1, 255, "garp_master_refresh_repeat"); !r)
    return r;
  if (c.vip_table != 0) {
    if (c.vip_table >= 253 && c.vip_table <= 255)
      return invalid("reserved routing table", "vip_table");
    auto subnet = parseIpPrefix(c.vip_subnet_cidr);
    if (!subnet) return invalid(subnet.error().message, "vip_subnet_cidr");
    if (!subnet->contains(*vip))
      return invalid("VIP is not inside vip_subnet_cidr", "vip_subnet_cidr");
    if (!c.gateway.empty()) {
      auto gw = parseIpAddress(c.gateway);
      if (!gw) return invalid(gw.error().message, "gateway");
      if (gw->family != vip->family) return invalid("gateway and VIP families differ", "gateway");
    }
  }
  return {};
}

std::string renderKeepalivedConfig(const VrrpConfig& c) {
  std::ostringstream o;
  const bool has_check = !c.check_command.empty();
  o << "# Rendered by banyan-agent on every apply; edits are lost.\n"
    << "global_defs {\n"
    << "    router_id banyan_" << c.instance_name << "\n"
    << "    script_user root\n"
    << "    enable_script_security\n"
    << "}\n\n";
  if (has_check) {
    o << "vrrp_script banyan_check {\n"
      << "    script \"" << c.check_command << "\"\n"
      << "    interval " << c.check_interval_s << "\n"
      << "    timeout " << c.check_interval_s << "\n"
      << "    fall " << c.check_fall << "\n"
      << "    rise " << c.check_rise << "\n"
      << "}\n\n";
  }
  // Both amphorae start as BACKUP and elect by priority: keepalived ignores
  // nopreempt on an instance whose initial state is MASTER.
  o << "vrrp_instance " << c.instance_name << " {\n"
    << "    state BACKUP\n"
    << "    interface " << c.interface << "\n"
    << "    virtual_router_id " << c.virtual_router_id << "\n"
    << "    priority " << c.priority << "\n";
  if (c.nopreempt) o << "    nopreempt\n";
  o << "    advert_int " << c.advert_interval_s << "\n"
    << "    garp_master_delay " << c.garp_master_delay_s << "\n"
    << "    garp_master_repeat " << c.garp_master_repeat << "\n"
    << "    garp_master_refresh " << c.garp_master_refresh_s << "\n"
    << "    garp_master_refresh_repeat " << c.garp_master_refresh_repeat << "\n";
  if (!c.auth_pass.empty()) {
    o << "    authentication {\n"
      << "        auth_type PASS\n"
      << "        auth_pass " << c.auth_pass << "\n"
      << "    }\n";
  }
  o << "    unicast_src_ip " << c.local_address << "\n"
    << "    unicast_peer {\n";
  for (const auto& p : c.peer_addresses) o << "        " << p << "\n";
  o << "    }\n";
  // keepalived advertises in the family of unicast_src_ip; a VIP of the other
  // family must be "excluded" (set, but not carried in the adverts).
  const bool same_family =
      (c.vip.find(':') == std::string::npos) == (c.local_address.find(':') == std::string::npos);
  o << (same_family ? "    virtual_ipaddress {\n" : "    virtual_ipaddress_excluded {\n")
    << "        " << c.vip << "/" << c.vip_prefix << " dev " << c.interface << "\n"
    << "    }\n";
  if (c.vip_table != 0) {
    auto subnet = parseIpPrefix(c.vip_subnet_cidr);
    const std::string host_len = c.vip.find(':') == std::string::npos ? "/32" : "/128";
    o << "    virtual_routes {\n"
      << "        " << (subnet ? subnet->toString() : c.vip_subnet_cidr) << " dev "
      << c.interface << " src " << c.vip << " scope link table " << c.vip_table << "\n";
    if (!c.gateway.empty()) {
      o << "        default via " << c.gateway << " dev " << c.interface << " onlink table "
        << c.vip_table << "\n";
    }
    o << "    }\n"
      << "    virtual_rules {\n"
      << "        from " << c.vip << host_len << " table " << c.vip_table << " priority 100\n"
      << "    }\n";
  }
  if (has_check) {
    o << "    track_script {\n"
      << "        banyan_check\n"
      << "    }\n";
  }
  if (!c.notify_command.empty()) o << "    notify \"" << c.notify_command << "\"\n";
  o << "}\n";
  return o.str();
}

Keepalived::Keepalived(std::string runtime_dir, std::string keepalived_binary)
    : dir_(std::move(runtime_dir)), binary_(std::move(keepalived_binary)) {}

bool Keepalived::running() const {
  if (pid_ <= 0) return false;
  if (child_) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      if (!stopping_) LB_WARN("keepalived exited pid=%d status=%d", pid_, status);
      pid_ = 0;
      return false;
    }
    return true;
  }
  if (!processAlive(pid_)) {
    pid_ = 0;
    return false;
  }
  return true;
}

void Keepalived::adopt() {
  if (pid_ > 0) return;
  std::string text = readFile(dir_ + "/keepalived.pid");
  pid_t pid = static_cast<pid_t>(atoi(text.c_str()));
  if (pid <= 0 || !processAlive(pid)) return;
  // Only a keepalived started on our config: pids are reused.
  std::string cmdline = readFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  if (cmdline.find("keepalived") == std::string::npos ||
      cmdline.find(configPath()) == std::string::npos)
    return;
  pid_ = pid;
  child_ = false;
  LB_INFO("keepalived adopted pid=%d dir=%s", pid_, dir_.c_str());
}

Result<void> Keepalived::start() {
  // Files of an earlier run would claim a state (or a readiness) this process has not reached.
  unlink(statePath().c_str());
  for (const char* f : {"/keepalived.pid", "/vrrp.pid", "/checkers.pid"})
    unlink((dir_ + f).c_str());
  std::vector<std::string> args = {binary_,
                                   "--dont-fork",
                                   "--vrrp",
                                   "--log-console",
                                   "--log-detail",
                                   "--no-syslog",
                                   "--use-file=" + configPath(),
                                   "--pid=" + dir_ + "/keepalived.pid",
                                   "--vrrp_pid=" + dir_ + "/vrrp.pid",
                                   "--checkers_pid=" + dir_ + "/checkers.pid"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = dir_ + "/keepalived.log";
  int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0)
    return makeError(ErrorCode::kUnavailable, std::string("open failed: ") + strerror(errno), log);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    return makeError(ErrorCode::kUnavailable, std::string("fork failed: ") + strerror(err));
  }
  if (pid == 0) {
    // Own session: a signal to the agent's process group must not take the VIP down.
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    closeFrom(3);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  pid_ = pid;
  child_ = true;
  // Wait (bounded) until the VRRP child has written its pid file: by then the
  // parent has installed its signal handlers, so an immediate re-apply's SIGHUP
  // reloads instead of killing it (SIGHUP's default action).
  const std::string vrrp_pid = dir_ + "/vrrp.pid";
  int64_t deadline = nowMs() + 5000;
  while (running() && access(vrrp_pid.c_str(), F_OK) != 0 && nowMs() < deadline) {
    struct timespec ts {
      0, 10 * 1000 * 1000
    };
    nanosleep(&ts, nullptr);
  }
  if (!running()) {
    return makeError(ErrorCode::kUnavailable, "keepalived exited at start; see " + log, binary_);
  }
  LB_INFO("keepalived started pid=%d dir=%s", pid_, dir_.c_str());
  return {};
}

Result<void> Keepalived::apply(const VrrpConfig& config) {
  VrrpConfig c = config;
  c.notify_command = dir_ + "/notify.sh";
  auto valid = validateVrrpConfig(c);
  if (!valid) return valid;
  if (access(binary_.c_str(), X_OK) != 0) {
    return makeError(ErrorCode::kUnavailable, "keepalived is not installed", binary_);
  }
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return makeError(ErrorCode::kUnavailable, std::string("mkdir failed: ") + strerror(errno),
                     dir_);
  }
  // keepalived calls: notify.sh INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>
  const std::string state_path = statePath();
  std::string notify =
      "#!/bin/sh\n"
      "# Rendered by banyan-agent: records keepalived's VRRP state transitions.\n"
      "printf '%s\\n' \"$3\" > '" +
      state_path + ".tmp' && mv -f '" + state_path + ".tmp' '" + state_path + "'\n";
  if (readFile(c.notify_command) != notify) {
    auto r = writeAtomic(dir_, "notify.sh", notify, 0700);
    if (!r) return r;
  }

  const std::string text = renderKeepalivedConfig(c);
  adopt();
  if (running() && readFile(configPath()) == text) return {};  // same config: nothing to do

  const std::string next = configPath() + ".next";
  auto r = writeSynced(next, text, 0600);
  if (!r) return r;
  RunResult check = runCapture({binary_, "--config-test", "--use-file=" + next}, 10000);
  if (check.rc != 0) {
    (void)renameSynced(next, configPath() + ".rejected", dir_);
    LB_WARN("keepalived config rejected dir=%s rc=%d", dir_.c_str(), check.rc);
    return makeError(ErrorCode::kInvalidArgument,
                     "keepalived --config-test failed: " + check.output,
                     configPath() + ".rejected");
  }
  r = renameSynced(next, configPath(), dir_);
  if (!r) return r;
  if (running()) {
    if (kill(pid_, SIGHUP) != 0) {
      return makeError(ErrorCode::kUnavailable, std::string("SIGHUP failed: ") + strerror(errno));
    }
    LB_INFO("keepalived reloaded pid=%d dir=%s", pid_, dir_.c_str());
    return {};
  }
  return start();
}

VrrpState Keepalived::state() const {
  if (!running()) return VrrpState::kUnknown;
  std::string s = readFile(statePath());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (s == "MASTER") return VrrpState::kMaster;
  if (s == "BACKUP") return VrrpState::kBackup;
  if (s == "FAULT") return VrrpState::kFault;
  return VrrpState::kUnknown;
}

Result<void> Keepalived::stop() {
  adopt();
  if (!running()) {
    unlink(statePath().c_str());
    return {};
  }
  pid_t pid = pid_;
  if (kill(pid, SIGTERM) != 0 && errno != ESRCH) {
    return makeError(ErrorCode::kUnavailable, std::string("SIGTERM failed: ") + strerror(errno));
  }
  stopping_ = true;
  int64_t deadline = nowMs() + 5000;
  while (running() && nowMs() < deadline) {
    struct timespec ts {
      0, 20 * 1000 * 1000
    };
    nanosleep(&ts, nullptr);
  }
  if (running()) {
    LB_WARN("keepalived ignored SIGTERM, killing pid=%d", pid);
    kill(pid, SIGKILL);
    if (child_) waitpid(pid, nullptr, 0);
    pid_ = 0;
  }
  stopping_ = false;
  unlink(statePath().c_str());
  LB_INFO("keepalived stopped pid=%d dir=%s", pid, dir_.c_str());
  return {};
}

}  // namespace banyan::agent::system
