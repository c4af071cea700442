#include "health/heartbeat_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <vector>

#include "banyan/common/logging.h"

namespace banyan::provider::health {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

class UdpHeartbeatReceiver final : public HeartbeatReceiver {
 public:
  UdpHeartbeatReceiver(HeartbeatReceiverOptions options, Handler handler, int fd, uint16_t port)
      : options_(std::move(options)), handler_(std::move(handler)), fd_(fd), port_(port) {
    thread_ = std::thread([this] { run(); });
  }
  ~UdpHeartbeatReceiver() override { stop(); }

  uint16_t port() const override { return port_; }

  HeartbeatReceiverCounters counters() const override {
    return {received_.load(), accepted_.load(), refused_.load(), stale_.load()};
  }

  void stop() override {
    if (stopping_.exchange(true)) return;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }

 private:
  struct Seen {
    uint64_t sequence = 0;
    std::chrono::steady_clock::time_point at;
  };

  void run() {
    std::vector<uint8_t> buf(common::kHeartbeatMaxDatagram + 1);
    while (!stopping_.load(std::memory_order_relaxed)) {
      pollfd p{fd_, POLLIN, 0};
      int ready = ::poll(&p, 1, 200);  // wakes to notice stop()
      if (ready <= 0) continue;
      sockaddr_storage from{};
      socklen_t from_len = sizeof(from);
      ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) LB_WARN("heartbeat receive failed error=%s", std::strerror(errno));
        continue;
      }
      received_.fetch_add(1, std::memory_order_relaxed);
      auto hb = common::decodeHeartbeat({buf.data(), static_cast<size_t>(n)}, options_.key);
      if (!hb) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        LB_DEBUG("heartbeat refused reason=%s", hb.error().message.c_str());
        continue;
      }
      if (!fresh(hb.value())) {
        stale_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      accepted_.fetch_add(1, std::memory_order_relaxed);
      handler_(hb.value(), sourceText(from));
    }
  }

  bool fresh(const common::Heartbeat& hb) {
    auto now = std::chrono::steady_clock::now();
    auto [it, inserted] = seen_.try_emplace(hb.amphora_id, Seen{hb.sequence, now});
    if (inserted) return true;
    Seen& last = it->second;
    if (hb.sequence <= last.sequence && now - last.at < options_.restart_grace) return false;
    last = Seen{hb.sequence, now};
    return true;
  }

  static std::string sourceText(const sockaddr_storage& from) {
    char text[INET6_ADDRSTRLEN] = {};
    if (from.ss_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(from).sin_addr, text, sizeof(text));
    } else if (from.ss_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(from).sin6_addr, text, sizeof(text));
    }
    return text;
  }

  HeartbeatReceiverOptions options_;
  Handler handler_;
  int fd_;
  uint16_t port_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> received_{0}, accepted_{0}, refused_{0}, stale_{0};
  std::unordered_map<std::string, Seen> seen_;  // receiving thread only
};

}  // namespace

Result<std::unique_ptr<HeartbeatReceiver>> HeartbeatReceiver::start(const HeartbeatReceiverOptions& options,
                                                                     Handler handler) {
  if (options.key.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "heartbeat_key must be set", "[health_manager] heartbeat_key");
  }
  bool v6 = options.bind_ip.find(':') != std::string::npos;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(options.bind_port);
    if (::inet_pton(AF_INET6, options.bind_ip.c_str(), &sa->sin6_addr) != 1) {
      return makeError(ErrorCode::kInvalidArgument, "not an IP address", options.bind_ip);
    }
    len = sizeof(*sa);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(options.bind_port);
    if (::inet_pton(AF_INET, options.bind_ip.c_str(), &sa->sin_addr) != 1) {
      return makeError(ErrorCode::kInvalidArgument, "not an IP address", options.bind_ip);
    }
    len = sizeof(*sa);
  }
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(ErrorCode::kUnavailable, std::string("socket: ") + std::strerror(errno));
  // Heartbeats arrive in bursts when many amphorae share an interval.
  int rcvbuf = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    int err = errno;
    ::close(fd);
    return makeError(ErrorCode::kUnavailable, std::string("bind: ") + std::strerror(err),
                     options.bind_ip + ":" + std::to_string(options.bind_port));
  }
  uint16_t port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                     : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return std::unique_ptr<HeartbeatReceiver>(
      std::make_unique<UdpHeartbeatReceiver>(options, std::move(handler), fd, port));
}

}  // namespace banyan::provider::health
