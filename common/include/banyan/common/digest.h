// SHA-256 as lower-case hex: the hash the agent answers for what it stored, the
// controller checks against what it sent, and the Keystone token cache keys on.
#pragma once

#include <string>
#include <string_view>

namespace banyan::common {

std::string sha256Hex(std::string_view data);

}  // namespace banyan::common
