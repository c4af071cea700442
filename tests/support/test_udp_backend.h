// A test member for UDP listeners: answers every datagram with "<name>:<payload>"
// from its own address, and records who sent what (the proxy's flow sockets).
// stop() closes the socket, so datagrams to it draw ICMP port unreachable on
// loopback; start() binds the same port again.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "socket_util.h"

namespace banyan::test {

class TestUdpBackend {
 public:
  explicit TestUdpBackend(std::string name, std::string address = "127.0.0.1", uint16_t port = 0);
  ~TestUdpBackend();
  TestUdpBackend(const TestUdpBackend&) = delete;
  TestUdpBackend& operator=(const TestUdpBackend&) = delete;

  const std::string& name() const { return name_; }
  const std::string& address() const { return address_; }
  uint16_t port() const { return port_; }
  void stop();
  void start();
  // Drop datagrams instead of answering them (the member is alive but mute).
  void setMute(bool mute) { mute_ = mute; }

  size_t datagramCount() const;
  // Distinct source ports seen (one per proxy flow socket).
  size_t sourceCount() const;

 private:
  void serve();

  std::string name_;
  std::string address_;
  uint16_t port_ = 0;
  Fd fd_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<bool> mute_{false};
  mutable std::mutex mu_;
  size_t datagrams_ = 0;
  std::vector<uint16_t> sources_;
};

// A client socket bound to `source` (port 0: any) and connected to host:port.
Fd udpClient(const std::string& host, uint16_t port, const std::string& source = "127.0.0.1",
             uint16_t source_port = 0);
// Sends `payload` and waits up to timeout_ms for one answer; "" on timeout.
std::string udpExchange(int fd, const std::string& payload, int timeout_ms = 1000);
// Waits up to timeout_ms for the next datagram; "" on timeout.
std::string udpReceive(int fd, int timeout_ms = 1000);

// Binds UDP host:0, reads the port, closes: a port for a UDP listener.
uint16_t pickFreeUdpPort(const std::string& host = "127.0.0.1");

// True while a UDP socket is bound to the port (any address), read from
// /proc/net/udp{,6}.
bool isUdpPortBound(uint16_t port);

}  // namespace banyan::test
