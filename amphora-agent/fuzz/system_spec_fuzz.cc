// Fuzz target: the system module's parsers of controller-supplied values.
// Input lines: line 1 a VIP, line 2 a listener port, the rest allowed CIDRs.
// Checks that address/prefix parsing round-trips and that building the
// nftables transaction and the keepalived config never crashes on any input
// the validators accept (and that they reject the rest cleanly).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "system/firewall.h"
#include "system/ip_prefix.h"
#include "system/keepalived.h"

using namespace banyan::agent::system;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= in.size()) {
    size_t nl = in.find('\n', start);
    if (nl == std::string::npos) nl = in.size();
    lines.push_back(in.substr(start, nl - start));
    start = nl + 1;
  }
  for (const auto& l : lines) {
    auto p = parseIpPrefix(l);
    if (!p.ok()) continue;
    auto again = parseIpPrefix(p->toString());
    if (!again.ok() || again->prefix_len != p->prefix_len || !(again->network() == p->network()))
      abort();
    if (!p->contains(p->address)) abort();
  }

  FirewallSpec spec;
  spec.vips = {lines[0]};
  FirewallSpec::Listener listener;
  listener.vip = lines[0];
  listener.port = static_cast<uint16_t>(lines.size() > 1 ? atoi(lines[1].c_str()) : 80);
  for (size_t i = 2; i < lines.size(); ++i) listener.allowed_cidrs.push_back(lines[i]);
  spec.listeners = {listener};
  spec.management_cidrs = {lines.back()};
  (void)describeFirewall(spec);

  VrrpConfig vrrp;
  vrrp.interface = lines.size() > 2 ? lines[2] : "eth1";
  vrrp.vip = lines[0];
  vrrp.local_address = lines.back();
  vrrp.peer_addresses = {lines.size() > 1 ? lines[1] : ""};
  vrrp.auth_pass = lines.size() > 3 ? lines[3] : "";
  vrrp.check_command = lines.size() > 4 ? lines[4] : "";
  if (validateVrrpConfig(vrrp).ok()) {
    std::string text = renderKeepalivedConfig(vrrp);
    // A validated config never carries a line break inside a value: every
    // rendered line is ours.
    if (text.find("\n\n\n") != std::string::npos) abort();
  }
  return 0;
}
