// Fuzzes parseRequestHead, then ChunkedScanner over the bytes after a chunked
// head. Checks that nothing points outside the input, that the outcome does
// not depend on bytes after the head, and that chunk scanning does not depend
// on how the body is split.
#include <cstdint>
#include <string_view>

#include "http/parser.h"
#include "http_fuzz_common.h"

namespace {

using namespace banyan::dp::http;
using banyan::dp::http::fuzz::checkChunked;
using banyan::dp::http::fuzz::checkHeaders;
using banyan::dp::http::fuzz::checkInside;

RequestHead g_head;  // reused across runs, as the proxy reuses it per connection

void run(std::string_view input, const Limits& limits) {
  const ParseResult r = parseRequestHead(input, limits, g_head);
  HTTP_FUZZ_CHECK(r.consumed <= input.size());
  if (r.status != ParseStatus::Done) {
    HTTP_FUZZ_CHECK(r.consumed == 0);
    HTTP_FUZZ_CHECK((r.status == ParseStatus::Invalid) == (r.error != ParseError::None));
    return;
  }
  HTTP_FUZZ_CHECK(r.error == ParseError::None);
  HTTP_FUZZ_CHECK(r.consumed == g_head.head_length);
  HTTP_FUZZ_CHECK(r.consumed <= limits.max_head);
  HTTP_FUZZ_CHECK(g_head.headers.size() <= limits.max_headers);
  const std::string_view head = input.substr(0, r.consumed);
  HTTP_FUZZ_CHECK(!g_head.method.empty() && !g_head.target.empty());
  checkInside(g_head.method, head);
  checkInside(g_head.target, head);
  checkInside(g_head.host, head);
  checkHeaders(g_head.headers, head);
  HTTP_FUZZ_CHECK(g_head.version_minor == 0 || g_head.version_minor == 1);
  if (g_head.body == BodyKind::ContentLength) HTTP_FUZZ_CHECK(g_head.content_length > 0);
  HTTP_FUZZ_CHECK(g_head.body != BodyKind::UntilClose);

  const BodyKind body = g_head.body;
  const uint64_t length = g_head.content_length;
  // The head alone parses the same; one byte less is incomplete.
  RequestHead again;
  const ParseResult exact = parseRequestHead(head, limits, again);
  HTTP_FUZZ_CHECK(exact.status == ParseStatus::Done && exact.consumed == r.consumed);
  HTTP_FUZZ_CHECK(again.body == body && again.content_length == length);
  HTTP_FUZZ_CHECK(parseRequestHead(head.substr(0, head.size() - 1), limits, again).status ==
                  ParseStatus::NeedMore);

  if (body == BodyKind::Chunked) {
    const std::string_view rest = input.substr(r.consumed);
    checkChunked(rest, limits, rest.empty() ? 0 : static_cast<unsigned char>(rest[0]));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  run(input, Limits{});
  run(input, banyan::dp::http::fuzz::smallLimits());
  return 0;
}
