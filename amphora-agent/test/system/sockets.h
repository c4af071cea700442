// Test helpers: a listening TCP socket and a bounded TCP connect attempt, both
// meant to be called on a thread that has entered a namespace (Netns::run).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace banyan::agent::system::testing {

enum class ConnectOutcome { kConnected, kRefused, kTimedOut, kError };

inline const char* toString(ConnectOutcome o) {
  switch (o) {
    case ConnectOutcome::kConnected:
      return "connected";
    case ConnectOutcome::kRefused:
      return "refused";
    case ConnectOutcome::kTimedOut:
      return "timed out";
    case ConnectOutcome::kError:
      return "error";
  }
  return "?";
}

inline bool fillSockaddr(const std::string& ip, uint16_t port, sockaddr_storage& ss,
                         socklen_t& len) {
  memset(&ss, 0, sizeof ss);
  if (ip.find(':') != std::string::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    len = sizeof *s6;
    return inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1;
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  len = sizeof *s4;
  return inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1;
}

// A listening socket; connections complete in the kernel backlog without accept().
// Returns the fd or -1. IP_FREEBIND lets it bind a VIP this namespace does not hold yet.
inline int listenTcp(const std::string& ip, uint16_t port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!fillSockaddr(ip, port, ss, len)) return -1;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 512) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Accepts and closes whatever is queued, so a long connect loop never fills the backlog.
// Returns how many there were.
inline int drainAccepts(int listen_fd) {
  int fl = fcntl(listen_fd, F_GETFL);
  fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK);
  int n = 0;
  while (true) {
    int c = accept(listen_fd, nullptr, nullptr);
    if (c < 0) break;
    close(c);
    ++n;
  }
  return n;
}

// source_port != 0: bind it first, and close with RST so the same 4-tuple can
// be used again at once (no TIME_WAIT).
inline ConnectOutcome tcpConnect(const std::string& ip, uint16_t port, int timeout_ms,
                                 uint16_t source_port = 0) {
  sockaddr_storage ss;
  socklen_t len;
  if (!fillSockaddr(ip, port, ss, len)) return ConnectOutcome::kError;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ConnectOutcome::kError;
  if (source_port != 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    linger lg{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    sockaddr_storage local;
    socklen_t llen;
    fillSockaddr(ss.ss_family == AF_INET6 ? "::" : "0.0.0.0", source_port, local, llen);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), llen) != 0) {
      close(fd);
      return ConnectOutcome::kError;
    }
  }
  ConnectOutcome out = ConnectOutcome::kError;
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc == 0) {
    out = ConnectOutcome::kConnected;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0) {
      out = ConnectOutcome::kTimedOut;
    } else if (n > 0) {
      int err = 0;
      socklen_t el = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
      out = err == 0              ? ConnectOutcome::kConnected
            : err == ECONNREFUSED ? ConnectOutcome::kRefused
                                  : ConnectOutcome::kError;
    }
  } else if (errno == ECONNREFUSED) {
    out = ConnectOutcome::kRefused;
  }
  close(fd);
  return out;
}

}  // namespace banyan::agent::system::testing
