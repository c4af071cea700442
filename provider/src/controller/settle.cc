#include "controller/settle.h"

#include <functional>
#include <iterator>
#include <string_view>
#include <vector>

#include "controller/records.h"

namespace banyan::provider::controller {

namespace {

bool pending(const std::string& status) { return status.rfind("PENDING_", 0) == 0; }

// Records of other kinds that live and die with a load balancer.
constexpr const char* kLbOwnedKinds[] = {"amphora", "amphora_health", "amphora_stats",
                                         "listener_stats", "vrrp_group"};

Result<void> removeLoadBalancer(store::Transaction& tx, const std::string& lb_id) {
  std::vector<const char*> kinds(std::begin(kChildKinds), std::end(kChildKinds));
  kinds.insert(kinds.end(), std::begin(kLbOwnedKinds), std::end(kLbOwnedKinds));
  for (const char* kind : kinds) {
    store::Query q;
    q.kind = kind;
    q.load_balancer_id = lb_id;
    auto recs = tx.list(q);
    if (!recs) return recs.error();
    for (const auto& r : *recs) {
      if (auto ok = tx.remove(kind, r.id); !ok) return ok;
    }
  }
  auto ok = tx.remove("loadbalancer", lb_id);
  if (!ok && ok.error().code != common::ErrorCode::kNotFound) return ok;
  return {};
}

Result<void> setProvisioning(store::Transaction& tx, Obj& o, const char* status) {
  o.set("provisioning_status", status);
  if (status == std::string_view("ACTIVE") &&
      (o.rec.kind == "healthmonitor" || o.rec.kind == "l7policy" || o.rec.kind == "l7rule")) {
    // Octavia's worker sets these when the object goes ACTIVE: they are not measured.
    o.set("operating_status", o.boolean("admin_state_up", true) ? "ONLINE" : "OFFLINE");
  }
  o.touch();
  return saveObj(tx, o);
}

// Calls fn on every PENDING_* child object of the load balancer, children first.
Result<void> forEachPendingChild(store::Transaction& tx, const std::string& lb_id,
                                 const std::function<Result<void>(Obj&, const std::string& status)>& fn) {
  for (const char* kind : kChildKinds) {
    store::Query q;
    q.kind = kind;
    q.load_balancer_id = lb_id;
    auto objs = loadObjs(tx, q);
    if (!objs) return objs.error();
    for (auto& o : *objs) {
      std::string st = o.str("provisioning_status");
      if (!pending(st)) continue;
      if (auto ok = fn(o, st); !ok) return ok;
    }
  }
  return {};
}

}  // namespace

Result<void> settleSucceeded(store::Transaction& tx, const std::string& lb_id) {
  if (auto ok = tx.lockKey("loadbalancer:" + lb_id); !ok) return ok;
  auto lb = loadObj(tx, "loadbalancer", lb_id);
  if (!lb) return lb.error();
  if (!lb->has_value()) return {};
  if ((*lb)->str("provisioning_status") == "PENDING_DELETE") return removeLoadBalancer(tx, lb_id);
  auto children = forEachPendingChild(tx, lb_id, [&](Obj& o, const std::string& st) -> Result<void> {
    if (st != "PENDING_DELETE") return setProvisioning(tx, o, "ACTIVE");
    if (auto ok = tx.remove(o.rec.kind, o.id()); !ok) return ok;
    if (o.rec.kind == "listener") (void)tx.remove("listener_stats", o.id());
    return {};
  });
  if (!children) return children;
  if (pending((*lb)->str("provisioning_status"))) return setProvisioning(tx, **lb, "ACTIVE");
  return {};
}

Result<void> settleFailed(store::Transaction& tx, const std::string& lb_id, const std::string& job_kind,
                          const std::string& object_id) {
  if (auto ok = tx.lockKey("loadbalancer:" + lb_id); !ok) return ok;
  std::string object_kind = job_kind.substr(0, job_kind.find('.'));
  bool lb_job = object_kind == "loadbalancer" || job_kind == "amphora.failover";
  bool batch = job_kind == "member.batch_update";
  auto children = forEachPendingChild(tx, lb_id, [&](Obj& o, const std::string& st) {
    bool target = (!batch && o.rec.kind == object_kind && o.id() == object_id) ||
                  (batch && o.rec.kind == "member");
    return setProvisioning(tx, o, (target || st != "PENDING_UPDATE") ? "ERROR" : "ACTIVE");
  });
  if (!children) return children;
  auto lb = loadObj(tx, "loadbalancer", lb_id);
  if (!lb) return lb.error();
  if (!lb->has_value()) return {};
  Obj& l = **lb;
  if (lb_job) return setProvisioning(tx, l, "ERROR");
  if (pending(l.str("provisioning_status"))) return setProvisioning(tx, l, "ACTIVE");
  return {};
}

}  // namespace banyan::provider::controller
