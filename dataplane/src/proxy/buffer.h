// Byte buffers for connections. Storage comes in fixed 16 KiB blocks from a
// per-thread free list, so a connection holds memory only while it has bytes
// in flight: 10,000 idle keep-alive connections cost no buffer memory.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

namespace banyan::dp::proxy {

class Buffer {
 public:
  static constexpr size_t kBlockSize = 16384;

  Buffer() = default;
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  const char* data() const { return data_ + head_; }
  size_t size() const { return tail_ - head_; }
  bool empty() const { return head_ == tail_; }
  std::string_view view() const { return {data() ? data() : "", size()}; }

  // Space to read into, at least `min` bytes (grows beyond one block when the
  // head being parsed is bigger; bounded by the caller's limits).
  char* writable(size_t min = 1);
  size_t writableSize() const { return cap_ - tail_; }
  void commit(size_t n) { tail_ += n; }
  void append(std::string_view s);
  void consume(size_t n);
  // Gives the storage back to the free list when nothing is buffered.
  void releaseIfEmpty() {
    if (empty()) release();
  }
  void clear() {
    head_ = tail_ = 0;
    release();
  }

 private:
  void release();
  char* data_ = nullptr;
  size_t head_ = 0;
  size_t tail_ = 0;
  size_t cap_ = 0;
};

}  // namespace banyan::dp::proxy
