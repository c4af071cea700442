#include "certs/placement.h"

#include "banyan/common/digest.h"

namespace banyan::provider::certs {

std::string placedName(const std::string& ref, bool tls_bundle) {
  return std::string(tls_bundle ? "tls-" : "pem-") + common::sha256Hex(ref).substr(0, 40);
}

common::Result<Placement> fetchForPlacement(CertManager& manager, const RequestContext& ctx,
                                            const std::set<std::string>& tls_bundles,
                                            const std::set<std::string>& pem_secrets) {
  Placement out;
  for (const auto& ref : pem_secrets) {
    // A PKCS12 secret is no PEM CA, nor a PEM one a certificate with a key: the API
    // refuses such a reference for one of the two uses already.
    if (tls_bundles.count(ref))
      return common::makeError(common::ErrorCode::kInvalidArgument,
                               "a reference is used both as a TLS certificate and as a CA or CRL",
                               ref);
  }
  for (const auto& ref : tls_bundles) {
    auto cert = manager.getCertificate(ctx, ref);
    if (!cert) return common::makeError(cert.error().code, cert.error().message, ref);
    out.by_ref[ref] = PlacedFile{placedName(ref, true), proxyBundle(*cert)};
  }
  for (const auto& ref : pem_secrets) {
    auto pem = manager.getSecret(ctx, ref);
    if (!pem) return common::makeError(pem.error().code, pem.error().message, ref);
    out.by_ref[ref] = PlacedFile{placedName(ref, false), std::move(*pem)};
  }
  return out;
}

}  // namespace banyan::provider::certs
