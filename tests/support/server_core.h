// Accept loop shared by the test members: one listening socket on a loopback
// address, a thread per accepted connection (simple and robust at test scale),
// and a stop() that unblocks and waits for every connection thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "socket_util.h"

namespace banyan::test {

class ServerCore {
 public:
  // Runs on the connection's own thread; owns nothing beyond the call. It
  // should poll with short timeouts and return once stopping() is true.
  using Handler = std::function<void(int fd, size_t index, const sockaddr_storage& peer)>;

  ServerCore(std::string address, Handler handler);
  ~ServerCore();
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;

  // Binds address:port (0 the first time: the kernel picks; later the same
  // port again, so a restarted member keeps its address).
  void start(uint16_t port);
  // Closes the listener and every connection, then waits (bounded, 5 s) for
  // the connection threads to return.
  void stop();
  bool running() const { return running_; }
  bool stopping() const { return stopping_; }
  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }
  size_t connectionCount() const { return accepted_; }
  size_t activeConnections() const { return active_; }

 private:
  void acceptLoop();

  std::string address_;
  Handler handler_;
  uint16_t port_ = 0;
  Fd listen_fd_;
  std::thread accept_thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> accepted_{0};
  std::atomic<size_t> active_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<size_t, int> open_fds_;  // connection index -> fd, for stop()
  size_t live_threads_ = 0;
};

}  // namespace banyan::test
