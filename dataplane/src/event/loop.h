// One epoll event loop per worker thread. Everything registered with a loop is
// touched only from that loop's thread, except post(), which any thread may call.
#pragma once

#include <sys/epoll.h>

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
};

}  // namespace banyan::dp::event
