#include "controller/controller.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include <rapidjson/document.h>

#include "amphora/agent_client.h"
#include "amphora/pki.h"
#include "certs/placement.h"
#include "controller/amphora_client.h"
#include "banyan/common/digest.h"
#include "banyan/common/ids.h"
#include "banyan/common/logging.h"
#include "controller/records.h"
#include "controller/settle.h"
#include "drivers/compute.h"
#include "drivers/network.h"
#include "render/render.h"

namespace banyan::provider::controller {

using common::ErrorCode;
using common::makeError;

namespace {

constexpr const char* kAmphora = "amphora";

// The amphora fields the API serves (Octavia's amphora table); the controller also
// keeps "plugged_subnets" (member subnets whose interface the agent has configured),
// which the API does not show.
constexpr const char* kAmphoraNullFields[] = {
    "compute_id",     "lb_network_ip", "vrrp_ip",     "ha_ip",         "vrrp_port_id",
    "ha_port_id",     "cert_expiration", "vrrp_interface", "vrrp_id",  "vrrp_priority",
    "cached_zone",    "updated_at",    "image_id",    "compute_flavor"};

struct Role {
  const char* name;
  int priority;
};

std::vector<Role> rolesFor(const std::string& topology) {
  if (topology == "ACTIVE_STANDBY") return {{"MASTER", 100}, {"BACKUP", 90}};
  return {{"STANDALONE", 0}};
}

std::string randomPassword() {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 8; ++i) out += kChars[rd() % (sizeof kChars - 1)];
  return out;
}

bool isV6(const std::string& address) { return address.find(':') != std::string::npos; }

// What one job is about, read from its payload.
struct JobInfo {
  std::string kind;
  std::string request_id;
  std::string lb_id;
  std::string object_id;
};

}  // namespace

struct Controller::Impl {
  store::Store& store;
  drivers::ComputeDriver& compute;
  drivers::NetworkDriver& network;
  AmphoraClient& agent;
  amphora::Pki& pki;
  ControllerOptions opt;
  Sleeper& sleeper;
  std::mutex spare_mu;  // one spare-pool fill at a time in this process
  std::unique_ptr<AmphoraClient> owned_agent;  // the AgentClient adapter, when given one

  // Fetched certificates by (project, reference, TLS bundle or PEM secret).
  struct CachedFile {
    certs::PlacedFile file;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex cert_cache_mu;
  std::map<std::tuple<std::string, std::string, bool>, CachedFile> cert_cache;

  using Steps = std::vector<std::unique_ptr<Step>>;

  amphora::AgentEndpoint endpoint(const Obj& amp) const {
    amphora::AgentEndpoint e;
    e.address = amp.str("lb_network_ip");
    e.port = opt.agent_port;
    return e;
  }

  // ---- reads -------------------------------------------------------------------

  Result<Obj> loadLb(const std::string& lb_id) {
    std::optional<Obj> out;
    auto r = store.read([&](store::Transaction& tx) -> Result<void> {
      auto lb = loadObj(tx, "loadbalancer", lb_id);
      if (!lb) return lb.error();
      out = std::move(*lb);
      return {};
    });
    if (!r) return r.error();
    if (!out) return makeError(ErrorCode::kNotFound, "load balancer not found", lb_id);
    return std::move(*out);
  }

  Result<std::vector<Obj>> loadAmphorae(const std::string& lb_id) {
    std::vector<Obj> out;
    auto r = store.read([&](store::Transaction& tx) -> Result<void> {
      store::Query q;
      q.kind = kAmphora;
      q.load_balancer_id = lb_id;
      auto amps = loadObjs(tx, q);
      if (!amps) return amps.error();
      for (auto& a : *amps) {
        if (a.str("status") != "DELETED") out.push_back(std::move(a));
      }
      return {};
    });
    if (!r) return r.error();
    return out;
  }

  Result<std::optional<Obj>> loadAmphora(const std::string& id) {
    std::optional<Obj> out;
    auto r = store.read([&](store::Transaction& tx) -> Result<void> {
      auto a = loadObj(tx, kAmphora, id);
      if (!a) return a.error();
      out = std::move(*a);
      return {};
    });
    if (!r) return r.error();
    return out;
  }

  // Applies fn to the stored amphora and saves it (a no-op when it is gone).
  Result<void> updateAmphora(const std::string& id, const std::function<void(Obj&)>& fn) {
    return store.write([&](store::Transaction& tx) -> Result<void> {
      auto a = loadObj(tx, kAmphora, id);
      if (!a) return a.error();
      if (!a->has_value()) return {};
      fn(**a);
      (*a)->touch();
      return saveObj(tx, **a);
    });
  }

  // The topology: the flavor's loadbalancer_topology when it has one, else the default.
  std::string topologyOf(const Obj& lb) {
    std::string flavor_id = lb.str("flavor_id");
    if (flavor_id.empty()) return opt.loadbalancer_topology;
    std::string topology;
    (void)store.read([&](store::Transaction& tx) -> Result<void> {
      auto flavor = loadObj(tx, "flavor", flavor_id);
      if (!flavor || !flavor->has_value()) return {};
      auto profile = loadObj(tx, "flavorprofile", (*flavor)->str("flavor_profile_id"));
      if (!profile || !profile->has_value()) return {};
      rapidjson::Document data;
      std::string text = (*profile)->str("flavor_data");
      data.Parse(text.c_str());
      if (!data.HasParseError() && data.IsObject()) topology = jsonString(data, "loadbalancer_topology");
      return {};
    });
    return topology.empty() ? opt.loadbalancer_topology : topology;
  }

  drivers::Vip vipOf(const Obj& lb) const {
    drivers::Vip vip;
    vip.address = lb.str("vip_address");
    vip.port_id = lb.str("vip_port_id");
    vip.subnet_id = lb.str("vip_subnet_id");
    vip.network_id = lb.str("vip_network_id");
    return vip;
  }

  // ---- amphora lifecycle --------------------------------------------------------

  std::string agentConfig(const std::string& amphora_id) const {
    return agentConfigText(opt, amphora_id, compute.managementCidrs());
  }

  // Starts the amphora's compute instance unless it already has one (a resumed flow
  // finds the instance the crashed run started, by amphora id) and records it.
  Result<void> buildAmphora(const std::string& amphora_id, const std::string& lb_id) {
    auto amp = loadAmphora(amphora_id);
    if (!amp) return amp.error();
    if (!amp->has_value()) return makeError(ErrorCode::kNotFound, "amphora record vanished", amphora_id);
    if (!(*amp)->str("compute_id").empty()) return {};
    std::optional<drivers::Instance> instance;
    auto existing = compute.list();
    if (!existing) return existing.error();
    for (const auto& i : *existing) {
      if (i.amphora_id == amphora_id) instance = i;
    }
    if (instance && instance->status == drivers::ComputeStatus::kError) {
      // A crash between starting the build and recording it: start over.
      LB_INFO("discarding an amphora instance a crash left unfinished amp=%s compute=%s", amphora_id.c_str(),
              instance->compute_id.c_str());
      if (auto ok = network.unplugAll(instance->compute_id); !ok) return ok;
      if (auto ok = compute.remove(instance->compute_id); !ok) return ok;
      instance.reset();
    }
    std::string cert_expiration;
    if (!instance) {
      drivers::AmphoraSpec spec;
      spec.amphora_id = amphora_id;
      spec.lb_id = lb_id;
      spec.agent_config = agentConfig(amphora_id);
      spec.files.push_back({"tls/client_ca.pem", pki.caCertPem(), 0600});
      spec.late_files = [&](const std::string&, const std::string& lb_network_ip)
          -> Result<std::vector<drivers::PlacedFile>> {
        auto cert = pki.issueServerCert(amphora_id, lb_network_ip);
        if (!cert) return cert.error();
        cert_expiration = common::utcTimestamp(cert->not_after);
        return std::vector<drivers::PlacedFile>{{"tls/server.pem", cert->cert_pem, 0600},
                                                {"tls/server.key", cert->key_pem, 0600}};
      };
      auto built = compute.build(spec);
      if (!built) return built.error();
      instance = *built;
    }
    return updateAmphora(amphora_id, [&](Obj& a) {
      a.set("compute_id", instance->compute_id);
      a.set("lb_network_ip", instance->lb_network_ip);
      if (!cert_expiration.empty()) a.set("cert_expiration", cert_expiration);
    });
  }

  // Waits until the amphora's agent answers over mutual TLS.
  Result<void> waitForAgent(const std::string& amphora_id) {
    auto amp = loadAmphora(amphora_id);
    if (!amp) return amp.error();
    if (!amp->has_value()) return makeError(ErrorCode::kNotFound, "amphora record vanished", amphora_id);
    const Obj& a = **amp;
    auto deadline = std::chrono::steady_clock::now() + opt.amp_active_wait;
    common::Error last = makeError(ErrorCode::kUnavailable, "no answer yet");
    while (true) {
      auto info = agent.info(endpoint(a));
      if (info) return {};
      last = info.error();
      auto status = compute.status(a.str("compute_id"));
      if (status && (*status == drivers::ComputeStatus::kError || *status == drivers::ComputeStatus::kDeleted)) {
        return makeError(ErrorCode::kInternal,
                         "amphora " + amphora_id + " failed to boot (compute status " +
                             std::string(drivers::toString(*status)) + ")");
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      sleeper.sleep(opt.agent_poll_interval);
    }
    // Not kUnavailable: the wait itself was the retry.
    return makeError(ErrorCode::kInternal, "the agent of amphora " + amphora_id + " did not answer within " +
                                               std::to_string(opt.amp_active_wait.count()) +
                                               " ms: " + last.message);
  }

  // Stops and deletes an amphora and everything of it: its compute instance, its
  // network ports, its records.
  Result<void> destroyAmphora(const std::string& amphora_id) {
    auto amp = loadAmphora(amphora_id);
    if (!amp) return amp.error();
    if (!amp->has_value()) return {};
    std::string compute_id = (*amp)->str("compute_id");
    if (compute_id.empty()) {
      // A crash between build and record leaves an instance the record does not name.
      auto existing = compute.list();
      if (!existing) return existing.error();
      for (const auto& i : *existing) {
        if (i.amphora_id == amphora_id) compute_id = i.compute_id;
      }
    }
    if (!compute_id.empty()) {
      if (auto ok = network.unplugAll(compute_id); !ok) return ok;
      if (auto ok = compute.remove(compute_id); !ok) return ok;
    }
    LB_INFO("amphora deleted amp=%s compute=%s", amphora_id.c_str(), compute_id.c_str());
    return store.write([&](store::Transaction& tx) -> Result<void> {
      for (const char* kind : {kAmphora, "amphora_health", "amphora_stats"}) {
        auto ok = tx.remove(kind, amphora_id);
        if (!ok && ok.error().code != ErrorCode::kNotFound) return ok;
      }
      return {};
    });
  }

  Obj newAmphoraRecord(const std::string& id) const {
    Obj a = newObj(kAmphora, id);
    a.set("id", id);
    for (const char* f : kAmphoraNullFields) a.setNull(f);
    a.setNull("loadbalancer_id");
    a.setNull("role");
    a.setBool("cert_busy", false);
    a.set("status", "BOOTING");
    a.set("created_at", nowTimestamp());
    return a;
  }

  // ---- the converging steps of a load balancer ---------------------------------

  // Every role of the topology has an amphora record: a claimed spare when one is
  // READY, else a new one to build.
  Result<void> ensureAmphorae(const std::string& lb_id) {
    auto lb = loadLb(lb_id);
    if (!lb) return lb.error();
    auto roles = rolesFor(topologyOf(*lb));
    return store.write([&](store::Transaction& tx) -> Result<void> {
      if (auto ok = tx.lockKey("loadbalancer:" + lb_id); !ok) return ok;
      store::Query q;
      q.kind = kAmphora;
      q.load_balancer_id = lb_id;
      auto amps = loadObjs(tx, q);
      if (!amps) return amps.error();
      std::set<std::string> have;
      for (const auto& a : *amps) {
        if (a.str("status") != "DELETED") have.insert(a.str("role"));
      }
      for (const auto& role : roles) {
        if (have.count(role.name)) continue;
        std::optional<Obj> amp;
        if (auto ok = tx.lockKey("spare-pool"); !ok) return ok;
        store::Query spares;
        spares.kind = kAmphora;
        spares.load_balancer_id = "";
        auto found = loadObjs(tx, spares);
        if (!found) return found.error();
        for (auto& s : *found) {
          if (s.str("status") == "READY") {
            amp = std::move(s);
            break;
          }
        }
        bool spare = amp.has_value();
        if (!spare) amp = newAmphoraRecord(newUuid());
        Obj& a = *amp;
        a.rec.load_balancer_id = lb_id;
        a.rec.project_id = lb->rec.project_id;
        a.set("loadbalancer_id", lb_id);
        a.set("role", role.name);
        if (role.priority > 0) {
          a.setInt("vrrp_priority", role.priority);
          a.setInt("vrrp_id", 1);
        }
        if (spare) {
          a.set("status", "ALLOCATED");
          a.touch();
          if (auto ok = saveObj(tx, a); !ok) return ok;
          // The health record follows the amphora to its load balancer.
          if (auto h = tx.get("amphora_health", a.id()); h && h->has_value()) {
            store::Record rec = **h;
            rec.load_balancer_id = lb_id;
            rec.project_id = lb->rec.project_id;
            if (auto ok = tx.update(rec); !ok) return ok;
          }
          LB_INFO("spare amphora claimed amp=%s lb=%s role=%s", a.id().c_str(), lb_id.c_str(), role.name);
        } else {
          if (auto ok = insertObj(tx, a); !ok) return ok;
          LB_INFO("amphora planned amp=%s lb=%s role=%s", a.id().c_str(), lb_id.c_str(), role.name);
        }
      }
      return {};
    });
  }

  Result<void> buildAll(const std::string& lb_id) {
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    for (const auto& a : *amps) {
      if (auto ok = buildAmphora(a.id(), lb_id); !ok) return ok;
    }
    return {};
  }

  Result<void> waitAll(const std::string& lb_id) {
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    for (const auto& a : *amps) {
      if (a.str("status") == "ALLOCATED") continue;
      if (auto ok = waitForAgent(a.id()); !ok) return ok;
      if (auto ok = updateAmphora(a.id(), [](Obj& o) { o.set("status", "ALLOCATED"); }); !ok) return ok;
    }
    return {};
  }

  Result<void> allocateVip(const std::string& lb_id, const std::string& requested) {
    auto lb = loadLb(lb_id);
    if (!lb) return lb.error();
    auto vip = network.allocateVip(lb_id, lb->str("vip_subnet_id"), requested);
    if (!vip) return vip.error();
    return store.write([&](store::Transaction& tx) -> Result<void> {
      auto l = loadObj(tx, "loadbalancer", lb_id);
      if (!l) return l.error();
      if (!l->has_value()) return makeError(ErrorCode::kNotFound, "load balancer vanished", lb_id);
      Obj& o = **l;
      if (o.str("vip_address") == vip->address && o.str("vip_port_id") == vip->port_id) return {};
      o.set("vip_address", vip->address);
      o.set("vip_port_id", vip->port_id);
      if (o.str("vip_network_id").empty()) o.set("vip_network_id", vip->network_id);
      LB_INFO("VIP allocated lb=%s vip=%s", lb_id.c_str(), vip->address.c_str());
      return saveObj(tx, o);
    });
  }

  Result<void> deallocateVip(const std::string& lb_id) {
    auto lb = loadLb(lb_id);
    if (!lb) return lb.error().code == ErrorCode::kNotFound ? Result<void>() : Result<void>(lb.error());
    if (lb->str("vip_port_id").empty()) return {};
    return network.deallocateVip(vipOf(*lb));
  }

  Result<void> plugVips(const std::string& lb_id) {
    auto lb = loadLb(lb_id);
    if (!lb) return lb.error();
    drivers::Vip vip = vipOf(*lb);
    bool vrrp = topologyOf(*lb) == "ACTIVE_STANDBY";
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    for (const auto& a : *amps) {
      if (a.str("ha_ip") == vip.address && !a.str("vrrp_interface").empty()) continue;
      auto iface = network.plugVip(a.str("compute_id"), vip);
      if (!iface) return iface.error();
      amphora::AgentClient::PlugVip plug;
      plug.vip = vip.address;
      plug.subnet_cidr = iface->cidr;
      plug.gateway = iface->gateway_ip;
      plug.mac_address = iface->mac_address;
      plug.mtu = iface->mtu;
      if (vrrp) plug.vrrp_ip = iface->address;  // keepalived owns the VIP then
      auto name = agent.plugVip(endpoint(a), plug);
      if (!name) return name.error();
      auto ok = updateAmphora(a.id(), [&](Obj& o) {
        o.set("vrrp_ip", iface->address);
        o.set("ha_ip", vip.address);
        o.set("vrrp_port_id", iface->port_id);
        o.set("ha_port_id", vip.port_id);
        o.set("vrrp_interface", *name);
      });
      if (!ok) return ok;
    }
    return {};
  }

  // The member subnets the load balancer's amphorae need: those of its members that
  // stay (not PENDING_DELETE: a deleted member, or one of a deleted pool), except the
  // VIP's, which every amphora has anyway (Octavia's CalculateAmphoraDelta).
  Result<std::set<std::string>> wantedMemberSubnets(const Obj& lb) {
    std::set<std::string> subnets;
    auto r = store.read([&](store::Transaction& tx) -> Result<void> {
      store::Query q;
      q.kind = "member";
      q.load_balancer_id = lb.id();
      auto members = loadObjs(tx, q);
      if (!members) return members.error();
      for (const auto& m : *members) {
        std::string s = m.str("subnet_id");
        if (!s.empty() && s != lb.str("vip_subnet_id") && m.str("provisioning_status") != "PENDING_DELETE")
          subnets.insert(s);
      }
      return {};
    });
    if (!r) return r.error();
    return subnets;
  }

  Result<void> savePluggedSubnets(const std::string& amphora_id, const std::set<std::string>& subnets) {
    return updateAmphora(amphora_id, [&](Obj& o) {
      rapidjson::Value list(rapidjson::kArrayType);
      for (const auto& s : subnets)
        list.PushBack(rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), o.doc.GetAllocator()),
                      o.doc.GetAllocator());
      o.doc.RemoveMember("plugged_subnets");
      o.doc.AddMember("plugged_subnets", list, o.doc.GetAllocator());
    });
  }

  // Plugs every member subnet of the load balancer into every amphora (Octavia plugs a
  // member's subnet when the member names one).
  Result<void> plugMemberNetworks(const std::string& lb_id) {
    auto lb = loadLb(lb_id);
    if (!lb) return lb.error();
    auto subnets = wantedMemberSubnets(*lb);
    if (!subnets) return subnets.error();
    if (subnets->empty()) return {};
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    for (const auto& a : *amps) {
      auto done_list = a.strings("plugged_subnets");
      std::set<std::string> done(done_list.begin(), done_list.end());
      for (const auto& subnet : *subnets) {
        if (done.count(subnet)) continue;
        auto iface = network.plugNetwork(a.str("compute_id"), subnet);
        if (!iface) return iface.error();
        amphora::AgentClient::PlugNetwork plug;
        plug.mac_address = iface->mac_address;
        plug.mtu = iface->mtu;
        plug.fixed_ips.push_back({iface->address, iface->cidr, ""});
        auto name = agent.plugNetwork(endpoint(a), plug);
        if (!name) return name.error();
        done.insert(subnet);
        if (auto ok = savePluggedSubnets(a.id(), done); !ok) return ok;
        LB_INFO("member network plugged amp=%s subnet=%s interface=%s address=%s", a.id().c_str(),
                subnet.c_str(), name->c_str(), iface->address.c_str());
      }
    }
    return {};
  }

  // Unplugs the member subnets no member needs any more (Octavia's HandleNetworkDeltas
  // after a member change: delete_nics). Runs after the config push, so the proxy has
  // stopped using the departing members before their network goes. As in Octavia, a
  // failed unplug is logged, not fatal: the member change itself succeeded; the subnet
  // stays recorded and the next member job tries again.
  Result<void> unplugUnusedMemberNetworks(const std::string& lb_id) {
    auto lb = loadLb(lb_id);
    if (!lb) return lb.error();
    auto wanted = wantedMemberSubnets(*lb);
    if (!wanted) return wanted.error();
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    for (const auto& a : *amps) {
      auto list = a.strings("plugged_subnets");
      std::set<std::string> plugged(list.begin(), list.end());
      std::set<std::string> keep;
      for (const auto& subnet : plugged) {
        if (wanted->count(subnet)) {
          keep.insert(subnet);
          continue;
        }
        if (auto ok = network.unplugNetwork(a.str("compute_id"), subnet); !ok) {
          LB_WARN("member network not unplugged amp=%s subnet=%s error=%s", a.id().c_str(), subnet.c_str(),
                  ok.error().message.c_str());
          keep.insert(subnet);
          continue;
        }
        LB_INFO("member network unplugged amp=%s subnet=%s", a.id().c_str(), subnet.c_str());
      }
      if (keep.size() == plugged.size()) continue;
      if (auto ok = savePluggedSubnets(a.id(), keep); !ok) return ok;
    }
    return {};
  }

  // `doomed`: amphorae this flow replaces later; an error from one of them is logged,
  // not fatal (a load balancer failover must get past its broken amphora).
  using IdSet = std::set<std::string>;

  Result<void> configureVrrp(const std::string& lb_id, const IdSet& doomed) {
    auto lb = loadLb(lb_id);
    if (!lb) return lb.error();
    if (topologyOf(*lb) != "ACTIVE_STANDBY") return {};
    std::string auth_pass;
    auto r = store.write([&](store::Transaction& tx) -> Result<void> {
      auto group = loadObj(tx, "vrrp_group", lb_id);
      if (!group) return group.error();
      if (group->has_value()) {
        auth_pass = (*group)->str("vrrp_auth_pass");
        return {};
      }
      Obj g = newObj("vrrp_group", lb_id);
      g.rec.load_balancer_id = lb_id;
      g.rec.project_id = lb->rec.project_id;
      auth_pass = randomPassword();
      g.set("vrrp_group_name", lb_id);
      g.set("vrrp_auth_type", "PASS");
      g.set("vrrp_auth_pass", auth_pass);
      g.setInt("advert_int", 1);
      return insertObj(tx, g);
    });
    if (!r) return r;
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    std::string vip = lb->str("vip_address");
    for (const auto& a : *amps) {
      amphora::AgentClient::Vrrp v;
      v.interface = a.str("vrrp_interface");
      v.vip = vip;
      v.vip_prefix = isV6(vip) ? 128 : 32;
      v.virtual_router_id = static_cast<int>(a.integer("vrrp_id", 1));
      v.priority = static_cast<int>(a.integer("vrrp_priority", 100));
      v.advert_interval = 1;
      v.local_address = a.str("vrrp_ip");
      for (const auto& peer : *amps) {
        if (peer.id() != a.id()) v.peer_addresses.push_back(peer.str("vrrp_ip"));
      }
      v.auth_pass = auth_pass;
      v.nopreempt = true;
      if (auto ok = agent.putVrrp(endpoint(a), v); !ok) {
        if (!doomed.count(a.id())) return ok;
        LB_WARN("VRRP update failed on an amphora about to be replaced amp=%s error=%s", a.id().c_str(),
                ok.error().message.c_str());
      }
    }
    return {};
  }

  // The certificates a load balancer's document names, fetched as its project with the
  // service's credentials (docs/certificates.md). None when it uses none.
  Result<certs::Placement> fetchCertificates(const render::LoadBalancerGraph& graph, const render::RenderContext& ctx,
                                             const Obj& lb) {
    auto needs = render::neededCertificates(graph, ctx);
    if (!needs) return needs.error();
    if (needs->tls_bundles.empty() && needs->pem_secrets.empty()) return certs::Placement{};
    if (!opt.cert_manager)
      return makeError(ErrorCode::kInvalidArgument,
                       "the load balancer uses certificates but no certificate manager is configured", lb.id());
    certs::RequestContext rc{lb.rec.project_id, ""};
    // What the cache holds is not fetched again; the rest is, and then cached.
    certs::Placement cached;
    std::set<std::string> tls_missing = needs->tls_bundles, pem_missing = needs->pem_secrets;
    const bool caching = opt.certificate_cache_ttl.count() > 0;
    const auto now = caching ? (opt.clock ? opt.clock() : std::chrono::steady_clock::now())
                             : std::chrono::steady_clock::time_point{};
    if (caching) {
      std::lock_guard<std::mutex> lock(cert_cache_mu);
      std::erase_if(cert_cache, [&](const auto& entry) { return entry.second.expires <= now; });
      for (auto* missing : {&tls_missing, &pem_missing}) {
        const bool tls = missing == &tls_missing;
        for (auto it = missing->begin(); it != missing->end();) {
          auto hit = cert_cache.find({lb.rec.project_id, *it, tls});
          if (hit == cert_cache.end()) {
            ++it;
            continue;
          }
          cached.by_ref[*it] = hit->second.file;
          it = missing->erase(it);
        }
      }
      if (tls_missing.empty() && pem_missing.empty()) return cached;
    }
    auto placed = certs::fetchForPlacement(*opt.cert_manager, rc, tls_missing, pem_missing);
    if (placed && caching) {
      std::lock_guard<std::mutex> lock(cert_cache_mu);
      for (const auto& [ref, file] : placed->by_ref) {
        cert_cache[{lb.rec.project_id, ref, tls_missing.count(ref) > 0}] =
            CachedFile{file, now + opt.certificate_cache_ttl};
      }
      for (auto& [ref, file] : cached.by_ref) placed->by_ref[ref] = std::move(file);
    }
    if (!placed) {
      // kUnavailable (Barbican down) is retried by the flow; a reference that names
      // nothing (deleted since the API checked it) or nothing usable fails the job.
      return makeError(placed.error().code,
                       "certificate " + placed.error().context + " could not be fetched: " + placed.error().message,
                       lb.id());
    }
    return placed;
  }

  // Puts the files on one amphora (only those whose digest differs from what it has)
  // and returns reference -> the path the agent stored each file at.
  Result<std::map<std::string, std::string>> placeCertificates(
      const Obj& amp, const certs::Placement& placement,
      const std::map<std::string, AmphoraClient::StoredCertificate>& stored) {
    std::map<std::string, std::string> paths;
    for (const auto& [ref, file] : placement.by_ref) {
      auto have = stored.find(file.name);
      if (have != stored.end() && have->second.sha256 == common::sha256Hex(file.pem) && !have->second.path.empty()) {
        paths[ref] = have->second.path;
        continue;
      }
      auto put = agent.putCertificate(endpoint(amp), file.name, file.pem);
      if (!put) return makeError(put.error().code, "placing certificate " + file.name + ": " + put.error().message,
                                 amp.id());
      LB_INFO("certificate placed amp=%s name=%s", amp.id().c_str(), file.name.c_str());
      paths[ref] = *put;
    }
    return paths;
  }

  // After a successful push: files this controller placed ("tls-"/"pem-" names) that
  // the running document no longer names. A failure only leaves a stale file.
  void removeUnusedCertificates(const Obj& amp, const certs::Placement& placement,
                                const std::map<std::string, AmphoraClient::StoredCertificate>& stored) {
    std::set<std::string> used;
    for (const auto& [ref, file] : placement.by_ref) used.insert(file.name);
    for (const auto& [name, info] : stored) {
      bool ours = name.rfind("tls-", 0) == 0 || name.rfind("pem-", 0) == 0;
      if (!ours || used.count(name)) continue;
      if (auto ok = agent.deleteCertificate(endpoint(amp), name); !ok) {
        LB_WARN("unused certificate not removed amp=%s name=%s error=%s", amp.id().c_str(), name.c_str(),
                ok.error().message.c_str());
        continue;
      }
      LB_INFO("unused certificate removed amp=%s name=%s", amp.id().c_str(), name.c_str());
    }
  }

  Result<void> pushConfig(const std::string& lb_id, const std::string& only_amphora = "",
                          const IdSet& doomed = {}) {
    std::optional<render::LoadBalancerGraph> graph;
    auto r = store.read([&](store::Transaction& tx) -> Result<void> {
      auto g = render::loadGraph(tx, lb_id);
      if (!g) return g.error();
      graph = std::move(*g);
      return {};
    });
    if (!r) return r;
    auto lb = parseObj(graph->loadbalancer);
    if (!lb) return lb.error();
    render::RenderContext ctx;
    ctx.generation = graph->loadbalancer.revision;
    ctx.vip_address = lb->str("vip_address");
    ctx.session_cookie_secret = opt.session_cookie_secret;
    auto placement = fetchCertificates(*graph, ctx, *lb);
    if (!placement) return placement.error();
    const bool with_certs = !placement->by_ref.empty();
    // Rendered before any amphora is touched, so a document the proxy cannot run fails
    // the step alone; with certificates the real paths come from each agent below.
    render::RenderContext check = ctx;
    for (const auto& [ref, file] : placement->by_ref) check.certificate_paths[ref] = "/" + file.name;
    auto doc = render::renderProxyConfig(*graph, check);
    if (!doc) return doc.error();
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    for (const auto& a : *amps) {
      if (!only_amphora.empty() && a.id() != only_amphora) continue;
      // What this amphora has, so unchanged files are not sent again and unused ones
      // can go after the push.
      std::map<std::string, AmphoraClient::StoredCertificate> stored;
      auto pushed = [&]() -> Result<amphora::PutConfigResult> {
        auto listed = agent.listCertificates(endpoint(a));
        if (listed) {
          stored = std::move(*listed);
        } else if (with_certs) {
          return listed.error();
        } else {
          // An agent older than the listing route: nothing of ours can be on it
          // to clean up, and this document needs no files.
          LB_WARN("certificate listing failed; no clean-up amp=%s error=%s", a.id().c_str(),
                  listed.error().message.c_str());
        }
        std::string amp_doc = *doc;
        if (with_certs) {
          auto paths = placeCertificates(a, *placement, stored);
          if (!paths) return paths.error();
          render::RenderContext amp_ctx = ctx;
          amp_ctx.certificate_paths = std::move(*paths);
          auto rendered = render::renderProxyConfig(*graph, amp_ctx);
          if (!rendered) return rendered.error();
          amp_doc = std::move(*rendered);
        }
        return agent.putConfig(endpoint(a), amp_doc);
      }();
      if (!pushed && doomed.count(a.id())) {
        LB_WARN("config push failed on an amphora about to be replaced amp=%s error=%s", a.id().c_str(),
                pushed.error().message.c_str());
        continue;
      }
      if (!pushed) return pushed.error();
      LB_DEBUG("config pushed amp=%s lb=%s generation=%lld delta=%d unchanged=%d", a.id().c_str(),
               lb_id.c_str(), static_cast<long long>(pushed->generation), pushed->delta, pushed->unchanged);
      removeUnusedCertificates(a, *placement, stored);
    }
    return {};
  }

  Result<void> removeAmphoraeOf(const std::string& lb_id) {
    auto amps = loadAmphorae(lb_id);
    if (!amps) return amps.error();
    for (const auto& a : *amps) {
      if (auto ok = destroyAmphora(a.id()); !ok) return ok;
    }
    return {};
  }

  // ---- flows ---------------------------------------------------------------------

  void addConverge(Steps& steps, const std::string& lb_id, bool revert_on_failure, const IdSet& doomed = {}) {
    steps.push_back(makeStep("ensure-amphorae", [this, lb_id](FlowState&) { return ensureAmphorae(lb_id); }));
    if (revert_on_failure) {
      steps.push_back(makeStep(
          "build-amphorae", [this, lb_id](FlowState&) { return buildAll(lb_id); },
          [this, lb_id](FlowState&) { return removeAmphoraeOf(lb_id); }));
    } else {
      steps.push_back(makeStep("build-amphorae", [this, lb_id](FlowState&) { return buildAll(lb_id); }));
    }
    steps.push_back(makeStep("wait-for-agents", [this, lb_id](FlowState&) { return waitAll(lb_id); }));
    steps.push_back(makeStep("plug-vip", [this, lb_id](FlowState&) { return plugVips(lb_id); }));
    steps.push_back(
        makeStep("plug-member-networks", [this, lb_id](FlowState&) { return plugMemberNetworks(lb_id); }));
    steps.push_back(
        makeStep("configure-vrrp", [this, lb_id, doomed](FlowState&) { return configureVrrp(lb_id, doomed); }));
    steps.push_back(
        makeStep("push-config", [this, lb_id, doomed](FlowState&) { return pushConfig(lb_id, "", doomed); }));
  }

  Result<Steps> flowFor(const JobInfo& job, const rapidjson::Value& changes) {
    Steps steps;
    const std::string lb_id = job.lb_id;
    const std::string& kind = job.kind;
    if (kind == "loadbalancer.create") {
      std::string requested = jsonString(changes, "vip_address");
      steps.push_back(makeStep(
          "allocate-vip", [this, lb_id, requested](FlowState&) { return allocateVip(lb_id, requested); },
          [this, lb_id](FlowState&) { return deallocateVip(lb_id); }));
      addConverge(steps, lb_id, true);
    } else if (kind == "loadbalancer.delete") {
      steps.push_back(makeStep("remove-amphorae", [this, lb_id](FlowState&) { return removeAmphoraeOf(lb_id); }));
      steps.push_back(makeStep("deallocate-vip", [this, lb_id](FlowState&) { return deallocateVip(lb_id); }));
    } else if (kind == "loadbalancer.failover") {
      auto amps = loadAmphorae(lb_id);
      if (!amps) return amps.error();
      // One amphora at a time, so an ACTIVE_STANDBY pair keeps one serving.
      IdSet doomed;
      for (const auto& a : *amps) doomed.insert(a.id());
      for (const auto& a : *amps) {
        std::string id = a.id();
        doomed.erase(id);
        steps.push_back(makeStep("delete-amphora", [this, id](FlowState&) { return destroyAmphora(id); }));
        addConverge(steps, lb_id, false, doomed);
      }
      if (amps->empty()) addConverge(steps, lb_id, false);
    } else if (kind == "amphora.failover") {
      std::string id = job.object_id;
      steps.push_back(makeStep("delete-amphora", [this, id](FlowState&) { return destroyAmphora(id); }));
      if (!lb_id.empty()) addConverge(steps, lb_id, false);
    } else if (kind == "amphora.delete") {
      std::string id = job.object_id;
      steps.push_back(makeStep("delete-amphora", [this, id](FlowState&) { return destroyAmphora(id); }));
    } else if (kind == "amphora.config") {
      std::string id = job.object_id;
      steps.push_back(makeStep("agent-config", [this, id](FlowState&) -> Result<void> {
        auto amp = loadAmphora(id);
        if (!amp) return amp.error();
        if (!amp->has_value()) return {};
        // The management CIDRs go too, the same the agent.conf of a new amphora gets:
        // an amphora built before the option (or by an older controller) has none,
        // so its agent port is open to every source until this push closes it.
        return agent.putAgentConfig(endpoint(**amp), opt.controller_ip_port_list, opt.heartbeat_interval,
                                    opt.heartbeat_key, compute.managementCidrs());
      }));
      if (!lb_id.empty())
        steps.push_back(makeStep("push-config", [this, lb_id, id](FlowState&) { return pushConfig(lb_id, id); }));
    } else if (kind.rfind("listener.", 0) == 0 || kind.rfind("pool.", 0) == 0 || kind.rfind("member.", 0) == 0 ||
               kind.rfind("healthmonitor.", 0) == 0 || kind.rfind("l7policy.", 0) == 0 ||
               kind.rfind("l7rule.", 0) == 0 || kind == "loadbalancer.update") {
      const bool members_change = kind.rfind("member.", 0) == 0 || kind.rfind("pool.", 0) == 0;
      if (members_change)
        steps.push_back(
            makeStep("plug-member-networks", [this, lb_id](FlowState&) { return plugMemberNetworks(lb_id); }));
      steps.push_back(makeStep("push-config", [this, lb_id](FlowState&) { return pushConfig(lb_id); }));
      // A pool delete takes its members with it.
      if (members_change)
        steps.push_back(makeStep("unplug-member-networks",
                                 [this, lb_id](FlowState&) { return unplugUnusedMemberNetworks(lb_id); }));
    } else {
      return makeError(ErrorCode::kInvalidArgument, "unknown job kind " + kind);
    }
    return steps;
  }

  Result<Outcome> run(const store::Job& job, const FlowHooks& hooks) {
    rapidjson::Document payload;
    payload.Parse(job.payload.c_str());
    if (payload.HasParseError() || !payload.IsObject()) {
      LB_ERROR("job dropped: its payload is not a JSON object job=%lld kind=%s",
               static_cast<long long>(job.id), job.kind.c_str());
      return Outcome::kDone;
    }
    JobInfo info;
    info.kind = job.kind;
    info.request_id = jsonString(payload, "request_id");
    info.object_id = jsonString(payload, "object_id");
    info.lb_id = jsonString(payload, "load_balancer_id");
    if (info.kind.rfind("amphora.", 0) == 0 && info.lb_id.empty()) {
      auto amp = loadAmphora(info.object_id);
      if (!amp) return amp.error();
      if (amp->has_value()) info.lb_id = (*amp)->rec.load_balancer_id;
    }
    rapidjson::Value empty(rapidjson::kObjectType);
    auto it = payload.FindMember("changes");
    const rapidjson::Value& changes = it != payload.MemberEnd() && it->value.IsObject() ? it->value : empty;

    auto start = std::chrono::steady_clock::now();
    FlowResult result;
    auto steps = flowFor(info, changes);
    if (!steps) {
      result.ok = false;
      result.failed_step = "plan";
      result.error = steps.error();
    } else {
      FlowState state;
      result = runFlow(*steps, state, opt.retry, sleeper, hooks);
    }
    if (result.interrupted) return Outcome::kInterrupted;
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (info.lb_id.empty()) {
      if (!result.ok) {
        LB_ERROR("job failed job=%s object=%s request=%s step=%s error=%s", info.kind.c_str(),
                 info.object_id.c_str(), info.request_id.c_str(), result.failed_step.c_str(),
                 result.error.message.c_str());
      }
      return Outcome::kDone;
    }
    Result<void> settled;
    if (result.ok) {
      settled = store.write([&](store::Transaction& tx) { return settleSucceeded(tx, info.lb_id); });
      LB_INFO("job done job=%s lb=%s object=%s request=%s ms=%.1f", info.kind.c_str(), info.lb_id.c_str(),
              info.object_id.c_str(), info.request_id.c_str(), ms);
    } else {
      LB_ERROR("job failed, objects set to ERROR job=%s lb=%s object=%s request=%s step=%s error=%s%s",
               info.kind.c_str(), info.lb_id.c_str(), info.object_id.c_str(), info.request_id.c_str(),
               result.failed_step.c_str(), result.error.message.c_str(),
               result.revert_errors.empty() ? "" : " (some reverts failed too)");
      settled = store.write(
          [&](store::Transaction& tx) { return settleFailed(tx, info.lb_id, info.kind, info.object_id); });
    }
    if (!settled) return settled.error();
    return Outcome::kDone;
  }

  // Brings a spare to READY: builds it unless its instance exists, waits for its
  // agent. On failure the spare is deleted.
  Result<void> finishSpare(const std::string& id) {
    auto ok = buildAmphora(id, "");
    if (ok) ok = waitForAgent(id);
    if (!ok) {
      LB_ERROR("spare amphora failed amp=%s error=%s", id.c_str(), ok.error().message.c_str());
      (void)destroyAmphora(id);
      return ok;
    }
    if (auto saved = updateAmphora(id, [](Obj& o) { o.set("status", "READY"); }); !saved) return saved;
    LB_INFO("spare amphora ready amp=%s", id.c_str());
    return {};
  }

  Result<int> fillSpares() {
    // Holding spare_mu, nothing else in this process is building a spare: one still
    // BOOTING was left by a process that died mid-build (spares are built by one
    // housekeeping process). Finish it; building is idempotent per amphora id.
    std::lock_guard<std::mutex> lock(spare_mu);
    std::vector<std::string> left;
    auto found = store.read([&](store::Transaction& tx) -> Result<void> {
      store::Query q;
      q.kind = kAmphora;
      q.load_balancer_id = "";
      auto spares = loadObjs(tx, q);
      if (!spares) return spares.error();
      for (const auto& s : *spares) {
        if (s.str("status") == "BOOTING") left.push_back(s.id());
      }
      return {};
    });
    if (!found) return found.error();
    for (const auto& id : left) {
      LB_INFO("resuming an interrupted spare amphora build amp=%s", id.c_str());
      if (auto ok = finishSpare(id); !ok) return ok.error();
    }
    if (opt.spare_amphora_pool_size <= 0) return 0;
    int built = 0;
    for (int guard = 0; guard < opt.spare_amphora_pool_size; ++guard) {
      std::string id;
      auto r = store.write([&](store::Transaction& tx) -> Result<void> {
        if (auto ok = tx.lockKey("spare-pool"); !ok) return ok;
        store::Query q;
        q.kind = kAmphora;
        q.load_balancer_id = "";
        auto spares = loadObjs(tx, q);
        if (!spares) return spares.error();
        int live = 0;
        for (const auto& s : *spares) {
          std::string st = s.str("status");
          if (st == "READY" || st == "BOOTING") ++live;
        }
        if (live >= opt.spare_amphora_pool_size) return {};
        Obj a = newAmphoraRecord(newUuid());
        id = a.id();
        return insertObj(tx, a);
      });
      if (!r) return r.error();
      if (id.empty()) break;
      if (auto ok = finishSpare(id); !ok) return ok.error();
      ++built;
    }
    return built;
  }

  Result<int> rotate(std::chrono::hours within) {
    std::vector<Obj> due;
    std::string limit = common::utcTimestamp(std::chrono::system_clock::now() + within);
    auto r = store.read([&](store::Transaction& tx) -> Result<void> {
      store::Query q;
      q.kind = kAmphora;
      auto amps = loadObjs(tx, q);
      if (!amps) return amps.error();
      for (auto& a : *amps) {
        std::string exp = a.str("cert_expiration");
        std::string st = a.str("status");
        // ISO timestamps of one format compare as strings.
        if (!exp.empty() && exp < limit && (st == "ALLOCATED" || st == "READY")) due.push_back(std::move(a));
      }
      return {};
    });
    if (!r) return r.error();
    int rotated = 0;
    for (const auto& a : due) {
      auto cert = pki.issueServerCert(a.id(), a.str("lb_network_ip"));
      if (!cert) return cert.error();
      if (auto ok = agent.rotateServerCertificate(endpoint(a), *cert); !ok) {
        LB_WARN("certificate rotation failed amp=%s error=%s", a.id().c_str(), ok.error().message.c_str());
        continue;
      }
      std::string exp = common::utcTimestamp(cert->not_after);
      if (auto ok = updateAmphora(a.id(), [&](Obj& o) { o.set("cert_expiration", exp); }); !ok) return ok.error();
      LB_INFO("amphora certificate rotated amp=%s not_after=%s", a.id().c_str(), exp.c_str());
      ++rotated;
    }
    return rotated;
  }
};

std::string agentConfigText(const ControllerOptions& opt, const std::string& amphora_id,
                            const std::vector<std::string>& management_cidrs) {
  std::string targets;
  for (const auto& t : opt.controller_ip_port_list) targets += (targets.empty() ? "" : ", ") + t;
  // The agent's firewall opens its port (and VRRP) to the management network only;
  // a driver that does not know it leaves the option out (the agent stays open).
  std::string management;
  for (const auto& c : management_cidrs) management += (management.empty() ? "" : ", ") + c;
  return "# Written by banyan-provider for amphora " + amphora_id +
         ".\n"
         "[DEFAULT]\n"
         "log_level = " + opt.amphora_log_level +
         "\n\n"
         "[amphora_agent]\n"
         // "::" as Octavia's amphora agent template: every address, IPv4 included (the
         // agent serves both), so an IPv6 management network reaches it too.
         "bind_host = ::\n"
         "bind_port = " + std::to_string(opt.agent_port) +
         "\n"
         "agent_server_cert = {amphora_dir}/tls/server.pem\n"
         "agent_server_key = {amphora_dir}/tls/server.key\n"
         "agent_server_ca = {amphora_dir}/tls/client_ca.pem\n"
         "state_dir = {amphora_dir}/state\n"
         "proxy_binary = " + opt.amphora_proxy_binary +
         "\n"
         "proxy_control_socket = {amphora_dir}/proxy.sock\n"
         "amphora_id = " + amphora_id +
         "\n"
         "system_driver = " + opt.amphora_system_driver + "\n" +
         (management.empty() ? "" : "management_cidrs = " + management + "\n") +
         "\n"
         "[health_manager]\n"
         "controller_ip_port_list = " + targets +
         "\n"
         "heartbeat_interval = " + std::to_string(opt.heartbeat_interval) +
         "\n"
         "heartbeat_key = " + opt.heartbeat_key + "\n";
}

Controller::Controller(store::Store& store, drivers::ComputeDriver& compute, drivers::NetworkDriver& network,
                       amphora::AgentClient& agent, amphora::Pki& pki, ControllerOptions options, Sleeper& sleeper) {
  auto adapter = makeAgentAmphoraClient(agent);
  AmphoraClient& seam = *adapter;
  impl_.reset(
      new Impl{store, compute, network, seam, pki, std::move(options), sleeper, {}, std::move(adapter), {}, {}});
}

Controller::Controller(store::Store& store, drivers::ComputeDriver& compute, drivers::NetworkDriver& network,
                       AmphoraClient& agent, amphora::Pki& pki, ControllerOptions options, Sleeper& sleeper)
    : impl_(new Impl{store, compute, network, agent, pki, std::move(options), sleeper, {}, nullptr, {}, {}}) {}

Controller::~Controller() = default;

Result<Controller::Outcome> Controller::runJob(const store::Job& job, const FlowHooks& hooks) {
  return impl_->run(job, hooks);
}

Result<int> Controller::fillSparePool() { return impl_->fillSpares(); }

Result<int> Controller::rotateCertificates(std::chrono::hours within) { return impl_->rotate(within); }

}  // namespace banyan::provider::controller
