#include "event/io_ring.h"

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

EventLoop::IoRing::~IoRing() { io_uring_queue_exit(&ring_); }

void EventLoop::IoRing::forget(IoUser* user) {
  for (Entry& e : queued_)
    if (e.user == user) e.user = nullptr;
  for (Entry& e : batch_)
    if (e.user == user) e.user = nullptr;
  for (IoUser*& u : settle_)
    if (u == user) u = nullptr;
}

void EventLoop::IoRing::flush() {
  batch_.clear();
  batch_.swap(queued_);
  size_t n = batch_.size();
  ops_.assign(n, IoOp{});
  msgs_.assign(n, msghdr{});
  results_.assign(n, 0);
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
  for (size_t first = 0; first < order_.size(); first += sq_entries_)
    submitAndReap(first, std::min<size_t>(sq_entries_, order_.size() - first));
  // Results in the order prepared (receives before sends), then one resume per
  // user, after all of its results are in.
  settle_.clear();
  for (size_t i : order_) {
    Entry& e = batch_[i];
    if (e.user == nullptr) continue;
    e.user->ioDone(e.tag, results_[i]);
    if (std::find(settle_.begin(), settle_.end(), e.user) == settle_.end()) settle_.push_back(e.user);
  }
  batch_.clear();
  for (size_t k = 0; k < settle_.size(); ++k)
    if (IoUser* u = settle_[k]) u->ioSettled();
  settle_.clear();
}

void EventLoop::IoRing::submitAndReap(size_t first, size_t count) {
  for (size_t k = first; k < first + count; ++k) {
    size_t i = order_[k];
    IoOp& op = ops_[i];
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    LB_CHECK(sqe != nullptr, "io_uring submission queue full");
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
    io_uring_sqe_set_data64(sqe, i);
  }
  // MSG_DONTWAIT makes each operation finish inside this call: it completes
  // or answers -EAGAIN instead of waiting for the socket in the kernel.
  size_t reaped = 0;
  bool submitted = false;
  while (reaped < count) {
    int rc = submitted ? io_uring_wait_cqe_nr(&ring_, nullptr, 1)
                       : io_uring_submit_and_wait(&ring_, static_cast<unsigned>(count));
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      LB_ERROR("io_uring_enter failed: %s", strerror(-rc));
      LB_CHECK(false, "io_uring_enter failed");
    }
    if (!submitted && rc >= 0) submitted = true;
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      results_[static_cast<size_t>(cqe->user_data)] = cqe->res;
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
    reaped += seen;
  }
}

}  // namespace banyan::dp::event
