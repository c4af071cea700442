// One epoll event loop per worker thread. Everything registered with a loop is
// touched only from that loop's thread, except post(), which any thread may call.
#pragma once

#include <sys/epoll.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace banyan::dp::event {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Millis = std::chrono::milliseconds;

// Receives readiness for one file descriptor. Registration stores the raw
// pointer: the handler must outlive its registration (call EventLoop::remove or
// close the fd first), and objects deleted during an iteration must go through
// EventLoop::deleteLater so events already fetched in the batch stay safe.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void onEvents(uint32_t events) = 0;
};

class EventLoop;

// One socket operation of a batch: a receive into one buffer, or a send of up
// to two buffers. Filled by IoUser::prepareIo just before submission.
struct IoOp {
  int fd = -1;
  bool send = false;
  iovec iov[2] = {};
  int cnt = 0;
};

// Something that hands its socket reads and writes to the loop's batch (see
// EventLoop::queueIo). The loop calls back only from its own thread.
class IoUser {
 public:
  // Describes operation `tag` right before it is submitted; false drops it
  // (nothing to do any more). Receives are prepared before sends, so a send
  // sees the buffers as receives of the same batch left them.
  virtual bool prepareIo(uint32_t tag, IoOp& op) = 0;
  // The result of `tag`, as send(2)/recv(2) would return it (or -errno).
  // Receives are delivered before sends. Must only record: no other I/O,
  // no queueIo, no closing. True for the user's first result of the batch
  // (it is then settled once after all of them).
  virtual bool ioDone(uint32_t tag, ssize_t result) = 0;
  // Every result of this user in the batch was delivered: resume work.
  virtual void ioSettled() = 0;

 protected:
  ~IoUser() = default;
};

// A one-shot timer owned by its user (usually a member of a connection).
// Destroying it cancels it. Re-arming to a later deadline is O(1): the heap
// entry keeps its place and is re-queued only when it comes due early.
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> callback);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm(Millis after);
  void armAt(TimePoint deadline);
  void cancel();
  bool armed() const { return armed_; }
  TimePoint deadline() const { return deadline_; }

 private:
  friend class EventLoop;
  EventLoop& loop_;
  std::function<void()> callback_;
  TimePoint deadline_{};   // when the timer fires
  TimePoint queued_at_{};  // the key of its heap entry (<= deadline_)
  size_t heap_index_ = SIZE_MAX;
  size_t due_index_ = SIZE_MAX;  // position in the loop's list of timers firing now
  bool armed_ = false;
};

// Something whose destruction must wait for the end of the loop iteration.
class Deletable {
 public:
  virtual ~Deletable() = default;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers fd for `events` (EPOLLIN, EPOLLOUT, EPOLLET, ...). False on error (errno set).
  bool add(int fd, uint32_t events, Handler* handler);
  bool modify(int fd, uint32_t events, Handler* handler);
  void remove(int fd);

  // Runs until stop(). Safe to call stop() from any thread.
  void run();
  void stop();
  // Runs one iteration, waiting at most `max_wait` for events.
  void runOnce(Millis max_wait);

  // Queues fn to run on the loop's thread. Thread-safe.
  void post(std::function<void()> fn);
  // Destroys `object` after the current iteration's events are handled.
  void deleteLater(std::unique_ptr<Deletable> object);

  // Batched socket I/O (io_uring). When available, users queue operations
  // instead of calling recv(2)/send(2); at the end of the iteration every
  // queued operation goes to the kernel in one system call and completes
  // there and then (MSG_DONTWAIT: a full or empty socket answers -EAGAIN, as
  // the plain calls would). That saves one kernel entry per operation, which
  // is most of a small request's cost where entries are expensive (PTI).
  // The ring is made on the loop's own thread, at its first iteration.
  bool ioBatching() const { return io_ != nullptr; }
  // Queues operation `tag` of `user` (at most once per tag until it is done).
  void queueIo(IoUser* user, uint32_t tag, bool send);
  // Drops what `user` queued (it is going away).
  void forgetIo(IoUser* user);
  // add() for a new connection's socket, in the batch when there is one: a
  // handler whose registration fails gets EPOLLERR|EPOLLHUP instead of events.
  // modify() and remove() before the batch went out change or drop it.
  // False only for a direct registration that failed (errno set).
  bool addSoon(int fd, uint32_t events, Handler* handler);
  // close(2), in the batch when there is one (after the batch's reads and
  // writes). The descriptor must already be forgotten by its owner.
  void closeSoon(int fd);
  // Turns batching off for this loop (tests).
  void disableIoBatching();
  // Whether loops made from now on batch (banyan-proxy --no-io-batching).
  static void setIoBatchingDefault(bool on);

  // Time at the start of the current iteration (cheap; refreshed each wakeup).
  TimePoint now() const { return now_; }
  void refreshNow() { now_ = Clock::now(); }

 private:
  friend class Timer;
  void heapPush(Timer* t);
  void heapRemove(Timer* t);
  void heapUp(size_t i);
  void heapDown(size_t i);
  void runTimers();
  void runPosted();
  int nextTimeoutMs(Millis max_wait) const;
  void flushIo();

  int epfd_ = -1;
  int wakefd_ = -1;
  bool stop_ = false;
  TimePoint now_;
  std::vector<Timer*> heap_;
  std::vector<Timer*> due_;  // timers firing in this iteration; null once cancelled
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::unique_ptr<Deletable>> doomed_;
  class WakeHandler;
  std::unique_ptr<WakeHandler> wake_handler_;
  class IoRing;
  std::unique_ptr<IoRing> io_;
  bool io_wanted_ = true;  // make the ring at the first iteration
};

}  // namespace banyan::dp::event
