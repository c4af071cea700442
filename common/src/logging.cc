#include "banyan/common/logging.h"

#include <sys/time.h>

#include <cstdarg>
#include <cstring>
#include <ctime>

namespace banyan::common {
namespace detail {

std::atomic<int> g_log_level{static_cast<int>(LogLevel::kInfo)};

void logWrite(LogLevel level, const char* file, int line, const char* fmt, ...) {
  static const char* const kNames[] = {"DEBUG", "INFO", "WARNING", "ERROR", "OFF"};
  char buf[2048];
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   static_cast<long>(tv.tv_usec / 1000), kNames[static_cast<int>(level)]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
  va_end(ap);
  size_t len = n + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof buf - 64) len = sizeof buf - 64;
  if (level >= LogLevel::kWarning || logEnabled(LogLevel::kDebug)) {
    const char* base = strrchr(file, '/');
    len += snprintf(buf + len, 64, " (%s:%d)", base ? base + 1 : file, line);
  }
  buf[len++] = '\n';
  // One write per line so lines from several threads never interleave.
  fwrite(buf, 1, len, stderr);
}

void checkFailed(const char* file, int line, const char* cond, const char* why) {
  fprintf(stderr, "FATAL check failed: %s: %s (%s:%d)\n", cond, why, file, line);
  abort();
}

}  // namespace detail

void setLogLevel(LogLevel level) {
  detail::g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel logLevel() { return static_cast<LogLevel>(detail::g_log_level.load()); }

bool parseLogLevel(std::string_view text, LogLevel& out) {
  static const struct {
    const char* name;
    LogLevel level;
  } kLevels[] = {{"debug", LogLevel::kDebug},
                 {"info", LogLevel::kInfo},
                 {"warning", LogLevel::kWarning},
                 {"error", LogLevel::kError},
                 {"off", LogLevel::kOff}};
  for (const auto& l : kLevels) {
    if (text == l.name) {
      out = l.level;
      return true;
    }
  }
  return false;
}

}  // namespace banyan::common
