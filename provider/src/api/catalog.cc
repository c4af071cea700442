// Providers, flavors, flavor profiles, availability zones and their profiles
// (octavia/api/v2/controllers/{provider,flavors,flavor_profiles,availability_zones,
// availability_zone_profiles}.py). These objects belong to no project and carry no status.
#include <algorithm>
#include <map>

#include "api/api_impl.h"

namespace banyan::provider::api {
namespace {

constexpr const char* kNilUuid = "00000000-0000-0000-0000-000000000000";

// These objects have no created_at; Octavia's default order is then the primary key.
void sortById(std::vector<JsonDoc>& items, const char* key) {
  std::stable_sort(items.begin(), items.end(),
                   [key](const JsonDoc& a, const JsonDoc& b) { return jstring(a, key) < jstring(b, key); });
}

struct Capability {
  const char* name;
  const char* description;
};

// The banyan driver reads the amphora driver's flavor and availability zone keys.
const std::vector<Capability>& flavorCapabilities() {
  static const std::vector<Capability> caps = {
      {"loadbalancer_topology", "The load balancer topology. One of: SINGLE - One amphora per load balancer. "
                                "ACTIVE_STANDBY - Two amphora per load balancer."},
      {"compute_flavor", "The compute driver flavor ID."},
      {"amp_image_tag", "The amphora image tag."},
  };
  return caps;
}
const std::vector<Capability>& azCapabilities() {
  static const std::vector<Capability> caps = {
      {"compute_zone", "The compute availability zone."},
      {"management_network", "The management network ID for the amphora."},
      {"valid_vip_networks", "List of network IDs that are allowed for VIP use. This overrides/replaces "
                             "the list of allowed networks configured in `octavia.conf`."},
  };
  return caps;
}

// Validates profile metadata (flavor_data / availability_zone_data) against the provider.
void checkProfileData(Api& api, const std::string& provider, const std::string& field, const std::string& text,
                      const std::vector<Capability>& caps) {
  std::string resolved = api.resolveProvider(provider);
  auto doc = parseJson(text);
  if (!doc || !doc->IsObject()) throwValidation("Invalid " + field + ": the value is not a JSON object.");
  for (auto& m : doc->GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    bool known = false;
    for (const auto& c : caps) known = known || key == c.name;
    if (!known && api.driverFor(resolved) == Driver::kBanyan)
      throwApi(501, "Provider '" + resolved + "' does not support a requested option: " + key +
                        " is not a supported " + field + " key.");
    if (key == "loadbalancer_topology" && (!m.value.IsString() ||
                                           (std::string(m.value.GetString()) != "SINGLE" &&
                                            std::string(m.value.GetString()) != "ACTIVE_STANDBY")))
      throwApi(501, "Provider '" + resolved + "' does not support a requested option: "
                    "loadbalancer_topology must be SINGLE or ACTIVE_STANDBY.");
  }
}

common::HttpResponse capabilities(Api& api, Call& c, const std::string& action, const char* key,
                                  const std::vector<Capability>& caps) {
  api.authorize(c, action, c.creds.project_id);
  const std::string& provider = c.args[0];
  bool enabled = false;
  for (const auto& p : api.options().enabled_provider_drivers) enabled = enabled || p.first == provider;
  if (!enabled) throwApi(400, "Provider '" + provider + "' is not enabled.");
  api.driverFor(provider);
  std::vector<JsonDoc> items;
  for (const auto& cap : caps) {
    JsonDoc d(rapidjson::kObjectType);
    d.AddMember("name", rapidjson::StringRef(cap.name), d.GetAllocator());
    d.AddMember("description", rapidjson::StringRef(cap.description), d.GetAllocator());
    items.push_back(std::move(d));
  }
  ListParams p = parseListParams(c.http.query_params, 0);
  p.limit.reset();
  p.marker.clear();
  ListPage page = applyListParams(std::move(items), p, c.path_url, {}, {"name", "description"});
  JsonDoc out(rapidjson::kObjectType);
  auto& a = out.GetAllocator();
  JsonValue arr(rapidjson::kArrayType);
  for (auto& i : page.items) arr.PushBack(JsonValue(i, a), a);
  out.AddMember(rapidjson::StringRef(key), std::move(arr), a);
  return api.jsonValue(200, out);
}

const std::vector<FieldSpec>& profileFields(const char* data_field) {
  static std::map<std::string, std::vector<FieldSpec>> cache = {
      {"flavor_data",
       {{.name = "name", .required = true}, {.name = "provider_name", .required = true},
        {.name = "flavor_data", .required = true, .max_len = 4096}}},
      {"availability_zone_data",
       {{.name = "name", .required = true}, {.name = "provider_name", .required = true},
        {.name = "availability_zone_data", .required = true, .max_len = 4096}}},
  };
  return cache.at(data_field);
}

}  // namespace

common::HttpResponse Api::providerList(Call& c) {
  authorize(c, "provider:get_all", c.creds.project_id);
  std::vector<JsonDoc> items;
  for (const auto& [name, description] : opts_.enabled_provider_drivers) {
    JsonDoc d(rapidjson::kObjectType);
    d.AddMember("name", jstr(name, d.GetAllocator()), d.GetAllocator());
    d.AddMember("description", jstr(description, d.GetAllocator()), d.GetAllocator());
    items.push_back(std::move(d));
  }
  ListParams p = parseListParams(c.http.query_params, 0);
  ListParams fields_only;
  fields_only.fields = p.fields;
  ListPage page = applyListParams(std::move(items), fields_only, c.path_url, {}, {});
  JsonDoc out(rapidjson::kObjectType);
  auto& a = out.GetAllocator();
  JsonValue arr(rapidjson::kArrayType);
  for (auto& i : page.items) arr.PushBack(JsonValue(i, a), a);
  out.AddMember("providers", std::move(arr), a);
  return jsonValue(200, out);
}

common::HttpResponse Api::providerFlavorCaps(Call& c) {
  return capabilities(*this, c, "provider-flavor:get_all", "flavor_capabilities", flavorCapabilities());
}

common::HttpResponse Api::providerAzCaps(Call& c) {
  return capabilities(*this, c, "provider-availability-zone:get_all", "availability_zone_capabilities",
                      azCapabilities());
}

// ---- flavor profiles and availability zone profiles (same shape) ----

namespace {
struct ProfileKind {
  const char* kind;
  const char* root;
  const char* collection;
  const char* links;
  const char* resource;
  const char* policy;
  const char* data_field;
  const char* user_kind;      // the object that references a profile
  const char* user_ref_field;
};
const ProfileKind kFp{kFlavorProfile, "flavorprofile", "flavorprofiles", "flavorprofile_links",
                      "Flavor profile", "flavor-profile", "flavor_data", kFlavor, "flavor_profile_id"};
const ProfileKind kAzp{kAzProfile, "availability_zone_profile", "availability_zone_profiles",
                       "availability_zone_profile_links", "Availability Zone Profile",
                       "availability-zone-profile", "availability_zone_data", kAz,
                       "availability_zone_profile_id"};

bool profileInUse(Api& api, Txn& t, const ProfileKind& k, const std::string& id) {
  store::Query q;
  q.kind = k.user_kind;
  for (auto& o : api.loadAll(t, q))
    if (o.str(k.user_ref_field) == id) return true;
  return false;
}

common::HttpResponse profileList(Api& api, Call& c, const ProfileKind& k) {
  api.authorize(c, std::string(k.policy) + ":get_all", c.creds.project_id);
  std::vector<JsonDoc> items;
  api.read([&](Txn& t) {
    store::Query q;
    q.kind = k.kind;
    for (auto& o : api.loadAll(t, q)) items.push_back(api.render(t, o));
  });
  sortById(items, "id");
  return api.listResponse(c, k.collection, k.links, std::move(items), {});
}

common::HttpResponse profileShow(Api& api, Call& c, const ProfileKind& k) {
  api.authorize(c, std::string(k.policy) + ":get_one", c.creds.project_id);
  if (c.args[0] == kNilUuid) throwNotFound(k.resource, c.args[0]);
  JsonDoc out;
  api.read([&](Txn& t) { out = api.render(t, api.mustLoad(t, k.kind, c.args[0], k.resource)); });
  return api.json(200, k.root, applyFields(c, std::move(out)));
}

common::HttpResponse profileCreate(Api& api, Call& c, const ProfileKind& k, const std::vector<Capability>& caps) {
  api.authorize(c, std::string(k.policy) + ":post", c.creds.project_id);
  JsonDoc body = parseRootBody(c.http.body, k.root);
  validateBody(body, profileFields(k.data_field), BodyMode::kPost, k.root, body.GetAllocator());
  checkProfileData(api, jstring(body, "provider_name"), k.data_field, jstring(body, k.data_field), caps);
  Obj o = Api::newObj(k.kind, newUuid(), "", "", "");
  auto& a = o.alloc();
  jsetStr(o.doc, "id", o.id(), a);
  for (const char* key : {"name", "provider_name", k.data_field}) jsetStr(o.doc, key, jstring(body, key), a);
  JsonDoc out;
  api.write([&](Txn& t) {
    api.insert(t, o);
    out = api.render(t, o);
  });
  return api.json(201, k.root, std::move(out));
}

common::HttpResponse profileUpdate(Api& api, Call& c, const ProfileKind& k, const std::vector<Capability>& caps) {
  api.authorize(c, std::string(k.policy) + ":put", c.creds.project_id);
  JsonDoc body = parseRootBody(c.http.body, k.root);
  validateBody(body, profileFields(k.data_field), BodyMode::kPut, k.root, body.GetAllocator());
  for (auto& m : body.GetObject())
    if (m.value.IsNull()) throwInvalidField(m.name.GetString(), "None", "Mandatory field missing.");
  if (c.args[0] == kNilUuid) throwNotFound(k.resource, c.args[0]);
  JsonDoc out;
  api.write([&](Txn& t) {
    Obj o = api.mustLoad(t, k.kind, c.args[0], k.resource);
    bool changes_behaviour = jhas(body, "provider_name") || jhas(body, k.data_field);
    if (changes_behaviour && profileInUse(api, t, k, o.id()))
      throwApi(409, std::string(k.resource) + " " + o.id() + " is in use and cannot be modified.");
    std::string provider = jstring(body, "provider_name", o.str("provider_name"));
    std::string data = jstring(body, k.data_field, o.str(k.data_field));
    if (changes_behaviour) checkProfileData(api, provider, k.data_field, data, caps);
    applyUpdate(o, body, JsonDoc(rapidjson::kObjectType));
    api.save(t, o);
    out = api.render(t, o);
  });
  return api.json(200, k.root, std::move(out));
}

common::HttpResponse profileDelete(Api& api, Call& c, const ProfileKind& k) {
  api.authorize(c, std::string(k.policy) + ":delete", c.creds.project_id);
  if (c.args[0] == kNilUuid) throwNotFound(k.resource, c.args[0]);
  api.write([&](Txn& t) {
    Obj o = api.mustLoad(t, k.kind, c.args[0], k.resource);
    if (profileInUse(api, t, k, o.id()))
      throwApi(409, std::string(k.resource) + " " + o.id() + " is in use and cannot be modified.");
    api.erase(t, k.kind, o.id());
  });
  return api.noContent();
}
}  // namespace

common::HttpResponse Api::fpList(Call& c) { return profileList(*this, c, kFp); }
common::HttpResponse Api::fpShow(Call& c) { return profileShow(*this, c, kFp); }
common::HttpResponse Api::fpCreate(Call& c) { return profileCreate(*this, c, kFp, flavorCapabilities()); }
common::HttpResponse Api::fpUpdate(Call& c) { return profileUpdate(*this, c, kFp, flavorCapabilities()); }
common::HttpResponse Api::fpDelete(Call& c) { return profileDelete(*this, c, kFp); }
common::HttpResponse Api::azpList(Call& c) { return profileList(*this, c, kAzp); }
common::HttpResponse Api::azpShow(Call& c) { return profileShow(*this, c, kAzp); }
common::HttpResponse Api::azpCreate(Call& c) { return profileCreate(*this, c, kAzp, azCapabilities()); }
common::HttpResponse Api::azpUpdate(Call& c) { return profileUpdate(*this, c, kAzp, azCapabilities()); }
common::HttpResponse Api::azpDelete(Call& c) { return profileDelete(*this, c, kAzp); }

// ---- flavors ----

namespace {
const std::vector<FieldSpec>& flavorFields() {
  static const std::vector<FieldSpec> f = {
      {.name = "name", .required = true},
      {.name = "description"},
      {.name = "enabled", .type = FieldType::kBool},
      {.name = "flavor_profile_id", .type = FieldType::kUuid, .on_put = false, .required = true},
  };
  return f;
}
const std::vector<FieldSpec>& azFields() {
  static const std::vector<FieldSpec> f = {
      {.name = "name", .on_put = false, .required = true},
      {.name = "description"},
      {.name = "enabled", .type = FieldType::kBool},
      {.name = "availability_zone_profile_id", .type = FieldType::kUuid, .on_put = false, .required = true},
  };
  return f;
}
}  // namespace

common::HttpResponse Api::flavorList(Call& c) {
  authorize(c, "flavor:get_all", c.creds.project_id);
  std::vector<JsonDoc> items;
  read([&](Txn& t) {
    store::Query q;
    q.kind = kFlavor;
    for (auto& o : loadAll(t, q)) items.push_back(render(t, o));
  });
  sortById(items, "id");
  return listResponse(c, "flavors", "flavors_links", std::move(items), {});
}

common::HttpResponse Api::flavorShow(Call& c) {
  authorize(c, "flavor:get_one", c.creds.project_id);
  if (c.args[0] == kNilUuid) throwNotFound("Flavor", c.args[0]);
  JsonDoc out;
  read([&](Txn& t) { out = render(t, mustLoad(t, kFlavor, c.args[0], "Flavor")); });
  return json(200, "flavor", applyFields(c, std::move(out)));
}

common::HttpResponse Api::flavorCreate(Call& c) {
  authorize(c, "flavor:post", c.creds.project_id);
  JsonDoc body = parseRootBody(c.http.body, "flavor");
  validateBody(body, flavorFields(), BodyMode::kPost, "flavor", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    std::string fp = jstring(body, "flavor_profile_id");
    if (fp == kNilUuid || !load(t, kFlavorProfile, fp)) throwNotFound("Flavor profile", fp);
    store::Query q;
    q.kind = kFlavor;
    for (auto& o : loadAll(t, q))
      if (o.str("name") == jstring(body, "name"))
        throwApi(409, "A flavor with name " + jstring(body, "name") + " already exists.");
    Obj o = newObj(kFlavor, newUuid(), "", "", "");
    auto& a = o.alloc();
    jsetStr(o.doc, "id", o.id(), a);
    jsetStr(o.doc, "name", jstring(body, "name"), a);
    const JsonValue* d = jgetNonNull(body, "description");
    jset(o.doc, "description", d ? JsonValue(*d, a) : JsonValue(), a);
    jset(o.doc, "enabled", JsonValue(jbool(body, "enabled", true)), a);
    jsetStr(o.doc, "flavor_profile_id", fp, a);
    insert(t, o);
    out = render(t, o);
  });
  return json(201, "flavor", std::move(out));
}

common::HttpResponse Api::flavorUpdate(Call& c) {
  authorize(c, "flavor:put", c.creds.project_id);
  JsonDoc body = parseRootBody(c.http.body, "flavor");
  validateBody(body, flavorFields(), BodyMode::kPut, "flavor", body.GetAllocator());
  if (jhas(body, "name") && body["name"].IsNull()) throwInvalidField("name", "None", "Mandatory field missing.");
  if (c.args[0] == kNilUuid) throwNotFound("Flavor", c.args[0]);
  JsonDoc out;
  write([&](Txn& t) {
    Obj o = mustLoad(t, kFlavor, c.args[0], "Flavor");
    if (const JsonValue* n = jgetNonNull(body, "name")) {
      store::Query q;
      q.kind = kFlavor;
      for (auto& other : loadAll(t, q))
        if (other.id() != o.id() && other.str("name") == n->GetString())
          throwApi(409, "A flavor with name " + std::string(n->GetString()) + " already exists.");
    }
    JsonDoc defaults(rapidjson::kObjectType);
    defaults.AddMember("enabled", true, defaults.GetAllocator());
    applyUpdate(o, body, defaults);
    save(t, o);
    out = render(t, o);
  });
  return json(200, "flavor", std::move(out));
}

common::HttpResponse Api::flavorDelete(Call& c) {
  authorize(c, "flavor:delete", c.creds.project_id);
  if (c.args[0] == kNilUuid) throwNotFound("Flavor", c.args[0]);
  write([&](Txn& t) {
    Obj o = mustLoad(t, kFlavor, c.args[0], "Flavor");
    store::Query q;
    q.kind = kLb;
    for (auto& lb : loadAll(t, q))
      if (lb.str("flavor_id") == o.id()) throwApi(409, "Flavor " + o.id() + " is in use and cannot be modified.");
    erase(t, kFlavor, o.id());
  });
  return noContent();
}

// ---- availability zones (keyed by name) ----

common::HttpResponse Api::azList(Call& c) {
  authorize(c, "availability-zone:get_all", c.creds.project_id);
  std::vector<JsonDoc> items;
  read([&](Txn& t) {
    store::Query q;
    q.kind = kAz;
    for (auto& o : loadAll(t, q)) items.push_back(render(t, o));
  });
  sortById(items, "name");
  return listResponse(c, "availability_zones", "availability_zones_links", std::move(items), {});
}

common::HttpResponse Api::azShow(Call& c) {
  authorize(c, "availability-zone:get_one", c.creds.project_id);
  JsonDoc out;
  read([&](Txn& t) { out = render(t, mustLoad(t, kAz, c.args[0], "Availability Zone")); });
  return json(200, "availability_zone", applyFields(c, std::move(out)));
}

common::HttpResponse Api::azCreate(Call& c) {
  authorize(c, "availability-zone:post", c.creds.project_id);
  JsonDoc body = parseRootBody(c.http.body, "availability_zone");
  validateBody(body, azFields(), BodyMode::kPost, "availability_zone", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    std::string azp = jstring(body, "availability_zone_profile_id");
    if (azp == kNilUuid || !load(t, kAzProfile, azp)) throwNotFound("Availability Zone Profile", azp);
    std::string name = jstring(body, "name");
    if (load(t, kAz, name)) throwApi(409, "A availability zone with name " + name + " already exists.");
    Obj o = newObj(kAz, name, "", "", "");
    auto& a = o.alloc();
    jsetStr(o.doc, "name", name, a);
    const JsonValue* d = jgetNonNull(body, "description");
    jset(o.doc, "description", d ? JsonValue(*d, a) : JsonValue(), a);
    jset(o.doc, "enabled", JsonValue(jbool(body, "enabled", true)), a);
    jsetStr(o.doc, "availability_zone_profile_id", azp, a);
    insert(t, o);
    out = render(t, o);
  });
  return json(201, "availability_zone", std::move(out));
}

common::HttpResponse Api::azUpdate(Call& c) {
  authorize(c, "availability-zone:put", c.creds.project_id);
  JsonDoc body = parseRootBody(c.http.body, "availability_zone");
  validateBody(body, azFields(), BodyMode::kPut, "availability_zone", body.GetAllocator());
  JsonDoc out;
  write([&](Txn& t) {
    Obj o = mustLoad(t, kAz, c.args[0], "Availability Zone");
    JsonDoc defaults(rapidjson::kObjectType);
    defaults.AddMember("enabled", true, defaults.GetAllocator());
    applyUpdate(o, body, defaults);
    save(t, o);
    out = render(t, o);
  });
  return json(200, "availability_zone", std::move(out));
}

common::HttpResponse Api::azDelete(Call& c) {
  authorize(c, "availability-zone:delete", c.creds.project_id);
  write([&](Txn& t) {
    Obj o = mustLoad(t, kAz, c.args[0], "Availability Zone");
    store::Query q;
    q.kind = kLb;
    for (auto& lb : loadAll(t, q))
      if (lb.str("availability_zone") == o.id())
        throwApi(409, "Availability Zone " + o.id() + " is in use and cannot be modified.");
    erase(t, kAz, o.id());
  });
  return noContent();
}

}  // namespace banyan::provider::api
