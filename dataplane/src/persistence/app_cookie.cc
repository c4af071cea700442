#include "persistence/app_cookie.h"

#include "persistence/cookie.h"

namespace banyan::dp::persistence {

AppCookieTable::AppCookieTable(std::string cookie_name, const StickTableOptions& options)
    : cookie_name_(std::move(cookie_name)), table_(options) {}

bool AppCookieTable::learn(std::string_view set_cookie_header, std::string_view member_id,
                           TimePoint now) {
  std::optional<SetCookiePair> pair = parseSetCookie(set_cookie_header);
  if (!pair || pair->name != cookie_name_ || pair->value.empty()) return false;
  table_.store(pair->value, member_id, now);
  return true;
}

std::optional<std::string_view> AppCookieTable::lookup(std::string_view cookie_header,
                                                       TimePoint now) {
  std::optional<std::string_view> value = findLastCookie(cookie_header, cookie_name_);
  if (!value || value->empty()) return std::nullopt;
  return table_.lookup(*value, now);
}

std::optional<std::string_view> AppCookieTable::lookupValue(std::string_view value, TimePoint now) {
  if (value.empty()) return std::nullopt;
  return table_.lookup(value, now);
}

}  // namespace banyan::dp::persistence
