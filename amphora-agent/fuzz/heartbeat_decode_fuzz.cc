// decodeHeartbeat on hostile datagrams. The first input byte chooses the mode: odd
// means "sign the rest with the test key first", so the fuzzer also reaches the
// version, decompression and JSON checks that sit behind the signature; even feeds
// the rest as it is (framing and signature refusals).
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "banyan/common/heartbeat.h"

namespace {
constexpr char kKey[] = "fuzz-key";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<uint8_t> datagram(data + 1, data + size);
  if ((data[0] & 1) != 0) {
    datagram.resize(datagram.size() + 32);
    unsigned int len = 32;
    HMAC(EVP_sha256(), kKey, sizeof kKey - 1, datagram.data(), datagram.size() - 32,
         datagram.data() + datagram.size() - 32, &len);
  }
  auto r = banyan::common::decodeHeartbeat(datagram, kKey);
  if (r.ok()) {
    // Whatever decodes must encode and decode to the same value.
    auto again = banyan::common::decodeHeartbeat(banyan::common::encodeHeartbeat(r.value(), kKey), kKey);
    if (!again.ok() || !(again.value() == r.value())) __builtin_trap();
  }
  return 0;
}
