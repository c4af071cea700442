// Fuzzes the PROXY protocol parser with client bytes, as a listener that
// accepts both versions sees them. Checks the contract the proxy relies on:
// Done consumes a header that fits in the input, never more; other outcomes
// consume nothing; an accepted header round-trips through the encoders.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "proxy_protocol/proxy_protocol.h"

namespace pp = banyan::dp::proxy_protocol;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  for (pp::Accept accept : {pp::Accept::Any, pp::Accept::V1, pp::Accept::V2}) {
    pp::ParseResult r = pp::parse(input, accept);
    check(r.consumed <= size);
    if (r.status != pp::ParseStatus::Done) {
      check(r.consumed == 0);
      check((r.status == pp::ParseStatus::Invalid) == (r.error != pp::ParseError::None));
      continue;
    }
    check(r.error == pp::ParseError::None && r.consumed > 0);
    check(r.header.version == pp::Version::V1 ? r.consumed <= pp::kMaxV1Length
                                              : r.consumed <= 16 + pp::kMaxV2Length);
    // A prefix of an accepted header is never Invalid, only NeedMore.
    pp::ParseResult shorter = pp::parse(input.first(r.consumed - 1), accept);
    check(shorter.status == pp::ParseStatus::NeedMore);
    if (r.header.has_addresses) {
      for (const std::string& encoded :
           {pp::encodeV1(r.header.source, r.header.destination),
            pp::encodeV2(r.header.source, r.header.destination)}) {
        std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(encoded.data()),
                                       encoded.size());
        pp::ParseResult again = pp::parse(bytes, pp::Accept::Any);
        check(again.status == pp::ParseStatus::Done && again.consumed == encoded.size());
      }
    }
  }
  return 0;
}
