// Real things for the amphora module's tests: a scratch directory, a command runner
// (for the openssl CLI) and a banyan-agent process on 127.0.0.1 (bind_port = 0) that the
// test starts and stops by PID, with the banyan-proxy it supervises.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace banyan::provider::amphora::testing {

// mkdtemp under /tmp; removed recursively by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void writeFile(const std::string& path, const std::string& content, int mode = 0600);
std::string readFile(const std::string& path);

struct ProcResult {
  int exit_code = -1;  // -1: killed after the time bound
  std::string out, err;
};
// Runs ARGV (argv[0] absolute) with stdin from /dev/null, bounded by TIMEOUT_MS.
ProcResult runCommand(const std::vector<std::string>& argv, int timeout_ms = 20000);

// A TCP port on 127.0.0.1 that nothing listens on right now.
uint16_t unusedPort();

// A process running in the background with stdout and stderr to a file; stopped (by
// its PID) by stop() or the destructor.
class BackgroundProcess {
 public:
  BackgroundProcess() = default;
  ~BackgroundProcess() { stop(); }
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  bool start(const std::vector<std::string>& argv, const std::string& output_file);
  // The first output line containing NEEDLE, waiting at most TIMEOUT; "" if none came.
  std::string waitForOutput(const std::string& needle, std::chrono::milliseconds timeout) const;
  void stop();

 private:
  pid_t pid_ = 0;
  std::string output_file_;
};

// banyan-agent with `system_driver = noop` and the real banyan-proxy, on 127.0.0.1 (or ::1).
struct AgentFiles {
  std::string server_cert, server_key, client_ca;
};
class AgentProcess {
 public:
  AgentProcess() = default;
  ~AgentProcess() { stop(); }
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // Writes DIR/agent.conf, starts the agent, waits (at most 20 s) for state/api.port.
  bool start(const std::string& dir, const std::string& amphora_id, const AgentFiles& files,
             const std::string& bind_host = "127.0.0.1");
  // SIGTERM, then SIGKILL after 10 s; also kills the proxy it started if still alive.
  void stop();
  uint16_t port() const { return port_; }
  std::string log() const;

 private:
  pid_t pid_ = 0;
  uint16_t port_ = 0;
  std::string dir_;
};

}  // namespace banyan::provider::amphora::testing
