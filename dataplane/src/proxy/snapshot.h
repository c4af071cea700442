// The immutable runtime view of one config document: addresses parsed, pools
// resolved, counters and health attached. Workers hold a shared_ptr to the
// snapshot each connection started on; applying a document builds a new one
// and swaps it in between loop iterations.
#pragma once

#include <netinet/in.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "balancer/balancer.h"
#include "config/model.h"
#include "health/health_state.h"
#include "http/parser.h"
#include "net/cidr.h"
#include "proxy/stats.h"
#include "tls/context.h"

namespace banyan::dp::proxy {

struct MemberRt {
  const config::Member* cfg = nullptr;
  sockaddr_storage address{};
  std::string address_key;  // raw sockaddr bytes: keys the upstream connection pool
  uint64_t id_hash = 0;
  std::shared_ptr<health::MemberHealth> health;
  std::shared_ptr<Counters> counters;
};

struct PoolRt {
  const config::Pool* cfg = nullptr;
  size_t index = 0;
  balancer::Algorithm algorithm = balancer::Algorithm::RoundRobin;
  bool send_proxy_v1 = false;
  bool send_proxy_v2 = false;
  std::vector<MemberRt> members;
  std::shared_ptr<const tls::ClientContext> tls;  // tls_enabled: re-encrypt to members
};

struct ListenerRt {
  const config::Listener* cfg = nullptr;
  size_t index = 0;
  std::vector<sockaddr_storage> binds;
  const PoolRt* pool = nullptr;  // null: no default pool (or pool disabled)
  std::shared_ptr<Counters> counters;
  int64_t connection_limit = 0;
  std::vector<net::Cidr> proxy_trusted;  // empty: every source may send a PROXY header
  http::Limits limits;
  bool http = false;                              // HTTP or TERMINATED_HTTPS
  std::shared_ptr<const tls::ServerContext> tls;  // TERMINATED_HTTPS
  std::string hsts;                               // Strict-Transport-Security value, "" = none
};

// TLS contexts built (and checked) for a document before its snapshot:
// indexed like config listeners and pools; null where TLS is off.
struct TlsMaterial {
  std::vector<std::shared_ptr<const tls::ServerContext>> listeners;
  std::vector<std::shared_ptr<const tls::ClientContext>> pools;
};

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::string document;  // the JSON text as applied (GET /config)
  uint64_t serial = 0;   // increases with every apply in this process
  std::vector<ListenerRt> listeners;
  std::vector<PoolRt> pools;
  // bind key ("address:port") -> listener index
  std::unordered_map<std::string, size_t> by_bind;

  const ListenerRt* findListener(const std::string& id) const;
};

// "192.0.2.1:80" / "[2001:db8::1]:80": identifies a listening socket.
std::string bindKey(const sockaddr_storage& addr);

// Builds a snapshot. The config has been validated; addresses parse.
std::shared_ptr<const Snapshot> buildSnapshot(std::shared_ptr<const config::Config> config,
                                              std::string document, uint64_t serial,
                                              health::HealthRegistry& health,
                                              CounterRegistry& listener_counters,
                                              CounterRegistry& member_counters,
                                              const TlsMaterial* tls = nullptr);

}  // namespace banyan::dp::proxy
