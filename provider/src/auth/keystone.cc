#include "auth/keystone.h"

#include <openssl/sha.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "banyan/common/digest.h"
#include "banyan/common/logging.h"

namespace banyan::provider::auth {
namespace {

using common::ErrorCode;
using common::makeError;
using Clock = std::chrono::system_clock;
using Status = AuthOutcome::Status;

// Keystone's expires_at: "2026-11-22T09:53:09.000000Z" (ISO 8601, UTC).
std::optional<Clock::time_point> parseExpiry(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  std::string rest = text.substr(static_cast<size_t>(consumed));
  // Fractions of a second are dropped (rounding the expiry down is the safe side).
  size_t i = 0;
  if (i < rest.size() && rest[i] == '.') {
    ++i;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) ++i;
  }
  rest = rest.substr(i);
  if (rest != "Z" && rest != "+00:00" && !rest.empty()) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return Clock::from_time_t(t);
}

std::string jsonString(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

const rapidjson::Value* jsonObject(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsObject()) return nullptr;
  return &it->value;
}

struct CatalogEndpoint {
  std::string service_type;
  std::string interface;
  std::string region;
  std::string url;
};

struct TokenInfo {
  Credentials credentials;
  Clock::time_point expires_at;
  std::vector<CatalogEndpoint> catalog;  // empty when asked with ?nocatalog
};

// The body of a token response: {"token": {"expires_at", "user", "project"|"system", "roles"}}.
Result<TokenInfo> parseTokenBody(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return makeError(ErrorCode::kUnavailable, "Keystone sent a token response that is not JSON");
  }
  const rapidjson::Value* token = jsonObject(doc, "token");
  if (token == nullptr)
    return makeError(ErrorCode::kUnavailable, "Keystone's response has no token");
  auto expires = parseExpiry(jsonString(*token, "expires_at"));
  if (!expires)
    return makeError(ErrorCode::kUnavailable, "Keystone's token has no valid expires_at");
  TokenInfo info;
  info.expires_at = *expires;
  Credentials& c = info.credentials;
  if (const auto* user = jsonObject(*token, "user")) {
    c.user_id = jsonString(*user, "id");
    c.user_name = jsonString(*user, "name");
    if (const auto* domain = jsonObject(*user, "domain"))
      c.user_domain_id = jsonString(*domain, "id");
  }
  if (const auto* project = jsonObject(*token, "project")) {
    c.project_id = jsonString(*project, "id");
    c.project_name = jsonString(*project, "name");
    if (const auto* domain = jsonObject(*project, "domain"))
      c.project_domain_id = jsonString(*domain, "id");
  }
  if (const auto* system = jsonObject(*token, "system")) {
    auto all = system->FindMember("all");
    c.system_scope = all != system->MemberEnd() && all->value.IsBool() && all->value.GetBool();
  }
  auto roles = token->FindMember("roles");
  if (roles != token->MemberEnd() && roles->value.IsArray()) {
    for (const auto& role : roles->value.GetArray()) {
      std::string name = jsonString(role, "name");
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      if (!name.empty()) c.roles.push_back(std::move(name));
    }
  }
  auto catalog = token->FindMember("catalog");
  if (catalog != token->MemberEnd() && catalog->value.IsArray()) {
    for (const auto& service : catalog->value.GetArray()) {
      std::string type = jsonString(service, "type");
      auto endpoints = service.IsObject() ? service.FindMember("endpoints") : service.MemberEnd();
      if (!service.IsObject() || endpoints == service.MemberEnd() || !endpoints->value.IsArray()) continue;
      for (const auto& e : endpoints->value.GetArray()) {
        std::string region = jsonString(e, "region_id");
        if (region.empty()) region = jsonString(e, "region");
        info.catalog.push_back({type, jsonString(e, "interface"), region, jsonString(e, "url")});
      }
    }
  }
  if (c.user_id.empty())
    return makeError(ErrorCode::kUnavailable, "Keystone's token has no user id");
  return info;
}

std::string serviceAuthBody(const KeystoneOptions& o) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&](const std::string& s) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("auth");
  w.StartObject();
  w.Key("identity");
  w.StartObject();
  w.Key("methods");
  w.StartArray();
  w.String("password");
  w.EndArray();
  w.Key("password");
  w.StartObject();
  w.Key("user");
  w.StartObject();
  w.Key("name");
  str(o.username);
  w.Key("domain");
  w.StartObject();
  w.Key("name");
  str(o.user_domain_name);
  w.EndObject();
  w.Key("password");
  str(o.password);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.Key("scope");
  w.StartObject();
  w.Key("project");
  w.StartObject();
  w.Key("name");
  str(o.project_name);
  w.Key("domain");
  w.StartObject();
  w.Key("name");
  str(o.project_domain_name);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string tokensUrl(const std::string& auth_url) {
  std::string base = auth_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.size() >= 3 && base.compare(base.size() - 3, 3, "/v3") == 0) base.resize(base.size() - 3);
  return base + "/v3/auth/tokens";
}

class PasswordSession final : public KeystoneSession {
 public:
  PasswordSession(KeystoneOptions options, std::shared_ptr<common::HttpClient> http, WallClock now)
      : options_(std::move(options)), http_(std::move(http)), now_(std::move(now)),
        tokens_url_(tokensUrl(options_.auth_url)) {}

  // The cached token, or a new one when there is none, it is close to expiry, or it is
  // `rejected` (Keystone answered 401 to it). One fetch at a time; a caller that waited
  // for another's fetch uses its result.
  Result<std::string> token(const std::string& rejected) override {
    std::lock_guard<std::mutex> fetch_lock(fetch_mu_);
    Clock::time_point now = now_();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!token_.empty() && now < renew_at_ && token_ != rejected) return token_;
    }
    // With the catalog: other services' endpoints (Barbican) come from it.
    auto resp = http_->request("POST", tokens_url_,
                               {{"Content-Type", "application/json"}, {"Accept", "application/json"}},
                               serviceAuthBody(options_), options_.timeout);
    if (!resp) return resp.error();
    if (resp->status == 401) {
      return makeError(ErrorCode::kUnavailable,
                       "Keystone refuses Banyan's service credentials (401) user=" + options_.username);
    }
    if (resp->status != 201 && resp->status != 200) {
      return makeError(ErrorCode::kUnavailable,
                       "Keystone answered the service token request with HTTP " + std::to_string(resp->status));
    }
    auto subject = resp->header("X-Subject-Token");
    if (!subject || subject->empty()) {
      return makeError(ErrorCode::kUnavailable, "Keystone's service token response has no X-Subject-Token");
    }
    auto info = parseTokenBody(resp->body);
    if (!info) return info.error();
    now = now_();
    // Renew a minute before expiry, or halfway through a short-lived token.
    auto lifetime = info->expires_at - now;
    auto margin = std::min<Clock::duration>(std::chrono::seconds(60), lifetime / 2);
    std::lock_guard<std::mutex> lock(mu_);
    token_ = *subject;
    renew_at_ = info->expires_at - margin;
    user_id_ = info->credentials.user_id;
    catalog_ = std::move(info->catalog);
    LB_INFO("got a Keystone service token user=%s project=%s", options_.username.c_str(),
            options_.project_name.c_str());
    return token_;
  }

  Result<std::string> userId() override {
    if (auto t = token(""); !t) return t.error();
    std::lock_guard<std::mutex> lock(mu_);
    return user_id_;
  }

  Result<std::string> endpoint(std::string_view service_type, std::string_view interface,
                               std::string_view region) override {
    if (auto t = token(""); !t) return t.error();
    // Octavia's endpoint_type names "publicURL"; the v3 catalog says "public".
    std::string want(interface);
    if (want.size() > 3 && want.compare(want.size() - 3, 3, "URL") == 0) want.resize(want.size() - 3);
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : catalog_) {
      if (e.service_type == service_type && e.interface == want && (region.empty() || e.region == region))
        return e.url;
    }
    return makeError(ErrorCode::kNotFound,
                     "Keystone's catalog has no " + std::string(service_type) + " endpoint at interface " + want +
                         (region.empty() ? "" : " in region " + std::string(region)));
  }

 private:
  const KeystoneOptions options_;
  std::shared_ptr<common::HttpClient> http_;
  WallClock now_;
  std::string tokens_url_;
  std::mutex fetch_mu_;  // one token fetch at a time
  std::mutex mu_;
  std::string token_;
  Clock::time_point renew_at_{};
  std::string user_id_;
  std::vector<CatalogEndpoint> catalog_;
};

class KeystoneAuthenticator final : public Authenticator {
 public:
  KeystoneAuthenticator(KeystoneOptions options, std::shared_ptr<KeystoneSession> session,
                        std::shared_ptr<common::HttpClient> http, WallClock now)
      : options_(std::move(options)), session_(std::move(session)), http_(std::move(http)),
        now_(std::move(now)), tokens_url_(tokensUrl(options_.auth_url)) {
    // keystonemiddleware advertises the identity endpoint; without a public one, ours.
    const std::string& uri =
        options_.www_authenticate_uri.empty() ? options_.auth_url : options_.www_authenticate_uri;
    www_authenticate_ = "Keystone uri=\"" + uri + "\"";
  }

  AuthOutcome authenticate(const HeaderLookup& headers) override {
    auto token = headers("X-Auth-Token");
    if (!token || token->empty()) token = headers("X-Storage-Token");
    if (!token || token->empty()) return unauthorized("no X-Auth-Token");
    std::string key = common::sha256Hex(*token);
    Clock::time_point now = now_();
    if (auto cached = lookup(key, now)) return *cached;

    auto validated = validate(*token);
    if (!validated) {
      AuthOutcome out;
      out.status = Status::kUnavailable;
      out.reason = validated.error().message;
      LB_WARN("cannot validate a token with Keystone error=%s", out.reason.c_str());
      return out;
    }
    now = now_();
    const std::optional<TokenInfo>& info = validated.value();
    if (!info || info->expires_at <= now) {
      AuthOutcome out = unauthorized(info ? "token expired" : "token not found by Keystone");
      store(key, out, now + std::chrono::seconds(options_.invalid_token_cache_time));
      return out;
    }
    AuthOutcome out;
    out.status = Status::kOk;
    out.credentials = info->credentials;
    out.reason = "keystone";
    store(key, out,
          std::min(info->expires_at, now + std::chrono::seconds(options_.token_cache_time)));
    return out;
  }

 private:
  struct CacheEntry {
    AuthOutcome outcome;
    Clock::time_point until;
  };

  AuthOutcome unauthorized(std::string reason) const {
    AuthOutcome out;
    out.status = Status::kUnauthorized;
    out.reason = std::move(reason);
    out.www_authenticate = www_authenticate_;
    return out;
  }

  std::optional<AuthOutcome> lookup(const std::string& key, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return std::nullopt;
    if (now >= it->second.until) {
      cache_.erase(it);
      return std::nullopt;
    }
    return it->second.outcome;
  }

  void store(const std::string& key, const AuthOutcome& outcome, Clock::time_point until) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= options_.max_cached_tokens) {
      Clock::time_point now = now_();
      std::erase_if(cache_, [&](const auto& kv) { return now >= kv.second.until; });
      // Still full of live entries: start over rather than grow without bound.
      if (cache_.size() >= options_.max_cached_tokens) cache_.clear();
    }
    cache_[key] = CacheEntry{outcome, until};
  }

  // nullopt inside: Keystone says the token is not valid (404). An error: Keystone could
  // not answer (kUnavailable).
  Result<std::optional<TokenInfo>> validate(const std::string& token) {
    std::string rejected;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto service = session_->token(rejected);
      if (!service) return service.error();
      auto resp = http_->request("GET", tokens_url_ + "?nocatalog",
                                 {{"X-Auth-Token", service.value()},
                                  {"X-Subject-Token", token},
                                  {"Accept", "application/json"}},
                                 "", options_.timeout);
      if (!resp) return resp.error();
      switch (resp->status) {
        case 200: {
          auto info = parseTokenBody(resp->body);
          if (!info) return info.error();
          return std::optional<TokenInfo>(std::move(info.value()));
        }
        case 404:
          return std::optional<TokenInfo>();
        case 401:
          // Our service token was revoked or expired early: get a new one, once.
          rejected = service.value();
          continue;
        case 403:
          return makeError(ErrorCode::kUnavailable,
                           "Keystone refuses to let the service user validate tokens (403); "
                           "give it the service or admin role");
        default:
          return makeError(
              ErrorCode::kUnavailable,
              "Keystone answered token validation with HTTP " + std::to_string(resp->status));
      }
    }
    return makeError(ErrorCode::kUnavailable,
                     "Keystone refuses Banyan's fresh service token (401)");
  }

  const KeystoneOptions options_;
  std::shared_ptr<KeystoneSession> session_;
  std::shared_ptr<common::HttpClient> http_;
  WallClock now_;
  std::string tokens_url_;
  std::string www_authenticate_;

  std::mutex cache_mu_;
  std::unordered_map<std::string, CacheEntry> cache_;
};

Result<void> checkOptions(const KeystoneOptions& o) {
  if (o.auth_url.empty())
    return makeError(ErrorCode::kInvalidArgument, "keystone auth_url is empty");
  if (o.username.empty())
    return makeError(ErrorCode::kInvalidArgument, "keystone username is empty");
  if (o.project_name.empty())
    return makeError(ErrorCode::kInvalidArgument, "keystone project_name is empty");
  if (o.token_cache_time < 0 || o.invalid_token_cache_time < 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "keystone token cache times must not be negative");
  }
  if (o.max_cached_tokens == 0)
    return makeError(ErrorCode::kInvalidArgument, "max_cached_tokens must be > 0");
  return {};
}

}  // namespace

Result<std::unique_ptr<common::HttpClient>> httpClientFor(const KeystoneOptions& options) {
  common::HttpClientOptions http_options;
  http_options.ca_file = options.cafile;
  http_options.verify = !options.insecure;
  return common::makeHttpClient(http_options);
}

Result<std::shared_ptr<KeystoneSession>> makeKeystoneSession(const KeystoneOptions& options,
                                                             std::shared_ptr<common::HttpClient> http,
                                                             WallClock now) {
  auto ok = checkOptions(options);
  if (!ok) return ok.error();
  if (!http) {
    auto made = httpClientFor(options);
    if (!made) return made.error();
    http = std::move(made.value());
  }
  if (!now) now = [] { return Clock::now(); };
  return std::shared_ptr<KeystoneSession>(std::make_shared<PasswordSession>(options, std::move(http), std::move(now)));
}

Result<std::unique_ptr<Authenticator>> makeKeystoneAuthenticator(
    const KeystoneOptions& options, std::unique_ptr<common::HttpClient> http, WallClock now) {
  if (!http || !now)
    return makeError(ErrorCode::kInvalidArgument, "keystone needs an HTTP client and a clock");
  std::shared_ptr<common::HttpClient> shared(std::move(http));
  auto session = makeKeystoneSession(options, shared, now);
  if (!session) return session.error();
  return makeKeystoneAuthenticator(options, std::move(session).value(), shared, std::move(now));
}

Result<std::unique_ptr<Authenticator>> makeKeystoneAuthenticator(const KeystoneOptions& options,
                                                                 std::shared_ptr<KeystoneSession> session,
                                                                 std::shared_ptr<common::HttpClient> http,
                                                                 WallClock now) {
  auto ok = checkOptions(options);
  if (!ok) return ok.error();
  if (!session || !http || !now)
    return makeError(ErrorCode::kInvalidArgument, "keystone needs a session, an HTTP client and a clock");
  return std::unique_ptr<Authenticator>(
      std::make_unique<KeystoneAuthenticator>(options, std::move(session), std::move(http), std::move(now)));
}

Result<std::unique_ptr<Authenticator>> makeKeystoneAuthenticator(const KeystoneOptions& options) {
  auto ok = checkOptions(options);
  if (!ok) return ok.error();
  auto http = httpClientFor(options);
  if (!http) return http.error();
  return makeKeystoneAuthenticator(options, std::move(http.value()), [] { return Clock::now(); });
}

}  // namespace banyan::provider::auth
