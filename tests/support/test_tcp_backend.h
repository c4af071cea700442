// A test member for TCP listeners: on accept it writes "<name>\n", then echoes
// every byte back; when the client half-closes it writes `farewell` and closes.
// That makes half-close observable: the farewell only arrives if the proxy
// passed the client's FIN on and kept the other direction open.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "server_core.h"

namespace banyan::test {

struct TcpConnectionRecord {
  std::string peer_address;
  uint16_t peer_port = 0;
  std::string first_bytes;  // first up to 1024 bytes received (PROXY header included)
  size_t bytes_received = 0;
  bool saw_eof = false;  // the proxy shut down its write side (FIN)
};

class TestTcpBackend {
 public:
  TestTcpBackend(std::string name, std::string address = "127.0.0.1",
                 std::string farewell = "bye\n");
  ~TestTcpBackend();

  const std::string& name() const { return name_; }
  const std::string& address() const { return core_.address(); }
  uint16_t port() const { return core_.port(); }
  void stop() { core_.stop(); }
  void start() { core_.start(core_.port()); }

  size_t connectionCount() const { return core_.connectionCount(); }
  size_t activeConnections() const { return core_.activeConnections(); }
  std::vector<TcpConnectionRecord> connections() const;
  bool waitForConnections(size_t count, int timeout_ms) const;
  // Waits until connection `index` has received at least `bytes` bytes.
  bool waitForBytes(size_t index, size_t bytes, int timeout_ms) const;

 private:
  void serve(int fd, size_t index, const sockaddr_storage& peer);

  std::string name_;
  std::string farewell_;
  mutable std::mutex mu_;
  std::vector<TcpConnectionRecord> connections_;
  ServerCore core_;
};

}  // namespace banyan::test
