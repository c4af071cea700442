// One line per HTTP request or TCP connection, buffered per worker and flushed
// in whole lines (a write per 16 KiB or every 200 ms), so logging costs no
// syscall per request. Format: docs/access-log.md.
#pragma once

#include <string>

#include "event/loop.h"

namespace banyan::dp::proxy {

class AccessLog {
 public:
  // fd < 0: disabled. The fd is shared by every worker and owned by the caller;
  // it is opened with O_APPEND so whole-line writes from several workers never mix.
  AccessLog(event::EventLoop& loop, int fd);
  ~AccessLog();
  bool enabled() const { return fd_ >= 0; }
  void setFd(int fd);
  // Appends one line (without the newline).
  void line(std::string_view text);
  void flush();

 private:
  event::EventLoop& loop_;
  int fd_;
  std::string buf_;
  event::Timer timer_;
};

}  // namespace banyan::dp::proxy
