#include "drivers/process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "drivers/address.h"

extern char** environ;

namespace banyan::provider::drivers {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

std::string joinArgs(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

std::string errnoText(int err) { return std::strerror(err); }

void closeFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

Result<CommandOutput> runCommand(const std::vector<std::string>& argv, std::string_view input) {
  if (argv.empty()) return makeError(ErrorCode::kInvalidArgument, "empty command");
  // O_CLOEXEC: another thread may spawn at the same moment, and a child that inherits
  // our pipe ends would hold them open and hide the EOF we wait for.
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0)
    return makeError(ErrorCode::kUnavailable, "pipe2: " + errnoText(errno));
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(in_pipe[0]);
    close(in_pipe[1]);
    return makeError(ErrorCode::kUnavailable, "pipe2: " + errnoText(errno));
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) close(fd);
    return makeError(ErrorCode::kUnavailable, "pipe2: " + errnoText(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return makeError(ErrorCode::kUnavailable, "cannot run " + argv[0] + ": " + errnoText(rc));
  }
  CommandOutput result;
  int in_fd = in_pipe[1], out_fd = out_pipe[0], err_fd = err_pipe[0];
  size_t written = 0;
  if (input.empty()) closeFd(in_fd);
  // A child that exits before reading all its input must not kill us with SIGPIPE:
  // block it in this thread and swallow a pending one afterwards.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  while (in_fd >= 0 || out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, input.data() + written, input.size() - written);
        if (w < 0 && errno != EINTR && errno != EAGAIN) closeFd(in_fd);
        if (w > 0) written += static_cast<size_t>(w);
        if (written == input.size()) closeFd(in_fd);
        continue;
      }
      char buf[4096];
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      std::string& sink = fds[i].fd == out_fd ? result.out : result.err;
      if (r <= 0) {
        closeFd(fds[i].fd == out_fd ? out_fd : err_fd);
      } else {
        sink.append(buf, static_cast<size_t>(r));
      }
    }
  }
  closeFd(in_fd);
  closeFd(out_fd);
  closeFd(err_fd);
  timespec zero{0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return makeError(ErrorCode::kUnavailable, "waitpid: " + errnoText(errno));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Result<std::string> runChecked(const std::vector<std::string>& argv, std::string_view input) {
  auto r = runCommand(argv, input);
  if (!r) return r.error();
  if (r->exit_code != 0) {
    std::string err = r->err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    std::string what =
        "`" + joinArgs(argv) + "` failed (exit " + std::to_string(r->exit_code) + "): " + err;
    if (!input.empty()) what += " [input: " + std::string(input.substr(0, 400)) + "]";
    return makeError(ErrorCode::kUnavailable, what);
  }
  return std::move(r->out);
}

Result<ProcessId> spawnInNamespace(const SpawnSpec& spec) {
  if (spec.argv.empty()) return makeError(ErrorCode::kInvalidArgument, "no program to start");
  // Everything the child needs is prepared before fork: after fork in a threaded
  // process only async-signal-safe calls are allowed.
  std::string ns_path = "/run/netns/" + spec.netns;
  int ns_fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0)
    return makeError(ErrorCode::kUnavailable, "open " + ns_path + ": " + errnoText(errno));
  int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) {
    close(ns_fd);
    return makeError(ErrorCode::kUnavailable, "open " + spec.log_path + ": " + errnoText(errno));
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2];
  if (null_fd < 0 || pipe2(report, O_CLOEXEC) != 0) {
    close(ns_fd);
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return makeError(ErrorCode::kUnavailable, "pipe2: " + errnoText(errno));
  }
  std::vector<char*> args;
  for (const auto& a : spec.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  for (const auto& e : spec.extra_env) env_store.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? "/" : spec.cwd.c_str();

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    for (int fd : {ns_fd, log_fd, null_fd, report[0], report[1]}) close(fd);
    return makeError(ErrorCode::kUnavailable, "fork: " + errnoText(err));
  }
  if (pid == 0) {
    // The child: report the failing step's errno on the pipe, or exec (which closes it).
    int step = 0;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    if (setns(ns_fd, CLONE_NEWNET) != 0)
      step = 1;
    else if (chdir(cwd) != 0)
      step = 2;
    else if (setsid() < 0)
      step = 3;
    else if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
      step = 4;
    if (step == 0) {
      // Descriptors another thread opened without O_CLOEXEC must not leak into the
      // amphora; the report pipe stays (it is close-on-exec).
      if (report[1] > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(report[1] - 1), 0u);
      syscall(SYS_close_range, static_cast<unsigned>(report[1] + 1), ~0u, 0u);
    }
    if (step == 0) {
      execve(args[0], args.data(), envp.data());
      step = 5;
    }
    int msg[2] = {step, errno};
    ssize_t ignored = write(report[1], msg, sizeof(msg));
    (void)ignored;
    _exit(127);
  }
  close(report[1]);
  for (int fd : {ns_fd, log_fd, null_fd}) close(fd);
  int msg[2] = {0, 0};
  ssize_t got = 0;
  do {
    got = read(report[0], msg, sizeof(msg));
  } while (got < 0 && errno == EINTR);
  close(report[0]);
  if (got == static_cast<ssize_t>(sizeof(msg))) {
    int status = 0;
    waitpid(pid, &status, 0);
    static const char* kSteps[] = {"", "setns", "chdir", "setsid", "dup2", "exec"};
    return makeError(ErrorCode::kUnavailable, std::string("cannot start ") + spec.argv[0] +
                                                  " in netns " + spec.netns + ": " +
                                                  kSteps[msg[0] < 6 && msg[0] > 0 ? msg[0] : 0] +
                                                  ": " + errnoText(msg[1]));
  }
  ProcessId id{pid, 0};
  // The child has exec'd: its start time is fixed from fork on.
  if (auto start = processStartTime(pid)) id.start_time = *start;
  return id;
}

namespace {

// Field 3 (state) and 22 (starttime) of /proc/<pid>/stat. The command name (field 2)
// is in parentheses and may contain spaces, so parsing starts after the last ')'.
bool readStat(pid_t pid, char& state, uint64_t& start_time) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return false;
  auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return false;
  std::istringstream fields(text.substr(close_paren + 1));
  std::string field;
  // After ')' come fields 3..; starttime is field 22, the 20th after ')'.
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return false;
    if (i == 3) state = field.empty() ? '?' : field[0];
  }
  start_time = std::strtoull(field.c_str(), nullptr, 10);
  return true;
}

}  // namespace

std::optional<uint64_t> processStartTime(pid_t pid) {
  char state = 0;
  uint64_t start = 0;
  if (!readStat(pid, state, start)) return std::nullopt;
  return start;
}

bool processAlive(const ProcessId& process) {
  if (process.pid <= 0) return false;
  char state = 0;
  uint64_t start = 0;
  if (!readStat(process.pid, state, start)) return false;
  if (process.start_time != 0 && start != process.start_time) return false;  // PID reused
  if (state == 'Z' || state == 'X') {
    // Ours to reap when we started it; waitpid fails harmlessly (ECHILD) otherwise.
    waitpid(process.pid, nullptr, WNOHANG);
    return false;
  }
  return true;
}

void stopProcess(const ProcessId& process, std::chrono::milliseconds grace) {
  if (!processAlive(process)) return;
  kill(process.pid, SIGTERM);
  // The agent leads its own session: its children (proxy, keepalived) share the group.
  kill(-process.pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (processAlive(process) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (processAlive(process)) {
    kill(process.pid, SIGKILL);
    kill(-process.pid, SIGKILL);
    // SIGKILL cannot be ignored; the bound only guards against an unkillable (D state) task.
    auto kill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (processAlive(process) && std::chrono::steady_clock::now() < kill_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

std::vector<pid_t> pidsInNamespace(const std::string& netns) {
  std::vector<pid_t> pids;
  struct stat ns_st {};
  if (stat(("/run/netns/" + netns).c_str(), &ns_st) != 0) return pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    struct stat st {};
    std::string path = std::string("/proc/") + entry->d_name + "/ns/net";
    if (stat(path.c_str(), &st) == 0 && st.st_ino == ns_st.st_ino && st.st_dev == ns_st.st_dev) {
      pids.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(dir);
  return pids;
}

Result<void> killNamespaceProcesses(const std::string& netns) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (true) {
    std::vector<pid_t> pids = pidsInNamespace(netns);
    std::vector<ProcessId> alive;
    for (pid_t pid : pids) {
      ProcessId id{pid, processStartTime(pid).value_or(0)};
      if (processAlive(id)) alive.push_back(id);
    }
    if (alive.empty()) return {};
    if (std::chrono::steady_clock::now() > deadline) {
      return makeError(ErrorCode::kUnavailable,
                       std::to_string(alive.size()) + " process(es) in netns " + netns +
                           " survive SIGKILL (first pid " + std::to_string(alive[0].pid) + ")");
    }
    for (const auto& id : alive) kill(id.pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

bool tcpAnswers(const std::string& address, int port, std::chrono::milliseconds timeout) {
  auto ip = IpAddress::parse(address);
  if (!ip) return false;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (ip->isV6()) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, address.c_str(), &sa->sin6_addr);
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, address.c_str(), &sa->sin_addr);
    len = sizeof(*sa);
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t err_len = sizeof(err);
      ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0;
    }
  }
  close(fd);
  return ok;
}

}  // namespace banyan::provider::drivers
