// Internals of the API module shared by the per-resource files. Not for other modules.
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_error.h"
#include "api/api_service.h"
#include "api/json_util.h"
#include "api/list_query.h"
#include "api/validation.h"

namespace banyan::provider::api {

// One request in flight.
struct Call {
  const common::HttpRequest& http;
  auth::Credentials creds;
  bool is_admin = false;
  std::vector<std::string> args;  // path parameters, in order
  std::string request_id;
  std::string path_url;           // absolute URL of the path, for links
  std::vector<std::string> settle_lbs;  // noop_driver: load balancers to mark ACTIVE after commit
  bool settle_catalog = false;
};

// A stored object: its indexed columns plus the parsed body.
struct Obj {
  store::Record rec;
  JsonDoc doc;
  const std::string& id() const { return rec.id; }
  std::string str(std::string_view key) const { return jstring(doc, key); }
  JsonAlloc& alloc() { return doc.GetAllocator(); }
};

enum class Driver { kNoop, kBanyan };

// Object kinds as stored.
inline constexpr const char* kLb = "loadbalancer";
inline constexpr const char* kListener = "listener";
inline constexpr const char* kPool = "pool";
inline constexpr const char* kMember = "member";
inline constexpr const char* kHm = "healthmonitor";
inline constexpr const char* kL7Policy = "l7policy";
inline constexpr const char* kL7Rule = "l7rule";
inline constexpr const char* kQuota = "quota";
inline constexpr const char* kFlavor = "flavor";
inline constexpr const char* kFlavorProfile = "flavorprofile";
inline constexpr const char* kAz = "availability_zone";
inline constexpr const char* kAzProfile = "availability_zone_profile";
inline constexpr const char* kAmphora = "amphora";
inline constexpr const char* kListenerStats = "listener_stats";
inline constexpr const char* kAmphoraStats = "amphora_stats";

using Txn = store::Transaction;
using Handler = common::HttpResponse (Api::*)(Call&);

class Api {
 public:
  Api(store::Store& store, auth::Authenticator& authenticator, const auth::Policy& policy,
      ApiOptions options);
  common::HttpResponse handle(const common::HttpRequest& request);

  const ApiOptions& options() const { return opts_; }

  // --- plumbing (objects.cc) ---
  void authorize(const Call& c, const std::string& action, const std::string& project_id) const;
  bool allowed(const Call& c, const std::string& action, const std::string& project_id) const;
  // Runs fn in a read or write transaction; ApiError thrown inside comes out again.
  void read(const std::function<void(Txn&)>& fn);
  void write(const std::function<void(Txn&)>& fn);
  std::optional<Obj> load(Txn& t, std::string_view kind, std::string_view id);
  Obj mustLoad(Txn& t, std::string_view kind, const std::string& id, const std::string& resource);
  // mustLoad for a show, which renders the object's relation lists next: the store may
  // read them in the same round trip as the object (Transaction::prefetchLiveChildIds).
  Obj loadToShow(Txn& t, std::string_view kind, const std::string& id, const std::string& resource);
  std::vector<Obj> loadAll(Txn& t, const store::Query& q);
  void insert(Txn& t, Obj& o);
  void save(Txn& t, Obj& o);
  void erase(Txn& t, std::string_view kind, std::string_view id);
  static Obj newObj(std::string kind, std::string id, std::string project_id, std::string parent_id,
                    std::string lb_id);
  static void setStatus(Obj& o, std::string_view provisioning);
  static void setOperating(Obj& o, std::string_view operating);
  static void touch(Obj& o);  // updated_at = now

  // The load balancer lock taken by every child change: lockKey, then ACTIVE -> PENDING_UPDATE,
  // else 409 "Load Balancer <id> is immutable and cannot be updated.".
  Obj lockLbForChild(Txn& t, const std::string& lb_id);
  // Listeners whose default pool or L7 redirect pool is pool_id.
  std::vector<std::string> listenersUsingPool(Txn& t, const std::string& pool_id);
  void markListenersPendingUpdate(Txn& t, const std::vector<std::string>& listener_ids);
  // 403 when the project's quota for kind is used up (counts objects not DELETED).
  void checkQuota(Txn& t, const std::string& project_id, const std::string& kind, int64_t adding = 1);
  int64_t quotaLimit(Txn& t, const std::string& project_id, const std::string& kind);

  Driver driverFor(const std::string& provider) const;  // 400/501 for unknown providers
  std::string resolveProvider(const std::string& requested) const;
  // Hands a change to the load balancer's provider: banyan enqueues a job in t; noop
  // remembers the load balancer so handle() marks it ACTIVE after commit.
  // The Banyan provider refuses (501, as Octavia's provider drivers do) a change that
  // leaves the load balancer with something its amphorae cannot run: the change's
  // objects are rendered into the proxy document inside the request's transaction.
  void checkProviderSupports(Txn& t, const Obj& lb, const std::string& job_kind);
  // Octavia's _validate_tls_refs and _validate_client_ca_and_crl_refs (certificates.cc):
  // with a cert manager, 400 with Octavia's message when a reference is unreadable or
  // not what its field needs; nothing without one. As the caller (its project, and with
  // Keystone its token, which Barbican ACL grants need).
  void checkTlsRefs(const Call& c, const std::vector<std::string>& refs);
  void checkCaAndCrlRefs(const Call& c, const std::string& ca_ref, const std::string& crl_ref);
  void dispatch(Call& c, Txn& t, const Obj& lb, const std::string& job_kind, const std::string& object_id,
                const JsonValue* changes = nullptr, bool cascade = false);
  // noop_driver: everything PENDING_* under the load balancer becomes ACTIVE (or is deleted).
  void settleLoadBalancer(const std::string& lb_id);

  // Rendering: the stored body plus relations and aliases, as Octavia answers.
  JsonDoc render(Txn& t, const Obj& o);
  // The same in two steps, so that a list pays for relations only on the page it
  // returns, and with one store query per relation for the whole page.
  static void renderBase(JsonDoc& doc);  // in place: aliases and null names
  void renderRelations(Txn& t, const std::vector<const store::Record*>& recs,
                       const std::vector<JsonDoc*>& docs);
  // GET on a collection of stored objects: loads q (narrowed by the exact project and
  // load balancer filters the store indexes), filters, sorts and pages (list_query.h),
  // renders the page and serialises it. check runs first in the read transaction (the
  // parent lookup and policy check of a sub-collection).
  common::HttpResponse listObjects(Call& c, store::Query q, const std::string& collection_key,
                                   const std::string& links_key, const std::vector<FilterAlias>& aliases,
                                   const std::function<void(Txn&)>& check = {});
  // The page the store can cut for q (every filter and sort key a column, no tags), or
  // nullopt when listObjects must read every matching object and page in memory.
  std::optional<store::PageSpec> storePage(const store::Query& q, const ListParams& p,
                                           const std::vector<FilterAlias>& aliases) const;
  common::HttpResponse json(int status, const std::string& root, JsonDoc body);
  common::HttpResponse jsonValue(int status, const JsonValue& whole);
  common::HttpResponse noContent(int status = 204);
  // GET on a collection: load, render, then apply the query (list_query.h).
  common::HttpResponse listResponse(Call& c, const std::string& collection_key,
                                    const std::string& links_key, std::vector<JsonDoc> items,
                                    const std::vector<FilterAlias>& aliases,
                                    const std::set<std::string>& ignored = {});
  // Which project a list shows: own project unless the caller may read globally.
  std::optional<std::string> listScope(Call& c, const std::string& object);
  std::string callerProject(const Call& c) const { return c.creds.project_id; }

  // --- resources ---
  common::HttpResponse rootVersions(Call& c);
  common::HttpResponse v2String(Call& c);
  common::HttpResponse healthcheck(Call& c);

  common::HttpResponse lbList(Call& c);
  common::HttpResponse lbCreate(Call& c);
  common::HttpResponse lbShow(Call& c);
  common::HttpResponse lbUpdate(Call& c);
  common::HttpResponse lbDelete(Call& c);
  common::HttpResponse lbStatus(Call& c);
  common::HttpResponse lbStats(Call& c);
  common::HttpResponse lbFailover(Call& c);

  common::HttpResponse listenerList(Call& c);
  common::HttpResponse listenerCreate(Call& c);
  common::HttpResponse listenerShow(Call& c);
  common::HttpResponse listenerUpdate(Call& c);
  common::HttpResponse listenerDelete(Call& c);
  common::HttpResponse listenerStats(Call& c);

  common::HttpResponse poolList(Call& c);
  common::HttpResponse poolCreate(Call& c);
  common::HttpResponse poolShow(Call& c);
  common::HttpResponse poolUpdate(Call& c);
  common::HttpResponse poolDelete(Call& c);

  common::HttpResponse memberList(Call& c);
  common::HttpResponse memberCreate(Call& c);
  common::HttpResponse memberShow(Call& c);
  common::HttpResponse memberUpdate(Call& c);
  common::HttpResponse memberDelete(Call& c);
  common::HttpResponse memberBatch(Call& c);

  common::HttpResponse hmList(Call& c);
  common::HttpResponse hmCreate(Call& c);
  common::HttpResponse hmShow(Call& c);
  common::HttpResponse hmUpdate(Call& c);
  common::HttpResponse hmDelete(Call& c);

  common::HttpResponse l7pList(Call& c);
  common::HttpResponse l7pCreate(Call& c);
  common::HttpResponse l7pShow(Call& c);
  common::HttpResponse l7pUpdate(Call& c);
  common::HttpResponse l7pDelete(Call& c);
  common::HttpResponse l7rList(Call& c);
  common::HttpResponse l7rCreate(Call& c);
  common::HttpResponse l7rShow(Call& c);
  common::HttpResponse l7rUpdate(Call& c);
  common::HttpResponse l7rDelete(Call& c);

  common::HttpResponse quotaList(Call& c);
  common::HttpResponse quotaShow(Call& c);
  common::HttpResponse quotaDefaults(Call& c);
  common::HttpResponse quotaUpdate(Call& c);
  common::HttpResponse quotaDelete(Call& c);

  common::HttpResponse providerList(Call& c);
  common::HttpResponse providerFlavorCaps(Call& c);
  common::HttpResponse providerAzCaps(Call& c);
  common::HttpResponse flavorList(Call& c);
  common::HttpResponse flavorCreate(Call& c);
  common::HttpResponse flavorShow(Call& c);
  common::HttpResponse flavorUpdate(Call& c);
  common::HttpResponse flavorDelete(Call& c);
  common::HttpResponse fpList(Call& c);
  common::HttpResponse fpCreate(Call& c);
  common::HttpResponse fpShow(Call& c);
  common::HttpResponse fpUpdate(Call& c);
  common::HttpResponse fpDelete(Call& c);
  common::HttpResponse azList(Call& c);
  common::HttpResponse azCreate(Call& c);
  common::HttpResponse azShow(Call& c);
  common::HttpResponse azUpdate(Call& c);
  common::HttpResponse azDelete(Call& c);
  common::HttpResponse azpList(Call& c);
  common::HttpResponse azpCreate(Call& c);
  common::HttpResponse azpShow(Call& c);
  common::HttpResponse azpUpdate(Call& c);
  common::HttpResponse azpDelete(Call& c);

  common::HttpResponse neutronNetworks(Call& c);
  common::HttpResponse neutronNetwork(Call& c);
  common::HttpResponse neutronSubnets(Call& c);
  common::HttpResponse neutronSubnet(Call& c);
  // With networks configured: the view of a subnet or network id, else 400
  // "Subnet <id> not found." / "Network <id> not found.". nullptr when none configured.
  // required = false (noop_driver): unknown ids are accepted and give nullptr.
  const NetworkView* checkSubnet(const std::string& subnet_id, bool required = true) const;
  const NetworkView* checkNetwork(const std::string& network_id, bool required = true) const;

  common::HttpResponse ampList(Call& c);
  common::HttpResponse ampShow(Call& c);
  common::HttpResponse ampDelete(Call& c);
  common::HttpResponse ampFailover(Call& c);
  common::HttpResponse ampConfig(Call& c);
  common::HttpResponse ampStats(Call& c);

  // Shared pieces of the resources (used by the load balancer full-graph create too).
  // Each validates one single-create body and inserts the object (PENDING_CREATE).
  Obj createListenerObj(Call& c, Txn& t, Obj& lb, JsonValue& body);
  Obj createPoolObj(Call& c, Txn& t, Obj& lb, JsonValue& body, const Obj* listener);
  // batch_checked: the caller already refused duplicates and checked the quota.
  Obj createMemberObj(Call& c, Txn& t, Obj& pool, JsonValue& body, bool pool_has_hm, bool batch_checked = false);
  Obj createHmObj(Call& c, Txn& t, Obj& pool, JsonValue& body);
  Obj createL7PolicyObj(Call& c, Txn& t, Obj& listener, JsonValue& body);
  Obj createL7RuleObj(Call& c, Txn& t, Obj& policy, JsonValue& body);
  void checkPoolListenerProtocols(const std::string& pool_protocol, const std::string& listener_protocol);
  void renumberL7Policies(Txn& t, const std::string& listener_id, const std::string& moved_id,
                          std::optional<int64_t> position);
  // Deletes (noop) or marks PENDING_DELETE (banyan) a whole subtree, children first.
  void deleteTree(Txn& t, Obj& o, bool mark_only);
  JsonDoc statusTree(Txn& t, const Obj& lb);

 private:
  store::Store& store_;
  auth::Authenticator& authenticator_;
  const auth::Policy& policy_;
  ApiOptions opts_;
};

// Field tables shared by single and full-graph creates (see the resource files).
const std::vector<FieldSpec>& listenerFields();
const std::vector<FieldSpec>& poolFields();
const std::vector<FieldSpec>& memberFields();
const std::vector<FieldSpec>& hmFields();
const std::vector<FieldSpec>& l7PolicyFields();
const std::vector<FieldSpec>& l7RuleFields();

// Applies ?fields= of a show request to one object.
JsonDoc applyFields(const Call& c, JsonDoc obj);
// For PUT: copies each present body field onto the stored object; null becomes the value
// defaults_on_null gives for that key (if any), else null.
void applyUpdate(Obj& o, const JsonValue& body, const JsonValue& defaults_on_null);

// Adds name/description/admin_state_up/tags/project_id/status/timestamps common to the
// status-bearing objects, from a validated POST body.
void fillCommon(Obj& o, const JsonValue& body, bool has_description);

}  // namespace banyan::provider::api
