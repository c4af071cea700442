// The proxy's local control API: HTTP/1.1 over a Unix socket, one request per
// connection, served by its own thread (never on a worker loop). Used by the
// amphora agent and by operators (`curl --unix-socket SOCK http://x/stats`).
//   GET /version, GET /config, PUT /config, GET /stats, GET /health
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "banyan/common/result.h"

namespace banyan::dp::proxy {
class Proxy;
}

namespace banyan::dp::control {

class ControlServer {
 public:
  ControlServer(proxy::Proxy& proxy, std::string version);
  ~ControlServer();
  // Binds `path` (replacing a stale socket file) and starts serving.
  common::Result<void> start(const std::string& path);
  void stop();

 private:
  void serve();
  void handle(int fd);

  proxy::Proxy& proxy_;
  std::string version_;
  std::string path_;
  int fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace banyan::dp::control
