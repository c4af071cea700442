// Fuzzes how the controller reads banyan-agent's answers (provider/src/amphora/agent_reply.h).
// An amphora is a VM a tenant's traffic flows through; if it is compromised its answers
// are hostile, and the worker reading them must not crash. The first byte picks the
// HTTP status, the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "amphora/agent_reply.h"
#include "banyan/common/logging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace banyan::provider::amphora;
  banyan::common::setLogLevel(banyan::common::LogLevel::kOff);
  if (size == 0) return 0;
  static const int kStatuses[] = {200, 202, 400, 404, 405, 409, 413, 500, 503};
  int status = kStatuses[data[0] % (sizeof(kStatuses) / sizeof(kStatuses[0]))];
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)checkAgentStatus("PUT /1.0/config on amphora 192.0.2.5:9443", status, body);
  (void)parsePutConfigReply(body);
  (void)stringField(body, "interface");
  (void)stringField(body, "state");
  return 0;
}
