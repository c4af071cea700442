// The certificate reference checks of octavia/api/v2/controllers/base.py, through the
// configured cert manager (docs/certificates.md), made outside the write transaction
// (cert_checks.h).
#include <map>
#include <optional>

#include "api/api_impl.h"
#include "api/cert_checks.h"
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

// Thrown out of the write (rolling it back) by a check whose outcome is not known yet;
// caught by runWithCertChecksOutside, which makes the check with no transaction open.
// Not an ApiError, so Api::write lets it through.
struct CertCheckNeeded {
  std::string key;
  std::function<common::Result<void>()> check;
};

// The outcomes known to the write running on this thread (one request per thread).
struct KnownOutcomes {
  std::map<std::string, common::Result<void>> by_key;
  bool check_unknown_inline = false;  // the last run: check the way it was done before
};
thread_local KnownOutcomes* t_known = nullptr;

// A run per check a write reaches (a listener: TLS references, then CA and CRL) and a
// final one; more only when the references change between runs.
constexpr int kMaxRuns = 4;

void answer(std::string key, std::function<common::Result<void>()> check) {
  common::Result<void> outcome;
  std::map<std::string, common::Result<void>>::const_iterator known;
  if (t_known != nullptr && (known = t_known->by_key.find(key)) != t_known->by_key.end()) {
    outcome = known->second;
  } else if (t_known != nullptr && !t_known->check_unknown_inline) {
    throw CertCheckNeeded{std::move(key), std::move(check)};
  } else {
    outcome = check();
  }
  if (!outcome) throwApi(400, outcome.error().message);
}

std::string joined(std::string_view kind, const std::vector<std::string>& parts) {
  std::string key(kind);
  for (const auto& p : parts) key += '\n' + p;  // a reference never holds a newline
  return key;
}

}  // namespace

void runWithCertChecksOutside(const std::function<void()>& fn) {
  KnownOutcomes known;
  struct Scope {
    explicit Scope(KnownOutcomes* k) : saved(t_known) { t_known = k; }
    ~Scope() { t_known = saved; }
    KnownOutcomes* saved;
  };
  for (int run = 0; run < kMaxRuns; ++run) {
    std::optional<CertCheckNeeded> needed;
    {
      Scope scope(&known);
      try {
        fn();
        return;
      } catch (CertCheckNeeded& n) {
        needed = std::move(n);
      }
    }
    // No transaction is open here: the write that needed this has rolled back.
    known.by_key[needed->key] = needed->check();
  }
  known.check_unknown_inline = true;
  Scope scope(&known);
  fn();
}

void Api::checkTlsRefs(const Call& c, const std::vector<std::string>& refs) {
  if (!opts_.cert_manager || refs.empty()) return;
  answer(joined("tls", refs), [manager = opts_.cert_manager, ctx = certContext(c, opts_.noauth),
                               refs] { return certs::checkTlsRefs(*manager, ctx, refs); });
}

void Api::checkCaAndCrlRefs(const Call& c, const std::string& ca_ref, const std::string& crl_ref) {
  if (!opts_.cert_manager || ca_ref.empty()) return;
  answer(joined("ca", {ca_ref, crl_ref}),
         [manager = opts_.cert_manager, ctx = certContext(c, opts_.noauth), ca_ref, crl_ref] {
           return certs::checkCaAndCrlRefs(*manager, ctx, ca_ref, crl_ref);
         });
}

}  // namespace banyan::provider::api
