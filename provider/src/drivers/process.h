// Processes for the netns drivers: run `ip` and read what it said, start an amphora's
// agent inside a named network namespace, find and stop processes. Thin adapters over
// posix_spawn/fork/exec and /proc; safe to call from several threads at once.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::drivers {

struct CommandOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up in PATH) with `input` on its stdin and waits for it.
// An error only when it could not be run; a failing command is a non-zero exit_code.
common::Result<CommandOutput> runCommand(const std::vector<std::string>& argv,
                                         std::string_view input = {});
// runCommand, with a non-zero exit turned into kUnavailable carrying the command line
// and its stderr, which is what an operator needs to see.
common::Result<std::string> runChecked(const std::vector<std::string>& argv,
                                       std::string_view input = {});

struct SpawnSpec {
  std::string netns;              // a name under /run/netns
  std::vector<std::string> argv;  // argv[0] is a path (no PATH lookup)
  std::string cwd;
  std::string log_path;                // stdout and stderr, appended
  std::vector<std::string> extra_env;  // "NAME=value", added to this process's environment
};

// The identity of a process that survives PID reuse: the PID plus its start time in
// clock ticks since boot (/proc/<pid>/stat field 22).
struct ProcessId {
  pid_t pid = 0;
  uint64_t start_time = 0;
};

// Starts the program in its own session inside the namespace (setns in the child, so
// the recorded PID is the program itself, not an `ip netns exec` wrapper).
// Fails (and reaps the child) when exec fails.
common::Result<ProcessId> spawnInNamespace(const SpawnSpec& spec);

std::optional<uint64_t> processStartTime(pid_t pid);
// True while the process runs. A zombie child of ours is reaped and counts as gone.
bool processAlive(const ProcessId& process);
// SIGTERM to the process and its process group, SIGKILL after `grace`. Returns when
// it is gone. A process that is already gone (or whose PID was reused) is not touched.
void stopProcess(const ProcessId& process, std::chrono::milliseconds grace);
// PIDs whose network namespace is the named one (what `ip netns pids` prints).
std::vector<pid_t> pidsInNamespace(const std::string& netns);
// SIGKILLs every process in the namespace and waits (bounded) until none is left.
common::Result<void> killNamespaceProcesses(const std::string& netns);

// True when a TCP connection to address:port succeeds within `timeout`.
bool tcpAnswers(const std::string& address, int port, std::chrono::milliseconds timeout);

}  // namespace banyan::provider::drivers
