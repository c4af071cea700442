// The certificate reference checks of octavia/api/v2/controllers/base.py, through the
// configured cert manager (docs/certificates.md).
#include "api/api_impl.h"
#include "certs/api_checks.h"

namespace banyan::provider::api {
namespace {

certs::RequestContext certContext(const Call& c, bool noauth) {
  certs::RequestContext ctx;
  ctx.project_id = c.creds.project_id;
  // Barbican ACL grants are made with the user's own token; noauth has none to pass.
  if (!noauth) ctx.auth_token = c.http.header("X-Auth-Token").value_or("");
  return ctx;
}

}  // namespace

void Api::checkTlsRefs(const Call& c, const std::vector<std::string>& refs) {
  if (!opts_.cert_manager || refs.empty()) return;
  auto ok = certs::checkTlsRefs(*opts_.cert_manager, certContext(c, opts_.noauth), refs);
  if (!ok) throwApi(400, ok.error().message);
}

void Api::checkCaAndCrlRefs(const Call& c, const std::string& ca_ref, const std::string& crl_ref) {
  if (!opts_.cert_manager || ca_ref.empty()) return;
  auto ok = certs::checkCaAndCrlRefs(*opts_.cert_manager, certContext(c, opts_.noauth), ca_ref, crl_ref);
  if (!ok) throwApi(400, ok.error().message);
}

}  // namespace banyan::provider::api
