// Runs the real banyan-proxy binary for one test: writes the config document to
// a per-test temp dir, fork+execs `banyan-proxy --config F --control SOCK`,
// waits (bounded) until the control socket answers and every listener port is
// listening, and stops it by PID (SIGTERM, SIGKILL after 5 s) in the
// destructor. Its stderr goes to a file that is printed when the test failed.
#pragma once

#include <rapidjson/document.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "http_client.h"

namespace banyan::test {

// Path of the binary under test (compile definition BANYAN_PROXY_BIN).
std::string proxyBinary();

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void writeFile(const std::string& path, const std::string& contents);
std::string readFile(const std::string& path);

struct ControlResponse {
  int status = 0;
  std::string body;
  // Parses body as JSON; throws std::runtime_error when it is not.
  rapidjson::Document json() const;
};

// One request per connection over the proxy's Unix control socket.
class ControlClient {
 public:
  explicit ControlClient(std::string socket_path, int timeout_ms = 5000)
      : socket_path_(std::move(socket_path)), timeout_ms_(timeout_ms) {}
  ControlResponse request(const std::string& method, const std::string& path,
                          const std::string& body = "") const;
  ControlResponse get(const std::string& path) const { return request("GET", path); }
  ControlResponse put(const std::string& path, const std::string& body) const {
    return request("PUT", path, body);
  }
  // True when a connect to the socket succeeds.
  bool reachable() const;

 private:
  std::string socket_path_;
  int timeout_ms_;
};

struct ProxyRunOptions {
  std::vector<std::string> extra_args;  // e.g. {"--log-level", "debug"}
  int ready_timeout_ms = 5000;
  bool wait_ready = true;
};

class ProxyProcess {
 public:
  // Starts the proxy and waits until it is ready; throws (with the stderr it
  // wrote) when it exits or is not ready in time.
  explicit ProxyProcess(const std::string& config_json, ProxyRunOptions options = {});
  ~ProxyProcess();
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& configPath() const { return config_path_; }
  const std::string& controlPath() const { return control_path_; }
  const TempDir& dir() const { return dir_; }
  std::string stderrText() const { return readFile(stderr_path_); }

  const ControlClient& control() const { return control_; }
  ControlResponse get(const std::string& path) const { return control_.get(path); }
  ControlResponse put(const std::string& path, const std::string& body) const {
    return control_.put(path, body);
  }
  // PUT /config; on success waits until every listener of the document listens.
  ControlResponse applyConfig(const std::string& config_json, int ready_timeout_ms = 5000) const;

  // Rewrites the config file (for SIGHUP).
  void writeConfig(const std::string& config_json) const { writeFile(config_path_, config_json); }
  void sendSignal(int signal) const;
  bool running();
  // Waits for the process to exit; its exit status (or 128+signal), nullopt on timeout.
  std::optional<int> waitExit(int timeout_ms);
  // SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the exit status as waitExit.
  int stop(int timeout_ms = 5000);

 private:
  void waitReady(const std::string& config_json, int timeout_ms);

  TempDir dir_;
  std::string config_path_;
  std::string control_path_;
  std::string stderr_path_;
  ControlClient control_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// The listener ports (enabled TCP-family listeners) named in a config document.
std::vector<uint16_t> listenerPorts(const std::string& config_json);
// The ports of its enabled UDP listeners.
std::vector<uint16_t> udpListenerPorts(const std::string& config_json);
// Waits until a UDP socket is bound to each port; false on timeout.
bool waitUdpBound(const std::vector<uint16_t>& ports, int timeout_ms);
// Waits until each port is in LISTEN state; false on timeout.
bool waitListening(const std::vector<uint16_t>& ports, int timeout_ms);

struct CommandResult {
  int exit_status = -1;  // or 128+signal; -1 when it did not finish in time (then killed)
  std::string stdout_text;
  std::string stderr_text;
};
// Runs the proxy binary with args to completion (bounded), capturing output.
CommandResult runProxyCommand(const std::vector<std::string>& args, int timeout_ms = 5000);

}  // namespace banyan::test
