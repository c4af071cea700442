// A client for banyan-proxy's control API (docs/proxy-control-api.md): HTTP/1.1 over
// a Unix socket, one request per connection. Thread-safe: it holds only the path.
#pragma once

#include <string>
#include <string_view>

#include "banyan/common/result.h"

namespace banyan::agent::proxy_control {

struct ControlReply {
  int status = 0;
  std::string body;
};

class ProxyControl {
 public:
  explicit ProxyControl(std::string socket_path, int timeout_ms = 10000)
      : socket_path_(std::move(socket_path)), timeout_ms_(timeout_ms) {}

  // kUnavailable when the socket does not answer (proxy not running), kInternal for a
  // reply that is not HTTP. Any HTTP status is a success here; callers read it.
  common::Result<ControlReply> request(std::string_view method, std::string_view path,
                                       std::string_view body = {}) const;
  common::Result<ControlReply> get(std::string_view path) const { return request("GET", path); }
  common::Result<ControlReply> put(std::string_view path, std::string_view body) const {
    return request("PUT", path, body);
  }
  // True when GET /version answers 200.
  bool alive() const;

  const std::string& socketPath() const { return socket_path_; }

 private:
  std::string socket_path_;
  int timeout_ms_;
};

}  // namespace banyan::agent::proxy_control
