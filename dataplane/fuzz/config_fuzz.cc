// Fuzz target: parseConfig on arbitrary bytes. Any input must yield a Config or
// an Error, never a crash, hang or sanitizer report; an accepted document must
// satisfy the invariants the proxy relies on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "banyan/common/logging.h"
#include "config/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace banyan::dp::config;
  auto result = parseConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!result) return 0;
  for (const Listener& l : result->listeners) {
    LB_CHECK(!l.id.empty() && l.protocol_port != 0, "accepted listeners have an id and a port");
    LB_CHECK(l.default_pool_id.empty() || result->findPool(l.default_pool_id) != nullptr,
             "accepted listeners reference existing pools");
  }
  for (const Pool& p : result->pools) {
    if (p.health_monitor) {
      LB_CHECK(!p.health_monitor->expected_codes.empty(), "expected_codes is never empty");
      LB_CHECK(p.health_monitor->timeout_ms > 0, "a health monitor timeout is positive");
    }
  }
  return 0;
}
