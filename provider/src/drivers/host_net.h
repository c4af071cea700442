// The host side of the netns drivers: bridges with the host's gateway address
// (made with `ip`, whose stderr ends up in the error: rare, and an operator wants the
// kernel's words), named namespaces and links (rtnetlink, see netlink.h). Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "banyan/common/result.h"
#include "drivers/address.h"

namespace banyan::provider::drivers {

// True when the interface exists in this thread's network namespace (if_nametoindex:
// /sys/class/net may belong to another namespace).
bool linkExists(const std::string& name);
bool namespaceExists(const std::string& name);
// A name that is safe as a file name under /run/netns: letters, digits, '-', '_', '.',
// 1-64 characters, not "." or "..".
bool validNamespaceName(const std::string& name);

// Refuses when another interface already holds an address inside `cidr` (or a prefix
// overlapping it): adding the gateway would hijack the host's own routes.
common::Result<void> checkNoOverlap(const Cidr& cidr, const std::string& bridge);

// Creates the bridge if missing (forward delay 0, no STP: ports forward at once), gives
// it the subnet's gateway address and brings it up. Sets `created` when it made it.
common::Result<void> ensureBridge(const std::string& bridge, const Cidr& cidr, int mtu,
                                  bool& created);
common::Result<void> deleteLink(const std::string& name);  // absent is fine
// Deletes each link; the names that could not be deleted go to `left` and the first
// error into `first` (if it is still ok), so a cleanup goes on past one failure.
void deleteLinks(const std::vector<std::string>& names, std::vector<std::string>& left, common::Result<void>& first);

common::Result<void> addNamespace(const std::string& name);
common::Result<void> deleteNamespace(const std::string& name);  // absent is fine
// Deletes every link inside the namespace but lo. Deleting a veth removes both ends
// at once; left to the namespace's teardown, the host ends would vanish later,
// asynchronously.
common::Result<void> deleteNamespaceLinks(const std::string& name);

// A locally administered unicast MAC (02:xx:...) from the system's random source.
std::string randomMac();
// A random (version 4) UUID, for port ids.
std::string randomUuid();
// `n` random lowercase hex digits.
std::string randomHex(int n);

}  // namespace banyan::provider::drivers
