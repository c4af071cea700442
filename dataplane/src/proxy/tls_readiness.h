// Edge-triggered readiness of a socket that may carry TLS, shared by client
// sessions and the HTTP/2 connections on both sides (H2Connection, H2UpstreamConn).
#pragma once

#include <sys/epoll.h>

#include <cstdint>

namespace banyan::dp::proxy {

// Marks the directions `events` make ready. OpenSSL may need to write while
// reading (and read while writing), so a read that waited for the socket to
// become writable is retried on EPOLLOUT, and a write that waited for input
// on EPOLLIN.
inline void noteTlsReadiness(uint32_t events, bool& readable, bool& writable,
                             bool& read_wants_write, bool& write_wants_read) {
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable = true;
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && read_wants_write) {
    read_wants_write = false;
    readable = true;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && write_wants_read) {
    write_wants_read = false;
    writable = true;
  }
}

}  // namespace banyan::dp::proxy
