// The io_uring behind EventLoop's batched socket I/O. Private to the event
// module: nothing outside it includes liburing.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <memory>
#include <vector>

#include "event/loop.h"

namespace banyan::dp::event {

class EventLoop::IoRing {
 public:
  // Null when the kernel has no usable io_uring (too old, disabled, seccomp):
  // the loop then leaves every operation to plain system calls.
  static std::unique_ptr<IoRing> create();
  ~IoRing();
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;

  void queue(IoUser* user, uint32_t tag, bool send) { queued_.push_back({user, tag, send}); }
  void forget(IoUser* user);
  bool pending() const { return !queued_.empty(); }
  // Submits everything queued so far, delivers the results, then lets each
  // user resume (which may queue more for the next round).
  void flush();

 private:
  IoRing() = default;
  struct Entry {
    IoUser* user;
    uint32_t tag;
    bool send;
  };
  void submitAndReap(size_t first, size_t count);

  io_uring ring_{};
  unsigned sq_entries_ = 0;
  std::vector<Entry> queued_;
  std::vector<Entry> batch_;
  std::vector<IoOp> ops_;
  std::vector<msghdr> msgs_;
  std::vector<size_t> order_;   // indexes into batch_ of prepared operations, receives first
  std::vector<ssize_t> results_;
  std::vector<IoUser*> settle_;
};

}  // namespace banyan::dp::event
