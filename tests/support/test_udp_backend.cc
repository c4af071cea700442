#include "test_udp_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace banyan::test {

TestUdpBackend::TestUdpBackend(std::string name, std::string address, uint16_t port)
    : name_(std::move(name)), address_(std::move(address)), port_(port) {
  start();
}

TestUdpBackend::~TestUdpBackend() { stop(); }

void TestUdpBackend::start() {
  if (thread_.joinable()) return;
  socklen_t len = 0;
  sockaddr_storage addr = makeAddress(address_, port_, &len);
  Fd fd(::socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw std::runtime_error(std::string("udp socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    throw std::runtime_error(std::string("udp bind: ") + strerror(errno));
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = addressPort(bound);
  fd_ = std::move(fd);
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  thread_ = std::thread([this] { serve(); });
}

void TestUdpBackend::stop() {
  if (!thread_.joinable()) return;
  char c = 'x';
  (void)!::write(wake_[1], &c, 1);
  thread_.join();
  fd_.reset();
  ::close(wake_[0]);
  ::close(wake_[1]);
  wake_[0] = wake_[1] = -1;
}

void TestUdpBackend::serve() {
  std::vector<char> buf(65536);
  for (;;) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT,
                           reinterpret_cast<sockaddr*>(&peer), &plen);
    if (n < 0) continue;
    {
      std::lock_guard<std::mutex> g(mu_);
      ++datagrams_;
      uint16_t p = addressPort(peer);
      if (std::find(sources_.begin(), sources_.end(), p) == sources_.end()) sources_.push_back(p);
    }
    if (mute_) continue;
    std::string reply = name_ + ":" + std::string(buf.data(), static_cast<size_t>(n));
    ::sendto(fd_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), plen);
  }
}

size_t TestUdpBackend::datagramCount() const {
  std::lock_guard<std::mutex> g(mu_);
  return datagrams_;
}

size_t TestUdpBackend::sourceCount() const {
  std::lock_guard<std::mutex> g(mu_);
  return sources_.size();
}

Fd udpClient(const std::string& host, uint16_t port, const std::string& source,
             uint16_t source_port) {
  socklen_t len = 0;
  sockaddr_storage to = makeAddress(host, port, &len);
  Fd fd(::socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw std::runtime_error(std::string("udp socket: ") + strerror(errno));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t slen = 0;
  sockaddr_storage from = makeAddress(source, source_port, &slen);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&from), slen) != 0)
    throw std::runtime_error(std::string("udp client bind: ") + strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), len) != 0)
    throw std::runtime_error(std::string("udp connect: ") + strerror(errno));
  return fd;
}

std::string udpExchange(int fd, const std::string& payload, int timeout_ms) {
  // A stale ICMP error from an earlier datagram is reported once; clear it.
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (::send(fd, payload.data(), payload.size(), 0) < 0) return "";
  return udpReceive(fd, timeout_ms);
}

std::string udpReceive(int fd, int timeout_ms) {
  auto deadline = Clock::now() + Millis(timeout_ms);
  std::vector<char> buf(65536);
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) return "";
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return "";
    }
    ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n >= 0) return std::string(buf.data(), static_cast<size_t>(n));
    if (errno != EAGAIN && errno != EINTR) continue;  // an ICMP error: keep waiting
  }
}

uint16_t pickFreeUdpPort(const std::string& host) {
  socklen_t len = 0;
  sockaddr_storage addr = makeAddress(host, 0, &len);
  Fd fd(::socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    throw std::runtime_error(std::string("udp bind: ") + strerror(errno));
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  return addressPort(bound);
}

bool isUdpPortBound(uint16_t port) {
  for (const char* path : {"/proc/net/udp", "/proc/net/udp6"}) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local;
      fields >> slot >> local;
      auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) return true;
    }
  }
  return false;
}

}  // namespace banyan::test
