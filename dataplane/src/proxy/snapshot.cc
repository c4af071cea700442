#include "proxy/snapshot.h"

#include <openssl/rand.h>

#include "banyan/common/logging.h"
#include "net/socket.h"

namespace banyan::dp::proxy {

std::string bindKey(const sockaddr_storage& addr) { return net::formatAddressPort(addr); }
std::string udpBindKey(const sockaddr_storage& addr) { return "udp/" + bindKey(addr); }

const ListenerRt* Snapshot::findListener(const std::string& id) const {
  for (const auto& l : listeners)
    if (l.cfg->id == id) return &l;
  return nullptr;
}

bool followSnapshot(const std::shared_ptr<const Snapshot>& current, std::shared_ptr<const Snapshot>& snap,
                    const ListenerRt*& lis) {
  if (!current || current.get() == snap.get()) return true;
  const ListenerRt* l = current->findListener(lis->cfg->id);
  if (!l) return false;
  snap = current;
  lis = l;
  return true;
}

bool ListenerRt::allows(const sockaddr_storage& peer) const {
  if (allowed.empty()) return true;
  for (const auto& c : allowed)
    if (net::cidrContains(c, peer)) return true;
  return false;
}

const PoolRt* Snapshot::findUsablePool(std::string_view id) const {
  for (const auto& p : pools)
    if (p.cfg->id == id) return p.cfg->admin_state_up ? &p : nullptr;
  return nullptr;
}

namespace {

// Octavia's keepalived template: persistence_timeout defaults to 360 s.
constexpr uint32_t kUdpDefaultPersistenceTimeoutS = 360;

balancer::Algorithm algorithmOf(config::LbAlgorithm a) {
  switch (a) {
    case config::LbAlgorithm::kRoundRobin: return balancer::Algorithm::RoundRobin;
    case config::LbAlgorithm::kLeastConnections: return balancer::Algorithm::LeastConnections;
    case config::LbAlgorithm::kSourceIp: return balancer::Algorithm::SourceIp;
    case config::LbAlgorithm::kSourceIpPort: return balancer::Algorithm::SourceIpPort;
  }
  return balancer::Algorithm::RoundRobin;
}

std::string persistenceKey(const config::Pool& pool) {
  const config::SessionPersistence& sp = *pool.session_persistence;
  std::string key = pool.id;
  key.push_back('\0');
  key += std::to_string(static_cast<int>(sp.type));
  key.push_back('\0');
  key += sp.cookie_name;
  key.push_back('\0');
  key += sp.persistence_granularity;
  key.push_back('\0');
  key += std::to_string(sp.persistence_timeout_s);
  return key;
}

}  // namespace

const MemberRt* PoolRt::usableMember(std::string_view id) const {
  for (const auto& m : members) {
    if (m.cfg->id != id) continue;
    if (!m.cfg->admin_state_up || m.cfg->weight == 0 || !m.health->up()) return nullptr;
    return &m;
  }
  return nullptr;
}

std::unique_ptr<PersistenceRt> PersistenceRegistry::get(const config::Pool& pool,
                                                        const config::Settings& settings) {
  std::lock_guard<std::mutex> lock(mu_);
  const config::SessionPersistence& sp = *pool.session_persistence;
  auto rt = std::make_unique<PersistenceRt>();
  rt->type = sp.type;
  rt->cookie_name = sp.cookie_name;
  if (!sp.persistence_granularity.empty()) {
    auto g = persistence::parseGranularity(sp.persistence_granularity);
    LB_CHECK(g.ok(), "granularity was validated");
    rt->granularity = *g;
  }
  if (sp.type == config::PersistenceType::kHttpCookie) {
    std::string secret = settings.session_cookie_secret;
    if (secret.empty()) {
      if (random_secret_.empty()) {
        unsigned char bytes[32];
        LB_CHECK(RAND_bytes(bytes, sizeof bytes) == 1, "the CSPRNG works");
        random_secret_.assign(reinterpret_cast<const char*>(bytes), sizeof bytes);
      }
      secret = random_secret_;
    }
    if (!codec_ || secret != secret_) {
      codec_ = std::make_shared<const persistence::MemberCookieCodec>(secret);
      secret_ = secret;
    }
    rt->codec = codec_;
    return rt;
  }
  std::string key = persistenceKey(pool);
  auto& table = used_[key];
  if (!table) {
    if (auto it = tables_.find(key); it != tables_.end()) {
      table = it->second;
    } else {
      persistence::StickTableOptions options;
      // Octavia renders HTTP/TCP stick tables without `expire` (LRU only);
      // a timeout given here still bounds how long an idle client sticks.
      options.idle_timeout = std::chrono::seconds(sp.persistence_timeout_s);
      // UDP pools follow keepalived's persistence_timeout, 360 s unless set.
      if (pool.protocol == config::PoolProtocol::kUdp && sp.persistence_timeout_s == 0)
        options.idle_timeout = std::chrono::seconds(kUdpDefaultPersistenceTimeoutS);
      table = std::make_shared<persistence::SharedStickTable>(options);
    }
  }
  rt->table = table;
  return rt;
}

void PersistenceRegistry::sweep() {
  std::lock_guard<std::mutex> lock(mu_);
  tables_ = std::move(used_);
  used_.clear();
}

std::shared_ptr<const Snapshot> buildSnapshot(std::shared_ptr<const config::Config> config,
                                              std::string document, uint64_t serial,
                                              health::HealthRegistry& health,
                                              CounterRegistry& listener_counters,
                                              CounterRegistry& member_counters,
                                              const TlsMaterial* tls,
                                              PersistenceRegistry* persistence,
                                              PolicyCounterRegistry* policy_counters) {
  PersistenceRegistry local_registry;  // no registry: tables start empty
  if (persistence == nullptr) persistence = &local_registry;
  PolicyCounterRegistry local_policy_counters(listener_counters.workers());
  if (policy_counters == nullptr) policy_counters = &local_policy_counters;
  auto snap = std::make_shared<Snapshot>();
  snap->config = config;
  snap->document = std::move(document);
  snap->serial = serial;
  const config::Config& c = *config;

  snap->pools.reserve(c.pools.size());
  for (const auto& p : c.pools) {
    PoolRt pr;
    pr.cfg = &p;
    pr.index = snap->pools.size();
    pr.algorithm = algorithmOf(p.lb_algorithm);
    pr.send_proxy_v1 = p.protocol == config::PoolProtocol::kProxy;
    pr.send_proxy_v2 = p.protocol == config::PoolProtocol::kProxyV2;
    if (tls && pr.index < tls->pools.size()) pr.tls = tls->pools[pr.index];
    for (const auto& proto : p.alpn_protocols) {
      if (proto == "h2")
        pr.h2 = pr.tls != nullptr;
      else
        pr.http1_alpn.push_back(proto);
    }
    if (p.session_persistence) pr.persistence = persistence->get(p, c.settings);
    for (const auto& m : p.members) {
      MemberRt mr;
      mr.cfg = &m;
      LB_CHECK(net::parseAddress(m.address, m.protocol_port, mr.address),
               "member address was validated");
      mr.address_key.assign(reinterpret_cast<const char*>(&mr.address),
                            net::addressLength(mr.address));
      mr.id_hash = balancer::hashString(m.id);
      mr.health = health.get(m.id);
      mr.counters = member_counters.get(m.id);
      pr.members.push_back(std::move(mr));
    }
    snap->pools.push_back(std::move(pr));
  }

  for (size_t li = 0; li < c.listeners.size(); ++li) {
    const config::Listener& l = c.listeners[li];
    if (!l.admin_state_up) continue;  // a disabled listener is not rendered (Octavia)
    ListenerRt lr;
    lr.cfg = &l;
    lr.udp = l.protocol == config::ListenerProtocol::kUdp;
    lr.prometheus = l.protocol == config::ListenerProtocol::kPrometheus;
    lr.http = l.protocol == config::ListenerProtocol::kHttp ||
              l.protocol == config::ListenerProtocol::kTerminatedHttps || lr.prometheus;
    if (tls && li < tls->listeners.size()) lr.tls = tls->listeners[li];
    if (l.terminatesTls() && l.tls.hsts_max_age) {
      // Octavia's rendering: "max-age=N; includeSubDomains; preload;".
      lr.hsts = "max-age=" + std::to_string(*l.tls.hsts_max_age) + ";";
      if (l.tls.hsts_include_subdomains) lr.hsts += " includeSubDomains;";
      if (l.tls.hsts_preload) lr.hsts += " preload;";
    }
    lr.index = snap->listeners.size();
    std::vector<std::string> addrs{l.address};
    addrs.insert(addrs.end(), l.additional_addresses.begin(), l.additional_addresses.end());
    for (const auto& a : addrs) {
      sockaddr_storage ss;
      LB_CHECK(net::parseAddress(a, l.protocol_port, ss), "listener address was validated");
      lr.binds.push_back(ss);
    }
    for (auto& pr : snap->pools) {
      if (pr.cfg->id == l.default_pool_id && pr.cfg->admin_state_up) lr.pool = &pr;
    }
    lr.policies = l.policy_set.get();
    for (const auto& p : l.l7policies)
      lr.policy_stats.push_back({&p, policy_counters->get(policyCounterKey(l.id, p.id))});
    if (lr.policies != nullptr) {
      // The compiled set holds copies of the enabled policies; ids are unique
      // within a listener (checked when the document was parsed).
      std::unordered_map<std::string_view, PolicyCounters*> by_id;
      for (const auto& ps : lr.policy_stats) by_id.emplace(ps.cfg->id, ps.counters.get());
      for (const auto& compiled : lr.policies->policies()) {
        auto it = by_id.find(compiled.id);
        LB_CHECK(it != by_id.end(), "a compiled policy comes from the listener's document");
        lr.match_counters.push_back(it->second);
      }
    }
    lr.counters = listener_counters.get(l.id);
    lr.connection_limit = l.connection_limit >= 0
                              ? l.connection_limit
                              : static_cast<int64_t>(c.settings.default_connection_limit);
    for (const auto& text : l.proxy_protocol_trusted_cidrs) {
      net::Cidr cidr;
      LB_CHECK(net::parseCidr(text, cidr), "trusted CIDRs were validated");
      lr.proxy_trusted.push_back(cidr);
    }
    for (const auto& text : l.allowed_cidrs) {
      net::Cidr cidr;
      LB_CHECK(net::parseCidr(text, cidr), "allowed CIDRs were validated");
      lr.allowed.push_back(cidr);
    }
    lr.limits.max_request_line = c.settings.max_request_line;
    lr.limits.max_head = c.settings.max_header_bytes;
    lr.limits.max_headers = c.settings.max_headers;
    snap->listeners.push_back(std::move(lr));
  }
  for (const auto& lr : snap->listeners)
    for (const auto& b : lr.binds) snap->by_bind[lr.udp ? udpBindKey(b) : bindKey(b)] = lr.index;
  persistence->sweep();
  return snap;
}

}  // namespace banyan::dp::proxy
