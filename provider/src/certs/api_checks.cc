#include "certs/api_checks.h"

#include "banyan/common/logging.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using common::makeError;

// Python's repr of a list of strings, as Octavia's message prints it.
std::string pythonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += "'";
    for (char c : items[i]) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += "'";
  }
  return out + "]";
}

common::Error notRetrieved(const std::vector<std::string>& refs) {
  return makeError(ErrorCode::kInvalidArgument,
                   "Could not retrieve certificate: " + pythonList(refs));
}

bool unreadablePkcs12(const common::Error& e) {
  return e.code == ErrorCode::kInvalidArgument &&
         e.message.rfind("The PKCS12 bundle is unreadable.", 0) == 0;
}

}  // namespace

common::Result<void> checkTlsRefs(CertManager& manager, const RequestContext& ctx,
                                  const std::vector<std::string>& refs) {
  std::vector<std::string> bad;
  for (const auto& ref : refs) {
    auto granted = manager.grantAccess(ctx, ref);
    auto cert = granted ? manager.getCertificate(ctx, ref)
                        : common::Result<TlsCertificate>(granted.error());
    if (cert) continue;
    if (unreadablePkcs12(cert.error()))
      return makeError(ErrorCode::kInvalidArgument, cert.error().message);
    LB_INFO("certificate reference refused ref=%s project=%s reason=%s", ref.c_str(),
            ctx.project_id.c_str(), cert.error().message.c_str());
    bad.push_back(ref);
  }
  if (!bad.empty()) return notRetrieved(bad);
  return {};
}

common::Result<void> checkCaAndCrlRefs(CertManager& manager, const RequestContext& ctx,
                                       const std::string& ca_ref, const std::string& crl_ref) {
  std::vector<std::string> bad;
  auto read = [&](const std::string& ref) -> std::string {
    auto granted = manager.grantAccess(ctx, ref);
    auto pem = granted ? manager.getSecret(ctx, ref) : common::Result<std::string>(granted.error());
    if (pem) return *pem;
    LB_INFO("certificate reference refused ref=%s project=%s reason=%s", ref.c_str(),
            ctx.project_id.c_str(), pem.error().message.c_str());
    bad.push_back(ref);
    return "";
  };
  std::string ca = read(ca_ref);
  std::string crl = crl_ref.empty() ? "" : read(crl_ref);
  if (!bad.empty()) return notRetrieved(bad);
  if (auto ok = checkClientCaAndCrl(ca, crl); !ok)
    return makeError(ErrorCode::kInvalidArgument, "Validation failure: " + ok.error().message);
  return {};
}

}  // namespace banyan::provider::certs
