// Two network namespaces joined by a veth pair with the link-local addresses fe80::a/64
// (side A) and fe80::b/64 (side B), for tests of IPv6 link-local addresses with a zone
// over real sockets; and helpers to run code in a forked child inside one of them.
//
// Why children and not threads: cpprestsdk opens sockets on the threads of its shared
// pool, which stay in the namespace the process had when the pool was made, so a thread
// that setns()es would still connect from the host's namespace. A test process using
// these helpers must therefore not touch cpprestsdk itself (a fork after cpprestsdk
// started its pool would leave the child without those threads): everything that makes
// an HTTP client or server runs in a child.
//
// Needs root. Nothing touches the host's own interfaces: the veth ends are made inside
// the namespaces, and deleting a namespace removes its end and with it the peer.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace banyan::testing {

class LinkLocalPair {
 public:
  // Makes the namespaces and the link; ok() says whether every step worked (what failed
  // is in error()). Names are unique per process and instance, as several test binaries
  // may run at once.
  LinkLocalPair() {
    static std::atomic<int> counter{0};
    std::string tag = std::to_string(::getpid() % 100000) + "x" + std::to_string(counter++);
    ns_a_ = "banyan-zone-" + tag + "-a";
    ns_b_ = "banyan-zone-" + tag + "-b";
    veth_a_ = "bz" + tag + "a";  // at most 15 characters (IFNAMSIZ - 1)
    veth_b_ = "bz" + tag + "b";
    if (veth_a_.size() > 15) {
      error_ = "interface name too long: " + veth_a_;
      return;
    }
    for (const std::string& cmd : std::vector<std::string>{
             "ip netns add " + ns_a_,
             "ip netns add " + ns_b_,
             "ip link add " + veth_a_ + " netns " + ns_a_ + " type veth peer name " + veth_b_ + " netns " + ns_b_,
             // Servers behind common::HttpServer's IPv6 relay talk to 127.0.0.1.
             "ip -n " + ns_a_ + " link set lo up",
             "ip -n " + ns_b_ + " link set lo up",
             // Only the fixed addresses: no EUI-64 ones, no duplicate address detection.
             "ip -n " + ns_a_ + " link set " + veth_a_ + " addrgenmode none",
             "ip -n " + ns_b_ + " link set " + veth_b_ + " addrgenmode none",
             "ip -n " + ns_a_ + " addr add fe80::a/64 dev " + veth_a_ + " nodad",
             "ip -n " + ns_b_ + " addr add fe80::b/64 dev " + veth_b_ + " nodad",
             "ip -n " + ns_a_ + " link set " + veth_a_ + " up",
             "ip -n " + ns_b_ + " link set " + veth_b_ + " up",
         }) {
      if (sh(cmd) != 0) {
        error_ = "failed: " + cmd;
        return;
      }
    }
  }
  ~LinkLocalPair() {
    sh("ip netns del " + ns_a_);
    sh("ip netns del " + ns_b_);
  }
  LinkLocalPair(const LinkLocalPair&) = delete;
  LinkLocalPair& operator=(const LinkLocalPair&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& nsA() const { return ns_a_; }
  const std::string& nsB() const { return ns_b_; }
  const std::string& vethA() const { return veth_a_; }  // in nsA, has fe80::a
  const std::string& vethB() const { return veth_b_; }  // in nsB, has fe80::b

  static int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

 private:
  std::string ns_a_, ns_b_, veth_a_, veth_b_, error_;
};

// Forks a child that enters network namespace NS and exits with FN's result (90 when
// it cannot enter). Returns the child's PID (-1 when fork failed).
inline pid_t forkIntoNetns(const std::string& ns, const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) ::_exit(90);
  ::close(fd);
  ::_exit(fn());
}

// Writes all of DATA to FD; false on failure.
inline bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads FD until EOF; false when DEADLINE passes first.
inline bool readAll(int fd, std::string* out, std::chrono::steady_clock::time_point deadline) {
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    out->append(buf, static_cast<size_t>(n));
  }
}

// Waits for our child PID at most WAIT, then kills it (by that PID). Its wait status,
// or -1 when it had to be killed.
inline int reapChild(pid_t pid, std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    ::usleep(10000);
  }
  return status;
}

// Runs FN in a child inside network namespace NS and returns what it wrote to the fd it
// is given; "" with *FAILED set when the child gave no answer within TIMEOUT.
inline std::string runInNetns(const std::string& ns, const std::function<std::string()>& fn,
                              std::chrono::milliseconds timeout, bool* failed = nullptr) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    if (failed) *failed = true;
    return "";
  }
  pid_t pid = forkIntoNetns(ns, [&] {
    ::close(fds[0]);
    return writeAll(fds[1], fn()) ? 0 : 1;
  });
  ::close(fds[1]);
  std::string out;
  bool done = pid > 0 && readAll(fds[0], &out, std::chrono::steady_clock::now() + timeout);
  ::close(fds[0]);
  int status = pid > 0 ? reapChild(pid, done ? std::chrono::milliseconds(10000) : std::chrono::milliseconds(0)) : -1;
  if (failed) *failed = !done || status != 0;
  return out;
}

}  // namespace banyan::testing
