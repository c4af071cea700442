// Fuzzes the cookie parsers persistence and COOKIE rules rely on with client
// (Cookie) and member (Set-Cookie) bytes, and the member-token decoder with
// client-chosen tokens. Checks: results are views into the input; removeCookie
// leaves exactly the other cookies; a token that decodes is the canonical
// encoding of what it decodes to (no second spelling, no forgery by mutation
// that the fuzzer could find); encoding round-trips.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "persistence/app_cookie.h"
#include "persistence/cookie.h"

namespace ps = banyan::dp::persistence;

namespace {

void check(bool ok) {
  if (!ok) abort();
}

bool within(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

constexpr std::string_view kSecret = "fuzz secret";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The first byte's length of input names the cookie to look for.
  size_t name_len = size == 0 ? 0 : static_cast<uint8_t>(input[0]) % 8;
  std::string_view rest = input.substr(size == 0 ? 0 : 1);
  std::string name(rest.substr(0, name_len));
  std::string_view header = rest.substr(std::min(name_len, rest.size()));

  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  ps::CookieIterator it(header);
  std::string_view n, v;
  while (it.next(&n, &v)) {
    check(within(n, header) && within(v, header) && !n.empty());
    pairs.emplace_back(n, v);
  }
  auto first = ps::findCookie(header, name);
  auto last = ps::findLastCookie(header, name);
  check(first.has_value() == last.has_value());
  if (first) check(within(*first, header) && within(*last, header));

  std::string removed = ps::removeCookie(header, name);
  std::vector<std::pair<std::string_view, std::string_view>> kept;
  for (const auto& p : pairs)
    if (p.first != name) kept.push_back(p);
  ps::CookieIterator again(removed);
  size_t i = 0;
  while (again.next(&n, &v)) {
    // Values holding ';' cannot exist (';' splits), so re-parsing gives the same pairs.
    check(i < kept.size() && n == kept[i].first && v == kept[i].second);
    ++i;
  }
  check(i == kept.size());

  if (auto sc = ps::parseSetCookie(header))
    check(within(sc->name, header) && within(sc->value, header));

  ps::AppCookieTable table(name.empty() ? "sid" : name, ps::StickTableOptions{});
  (void)table.learn(header, "member", ps::TimePoint{});
  (void)table.lookup(header, ps::TimePoint{});

  static const ps::MemberCookieCodec codec(kSecret);
  if (auto id = codec.decode(header)) check(codec.encode(*id) == header);
  if (header.size() <= 255) {
    std::string token = codec.encode(header);
    auto id = codec.decode(token);
    check(id && *id == header);
    // The free functions (keys derived per call) agree; checked on short inputs only, they are
    // slow.
    if (header.size() < 4) check(ps::encodeMemberCookie(header, kSecret) == token);
  }
  return 0;
}
