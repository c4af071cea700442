#include "app/cert_manager_setup.h"

#include "banyan/common/logging.h"

#if __has_include("auth/keystone.h") && __has_include("certs/barbican.h")
#include "auth/keystone.h"
#include "certs/barbican.h"
#define BANYAN_HAVE_BARBICAN 1
#endif

namespace banyan::provider::app {

using common::ErrorCode;
using common::makeError;

#ifdef BANYAN_HAVE_BARBICAN
auth::KeystoneOptions keystoneOptionsFrom(const common::OptionSet& options) {
  auth::KeystoneOptions ko;
  const char* k = "keystone_authtoken";
  ko.www_authenticate_uri = options.getString(k, "www_authenticate_uri");
  ko.auth_url = options.getString(k, "auth_url");
  ko.username = options.getString(k, "username");
  ko.password = options.getString(k, "password");
  ko.project_name = options.getString(k, "project_name");
  ko.user_domain_name = options.getString(k, "user_domain_name");
  ko.project_domain_name = options.getString(k, "project_domain_name");
  ko.cafile = options.getString(k, "cafile");
  ko.insecure = options.getBool(k, "insecure");
  ko.token_cache_time = static_cast<int>(options.getInt(k, "token_cache_time"));
  return ko;
}
#endif

common::Result<std::shared_ptr<auth::KeystoneSession>> keystoneSessionFrom(
    const common::OptionSet& options) {
  if (options.getString("api_settings", "auth_strategy") != "keystone")
    return std::shared_ptr<auth::KeystoneSession>();
#ifdef BANYAN_HAVE_BARBICAN
  return auth::makeKeystoneSession(keystoneOptionsFrom(options));
#else
  return makeError(ErrorCode::kInvalidArgument,
                   "auth_strategy = keystone is not available in this build");
#endif
}

common::Result<std::shared_ptr<certs::CertManager>> certManagerFrom(
    const common::OptionSet& options, std::shared_ptr<auth::KeystoneSession> session) {
  const char* c = "certificates";
  if (options.getString(c, "cert_manager") == "local_cert_manager") {
    std::string dir = localStoragePath(options);
    LB_INFO("certificates are read from local files dir=%s", dir.c_str());
    return std::shared_ptr<certs::CertManager>(certs::makeLocalCertManager(dir));
  }
#ifdef BANYAN_HAVE_BARBICAN
  certs::BarbicanOptions bo;
  bo.endpoint = options.getString(c, "endpoint");
  if (bo.endpoint.empty()) {
    if (!session)
      return makeError(ErrorCode::kInvalidArgument,
                       "barbican_cert_manager without Keystone needs [certificates] endpoint",
                       "certificates/endpoint");
    bo.endpoint_lookup = [session, region = options.getString(c, "region_name"),
                          iface = options.getString(c, "endpoint_type")] {
      return session->endpoint("key-manager", iface, region);
    };
  }
  auto http = common::makeHttpClient();
  if (!http) return http.error();
  auto auth =
      session ? certs::makeKeystoneBarbicanAuth(session) : certs::makeUnauthenticatedBarbicanAuth();
  auto made = certs::makeBarbicanCertManager(bo, std::move(auth), std::move(http.value()));
  if (!made) return made.error();
  return std::shared_ptr<certs::CertManager>(std::move(made.value()));
#else
  (void)session;
  return makeError(ErrorCode::kInvalidArgument,
                   "barbican_cert_manager is not available in this build");
#endif
}

std::string localStoragePath(const common::OptionSet& options) {
  std::string dir = options.getString("certificates", "storage_path");
  if (dir.empty()) dir = options.getString("DEFAULT", "state_dir") + "/certificates";
  return dir;
}

std::shared_ptr<certs::CertManager> certManagerOrNull(const common::OptionSet& options) {
  auto session = keystoneSessionFrom(options);
  if (!session) {
    LB_WARN("no certificate manager: %s; TLS listeners and pools cannot be checked or placed",
            session.error().message.c_str());
    return nullptr;
  }
  auto made = certManagerFrom(options, *session);
  if (!made) {
    LB_WARN("no certificate manager: %s%s%s; TLS listeners and pools cannot be checked or placed",
            made.error().message.c_str(), made.error().context.empty() ? "" : ": ", made.error().context.c_str());
    return nullptr;
  }
  return *made;
}

}  // namespace banyan::provider::app
