#include "support/test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "support/test_pki.h"

namespace banyan::agent::testing {

namespace {

int removeEntry(const char* path, const struct stat*, int, FTW*) { return ::remove(path); }

uint16_t localPort(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/banyan-agent-test-XXXXXX";
  char* p = ::mkdtemp(tmpl);
  if (!p) abort();
  path_ = p;
}

TempDir::~TempDir() { ::nftw(path_.c_str(), removeEntry, 16, FTW_DEPTH | FTW_PHYS); }

ProcResult runCommand(const std::vector<std::string>& argv_in, int timeout_ms) {
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) abort();
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcResult r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

CurlResult curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcResult p = runCommand(argv);
  CurlResult r;
  r.exit_code = p.exit_code;
  auto nl = p.out.rfind('\n');
  if (nl != std::string::npos) {
    r.body = p.out.substr(0, nl);
    r.status = std::atoi(p.out.c_str() + nl + 1);
  }
  return r;
}

HttpMember::HttpMember(std::string body) : body_(std::move(body)) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = loopback(0);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 64) != 0) abort();
  port_ = localPort(fd_);
  thread_ = std::thread([this] { run(); });
}

HttpMember::~HttpMember() { stop(); }

void HttpMember::stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

void HttpMember::run() {
  // Several connections at once: the proxy keeps idle member connections per worker.
  struct Conn {
    int fd;
    std::string in;
  };
  std::vector<Conn> conns;
  while (!stop_.load()) {
    std::vector<pollfd> fds;
    fds.push_back({fd_, POLLIN, 0});
    for (const auto& c : conns) fds.push_back({c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
    if (fds[0].revents & POLLIN) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) conns.push_back({c, ""});
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto& conn = conns[i - 1];
      char buf[4096];
      ssize_t n = ::recv(conn.fd, buf, sizeof buf, 0);
      if (n <= 0) {
        ::close(conn.fd);
        conn.fd = -1;
        continue;
      }
      conn.in.append(buf, static_cast<size_t>(n));
      size_t end;
      while ((end = conn.in.find("\r\n\r\n")) != std::string::npos) {
        conn.in.erase(0, end + 4);
        std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(body_.size()) + "\r\n\r\n" + body_;
        ::send(conn.fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        served_++;
      }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
  }
  for (auto& c : conns) ::close(c.fd);
}

std::optional<std::string> httpGet(uint16_t port, const std::string& path, int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (in.compare(0, 12, "HTTP/1.1 200") != 0) return std::nullopt;
  auto end = in.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  return in.substr(end + 4);
}

UdpReceiver::UdpReceiver() {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = loopback(0);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) abort();
  port_ = localPort(fd_);
}

UdpReceiver::~UdpReceiver() { ::close(fd_); }

std::optional<std::vector<uint8_t>> UdpReceiver::receive(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
  std::vector<uint8_t> buf(70000);
  ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

uint16_t freeTcpPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  uint16_t port = localPort(fd);
  ::close(fd);
  return port;
}

std::string proxyBinary() {
  const char* env = std::getenv("BANYAN_PROXY_BINARY");
  return env && *env ? env : BANYAN_PROXY_BINARY_DEFAULT;
}

std::string agentBinary() { return BANYAN_AGENT_BINARY; }

AgentProcess::~AgentProcess() { stop(); }

bool AgentProcess::start(const std::string& dir, const std::string& config_text, const std::string& state_dir,
                         const std::string& netns) {
  state_dir_ = state_dir;
  std::string conf = dir + "/agent.conf";
  writeTestFile(conf, config_text, 0600);
  ::unlink((state_dir + "/api.port").c_str());
  std::string bin = agentBinary();
  std::string log = dir + "/agent.log";
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (!netns.empty()) {
      ::execl("/usr/sbin/ip", "ip", "netns", "exec", netns.c_str(), bin.c_str(), "--config-file", conf.c_str(),
              static_cast<char*>(nullptr));
    } else {
      ::execl(bin.c_str(), bin.c_str(), "--config-file", conf.c_str(), static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(state_dir + "/api.port");
    int port = 0;
    if (in >> port && port > 0) {
      port_ = static_cast<uint16_t>(port);
      return true;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

pid_t AgentProcess::proxyPid() const {
  std::ifstream in(state_dir_ + "/proxy.pid");
  int pid = 0;
  in >> pid;
  return pid;
}

void AgentProcess::stop() {
  pid_t proxy = proxyPid();
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    last_status_ = status;
    pid_ = 0;
  }
  // The agent stops the proxy it started; if it died without doing so, the proxy (a
  // process this test started through the agent) is stopped here by its pid.
  if (proxy > 0 && alive(proxy)) {
    ::kill(proxy, SIGKILL);
    for (int i = 0; i < 200 && alive(proxy); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace banyan::agent::testing
