// UDP listeners in userspace (Octavia's keepalived-LVS UDP listeners): one
// SO_REUSEPORT socket per worker per bind address, and a flow table keyed by
// the client's (address, port). A flow is a UDP socket connected to the member
// picked for the client's first datagram, so the member's replies arrive on it
// and go back to the client from the listener's socket (its address and port).
//
// A flow belongs to the worker whose socket received its first datagram: the
// kernel hashes SO_REUSEPORT datagrams by 4-tuple, so the client's later
// datagrams land on the same socket. Nothing on the datagram path takes a lock;
// SOURCE_IP persistence (a table shared by the workers) is consulted only when a
// flow is set up and torn down.
//
// Semantics kept from LVS: a flow idle for the listener's timeout_client_data
// ends (either direction refreshes it); connection_limit counts flows; a member
// that goes down, is disabled or leaves the pool loses its flows (the next
// datagram of such a client is balanced again, like IPVS expire_nodest_conn).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "event/loop.h"
#include "persistence/source_ip.h"
#include "persistence/stick_table.h"
#include "proxy/snapshot.h"
#include "proxy/stats.h"

namespace banyan::dp::proxy {

class Worker;
class UdpListener;

// A client endpoint as a hashable value: family, port and address bytes.
struct FlowKey {
  uint8_t bytes[19] = {};
  uint8_t size = 0;
  bool operator==(const FlowKey& o) const {
    return size == o.size && std::memcmp(bytes, o.bytes, size) == 0;
  }
  static FlowKey of(const sockaddr_storage& addr);
};
struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const;
};

// One client flow toward one member.
class UdpFlow final : public event::Handler, public event::Deletable {
 public:
  UdpFlow(UdpListener& listener, int fd, const FlowKey& key);
  ~UdpFlow() override;
  void onEvents(uint32_t events) override;

  UdpListener& listener;
  int fd;
  FlowKey key;
  sockaddr_storage client{};
  sockaddr_storage local{};  // the address the client sent to (wildcard binds)
  std::string member_id;
  std::string member_address_key;  // MemberRt::address_key: same member after an apply
  std::shared_ptr<health::MemberHealth> member_health;
  std::shared_ptr<Counters> member_counters;
  std::shared_ptr<Counters> listener_counters;
  std::shared_ptr<persistence::SharedStickTable> persistence;  // SOURCE_IP; may be null
  persistence::SourceIpKey persistence_key;
  event::Millis idle_timeout{0};
  event::Timer idle_timer;
  std::unique_ptr<event::Timer> resume;  // continues a read burst cut for fairness
};

class UdpListener final : public event::Handler, public event::Deletable {
 public:
  UdpListener(Worker& worker, int fd, std::string key);
  ~UdpListener() override;
  bool registerFd();
  void unregister();
  void onEvents(uint32_t events) override;

  // A new snapshot is installed: closes the flows whose member left the
  // listener's pool, was disabled, or whose listener is gone.
  void snapshotApplied();
  // Closes every flow (listener removed, drain).
  void closeAllFlows();
  size_t flowCount() const { return flows_.size(); }

 private:
  friend class UdpFlow;
  void receiveAll();
  void onDatagram(char* data, size_t size, const sockaddr_storage& client,
                  const sockaddr_storage& local);
  // Datagrams toward a member wait here until the receive batch is handled or
  // another flow's datagram comes, then leave in one sendmmsg(2).
  void queueToMember(UdpFlow* flow, char* data, size_t size);
  void flushToMember();
  UdpFlow* openFlow(const ListenerRt& l, const FlowKey& key, const sockaddr_storage& client,
                    const sockaddr_storage& local);
  // `remember`: refresh the client's SOURCE_IP entry (not when the member left).
  void closeFlow(UdpFlow* flow, bool remember);
  void relayToClient(UdpFlow& flow);

  Worker& w_;
  int fd_;
  std::string key_;
  bool wildcard_ = false;
  bool registered_ = false;
  std::unordered_map<FlowKey, UdpFlow*, FlowKeyHash> flows_;
  std::unique_ptr<event::Timer> resume_;  // continues a read burst cut for fairness
  UdpFlow* pending_flow_ = nullptr;       // whose datagrams queueToMember holds
  unsigned pending_ = 0;
};

}  // namespace banyan::dp::proxy
