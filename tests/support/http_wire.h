// Lenient HTTP/1.x wire helpers shared by the test client and the test members.
// They are deliberately forgiving (they must record whatever the proxy sends,
// so that tests can judge it); strictness is the proxy's job, not theirs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace banyan::test {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpHead {
  std::string start_line;  // without CRLF
  HeaderList headers;      // in order, values trimmed
  std::string raw;         // the whole head including the final CRLF CRLF
};

// Offset just past the "\r\n\r\n" that ends a head, or nullopt if not there yet.
std::optional<size_t> findHeadEnd(std::string_view buffer);
// Splits a head (as found by findHeadEnd) into start line and headers.
HttpHead parseHead(std::string_view raw_head);

bool equalsIgnoreCase(std::string_view a, std::string_view b);
// First value of `name` (case-insensitive), or "" when absent.
std::string headerValue(const HeaderList& headers, std::string_view name);
// All values of `name` joined with ", " (how repeated list headers combine).
std::string joinedHeaderValues(const HeaderList& headers, std::string_view name);
size_t headerCount(const HeaderList& headers, std::string_view name);
// True when a comma-separated header (Connection, Transfer-Encoding) holds `token`.
bool headerHasToken(const HeaderList& headers, std::string_view name, std::string_view token);

enum class ChunkedStatus { NeedMore, Done, Invalid };
// Decodes a complete chunked body at the start of `buffer` into `body`;
// `consumed` is the body's length on the wire (trailers included).
ChunkedStatus decodeChunked(std::string_view buffer, std::string& body, size_t& consumed);
// Encodes `body` as chunks of at most `chunk_size` bytes plus the last chunk.
std::string encodeChunked(std::string_view body, size_t chunk_size = 1000);

}  // namespace banyan::test
