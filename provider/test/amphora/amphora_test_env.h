// Real things for the amphora module's tests, on top of the agent's test support
// (amphora-agent/test/support): a banyan-agent on 127.0.0.1 (bind_port = 0) configured
// as the controller's tests need it, with the banyan-proxy it supervises.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "support/test_env.h"

namespace banyan::provider::amphora::testing {

// The agent's test support already has these; the amphora tests use them as they are.
using agent::testing::ProcResult;
using agent::testing::runCommand;
using agent::testing::TempDir;
inline uint16_t unusedPort() { return agent::testing::freeTcpPort(); }

void writeFile(const std::string& path, const std::string& content, int mode = 0600);
std::string readFile(const std::string& path);

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

// banyan-agent with `system_driver = noop` and the real banyan-proxy, on 127.0.0.1 (or ::1,
// or "::" inside a network namespace the test made).
struct AgentFiles {
  std::string server_cert, server_key, client_ca;
};
class AgentProcess {
 public:
  // Writes DIR/agent.conf, starts the agent, waits (at most 20 s) for state/api.port.
  // With NETNS, the agent and its proxy run in that network namespace.
  bool start(const std::string& dir, const std::string& amphora_id, const AgentFiles& files,
             const std::string& bind_host = "127.0.0.1", const std::string& netns = "");
  // SIGTERM, then SIGKILL after 10 s; also kills the proxy it started if still alive.
  void stop() { process_.stop(); }
  uint16_t port() const { return process_.port(); }
  std::string log() const;

 private:
  agent::testing::AgentProcess process_;
  std::string dir_;
};

}  // namespace banyan::provider::amphora::testing
