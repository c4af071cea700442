#include "certs/barbican.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <mutex>
#include <optional>
#include <vector>

#include "auth/keystone.h"
#include "banyan/common/logging.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using common::HttpHeaders;
using common::makeError;
using common::Result;

bool isUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

struct Ref {
  bool container = false;
  std::string uuid;
};

// "<uuid>", ".../secrets/<uuid>" or ".../containers/<uuid>" (a trailing slash allowed).
std::optional<Ref> parseRef(std::string ref) {
  while (!ref.empty() && ref.back() == '/') ref.pop_back();
  size_t slash = ref.rfind('/');
  if (slash == std::string::npos) {
    if (!isUuid(ref)) return std::nullopt;
    return Ref{false, ref};
  }
  std::string uuid = ref.substr(slash + 1);
  if (!isUuid(uuid)) return std::nullopt;
  std::string head = ref.substr(0, slash);
  size_t kind_start = head.rfind('/');
  std::string kind = kind_start == std::string::npos ? head : head.substr(kind_start + 1);
  if (kind == "secrets") return Ref{false, uuid};
  if (kind == "containers") return Ref{true, uuid};
  return std::nullopt;
}

std::optional<rapidjson::Document> parseJson(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  return d;
}

std::string str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return "";
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString()
             ? std::string(it->value.GetString(), it->value.GetStringLength())
             : std::string();
}

// "<endpoint>/v1", or an error for what is not an http(s) URL.
Result<std::string> apiBase(const std::string& endpoint) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0)
    return makeError(ErrorCode::kInvalidArgument, "the Barbican endpoint is not an http(s) URL",
                     endpoint);
  if (base.size() < 3 || base.compare(base.size() - 3, 3, "/v1") != 0) base += "/v1";
  return base;
}

class UnauthenticatedAuth final : public BarbicanAuth {
 public:
  Result<HttpHeaders> serviceHeaders(const RequestContext& ctx) override { return headers(ctx); }
  Result<HttpHeaders> userHeaders(const RequestContext& ctx) override { return headers(ctx); }
  Result<std::string> serviceUserId() override { return std::string(); }

 private:
  static Result<HttpHeaders> headers(const RequestContext& ctx) {
    if (ctx.project_id.empty())
      return makeError(ErrorCode::kInvalidArgument,
                       "an unauthenticated Barbican needs the owning project");
    return HttpHeaders{
        {"X-Project-Id", ctx.project_id}, {"X-Roles", "admin"}, {"X-User-Id", "banyan"}};
  }
};

class KeystoneAuth final : public BarbicanAuth {
 public:
  explicit KeystoneAuth(std::shared_ptr<auth::KeystoneSession> session)
      : session_(std::move(session)) {}
  Result<HttpHeaders> serviceHeaders(const RequestContext&) override {
    auto token = session_->token();
    if (!token) return token.error();
    return HttpHeaders{{"X-Auth-Token", *token}};
  }
  Result<HttpHeaders> userHeaders(const RequestContext& ctx) override {
    if (ctx.auth_token.empty())
      return makeError(ErrorCode::kInvalidArgument,
                       "changing a Barbican ACL needs the user's token");
    return HttpHeaders{{"X-Auth-Token", ctx.auth_token}};
  }
  Result<std::string> serviceUserId() override { return session_->userId(); }

 private:
  std::shared_ptr<auth::KeystoneSession> session_;
};

class BarbicanCertManager final : public CertManager {
 public:
  BarbicanCertManager(BarbicanOptions options, std::string base, std::unique_ptr<BarbicanAuth> auth,
                      std::unique_ptr<common::HttpClient> http)
      : options_(std::move(options)),
        base_(std::move(base)),
        auth_(std::move(auth)),
        http_(std::move(http)) {}

  Result<void> grantAccess(const RequestContext& ctx, const std::string& ref) override {
    auto r = parseRef(ref);
    if (!r) return notARef(ref);
    if (auto ok = ensureBase(); !ok) return ok;
    auto me = auth_->serviceUserId();
    if (!me) return me.error();
    if (me->empty()) return {};  // nobody to name: reads happen in the owning project
    auto user = auth_->userHeaders(ctx);
    if (!user) return user.error();
    if (auto ok = addReader(*user, objectUrl(*r), *me, ref); !ok) return ok;
    if (!r->container) return {};
    // A legacy container: its secrets need the same ACL (Octavia's legacy set_acls).
    auto secrets = containerSecrets(*user, *r, ref);
    if (!secrets) return secrets.error();
    for (const auto& [name, secret_uuid] : *secrets)
      if (auto ok = addReader(*user, base_ + "/secrets/" + secret_uuid, *me, ref); !ok) return ok;
    return {};
  }

  Result<TlsCertificate> getCertificate(const RequestContext& ctx,
                                        const std::string& ref) override {
    auto r = parseRef(ref);
    if (!r) return notARef(ref);
    if (auto ok = ensureBase(); !ok) return ok.error();
    auto headers = auth_->serviceHeaders(ctx);
    if (!headers) return headers.error();
    if (!r->container) {
      auto payload = secretPayload(*headers, r->uuid, ref);
      if (payload) {
        auto cert = fromPkcs12(*payload);
        if (cert) return cert;
        // Octavia's UnreadablePKCS12 message, which its API returns as is.
        return makeError(ErrorCode::kInvalidArgument,
                         "The PKCS12 bundle is unreadable. Please check the PKCS12 bundle "
                         "validity. In addition, "
                         "make sure it does not require a pass phrase. Error: " +
                             cert.error().message,
                         ref);
      }
      if (payload.error().code != ErrorCode::kNotFound) return payload.error();
      // Octavia falls back to reading the reference as a legacy container.
    }
    return containerCertificate(*headers, Ref{true, r->uuid}, ref);
  }

  Result<std::string> getSecret(const RequestContext& ctx, const std::string& ref) override {
    auto r = parseRef(ref);
    if (!r || r->container) return notARef(ref);
    if (auto ok = ensureBase(); !ok) return ok.error();
    auto headers = auth_->serviceHeaders(ctx);
    if (!headers) return headers.error();
    return secretPayload(*headers, r->uuid, ref);
  }

 private:
  // The endpoint, looked up once when it was not configured. base_ is written once,
  // under the lock; every reader has passed here.
  Result<void> ensureBase() {
    std::lock_guard<std::mutex> lock(base_mu_);
    if (!base_.empty()) return {};
    auto url = options_.endpoint_lookup();
    if (!url)
      return makeError(ErrorCode::kUnavailable, "no Barbican endpoint: " + url.error().message);
    auto base = apiBase(*url);
    if (!base) return base.error();
    base_ = std::move(*base);
    LB_INFO("Barbican endpoint from the catalog url=%s", base_.c_str());
    return {};
  }

  static common::Error notARef(const std::string& ref) {
    return makeError(ErrorCode::kNotFound, "not a Barbican secret or container reference", ref);
  }

  std::string objectUrl(const Ref& r) const {
    return base_ + (r.container ? "/containers/" : "/secrets/") + r.uuid;
  }

  // GET with the given headers; 404 (and 401/403: another project's object looks the
  // same to its caller) is kNotFound, other failures kUnavailable (worth a retry).
  Result<common::HttpClientResponse> get(HttpHeaders headers, const std::string& url,
                                         const std::string& accept, const std::string& ref) {
    headers.emplace_back("Accept", accept);
    auto resp = http_->request("GET", url, headers, "", options_.timeout);
    if (!resp) return resp.error();
    if (resp->status == 200) return resp;
    if (resp->status == 404 || resp->status == 401 || resp->status == 403)
      return makeError(ErrorCode::kNotFound,
                       "Barbican answered HTTP " + std::to_string(resp->status), ref);
    return makeError(ErrorCode::kUnavailable,
                     "Barbican answered HTTP " + std::to_string(resp->status), ref);
  }

  Result<std::string> secretPayload(const HttpHeaders& headers, const std::string& uuid,
                                    const std::string& ref) {
    std::string url = base_ + "/secrets/" + uuid;
    auto meta = get(headers, url, "application/json", ref);
    if (!meta) return meta.error();
    auto doc = parseJson(meta->body);
    if (!doc)
      return makeError(ErrorCode::kUnavailable, "Barbican's secret metadata is not JSON", ref);
    auto types = doc->FindMember("content_types");
    std::string type = types != doc->MemberEnd() ? str(types->value, "default") : "";
    if (type.empty()) return makeError(ErrorCode::kNotFound, "the secret has no payload", ref);
    auto payload = get(headers, url + "/payload", type, ref);
    if (!payload) return payload.error();
    return std::move(payload->body);
  }

  // name -> secret uuid of a certificate container.
  Result<std::vector<std::pair<std::string, std::string>>> containerSecrets(
      const HttpHeaders& headers, const Ref& r, const std::string& ref) {
    auto resp = get(headers, objectUrl(r), "application/json", ref);
    if (!resp) return resp.error();
    auto doc = parseJson(resp->body);
    if (!doc) return makeError(ErrorCode::kUnavailable, "Barbican's container is not JSON", ref);
    std::vector<std::pair<std::string, std::string>> out;
    auto refs = doc->FindMember("secret_refs");
    if (refs == doc->MemberEnd() || !refs->value.IsArray()) return out;
    for (const auto& s : refs->value.GetArray()) {
      auto parsed = parseRef(str(s, "secret_ref"));
      if (parsed && !parsed->container) out.emplace_back(str(s, "name"), parsed->uuid);
    }
    return out;
  }

  Result<TlsCertificate> containerCertificate(const HttpHeaders& headers, const Ref& r,
                                              const std::string& ref) {
    auto secrets = containerSecrets(headers, r, ref);
    if (!secrets) return secrets.error();
    std::string pieces[4];  // certificate, private_key, intermediates, private_key_passphrase
    static const char* kNames[4] = {"certificate", "private_key", "intermediates",
                                    "private_key_passphrase"};
    for (const auto& [name, uuid] : *secrets) {
      for (int i = 0; i < 4; ++i) {
        if (name != kNames[i]) continue;
        auto payload = secretPayload(headers, uuid, ref);
        if (!payload) return payload.error();
        pieces[i] = std::move(*payload);
      }
    }
    if (pieces[0].empty() || pieces[1].empty())
      return makeError(ErrorCode::kNotFound, "the container has no certificate and private_key",
                       ref);
    auto cert = fromPem(pieces[0], pieces[1], pieces[2], pieces[3]);
    if (!cert) return makeError(cert.error().code, cert.error().message, ref);
    return cert;
  }

  Result<void> addReader(const HttpHeaders& user, const std::string& object_url,
                         const std::string& me, const std::string& ref) {
    auto resp = get(user, object_url + "/acl", "application/json", ref);
    if (!resp) return resp.error();
    auto doc = parseJson(resp->body);
    if (!doc) return makeError(ErrorCode::kUnavailable, "Barbican's ACL is not JSON", ref);
    std::vector<std::string> users;
    bool project_access = true;
    auto read = doc->FindMember("read");
    if (read != doc->MemberEnd() && read->value.IsObject()) {
      auto u = read->value.FindMember("users");
      if (u != read->value.MemberEnd() && u->value.IsArray())
        for (const auto& id : u->value.GetArray())
          if (id.IsString()) users.emplace_back(id.GetString(), id.GetStringLength());
      auto pa = read->value.FindMember("project-access");
      if (pa != read->value.MemberEnd() && pa->value.IsBool()) project_access = pa->value.GetBool();
    }
    for (const auto& u : users)
      if (u == me) return {};
    users.push_back(me);
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("read");
    w.StartObject();
    w.Key("users");
    w.StartArray();
    for (const auto& u : users) w.String(u.c_str());
    w.EndArray();
    w.Key("project-access");
    w.Bool(project_access);
    w.EndObject();
    w.EndObject();
    HttpHeaders headers = user;
    headers.emplace_back("Content-Type", "application/json");
    headers.emplace_back("Accept", "application/json");
    auto put =
        http_->request("PUT", object_url + "/acl", headers, sb.GetString(), options_.timeout);
    if (!put) return put.error();
    if (put->status == 200 || put->status == 201) {
      LB_INFO("added banyan to a Barbican read ACL ref=%s", ref.c_str());
      return {};
    }
    if (put->status == 404 || put->status == 401 || put->status == 403)
      return makeError(ErrorCode::kNotFound,
                       "Barbican refused the ACL change: HTTP " + std::to_string(put->status), ref);
    return makeError(ErrorCode::kUnavailable,
                     "Barbican answered the ACL change with HTTP " + std::to_string(put->status),
                     ref);
  }

  const BarbicanOptions options_;
  std::mutex base_mu_;
  std::string base_;  // ".../v1"; empty until looked up
  std::unique_ptr<BarbicanAuth> auth_;
  std::unique_ptr<common::HttpClient> http_;
};

}  // namespace

std::unique_ptr<BarbicanAuth> makeUnauthenticatedBarbicanAuth() {
  return std::make_unique<UnauthenticatedAuth>();
}

std::unique_ptr<BarbicanAuth> makeKeystoneBarbicanAuth(
    std::shared_ptr<auth::KeystoneSession> session) {
  return std::make_unique<KeystoneAuth>(std::move(session));
}

Result<std::unique_ptr<CertManager>> makeBarbicanCertManager(
    const BarbicanOptions& options, std::unique_ptr<BarbicanAuth> auth,
    std::unique_ptr<common::HttpClient> http) {
  if (!auth || !http)
    return makeError(ErrorCode::kInvalidArgument, "Barbican needs an auth and an HTTP client");
  std::string base;
  if (!options.endpoint.empty()) {
    auto b = apiBase(options.endpoint);
    if (!b) return b.error();
    base = std::move(*b);
  } else if (!options.endpoint_lookup) {
    return makeError(ErrorCode::kInvalidArgument,
                     "Barbican needs an endpoint or a way to look it up");
  }
  return std::unique_ptr<CertManager>(std::make_unique<BarbicanCertManager>(
      options, std::move(base), std::move(auth), std::move(http)));
}

}  // namespace banyan::provider::certs
