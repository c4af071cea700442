#include "proxy/access_log.h"

#include <unistd.h>

namespace banyan::dp::proxy {

AccessLog::AccessLog(event::EventLoop& loop, int fd)
    : loop_(loop), fd_(fd), timer_(loop, [this] { flush(); }) {}

AccessLog::~AccessLog() { flush(); }

void AccessLog::setFd(int fd) {
  flush();
  fd_ = fd;
}

void AccessLog::line(std::string_view text) {
  if (fd_ < 0) return;
  buf_.append(text);
  buf_.push_back('\n');
  if (buf_.size() >= 16384)
    flush();
  else if (!timer_.armed())
    timer_.arm(event::Millis(200));
}

void AccessLog::flush() {
  if (fd_ >= 0 && !buf_.empty()) {
    size_t off = 0;
    while (off < buf_.size()) {
      ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n <= 0) break;  // a full disk loses log lines, never traffic
      off += static_cast<size_t>(n);
    }
  }
  buf_.clear();
  timer_.cancel();
}

}  // namespace banyan::dp::proxy
