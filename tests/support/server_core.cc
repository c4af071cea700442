#include "server_core.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace banyan::test {

ServerCore::ServerCore(std::string address, Handler handler)
    : address_(std::move(address)), handler_(std::move(handler)) {}

ServerCore::~ServerCore() { stop(); }

void ServerCore::start(uint16_t port) {
  if (running_) return;
  if (port == 0) port = port_;
  stopping_ = false;
  listen_fd_ = listenOn(address_, port, 512);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = addressPort(ss);
  running_ = true;
  accept_thread_ = std::thread([this] { acceptLoop(); });
}

void ServerCore::stop() {
  if (!running_) return;
  stopping_ = true;
  if (accept_thread_.joinable()) accept_thread_.join();
  listen_fd_.reset();
  std::unique_lock lock(mu_);
  for (auto& [index, fd] : open_fds_) ::shutdown(fd, SHUT_RDWR);
  cv_.wait_for(lock, std::chrono::seconds(5), [this] { return live_threads_ == 0; });
  running_ = false;
}

void ServerCore::acceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    size_t index = accepted_++;
    {
      std::lock_guard lock(mu_);
      open_fds_[index] = fd;
      ++live_threads_;
    }
    ++active_;
    // Detached: the connection count of a load test would otherwise pile up
    // unjoined threads; stop() waits on live_threads_ instead.
    std::thread([this, fd, index, peer] {
      handler_(fd, index, peer);
      std::lock_guard lock(mu_);
      open_fds_.erase(index);
      ::close(fd);
      --active_;
      --live_threads_;
      cv_.notify_all();
    }).detach();
  }
}

}  // namespace banyan::test
