// Fuzzes parseResponseHead (as the answer to GET and to HEAD), then
// ChunkedScanner over the bytes after a chunked head.
#include <cstdint>
#include <string_view>

#include "http/parser.h"
#include "http_fuzz_common.h"

namespace {

using namespace banyan::dp::http;
using banyan::dp::http::fuzz::checkChunked;
using banyan::dp::http::fuzz::checkHeaders;
using banyan::dp::http::fuzz::checkInside;

ResponseHead g_head;

void run(std::string_view input, const Limits& limits, std::string_view method) {
  const ParseResult r = parseResponseHead(input, limits, method, g_head);
  HTTP_FUZZ_CHECK(r.consumed <= input.size());
  if (r.status != ParseStatus::Done) {
    HTTP_FUZZ_CHECK(r.consumed == 0);
    HTTP_FUZZ_CHECK((r.status == ParseStatus::Invalid) == (r.error != ParseError::None));
    return;
  }
  HTTP_FUZZ_CHECK(r.consumed == g_head.head_length);
  HTTP_FUZZ_CHECK(r.consumed <= limits.max_head);
  const std::string_view head = input.substr(0, r.consumed);
  checkInside(g_head.reason, head);
  checkHeaders(g_head.headers, head);
  HTTP_FUZZ_CHECK(g_head.status >= 100 && g_head.status <= 599);
  if (method == "HEAD" || g_head.status < 200 || g_head.status == 204 || g_head.status == 304) {
    HTTP_FUZZ_CHECK(g_head.body == BodyKind::None);
  }
  if (g_head.body == BodyKind::UntilClose) HTTP_FUZZ_CHECK(!g_head.flags.keep_alive);

  ResponseHead again;
  HTTP_FUZZ_CHECK(parseResponseHead(head.substr(0, head.size() - 1), limits, method, again).status ==
                  ParseStatus::NeedMore);

  if (g_head.body == BodyKind::Chunked) {
    const std::string_view rest = input.substr(r.consumed);
    checkChunked(rest, limits, rest.empty() ? 0 : static_cast<unsigned char>(rest[0]));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  run(input, Limits{}, "GET");
  run(input, Limits{}, "HEAD");
  run(input, banyan::dp::http::fuzz::smallLimits(), "GET");
  return 0;
}
