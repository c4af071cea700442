#include "test_tcp_backend.h"

#include <sys/socket.h>

namespace banyan::test {

TestTcpBackend::TestTcpBackend(std::string name, std::string address, std::string farewell)
    : name_(std::move(name)),
      farewell_(std::move(farewell)),
      core_(std::move(address), [this](int fd, size_t index, const sockaddr_storage& peer) {
        serve(fd, index, peer);
      }) {
  core_.start(0);
}

TestTcpBackend::~TestTcpBackend() { core_.stop(); }

std::vector<TcpConnectionRecord> TestTcpBackend::connections() const {
  std::lock_guard lock(mu_);
  return connections_;
}

bool TestTcpBackend::waitForConnections(size_t count, int timeout_ms) const {
  return waitUntil([&] { return connectionCount() >= count; }, Millis(timeout_ms));
}

bool TestTcpBackend::waitForBytes(size_t index, size_t bytes, int timeout_ms) const {
  return waitUntil(
      [&] {
        std::lock_guard lock(mu_);
        return index < connections_.size() && connections_[index].bytes_received >= bytes;
      },
      Millis(timeout_ms));
}

void TestTcpBackend::serve(int fd, size_t index, const sockaddr_storage& peer) {
  {
    std::lock_guard lock(mu_);
    if (connections_.size() <= index) connections_.resize(index + 1);
    connections_[index].peer_address = addressText(peer);
    connections_[index].peer_port = addressPort(peer);
  }
  try {
    sendAll(fd, name_ + "\n");
    while (!core_.stopping()) {
      std::string chunk;
      ReadOutcome r = readSome(fd, chunk, 50);
      if (r == ReadOutcome::Timeout) continue;
      if (r == ReadOutcome::Data) {
        {
          std::lock_guard lock(mu_);
          auto& rec = connections_[index];
          if (rec.first_bytes.size() < 1024)
            rec.first_bytes.append(chunk.substr(0, 1024 - rec.first_bytes.size()));
          rec.bytes_received += chunk.size();
        }
        sendAll(fd, chunk);
        continue;
      }
      if (r == ReadOutcome::Eof) {
        {
          std::lock_guard lock(mu_);
          connections_[index].saw_eof = true;
        }
        sendAll(fd, farewell_);
        ::shutdown(fd, SHUT_WR);
      }
      return;
    }
  } catch (const std::exception&) {
    // The proxy went away mid-write: nothing to record beyond what we have.
  }
}

}  // namespace banyan::test
