// Test helpers: network namespaces the test creates and always deletes, shell
// commands, and running code of ours inside a namespace (setns on a thread of
// its own, so the rest of the test process stays in the root namespace).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace banyan::agent::system::testing {

struct ShResult {
  int rc = -1;
  std::string out;
};

// Runs `cmd` with /bin/sh, stdout and stderr captured together.
inline ShResult sh(const std::string& cmd) {
  ShResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Namespaces are named "bnysys-<pid>-<suffix>". Names left behind by a test
// process that died (its pid is gone) are removed, so a crash cannot leak them
// into the next run.
inline void sweepStaleNamespaces() {
  ShResult list = sh("ip netns list");
  size_t pos = 0;
  while ((pos = list.out.find("bnysys-", pos)) != std::string::npos) {
    size_t end = list.out.find_first_of(" \n", pos);
    std::string name =
        list.out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos += 7;
    int pid = atoi(name.c_str() + 7);
    if (pid > 0 && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH) {
      sh("ip netns del " + name);
    }
  }
}

class Netns {
 public:
  explicit Netns(const std::string& suffix)
      : name_("bnysys-" + std::to_string(getpid()) + "-" + suffix) {
    sh("ip netns del " + name_);
    ShResult r = sh("ip netns add " + name_);
    if (r.rc != 0) throw std::runtime_error("ip netns add " + name_ + " failed: " + r.out);
    sh("ip -n " + name_ + " link set lo up");
  }
  ~Netns() { sh("ip netns del " + name_); }
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  const std::string& name() const { return name_; }

  // `ip netns exec <ns> sh -c '<cmd>'`.
  ShResult exec(const std::string& cmd) const {
    std::string quoted;
    for (char c : cmd) {
      if (c == '\'')
        quoted += "'\\''";
      else
        quoted += c;
    }
    return sh("ip netns exec " + name_ + " sh -c '" + quoted + "'");
  }

  // Runs fn on a new thread that first joins this namespace; returns fn's value.
  template <typename F>
  auto run(F&& fn) const -> decltype(fn()) {
    using R = decltype(fn());
    std::string path = "/run/netns/" + name_;
    std::string err;
    if constexpr (std::is_void_v<R>) {
      std::thread t([&] {
        if (!enter(path, err)) return;
        fn();
      });
      t.join();
      if (!err.empty()) throw std::runtime_error(err);
    } else {
      std::optional<R> out;
      std::thread t([&] {
        if (!enter(path, err)) return;
        out.emplace(fn());
      });
      t.join();
      if (!err.empty()) throw std::runtime_error(err);
      return std::move(*out);
    }
  }

 private:
  static bool enter(const std::string& path, std::string& err) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err = "open " + path + " failed";
      return false;
    }
    if (setns(fd, CLONE_NEWNET) != 0) {
      err = "setns " + path + " failed";
      close(fd);
      return false;
    }
    close(fd);
    return true;
  }

  std::string name_;
};

// A veth pair with one end in each namespace (either may be the same one).
inline void veth(const Netns& a, const std::string& a_if, const Netns& b, const std::string& b_if) {
  ShResult r = sh("ip -n " + a.name() + " link add " + a_if + " type veth peer name " + b_if +
                  " netns " + b.name());
  if (r.rc != 0) throw std::runtime_error("veth: " + r.out);
  sh("ip -n " + a.name() + " link set " + a_if + " up");
  sh("ip -n " + b.name() + " link set " + b_if + " up");
}

}  // namespace banyan::agent::system::testing
