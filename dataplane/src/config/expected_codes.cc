// Octavia's health monitor expected_codes forms, expanded into a set of codes.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "config/parse.h"
#include "config/schema_error.h"

namespace banyan::dp::config {
namespace {

using common::Error;
using common::Result;
using detail::quote;

Error invalid(std::string context, std::string message) {
  return common::makeError(common::ErrorCode::kInvalidArgument, std::move(message),
                           std::move(context));
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Python's \s, which Octavia's pattern uses.
bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

Result<std::vector<uint16_t>> parseExpectedCodes(std::string_view text) {
  // Octavia's API pattern: ^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$
  const auto syntax_error = [&] {
    return invalid(
        "",
        quote(text) +
            " is not a status code, a comma-separated list (\"200,202\") or a range (\"200-204\")");
  };
  size_t pos = 0;
  auto readCode = [&](uint16_t& code) -> std::optional<Error> {
    if (pos + 3 > text.size() ||
        !std::all_of(text.begin() + pos, text.begin() + pos + 3, isDigit)) {
      return syntax_error();
    }
    code = static_cast<uint16_t>((text[pos] - '0') * 100 + (text[pos + 1] - '0') * 10 +
                                 (text[pos + 2] - '0'));
    pos += 3;
    if (code < 100 || code > 599)
      return invalid("", "status code " + std::to_string(code) + " is outside 100-599");
    return std::nullopt;
  };

  std::vector<uint16_t> codes;
  uint16_t first = 0;
  if (auto e = readCode(first)) return *e;
  if (pos < text.size() && text[pos] == '-') {
    ++pos;
    uint16_t last = 0;
    if (auto e = readCode(last)) return *e;
    if (pos != text.size()) return syntax_error();
    if (first > last) {
      return invalid("", "range " + std::string(text) + " has its low end above its high end");
    }
    for (uint32_t c = first; c <= last; ++c) codes.push_back(static_cast<uint16_t>(c));
    return codes;
  }
  codes.push_back(first);
  while (pos < text.size()) {
    while (pos < text.size() && isSpace(text[pos])) ++pos;
    if (pos >= text.size() || text[pos] != ',') return syntax_error();
    ++pos;
    while (pos < text.size() && isSpace(text[pos])) ++pos;
    uint16_t code = 0;
    if (auto e = readCode(code)) return *e;
    codes.push_back(code);
  }
  std::sort(codes.begin(), codes.end());
  codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
  return codes;
}

}  // namespace banyan::dp::config
