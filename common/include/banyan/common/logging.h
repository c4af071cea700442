// One logging facade for every Banyan binary. A message is a short sentence
// followed by key=value context. A disabled level costs one branch.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace banyan::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

namespace detail {
extern std::atomic<int> g_log_level;
void logWrite(LogLevel level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
[[noreturn]] void checkFailed(const char* file, int line, const char* cond, const char* why);
}  // namespace detail

void setLogLevel(LogLevel level);
LogLevel logLevel();
// Parses "debug", "info", "warning", "error", "off"; false when unknown.
bool parseLogLevel(std::string_view text, LogLevel& out);

inline bool logEnabled(LogLevel level) {
  return static_cast<int>(level) >= detail::g_log_level.load(std::memory_order_relaxed);
}

}  // namespace banyan::common

#define LB_LOG(level, ...)                                                              \
  do {                                                                                  \
    if (::banyan::common::logEnabled(level))                                            \
      ::banyan::common::detail::logWrite(level, __FILE__, __LINE__, __VA_ARGS__);       \
  } while (0)
#define LB_DEBUG(...) LB_LOG(::banyan::common::LogLevel::kDebug, __VA_ARGS__)
#define LB_INFO(...) LB_LOG(::banyan::common::LogLevel::kInfo, __VA_ARGS__)
#define LB_WARN(...) LB_LOG(::banyan::common::LogLevel::kWarning, __VA_ARGS__)
#define LB_ERROR(...) LB_LOG(::banyan::common::LogLevel::kError, __VA_ARGS__)

// Broken invariants crash with the reason; see STYLE.md "Errors".
#define LB_CHECK(cond, why) \
  do {                      \
    if (!(cond)) ::banyan::common::detail::checkFailed(__FILE__, __LINE__, #cond, why); \
  } while (0)
#ifdef NDEBUG
#define LB_DCHECK(cond, why) \
  do {                       \
  } while (0)
#else
#define LB_DCHECK(cond, why) LB_CHECK(cond, why)
#endif
