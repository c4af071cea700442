#include "health/health_state.h"

namespace banyan::dp::health {

const char* memberStatusName(MemberStatus s) {
  switch (s) {
    case MemberStatus::NoMonitor: return "NO_MONITOR";
    case MemberStatus::Up: return "ONLINE";
    case MemberStatus::Down: return "ERROR";
  }
  return "UNKNOWN";
}

std::shared_ptr<MemberHealth> HealthRegistry::get(const std::string& member_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = members_[member_id];
  if (!slot) slot = std::make_shared<MemberHealth>();
  return slot;
}

void HealthRegistry::collect() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = members_.begin(); it != members_.end();) {
    if (it->second.use_count() == 1)
      it = members_.erase(it);
    else
      ++it;
  }
}

}  // namespace banyan::dp::health
