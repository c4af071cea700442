// Identifiers and timestamps as Octavia's API shows them: random (version 4) UUIDs,
// and UTC times without a zone suffix ("2017-02-28T00:41:44").
#pragma once

#include <chrono>
#include <string>

namespace banyan::common {

std::string newUuid();
std::string utcTimestamp(std::chrono::system_clock::time_point t = std::chrono::system_clock::now());

}  // namespace banyan::common
