// Fuzzes the ClientHello reader of passthrough listeners with client bytes.
// Checks the contract the session relies on: Done consumes no more than the
// input and carries a well-formed lower-case host name when it has one;
// NeedMore only below the input bound; feeding the same bytes in growing
// prefixes (as TCP segments arrive) never turns an answer into another one.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "tls/client_hello.h"

namespace tls = banyan::dp::tls;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

void checkResult(const tls::ClientHelloParse& r, size_t size) {
  check(r.consumed <= size);
  switch (r.status) {
    case tls::ClientHelloStatus::kDone:
      check(r.error == tls::ClientHelloError::kNone && r.consumed > 0);
      check(r.has_sni == !r.sni.empty());
      check(r.sni.size() <= 255);
      for (char c : r.sni) check(!(c >= 'A' && c <= 'Z') && c > 0x20 && c < 0x7f);
      break;
    case tls::ClientHelloStatus::kNeedMore:
      check(r.error == tls::ClientHelloError::kNone && !r.has_sni && r.consumed == 0);
      check(size < tls::kMaxClientHelloInput);
      break;
    case tls::ClientHelloStatus::kNotTls:
      check(r.error != tls::ClientHelloError::kNone && !r.has_sni);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  tls::ClientHelloParse whole = tls::parseClientHello(input);
  checkResult(whole, size);
  // A few prefixes, as the session sees the bytes arrive: every one of them
  // either needs more or already gives the answer the whole input gives.
  for (size_t cut : {size_t{1}, size_t{5}, size_t{9}, size / 3, size / 2, size - 1}) {
    if (cut == 0 || cut >= size) continue;
    tls::ClientHelloParse part = tls::parseClientHello(input.first(cut));
    checkResult(part, cut);
    if (part.status == tls::ClientHelloStatus::kNeedMore) continue;
    check(part.status == whole.status && part.error == whole.error && part.sni == whole.sni);
  }
  return 0;
}
