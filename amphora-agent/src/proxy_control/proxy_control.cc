#include "proxy_control/proxy_control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace banyan::agent::proxy_control {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

// Replies carry full stats of every member; a generous bound still stops a runaway peer.
constexpr size_t kMaxReply = 256u << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int remainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

Result<ControlReply> ProxyControl::request(std::string_view method, std::string_view path,
                                           std::string_view body) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path) {
    return makeError(ErrorCode::kInvalidArgument, "control socket path too long", socket_path_);
  }
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return makeError(ErrorCode::kUnavailable, std::string("socket: ") + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS &&
      errno != EAGAIN) {
    return makeError(ErrorCode::kUnavailable, std::string("connect: ") + std::strerror(errno), socket_path_);
  }
  std::string out;
  out.reserve(128 + body.size());
  out.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: banyan-proxy\r\nConnection: close\r\n");
  if (method != "GET") out.append("Content-Type: application/json\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n");
  out.append("\r\n").append(body);

  size_t off = 0;
  while (off < out.size()) {
    pollfd p{fd.get(), POLLOUT, 0};
    int rc = ::poll(&p, 1, remainingMs(deadline));
    if (rc == 0) return makeError(ErrorCode::kUnavailable, "control request timed out while sending", socket_path_);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return makeError(ErrorCode::kUnavailable, std::string("poll: ") + std::strerror(errno), socket_path_);
    }
    ssize_t n = ::send(fd.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return makeError(ErrorCode::kUnavailable, std::string("send: ") + std::strerror(errno), socket_path_);
    }
    off += static_cast<size_t>(n);
  }

  std::string in;
  char buf[65536];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, remainingMs(deadline));
    if (rc == 0) return makeError(ErrorCode::kUnavailable, "control request timed out", socket_path_);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return makeError(ErrorCode::kUnavailable, std::string("poll: ") + std::strerror(errno), socket_path_);
    }
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return makeError(ErrorCode::kUnavailable, std::string("recv: ") + std::strerror(errno), socket_path_);
    }
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > kMaxReply) return makeError(ErrorCode::kInternal, "control reply too large", socket_path_);
  }

  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  auto head_end = in.find("\r\n\r\n");
  if (in.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos || in.size() < 12) {
    return makeError(ErrorCode::kInternal, "control reply is not HTTP", socket_path_);
  }
  ControlReply reply;
  reply.status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (in[i] < '0' || in[i] > '9') return makeError(ErrorCode::kInternal, "control reply has a bad status", socket_path_);
    reply.status = reply.status * 10 + (in[i] - '0');
  }
  reply.body = in.substr(head_end + 4);
  return reply;
}

bool ProxyControl::alive() const {
  auto r = get("/version");
  return r.ok() && r->status == 200;
}

}  // namespace banyan::agent::proxy_control
