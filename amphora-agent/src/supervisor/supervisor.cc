#include "supervisor/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "banyan/common/logging.h"
#include "storage/storage.h"

namespace banyan::agent::supervisor {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

uint64_t nowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

ProxySupervisor::ProxySupervisor(SupervisorOptions options, const proxy_control::ProxyControl& control)
    : options_(std::move(options)), control_(control) {}

ProxySupervisor::~ProxySupervisor() { stop(true); }

Result<void> ProxySupervisor::start() {
  std::unique_lock<std::mutex> lock(mu_);
  LB_CHECK(!thread_.joinable(), "start() is called once");
  stopping_ = false;
  if (control_.alive()) {
    attached_ = true;
    epoch_ = nowMs();
    LB_INFO("Attached to a running banyan-proxy. control=%s", options_.control_socket.c_str());
  } else {
    auto r = spawnLocked();
    if (!r) return r;
    pid_t pid = child_;
    lock.unlock();
    bool ready = waitReady(pid);
    lock.lock();
    if (!ready) {
      if (child_ > 0) {
        ::kill(child_, SIGKILL);
        ::waitpid(child_, nullptr, 0);
        child_ = 0;
      }
      // The monitor keeps trying: the agent must stay reachable so the controller can
      // push a config that works.
      thread_ = std::thread([this] { monitor(); });
      return makeError(ErrorCode::kUnavailable, "banyan-proxy did not answer on its control socket",
                       options_.control_socket);
    }
  }
  thread_ = std::thread([this] { monitor(); });
  return {};
}

Result<void> ProxySupervisor::spawnLocked() {
  // Everything the child needs is built before fork(): after it, a multithreaded
  // process may only make async-signal-safe calls.
  std::vector<std::string> args = {options_.proxy_binary, "--config",    options_.config_path,
                                   "--control",           options_.control_socket, "--log-level",
                                   options_.log_level};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return makeError(ErrorCode::kUnavailable, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // The agent's own sockets (its API listener) must not leak into the proxy.
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  child_ = pid;
  attached_ = false;
  epoch_ = nowMs();
  if (!options_.pid_file.empty()) {
    auto w = storage::writeFileAtomic(options_.pid_file, std::to_string(pid) + "\n", 0644);
    if (!w) LB_WARN("Cannot write the proxy pid file. path=%s error=%s", options_.pid_file.c_str(),
                    w.error().message.c_str());
  }
  LB_INFO("Started banyan-proxy. pid=%d config=%s", static_cast<int>(pid), options_.config_path.c_str());
  return {};
}

bool ProxySupervisor::waitReady(pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.ready_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (control_.alive()) return true;
    int status = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (child_ != pid) return false;
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        LB_ERROR("banyan-proxy exited during start. pid=%d status=%d", static_cast<int>(pid), status);
        child_ = 0;
        return false;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void ProxySupervisor::monitor() {
  int backoff_ms = options_.restart_backoff_min_ms;
  int attached_misses = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(options_.check_interval_ms), [this] { return stopping_; });
    if (stopping_) break;
    if (attached_) {
      // Not our child: all we can see is whether it still answers.
      lock.unlock();
      bool alive = control_.alive();
      lock.lock();
      attached_misses = alive ? 0 : attached_misses + 1;
      if (attached_misses < 3 || stopping_) continue;
      LB_WARN("The attached banyan-proxy stopped answering; starting our own. control=%s",
              options_.control_socket.c_str());
      attached_misses = 0;
    } else if (child_ > 0) {
      int status = 0;
      pid_t r = ::waitpid(child_, &status, WNOHANG);
      if (r == 0) {
        backoff_ms = options_.restart_backoff_min_ms;
        continue;
      }
      LB_ERROR("banyan-proxy died; restarting. pid=%d status=%d backoff_ms=%d", static_cast<int>(child_), status,
               backoff_ms);
      child_ = 0;
      cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [this] { return stopping_; });
      if (stopping_) break;
      backoff_ms = std::min(backoff_ms * 2, options_.restart_backoff_max_ms);
    }
    auto r = spawnLocked();
    if (!r) {
      LB_ERROR("Cannot start banyan-proxy. error=%s", r.error().message.c_str());
      continue;
    }
    restarts_++;
  }
}

pid_t ProxySupervisor::childPid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return child_;
}

void ProxySupervisor::stop(bool stop_proxy, int kill_after_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  if (thread_.joinable()) {
    lock.unlock();
    thread_.join();
    lock.lock();
  }
  if (!stop_proxy || child_ <= 0) return;
  pid_t pid = child_;
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kill_after_ms);
  for (;;) {
    pid_t r = ::waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  child_ = 0;
  LB_INFO("Stopped banyan-proxy. pid=%d", static_cast<int>(pid));
}

}  // namespace banyan::agent::supervisor
