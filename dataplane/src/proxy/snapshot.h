// The immutable runtime view of one config document: addresses parsed, pools
// resolved, counters and health attached. Workers hold a shared_ptr to the
// snapshot each connection started on; applying a document builds a new one
// and swaps it in between loop iterations.
#pragma once

#include <netinet/in.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "balancer/balancer.h"
#include "config/model.h"
#include "health/health_state.h"
#include "http/parser.h"
#include "net/cidr.h"
#include "persistence/cookie.h"
#include "persistence/source_ip.h"
#include "persistence/stick_table.h"
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

// A pool's session persistence at run time. The table lives outside the
// snapshot (PersistenceRegistry), so entries survive applies that keep the pool.
struct PersistenceRt {
  config::PersistenceType type = config::PersistenceType::kSourceIp;
  // SOURCE_IP (keyed by sourceIpKey) and APP_COOKIE (keyed by the cookie value);
  // shared by every worker, as a client's connections land on any of them.
  std::shared_ptr<persistence::SharedStickTable> table;
  persistence::Granularity granularity;
  std::string cookie_name;  // APP_COOKIE
  std::shared_ptr<const persistence::MemberCookieCodec> codec;  // HTTP_COOKIE
};

struct PoolRt {
  const config::Pool* cfg = nullptr;
  size_t index = 0;
  balancer::Algorithm algorithm = balancer::Algorithm::RoundRobin;
  bool send_proxy_v1 = false;
  bool send_proxy_v2 = false;
  std::vector<MemberRt> members;
  std::shared_ptr<const tls::ClientContext> tls;  // tls_enabled: re-encrypt to members
  // TLS pools whose alpn_protocols hold "h2": HTTP requests may go to members
  // over HTTP/2 when the handshake selects it. http1_alpn is the list without
  // "h2", offered where HTTP/2 cannot serve (upgrades, PROXY headers, TCP).
  bool h2 = false;
  std::vector<std::string> http1_alpn;
  std::unique_ptr<PersistenceRt> persistence;     // null: none
  // The member called `id` if it can take new traffic now (enabled, healthy,
  // not drained), else null: a persisted member that is not falls back to the balancer.
  const MemberRt* usableMember(std::string_view id) const;
};

struct ListenerRt {
  const config::Listener* cfg = nullptr;
  size_t index = 0;
  std::vector<sockaddr_storage> binds;
  const PoolRt* pool = nullptr;  // null: no default pool (or pool disabled)
  std::shared_ptr<Counters> counters;
  int64_t connection_limit = 0;
  std::vector<net::Cidr> proxy_trusted;  // empty: every source may send a PROXY header
  std::vector<net::Cidr> allowed;        // empty: every source is served
  bool allows(const sockaddr_storage& peer) const;
  http::Limits limits;
  bool http = false;                              // HTTP, TERMINATED_HTTPS or PROMETHEUS
  bool prometheus = false;                        // PROMETHEUS: answers with metrics itself
  bool udp = false;                               // UDP: datagram flows, see udp_listener.h
  std::shared_ptr<const tls::ServerContext> tls;  // TERMINATED_HTTPS, PROMETHEUS with TLS
  std::string hsts;                               // Strict-Transport-Security value, "" = none
  const l7::PolicySet* policies = nullptr;        // the config's compiled set; null: none

  // Counters of every L7 policy in the listener's document, in document order:
  // disabled and rule-less ones too, so their totals survive being switched
  // off and on, and /stats and the metrics list them.
  struct PolicyStats {
    const l7::Policy* cfg = nullptr;
    std::shared_ptr<PolicyCounters> counters;
  };
  std::vector<PolicyStats> policy_stats;
  // Parallel to policies->policies(): the counters of the policy match() returns,
  // resolved at build time so the request path does one relaxed bump.
  std::vector<PolicyCounters*> match_counters;
  PolicyCounters& countersOf(const l7::Policy& matched) const {
    return *match_counters[static_cast<size_t>(&matched - policies->policies().data())];
  }
};

// Persistence tables and the member-cookie codec, kept across applies: a table
// is reused while its pool keeps the same persistence settings (type, cookie
// name, granularity, timeout), and dropped with the pool.
class PersistenceRegistry {
 public:
  // Called by buildSnapshot for every pool with session persistence.
  std::unique_ptr<PersistenceRt> get(const config::Pool& pool, const config::Settings& settings);
  // Drops tables of pools `get` was not asked about since the previous call.
  void sweep();

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<persistence::SharedStickTable>> tables_;
  std::unordered_map<std::string, std::shared_ptr<persistence::SharedStickTable>> used_;
  std::string secret_;  // the secret codec_ was made with
  std::string random_secret_;
  std::shared_ptr<const persistence::MemberCookieCodec> codec_;
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
  // bind key ("address:port", "udp/address:port") -> listener index
  std::unordered_map<std::string, size_t> by_bind;

  const ListenerRt* findListener(const std::string& id) const;
  // The pool called `id` if it is enabled, else null.
  const PoolRt* findUsablePool(std::string_view id) const;
};

// A connection of listener `lis` on `snap` moves to `current` (the worker's newest
// snapshot) for its next request or stream. False when `current` no longer has that
// listener: the connection stays on the snapshot it had.
bool followSnapshot(const std::shared_ptr<const Snapshot>& current, std::shared_ptr<const Snapshot>& snap,
                    const ListenerRt*& lis);

// "192.0.2.1:80" / "[2001:db8::1]:80": identifies a listening socket.
std::string bindKey(const sockaddr_storage& addr);
// The key of a UDP listener's socket: a port may carry a TCP-family and a UDP
// listener at once (Octavia), so UDP keys live in their own name space.
std::string udpBindKey(const sockaddr_storage& addr);
inline bool isUdpBindKey(std::string_view key) { return key.substr(0, 4) == "udp/"; }

// Builds a snapshot. The config has been validated; addresses parse. Without
// `policy_counters`, L7 policy counters start at zero (not kept across builds).
std::shared_ptr<const Snapshot> buildSnapshot(std::shared_ptr<const config::Config> config,
                                              std::string document, uint64_t serial,
                                              health::HealthRegistry& health,
                                              CounterRegistry& listener_counters,
                                              CounterRegistry& member_counters,
                                              const TlsMaterial* tls = nullptr,
                                              PersistenceRegistry* persistence = nullptr,
                                              PolicyCounterRegistry* policy_counters = nullptr);

}  // namespace banyan::dp::proxy
