// Octavia's local_cert_manager, file for file (octavia/certificates/manager/local.py),
// with reference names checked so a reference cannot reach outside storage_path.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "banyan/common/files.h"
#include "banyan/common/ids.h"
#include "banyan/common/logging.h"
#include "certs/cert_manager.h"

namespace banyan::provider::certs {
namespace {

using common::ErrorCode;
using common::makeError;
using common::Result;

// Octavia's references are UUIDs; any plain file name is accepted, nothing that
// could walk the directory tree.
bool plainName(const std::string& ref) {
  if (ref.empty() || ref.size() > 255 || ref[0] == '.') return false;
  for (char c : ref) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// The whole file, or nullopt when it does not exist; other errors are errors.
Result<std::optional<std::string>> readIfPresent(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return makeError(ErrorCode::kUnavailable, std::string("cannot read: ") + std::strerror(errno),
                     path.string());
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return makeError(ErrorCode::kUnavailable, std::string("cannot read: ") + std::strerror(err),
                       path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) {
      ::close(fd);
      return makeError(ErrorCode::kInvalidArgument, "larger than 1 MiB", path.string());
    }
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
}

class LocalCertManager final : public CertManager {
 public:
  explicit LocalCertManager(std::filesystem::path dir) : dir_(std::move(dir)) {}

  Result<void> grantAccess(const RequestContext&, const std::string&) override {
    return {};  // the files are the controller's own: nobody else to grant
  }

  Result<TlsCertificate> getCertificate(const RequestContext&, const std::string& ref) override {
    auto cert = required(ref, ".crt", "certificate");
    if (!cert) return cert.error();
    auto key = required(ref, ".key", "private key");
    if (!key) return key.error();
    auto chain = optional(ref, ".int");
    if (!chain) return chain.error();
    auto pass = optional(ref, ".pass");
    if (!pass) return pass.error();
    auto parsed = fromPem(*cert, *key, *chain, *pass);
    if (!parsed) return makeError(parsed.error().code, parsed.error().message, ref);
    return parsed;
  }

  Result<std::string> getSecret(const RequestContext&, const std::string& ref) override {
    return required(ref, ".crt", "secret");
  }

 private:
  Result<std::string> required(const std::string& ref, const char* suffix, const char* what) {
    if (!plainName(ref))
      return makeError(ErrorCode::kNotFound, "not a local certificate reference", ref);
    auto r = readIfPresent(dir_ / (ref + suffix));
    if (!r) return r.error();
    if (!r->has_value())
      return makeError(ErrorCode::kNotFound, std::string("no ") + what + " stored", ref);
    return std::move(**r);
  }
  Result<std::string> optional(const std::string& ref, const char* suffix) {
    auto r = readIfPresent(dir_ / (ref + suffix));
    if (!r) return r.error();
    return r->value_or("");
  }

  std::filesystem::path dir_;
};

}  // namespace

std::unique_ptr<CertManager> makeLocalCertManager(std::filesystem::path storage_path) {
  return std::make_unique<LocalCertManager>(std::move(storage_path));
}

Result<std::string> storeLocalCertificate(const std::filesystem::path& storage_path,
                                          const TlsCertificate& cert) {
  // Parsing again checks the pieces (and that the key belongs to the certificate).
  std::string chain;
  for (const auto& i : cert.intermediates) chain += i;
  if (auto ok = fromPem(cert.certificate, cert.private_key, chain, ""); !ok) return ok.error();
  if (auto ok = common::makeDirs(storage_path.string(), 0700); !ok) return ok.error();
  std::string ref = common::newUuid();
  std::string base = (storage_path / ref).string();
  if (auto ok = common::writeFileAtomic(base + ".key", cert.private_key, 0600); !ok)
    return ok.error();
  if (!chain.empty()) {
    if (auto ok = common::writeFileAtomic(base + ".int", chain, 0600); !ok) return ok.error();
  }
  // Last: a reference exists once its certificate does.
  if (auto ok = common::writeFileAtomic(base + ".crt", cert.certificate, 0600); !ok)
    return ok.error();
  LB_INFO("stored a local certificate ref=%s", ref.c_str());
  return ref;
}

Result<std::string> storeLocalSecret(const std::filesystem::path& storage_path, const std::string& pem) {
  // Only what a CA or CRL reference may hold; checkClientCaAndCrl judges the contents
  // when a listener or pool names it.
  bool any = false;
  size_t at = 0;
  while ((at = pem.find("-----BEGIN ", at)) != std::string::npos) {
    size_t end = pem.find("-----", at + 11);
    if (end == std::string::npos) break;
    std::string kind = pem.substr(at + 11, end - at - 11);
    if (kind != "CERTIFICATE" && kind != "X509 CRL")
      return makeError(ErrorCode::kInvalidArgument,
                       "a CA or CRL file holds only CERTIFICATE and X509 CRL blocks, not " + kind);
    any = true;
    at = end;
  }
  if (!any) return makeError(ErrorCode::kInvalidArgument, "no PEM certificate or CRL");
  if (auto ok = common::makeDirs(storage_path.string(), 0700); !ok) return ok.error();
  std::string ref = common::newUuid();
  if (auto ok = common::writeFileAtomic((storage_path / ref).string() + ".crt", pem, 0600); !ok)
    return ok.error();
  LB_INFO("stored a local CA/CRL secret ref=%s", ref.c_str());
  return ref;
}

}  // namespace banyan::provider::certs
