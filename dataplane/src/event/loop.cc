#include "event/loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "banyan/common/logging.h"
#include "event/io_ring.h"

namespace banyan::dp::event {

class EventLoop::WakeHandler : public Handler {
 public:
  explicit WakeHandler(int fd) : fd_(fd) {}
  void onEvents(uint32_t) override {
    uint64_t v;
    while (::read(fd_, &v, sizeof v) > 0) {
    }
  }

 private:
  int fd_;
};

Timer::Timer(EventLoop& loop, std::function<void()> callback)
    : loop_(loop), callback_(std::move(callback)) {}

Timer::~Timer() { cancel(); }

void Timer::arm(Millis after) { armAt(loop_.now() + after); }

void Timer::armAt(TimePoint deadline) {
  deadline_ = deadline;
  armed_ = true;
  if (due_index_ != SIZE_MAX) {  // re-armed before its turn in this iteration's firing
    loop_.due_[due_index_] = nullptr;
    due_index_ = SIZE_MAX;
  }
  if (heap_index_ != SIZE_MAX) {
    if (deadline >= queued_at_) return;  // lazy: re-queued when the old key comes due
    loop_.heapRemove(this);
  }
  queued_at_ = deadline;
  loop_.heapPush(this);
}

void Timer::cancel() {
  armed_ = false;
  if (heap_index_ != SIZE_MAX) loop_.heapRemove(this);
  if (due_index_ != SIZE_MAX) {
    loop_.due_[due_index_] = nullptr;
    due_index_ = SIZE_MAX;
  }
}

namespace {
std::atomic<bool> g_io_batching{true};
}  // namespace

void EventLoop::setIoBatchingDefault(bool on) { g_io_batching = on; }

EventLoop::EventLoop() : now_(Clock::now()), io_wanted_(g_io_batching) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  LB_CHECK(epfd_ >= 0, "epoll_create1 failed");
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  LB_CHECK(wakefd_ >= 0, "eventfd failed");
  wake_handler_ = std::make_unique<WakeHandler>(wakefd_);
  LB_CHECK(add(wakefd_, EPOLLIN, wake_handler_.get()), "cannot watch the wake eventfd");
}

EventLoop::~EventLoop() {
  doomed_.clear();
  io_.reset();
  for (Timer* t : heap_) t->heap_index_ = SIZE_MAX;
  for (Timer* t : due_)
    if (t) t->due_index_ = SIZE_MAX;
  ::close(wakefd_);
  ::close(epfd_);
}

bool EventLoop::add(int fd, uint32_t events, Handler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::modify(int fd, uint32_t events, Handler* handler) {
  if (io_ && io_->retargetAdd(fd, events, handler)) return true;  // not registered yet
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) {
  if (io_ && io_->dropAdd(fd)) return;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::run() {
  stop_ = false;
  while (!stop_) runOnce(Millis(1000));
}

void EventLoop::stop() {
  post([this] { stop_ = true; });
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t n = ::write(wakefd_, &one, sizeof one);
  (void)n;  // EAGAIN means a wakeup is already pending
}

void EventLoop::deleteLater(std::unique_ptr<Deletable> object) {
  doomed_.push_back(std::move(object));
}

void EventLoop::queueIo(IoUser* user, uint32_t tag, bool send) { io_->queue(user, tag, send); }

void EventLoop::forgetIo(IoUser* user) {
  if (io_) io_->forget(user);
}

bool EventLoop::addSoon(int fd, uint32_t events, Handler* handler) {
  if (!io_) return add(fd, events, handler);
  io_->queueAdd(epfd_, fd, events, handler);
  return true;
}

void EventLoop::closeSoon(int fd) {
  if (io_)
    io_->queueClose(fd);
  else
    ::close(fd);
}

void EventLoop::disableIoBatching() {
  io_wanted_ = false;
  if (io_) io_->flush();  // what is queued still happens
  io_.reset();
}

// A few rounds per iteration: a result often lets its user go on at once (a
// request read, then sent to its member). What is still queued after them
// goes out after a non-blocking look at the other sockets.
void EventLoop::flushIo() {
  for (int round = 0; io_ && io_->pending() && (round < 4 || io_->descriptorsPending()); ++round) io_->flush();
}

int EventLoop::nextTimeoutMs(Millis max_wait) const {
  if (!doomed_.empty() || (io_ && io_->pending())) return 0;
  if (heap_.empty()) return static_cast<int>(max_wait.count());
  auto due = heap_[0]->queued_at_;
  auto now = Clock::now();
  if (due <= now) return 0;
  auto ms = std::chrono::duration_cast<Millis>(due - now).count() + 1;
  return static_cast<int>(std::min<int64_t>(ms, max_wait.count()));
}

void EventLoop::runOnce(Millis max_wait) {
  if (io_wanted_ && !io_) {
    io_wanted_ = false;
    io_ = IoRing::create();
  }
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  int n = epoll_wait(epfd_, events, kMaxEvents, nextTimeoutMs(max_wait));
  now_ = Clock::now();
  if (n < 0 && errno != EINTR) LB_CHECK(false, "epoll_wait failed");
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    auto* h = static_cast<Handler*>(events[i].data.ptr);
    if (h == wake_handler_.get()) woken = true;
    h->onEvents(events[i].events);
  }
  // Posted work runs after the batch: it may destroy handlers (a config apply
  // removes a listener) whose events are still in `events`.
  if (woken) runPosted();
  runTimers();
  flushIo();
  doomed_.clear();
}

void EventLoop::runPosted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

// Fires the timers due at the start of this pass, in deadline order. A timer
// armed again by a callback, even for "now", waits for the next iteration, so
// timers can never starve the sockets.
void EventLoop::runTimers() {
  due_.clear();
  while (!heap_.empty() && heap_[0]->queued_at_ <= now_) {
    Timer* t = heap_[0];
    heapRemove(t);
    if (!t->armed_) continue;
    if (t->deadline_ != t->queued_at_) {
      // Pushed back lazily: queue it under its real deadline so it keeps its place.
      t->queued_at_ = t->deadline_;
      heapPush(t);
      continue;
    }
    t->due_index_ = due_.size();
    due_.push_back(t);
  }
  for (size_t i = 0; i < due_.size(); ++i) {
    Timer* t = due_[i];
    if (!t) continue;  // cancelled, re-armed or destroyed by an earlier callback
    t->due_index_ = SIZE_MAX;
    t->armed_ = false;
    t->callback_();  // may delete or re-arm timers through deleteLater/arm
  }
  due_.clear();
}

void EventLoop::heapPush(Timer* t) {
  t->heap_index_ = heap_.size();
  heap_.push_back(t);
  heapUp(t->heap_index_);
}

void EventLoop::heapRemove(Timer* t) {
  size_t i = t->heap_index_;
  LB_DCHECK(i < heap_.size() && heap_[i] == t, "timer heap index out of sync");
  Timer* last = heap_.back();
  heap_.pop_back();
  t->heap_index_ = SIZE_MAX;
  if (last == t) return;
  heap_[i] = last;
  last->heap_index_ = i;
  heapUp(i);
  heapDown(last->heap_index_);
}

void EventLoop::heapUp(size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (heap_[p]->queued_at_ <= heap_[i]->queued_at_) break;
    std::swap(heap_[p], heap_[i]);
    heap_[p]->heap_index_ = p;
    heap_[i]->heap_index_ = i;
    i = p;
  }
}

void EventLoop::heapDown(size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_.size() && heap_[l]->queued_at_ < heap_[m]->queued_at_) m = l;
    if (r < heap_.size() && heap_[r]->queued_at_ < heap_[m]->queued_at_) m = r;
    if (m == i) return;
    std::swap(heap_[m], heap_[i]);
    heap_[m]->heap_index_ = m;
    heap_[i]->heap_index_ = i;
    i = m;
  }
}

}  // namespace banyan::dp::event
