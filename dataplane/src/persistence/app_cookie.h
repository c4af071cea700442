// APP_COOKIE session persistence: learn which member set the application's own
// cookie (Set-Cookie in its response), then send requests carrying that cookie
// value back to it. Octavia's HAProxy amphora does
//   stick-table type string len 64 size 10k
//   stick store-response res.cook(<cookie_name>)
//   stick match req.cook(<cookie_name>)
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "persistence/stick_table.h"

namespace banyan::dp::persistence {

// Per worker (single-threaded); share across workers with a SharedStickTable
// keyed by the cookie value (see stick_table.h for why that can matter).
class AppCookieTable {
 public:
  // options.max_key_length (default 64, as HAProxy) bounds stored values.
  AppCookieTable(std::string cookie_name, const StickTableOptions& options);

  // One Set-Cookie field value from `member_id`'s response. Learns it if it sets
  // cookie_name to a non-empty value (an empty value is a deletion, not a
  // session); returns whether it did. Call per Set-Cookie line in order: the
  // last one wins, as res.cook() takes the last occurrence.
  bool learn(std::string_view set_cookie_header, std::string_view member_id, TimePoint now);
  // The member for one Cookie request header value (the last cookie_name in it,
  // as req.cook()), or empty.
  std::optional<std::string_view> lookup(std::string_view cookie_header, TimePoint now);
  // The member for an already extracted cookie value.
  std::optional<std::string_view> lookupValue(std::string_view value, TimePoint now);

  const std::string& cookieName() const { return cookie_name_; }
  size_t forgetMember(std::string_view member_id) { return table_.forgetMember(member_id); }
  size_t size() const { return table_.size(); }
  const StickTableCounters& counters() const { return table_.counters(); }

 private:
  std::string cookie_name_;
  StickTable table_;
};

}  // namespace banyan::dp::persistence
