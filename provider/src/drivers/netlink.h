// Just enough rtnetlink (over libmnl) for the netns drivers' hot path: create a veth
// pair whose far end lands in an amphora's namespace, bring links up, add addresses,
// delete links; plus named network namespaces made in-process (what `ip netns add`
// does: a bind mount of a namespace onto /run/netns/NAME). Booting an amphora then
// costs a few syscalls instead of several fork/exec of `ip`.
//
// A netlink socket talks to the namespace of the thread that opened it; inNamespace()
// runs a function on a short-lived thread that has entered a named namespace, so the
// caller's thread never changes namespace. Thread-safe (no shared state but a mutex
// around namespace creation).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "banyan/common/result.h"
#include "drivers/address.h"

struct mnl_socket;

namespace banyan::provider::drivers {

struct VethSpec {
  std::string name;  // the end that stays in the caller's namespace
  int mtu = 1500;
  int master_ifindex = 0;  // a bridge to enslave it to; 0 for none
  std::string peer_name;   // the other end
  std::string peer_mac;    // "" lets the kernel pick
  int peer_netns_fd = -1;  // move the peer there at creation; -1 keeps it here
};

class RtNetlink {
 public:
  // A socket in the calling thread's network namespace.
  static common::Result<std::unique_ptr<RtNetlink>> open();
  ~RtNetlink();
  RtNetlink(const RtNetlink&) = delete;
  RtNetlink& operator=(const RtNetlink&) = delete;

  // The local end is created up. The peer must be brought up where it lands (asking
  // for IFF_UP on a peer created in another namespace fails with ENOTCONN).
  common::Result<void> addVeth(const VethSpec& spec);
  common::Result<void> setUp(const std::string& ifname);
  // nodad for IPv6: usable at once, no duplicate-address-detection delay.
  common::Result<void> addAddress(const std::string& ifname, const IpAddress& address,
                                  int prefix_length);
  // kNotFound when there is no such link.
  common::Result<void> deleteLink(const std::string& ifname);

 private:
  RtNetlink(mnl_socket* socket, unsigned port_id) : socket_(socket), port_id_(port_id) {}
  // Sends one request and waits for its ACK; the error names `what`.
  common::Result<void> transact(void* message, const std::string& what);
  common::Result<int> ifindex(const std::string& ifname);

  mnl_socket* socket_;
  unsigned port_id_;
  unsigned seq_ = 1;
};

// Runs fn on a thread inside the named namespace (/run/netns/NAME) and returns its result.
common::Result<void> inNamespace(const std::string& netns,
                                 const std::function<common::Result<void>()>& fn);

// Creates /run/netns/NAME holding a new, empty network namespace. kConflict if it exists.
common::Result<void> createNamedNamespace(const std::string& name);
// Unmounts and removes /run/netns/NAME; absent is fine. The namespace itself dies
// once no process and no open file refers to it.
common::Result<void> deleteNamedNamespace(const std::string& name);

}  // namespace banyan::provider::drivers
