#include "socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace banyan::test {

namespace {

[[noreturn]] void throwErrno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

int Fd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void Fd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

sockaddr_storage makeAddress(const std::string& host, uint16_t port, socklen_t* len) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof(sockaddr_in6);
  } else {
    throw std::runtime_error("not an IP literal: " + host);
  }
  return ss;
}

std::string addressText(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(addr).sin_addr, buf, sizeof buf);
  } else if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr, buf, sizeof buf);
  }
  return buf;
}

uint16_t addressPort(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  if (addr.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  return 0;
}

uint16_t pickFreePort(const std::string& host) {
  // The kernel may hand the same port to two binds of port 0 in a row once the first
  // socket is closed, and a test that picks a port per listener then gives the proxy a
  // config that binds one port twice. No port is handed out twice in one process.
  static std::mutex mu;
  static std::set<uint16_t> given;
  for (int attempt = 0; attempt < 64; ++attempt) {
    Fd fd = listenOn(host, 0, 1);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) throwErrno("getsockname");
    const uint16_t port = addressPort(ss);
    std::lock_guard<std::mutex> lock(mu);
    if (given.insert(port).second) return port;
  }
  throw std::runtime_error("no port that this process has not handed out already after 64 binds of port 0");
}

Fd listenOn(const std::string& host, uint16_t port, int backlog) {
  socklen_t len = 0;
  sockaddr_storage ss = makeAddress(host, port, &len);
  Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throwErrno("socket");
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    throwErrno("bind " + host + ":" + std::to_string(port));
  if (::listen(fd.get(), backlog) != 0) throwErrno("listen");
  return fd;
}

void setTimeouts(int fd, int timeout_ms) {
  timeval tv{};
  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static Fd connectImpl(const std::string& host, uint16_t port, const ConnectOptions& options,
                      std::string* error) {
  socklen_t len = 0;
  sockaddr_storage ss = makeAddress(host, port, &len);
  Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throwErrno("socket");
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!options.source_address.empty()) {
    socklen_t slen = 0;
    sockaddr_storage src = makeAddress(options.source_address, options.source_port, &slen);
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), slen) != 0)
      throwErrno("bind source " + options.source_address);
  }
  // Non-blocking connect so that it is bounded by the timeout.
  int flags = fcntl(fd.get(), F_GETFL);
  fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
  int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    *error = std::string("connect: ") + std::strerror(errno);
    return Fd();
  }
  if (rc != 0) {
    pollfd p{fd.get(), POLLOUT, 0};
    int n = ::poll(&p, 1, options.timeout_ms);
    if (n <= 0) {
      *error = "connect: timed out";
      return Fd();
    }
    int err = 0;
    socklen_t elen = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) {
      *error = std::string("connect: ") + std::strerror(err);
      return Fd();
    }
  }
  fcntl(fd.get(), F_SETFL, flags);
  setTimeouts(fd.get(), options.timeout_ms);
  return fd;
}

Fd connectTo(const std::string& host, uint16_t port, const ConnectOptions& options) {
  std::string error;
  Fd fd = connectImpl(host, port, options, &error);
  if (!fd.valid()) throw std::runtime_error(error + " (" + host + ":" + std::to_string(port) + ")");
  return fd;
}

Fd tryConnect(const std::string& host, uint16_t port, const ConnectOptions& options) {
  std::string error;
  return connectImpl(host, port, options, &error);
}

void sendAll(int fd, std::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throwErrno("send");
    }
    off += static_cast<size_t>(n);
  }
}

void abortiveClose(Fd& fd) {
  if (!fd.valid()) return;
  linger l{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

ReadOutcome readSome(int fd, std::string& out, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int n = ::poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
  if (n == 0) return ReadOutcome::Timeout;
  if (n < 0) return errno == EINTR ? ReadOutcome::Timeout : ReadOutcome::Error;
  char buf[16384];
  ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (r > 0) {
    out.append(buf, static_cast<size_t>(r));
    return ReadOutcome::Data;
  }
  if (r == 0) return ReadOutcome::Eof;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return ReadOutcome::Timeout;
  if (errno == ECONNRESET) return ReadOutcome::Eof;
  return ReadOutcome::Error;
}

static int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool readAtLeast(int fd, std::string& out, size_t n, int timeout_ms) {
  auto deadline = Clock::now() + Millis(timeout_ms);
  while (out.size() < n) {
    if (Clock::now() >= deadline) return false;
    ReadOutcome r = readSome(fd, out, remainingMs(deadline));
    if (r == ReadOutcome::Eof || r == ReadOutcome::Error) return out.size() >= n;
  }
  return true;
}

bool readUntilEof(int fd, std::string& out, int timeout_ms) {
  auto deadline = Clock::now() + Millis(timeout_ms);
  while (Clock::now() < deadline) {
    ReadOutcome r = readSome(fd, out, remainingMs(deadline));
    if (r == ReadOutcome::Eof || r == ReadOutcome::Error) return true;
  }
  return false;
}

bool waitUntil(const std::function<bool()>& predicate, Millis timeout, Millis step) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

bool isPortListening(uint16_t port) {
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      unsigned long p = std::stoul(local.substr(colon + 1), nullptr, 16);
      if (p == port && state == "0A") return true;  // 0A = TCP_LISTEN
    }
  }
  return false;
}

}  // namespace banyan::test
