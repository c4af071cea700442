// Reading banyan-agent's answers: pure functions (no I/O) over the status and body, so
// they are unit-tested and fuzzed on their own. An amphora is not trusted more than any
// other peer: a body may be anything, and nothing here may crash on it.
#pragma once

#include <string>
#include <string_view>

#include "amphora/agent_client.h"
#include "banyan/common/result.h"

namespace banyan::provider::amphora {

// ok for 2xx; otherwise the error the controller's flows act on (agent_client.h).
// WHAT names the request for the message ("PUT /1.0/config on amphora 192.0.2.5:9443").
common::Result<void> checkAgentStatus(std::string_view what, int status, std::string_view body);

// The body of a 200 to PUT /1.0/config.
common::Result<PutConfigResult> parsePutConfigReply(std::string_view body);

// A string member of a JSON object body ("interface", "state", "sha256").
common::Result<std::string> stringField(std::string_view body, const char* name);


}  // namespace banyan::provider::amphora
