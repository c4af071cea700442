// The io_uring behind EventLoop's batched socket I/O. Private to the event
// module: nothing outside it includes liburing.
#pragma once

#include <liburing.h>
#include <sys/epoll.h>
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
  void queueAdd(int epfd, int fd, uint32_t events, Handler* handler);
  void queueClose(int fd) { closes_.push_back(fd); }
  // A registration of `fd` still queued: modify() changes it (true), remove() drops it.
  bool retargetAdd(int fd, uint32_t events, Handler* handler);
  bool dropAdd(int fd);
  void forget(IoUser* user);
  // The ring is going away: closes what waits to be closed, drops the rest.
  void closeQueuedNow();
  bool pending() const { return !queued_.empty() || !adds_.empty() || !closes_.empty(); }
  // Registrations and closes wait for no later round: they are always flushed.
  bool descriptorsPending() const { return !adds_.empty() || !closes_.empty(); }
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
  struct Add {
    int epfd;
    int fd;
    epoll_event ev;
    Handler* handler;
  };
  // user_data of an SQE: the kind in the top byte, an index below.
  static constexpr uint64_t kKindShift = 56;
  enum Kind : uint64_t { kUserOp = 0, kAdd = 1, kClose = 2 };
  void prepSqe(uint64_t data);
  void submitAndReap(const std::vector<uint64_t>& sqes);

  io_uring ring_{};
  unsigned sq_entries_ = 0;
  std::vector<Entry> queued_;
  std::vector<Entry> batch_;
  std::vector<IoOp> ops_;
  std::vector<msghdr> msgs_;
  std::vector<size_t> order_;   // indexes into batch_ of prepared operations, receives first
  std::vector<ssize_t> results_;
  std::vector<IoUser*> settle_;
  std::vector<Add> adds_, adds_batch_;
  std::vector<int> closes_, closes_batch_;
  std::vector<int> add_results_;
  std::vector<uint64_t> sqes_;  // what this round submits, in order
};

}  // namespace banyan::dp::event
