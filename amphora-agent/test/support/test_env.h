// Real things for the agent's tests, all on 127.0.0.1 with ports from the kernel:
// a scratch directory, curl, HTTP members, a UDP receiver, and a banyan-agent process.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace banyan::agent::testing {

// mkdtemp under /tmp; removed recursively by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ProcResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs ARGV (argv[0] absolute) with a time bound; stdin is /dev/null.
ProcResult runCommand(const std::vector<std::string>& argv, int timeout_ms = 30000);

struct CurlResult {
  int exit_code = -1;  // curl's: 0 ok, 35/56 TLS failures, ...
  int status = 0;      // HTTP status, 0 when none
  std::string body;
};
// curl -sS with ARGS; the status comes from -w.
CurlResult curl(const std::vector<std::string>& args);

// A tiny HTTP/1.1 server answering every request with 200 and BODY, one thread.
class HttpMember {
 public:
  explicit HttpMember(std::string body);
  ~HttpMember();
  uint16_t port() const { return port_; }
  void stop();  // closes the listening socket: connects are refused afterwards
  int served() const { return served_.load(); }

 private:
  void run();
  std::string body_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> served_{0};
  std::thread thread_;
};

// A plain GET to 127.0.0.1:PORT; the body, or nullopt when the exchange failed or the
// status was not 200.
std::optional<std::string> httpGet(uint16_t port, const std::string& path = "/", int timeout_ms = 2000);

class UdpReceiver {
 public:
  UdpReceiver();
  ~UdpReceiver();
  uint16_t port() const { return port_; }
  std::optional<std::vector<uint8_t>> receive(int timeout_ms);

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

uint16_t freeTcpPort();

std::string proxyBinary();  // $BANYAN_PROXY_BINARY or the build's banyan-proxy
std::string agentBinary();

// A banyan-agent started with a config file in DIR; stop() (also the destructor)
// sends SIGTERM, waits, and makes sure the proxy it started is gone too.
class AgentProcess {
 public:
  AgentProcess() = default;
  ~AgentProcess();
  // Writes DIR/agent.conf with TEXT, starts the agent, waits for state_dir/api.port.
  // With NETNS, the agent (and so its proxy) runs in that network namespace
  // (`ip netns exec`, which execs: the PID is the agent's).
  bool start(const std::string& dir, const std::string& config_text, const std::string& state_dir,
             const std::string& netns = "");
  void stop();
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  pid_t proxyPid() const;
  // The wait status of the last stop() (0 = exited cleanly on SIGTERM; a sanitizer
  // report at exit makes it non-zero).
  int lastStatus() const { return last_status_; }

 private:
  pid_t pid_ = 0;
  int last_status_ = 0;
  uint16_t port_ = 0;
  std::string state_dir_;
};

}  // namespace banyan::agent::testing
