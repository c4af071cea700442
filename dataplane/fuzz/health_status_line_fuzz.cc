// Fuzzes the health checker's HTTP status line parser with member response
// bytes. Checks the contract the probe relies on while it reads incrementally:
// every prefix of an accepted input is NeedMore or the same verdict, a verdict
// never changes as more bytes arrive, and Done yields a 3-digit code.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "health/checker.h"

namespace h = banyan::dp::health;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  h::StatusLineParse whole = h::parseStatusLine(input);
  if (whole.status == h::ParseStatus::Done) {
    check(whole.code <= 999);
    check(size >= 13 && input.substr(0, 7) == "HTTP/1.");
  }
  if (whole.status == h::ParseStatus::NeedMore) check(size < 13);
  // Byte-at-a-time arrival reaches the same verdict at the first non-NeedMore prefix.
  for (size_t n = 0; n <= size; ++n) {
    h::StatusLineParse part = h::parseStatusLine(input.substr(0, n));
    if (part.status == h::ParseStatus::NeedMore) continue;
    check(part.status == whole.status);
    if (part.status == h::ParseStatus::Done) check(part.code == whole.code);
    break;
  }
  return 0;
}
