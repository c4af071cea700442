// Address announcements for a VIP that keepalived does not manage (SINGLE
// topology, after the proxy starts or reloads, as Octavia's agent does):
// a gratuitous ARP for IPv4 and an unsolicited neighbour advertisement for
// IPv6, so neighbours and the gateway update the MAC they hold for the address.
// In ACTIVE_STANDBY keepalived sends these itself (VrrpConfig::garp_*).
#pragma once

#include <string>

#include "banyan/common/result.h"

namespace banyan::agent::system {

// Sends one announcement of `ip` out of `ifname` in the calling thread's
// namespace. The address should be on the interface (IPv6: it need not have
// finished duplicate address detection).
common::Result<void> announceAddress(const std::string& ifname, const std::string& ip);

}  // namespace banyan::agent::system
