#include "event/io_ring.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "banyan/common/logging.h"

namespace banyan::dp::event {

namespace {
constexpr unsigned kRingEntries = 512;
}  // namespace

std::unique_ptr<EventLoop::IoRing> EventLoop::IoRing::create() {
  std::unique_ptr<IoRing> r(new IoRing());
  // Completions are reaped only inside our own io_uring_enter (DEFER_TASKRUN):
  // no interrupts of the loop for task work. Older kernels refuse the newer
  // flags; fall back step by step.
  const unsigned flag_sets[] = {
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
          IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int rc = -ENOSYS;
  for (unsigned flags : flag_sets) {
    rc = io_uring_queue_init(kRingEntries, &r->ring_, flags);
    if (rc == 0) break;
  }
  if (rc != 0) {
    LB_INFO("io_uring is not available (%s); socket I/O uses plain system calls", strerror(-rc));
    return nullptr;
  }
  r->sq_entries_ = r->ring_.sq.ring_entries;
  return r;
}

EventLoop::IoRing::~IoRing() {
  closeQueuedNow();
  io_uring_queue_exit(&ring_);
}

void EventLoop::IoRing::closeQueuedNow() {
  for (int fd : closes_) ::close(fd);
  closes_.clear();
  queued_.clear();
  adds_.clear();
}

void EventLoop::IoRing::forget(IoUser* user) {
  for (Entry& e : queued_)
    if (e.user == user) e.user = nullptr;
  for (Entry& e : batch_)
    if (e.user == user) e.user = nullptr;
  for (IoUser*& u : settle_)
    if (u == user) u = nullptr;
}

void EventLoop::IoRing::queueAdd(int epfd, int fd, uint32_t events, Handler* handler) {
  Add a{epfd, fd, epoll_event{}, handler};
  a.ev.events = events;
  a.ev.data.ptr = handler;
  adds_.push_back(a);
}

bool EventLoop::IoRing::retargetAdd(int fd, uint32_t events, Handler* handler) {
  for (Add& a : adds_) {
    if (a.fd != fd) continue;
    a.ev.events = events;
    a.ev.data.ptr = handler;
    a.handler = handler;
    return true;
  }
  return false;
}

bool EventLoop::IoRing::dropAdd(int fd) {
  for (size_t i = 0; i < adds_.size(); ++i) {
    if (adds_[i].fd != fd) continue;
    adds_.erase(adds_.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
  }
  return false;
}

void EventLoop::IoRing::flush() {
  batch_.clear();
  batch_.swap(queued_);
  adds_batch_.clear();
  adds_batch_.swap(adds_);
  closes_batch_.clear();
  closes_batch_.swap(closes_);
  size_t n = batch_.size();
  ops_.assign(n, IoOp{});
  msgs_.assign(n, msghdr{});
  results_.assign(n, 0);
  add_results_.assign(adds_batch_.size(), 0);
  order_.clear();
  // Receives first: preparing one may move its buffer's bytes (compaction),
  // which a send of the same buffer must see when it takes its pointers.
  for (bool send : {false, true}) {
    for (size_t i = 0; i < n; ++i) {
      Entry& e = batch_[i];
      if (e.user == nullptr || e.send != send) continue;
      if (!e.user->prepareIo(e.tag, ops_[i])) {
        e.user = nullptr;
        continue;
      }
      order_.push_back(i);
    }
  }
  // Registrations before the reads of the new sockets, closes after the
  // writes that may still go out on them.
  sqes_.clear();
  for (size_t i = 0; i < adds_batch_.size(); ++i) sqes_.push_back((uint64_t{kAdd} << kKindShift) | i);
  for (size_t i : order_) sqes_.push_back(i);
  for (size_t i = 0; i < closes_batch_.size(); ++i) sqes_.push_back((uint64_t{kClose} << kKindShift) | i);
  submitAndReap(sqes_);
  // Results in the order prepared (receives before sends), then one resume per
  // user, after all of its results are in.
  settle_.clear();
  for (size_t i : order_) {
    Entry& e = batch_[i];
    if (e.user == nullptr) continue;
    if (e.user->ioDone(e.tag, results_[i])) settle_.push_back(e.user);
  }
  batch_.clear();
  for (size_t k = 0; k < settle_.size(); ++k)
    if (IoUser* u = settle_[k]) u->ioSettled();
  settle_.clear();
  for (size_t i = 0; i < adds_batch_.size(); ++i) {
    if (add_results_[i] == 0) continue;
    // Without a registration the socket would never report anything: let its
    // handler see an error now (sessions then close).
    LB_WARN("Could not watch a new socket: %s", strerror(-add_results_[i]));
    adds_batch_[i].handler->onEvents(EPOLLERR | EPOLLHUP);
  }
}

void EventLoop::IoRing::prepSqe(uint64_t data) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  LB_CHECK(sqe != nullptr, "io_uring submission queue full");
  size_t i = static_cast<size_t>(data & ((uint64_t{1} << kKindShift) - 1));
  switch (data >> kKindShift) {
    case kAdd: {
      Add& a = adds_batch_[i];
      io_uring_prep_epoll_ctl(sqe, a.epfd, a.fd, EPOLL_CTL_ADD, &a.ev);
      break;
    }
    case kClose:
      io_uring_prep_close(sqe, closes_batch_[i]);
      break;
    default: {
      IoOp& op = ops_[i];
      if (!op.send) {
        io_uring_prep_recv(sqe, op.fd, op.iov[0].iov_base, op.iov[0].iov_len, MSG_DONTWAIT);
      } else if (op.cnt == 1) {
        io_uring_prep_send(sqe, op.fd, op.iov[0].iov_base, op.iov[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL);
      } else {
        msghdr& m = msgs_[i];
        m.msg_iov = op.iov;
        m.msg_iovlen = static_cast<size_t>(op.cnt);
        io_uring_prep_sendmsg(sqe, op.fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
      }
      break;
    }
  }
  io_uring_sqe_set_data64(sqe, data);
}

void EventLoop::IoRing::submitAndReap(const std::vector<uint64_t>& sqes) {
  for (size_t first = 0; first < sqes.size(); first += sq_entries_) {
    size_t count = std::min<size_t>(sq_entries_, sqes.size() - first);
    for (size_t k = first; k < first + count; ++k) prepSqe(sqes[k]);
    // MSG_DONTWAIT makes each read or write finish inside this call: it
    // completes or answers -EAGAIN instead of waiting for the socket.
    size_t reaped = 0;
    bool submitted = false;
    while (reaped < count) {
      // Later turns submit too: without IORING_SETUP_SUBMIT_ALL (old kernels)
      // a failed entry stops the submission of those after it.
      int rc = io_uring_submit_and_wait(&ring_, submitted ? 1u : static_cast<unsigned>(count));
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        LB_ERROR("io_uring_enter failed: %s", strerror(-rc));
        LB_CHECK(false, "io_uring_enter failed");
      }
      if (!submitted && rc >= 0) submitted = true;
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        uint64_t data = io_uring_cqe_get_data64(cqe);
        size_t i = static_cast<size_t>(data & ((uint64_t{1} << kKindShift) - 1));
        switch (data >> kKindShift) {
          case kAdd:
            add_results_[i] = cqe->res;
            break;
          case kClose:
            if (cqe->res < 0) LB_DEBUG("close of a socket failed: %s", strerror(-cqe->res));
            break;
          default:
            results_[i] = cqe->res;
        }
        ++seen;
      }
      io_uring_cq_advance(&ring_, seen);
      reaped += seen;
    }
  }
}

}  // namespace banyan::dp::event
