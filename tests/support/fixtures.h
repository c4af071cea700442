// Glue used by most integration tests: member specs from test members, and
// reading single values out of the control API's /stats and /health answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "proxy_config.h"
#include "proxy_process.h"
#include "test_http_backend.h"
#include "test_tcp_backend.h"

namespace banyan::test {

// Member whose id is the test member's name.
MemberSpec memberOf(const TestHttpBackend& backend, int weight = 1);
MemberSpec memberOf(const TestTcpBackend& backend, int weight = 1);

// /stats: field of the listener or member with `id` ("listeners" or "members");
// nullopt when the entry or the field is missing.
std::optional<int64_t> statValue(const ProxyProcess& proxy, const std::string& section,
                                 const std::string& id, const std::string& field);
// /health: status string of the member ("ONLINE", "ERROR", ...); "" when absent.
std::string healthStatus(const ProxyProcess& proxy, const std::string& member_id);
// Waits until /health reports `status` for the member.
bool waitHealth(const ProxyProcess& proxy, const std::string& member_id, const std::string& status,
                int timeout_ms);

}  // namespace banyan::test
