// Member health shared between the health checker (writer, its own thread) and
// the workers (readers, on every pick). One MemberHealth per member id lives as
// long as any snapshot or check refers to it, so health survives config applies.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace banyan::dp::health {

// NoMonitor: the pool has no enabled monitor; the member counts as up.
enum class MemberStatus : uint8_t { NoMonitor = 0, Up = 1, Down = 2 };

const char* memberStatusName(MemberStatus s);  // "NO_MONITOR", "ONLINE", "ERROR"

struct MemberHealth {
  std::atomic<MemberStatus> status{MemberStatus::NoMonitor};
  bool up() const { return status.load(std::memory_order_relaxed) != MemberStatus::Down; }
};

// Maps member ids to their shared health. Used at apply time only (takes a lock).
class HealthRegistry {
 public:
  std::shared_ptr<MemberHealth> get(const std::string& member_id);
  // Drops entries no snapshot or checker holds any more.
  void collect();

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<MemberHealth>> members_;
};

}  // namespace banyan::dp::health
