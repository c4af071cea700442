// What the netns drivers remember across provider restarts: one JSON document per
// driver in its state dir (compute.json, network.json), rewritten atomically
// (write to .tmp, fsync, rename, fsync the directory) under a lock that serializes
// the threads of this process (a mutex) and other provider processes sharing the
// state dir (flock on "<file>.lock").
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/files.h"
#include "banyan/common/result.h"
#include "drivers/network.h"

namespace banyan::provider::drivers {

struct AmphoraRecord {
  std::string compute_id;  // the namespace name
  std::string amphora_id;
  std::string lb_id;
  std::string lb_network_ip;
  std::string host_veth;  // host end of the management veth
  std::string dir;        // state_dir/amphorae/<compute_id>
  int pid = 0;            // the agent; 0 until started
  uint64_t pid_start_time = 0;
};

struct ComputeState {
  std::vector<AmphoraRecord> amphorae;
  std::vector<std::string> bridges;  // bridges this driver created (cleanupAll deletes them)
};

struct PortRecord {
  Port port;
  std::string host_veth;  // "" for a VIP port (nothing plugged)
  std::string mac_address;
};

struct NetworkState {
  std::vector<PortRecord> ports;
  std::vector<std::string> bridges;
};

std::string toJson(const ComputeState& state);
std::string toJson(const NetworkState& state);
// Parsers of the files above; a damaged file is an error naming what is wrong.
common::Result<ComputeState> computeStateFromJson(std::string_view text);
common::Result<NetworkState> networkStateFromJson(std::string_view text);

// One state file. lock() returns a guard; read()/write() must be called while holding it.
class StateFile {
 public:
  // `durable`: fsync each write (survives a power cut) or only rename it into place
  // (survives a crash of the provider, not of the host).
  StateFile(std::string path, bool durable) : path_(std::move(path)), durable_(durable) {}
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;

  class Guard {
   public:
    Guard(Guard&& other) noexcept;
    Guard(const Guard&) = delete;
    ~Guard();

   private:
    friend class StateFile;
    Guard(std::unique_lock<std::mutex> lock, int fd) : lock_(std::move(lock)), fd_(fd) {}
    std::unique_lock<std::mutex> lock_;
    int fd_ = -1;
  };

  common::Result<Guard> lock();
  // "" when the file does not exist yet.
  common::Result<std::string> read(const Guard& guard) const;
  common::Result<void> write(const Guard& guard, std::string_view contents);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool durable_;
  std::mutex mu_;
};

using common::makeDirs;
using common::writeFileAtomic;

}  // namespace banyan::provider::drivers
