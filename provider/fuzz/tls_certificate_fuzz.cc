// Certificates come from users (Barbican secrets, container pieces, local files):
// the PKCS12 and PEM readers and the client CA/CRL check must survive any bytes.
// Input: first byte picks the reader; for PEM the rest is split at NUL bytes into
// certificate, key, intermediates, passphrase.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "certs/tls_certificate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace banyan::provider::certs;
  switch (data[0] % 3) {
    case 0: {
      auto c = fromPkcs12(rest);
      if (c.ok()) (void)proxyBundle(*c);
      break;
    }
    case 1: {
      std::vector<std::string_view> parts;
      size_t start = 0;
      for (size_t i = 0; i <= rest.size() && parts.size() < 4; ++i) {
        if (i == rest.size() || rest[i] == '\0') {
          parts.push_back(rest.substr(start, i - start));
          start = i + 1;
        }
      }
      parts.resize(4);
      auto c = fromPem(parts[0], parts[1], parts[2], parts[3]);
      if (c.ok()) (void)hostNames(c->certificate);
      break;
    }
    default: {
      size_t nul = rest.find('\0');
      (void)checkClientCaAndCrl(rest.substr(0, nul),
                                nul == std::string_view::npos ? "" : rest.substr(nul + 1));
      break;
    }
  }
  return 0;
}
