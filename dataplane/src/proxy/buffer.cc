#include "proxy/buffer.h"

#include <cstdlib>
#include <vector>

#include "banyan/common/logging.h"

namespace banyan::dp::proxy {
namespace {

// Free 16 KiB blocks of this thread. Bounded so a burst does not pin memory.
struct BlockCache {
  std::vector<char*> blocks;
  ~BlockCache() {
    for (char* b : blocks) free(b);
  }
};
thread_local BlockCache t_cache;
constexpr size_t kMaxCachedBlocks = 128;  // 2 MiB per worker

char* allocBlock(size_t size) {
  if (size == Buffer::kBlockSize && !t_cache.blocks.empty()) {
    char* b = t_cache.blocks.back();
    t_cache.blocks.pop_back();
    return b;
  }
  char* b = static_cast<char*>(malloc(size));
  LB_CHECK(b != nullptr, "out of memory");
  return b;
}

void freeBlock(char* b, size_t size) {
  if (size == Buffer::kBlockSize && t_cache.blocks.size() < kMaxCachedBlocks) {
    t_cache.blocks.push_back(b);
    return;
  }
  free(b);
}

}  // namespace

char* Buffer::writable(size_t min) {
  if (cap_ - tail_ >= min) return data_ + tail_;
  size_t used = size();
  if (data_ && head_ > 0 && cap_ - used >= min) {
    memmove(data_, data_ + head_, used);
    head_ = 0;
    tail_ = used;
    return data_ + tail_;
  }
  size_t cap = cap_ ? cap_ : kBlockSize;
  while (cap - used < min) cap *= 2;
  char* fresh = allocBlock(cap);
  if (used) memcpy(fresh, data_ + head_, used);
  if (data_) freeBlock(data_, cap_);
  data_ = fresh;
  cap_ = cap;
  head_ = 0;
  tail_ = used;
  return data_ + tail_;
}

void Buffer::append(std::string_view s) {
  if (s.empty()) return;
  memcpy(writable(s.size()), s.data(), s.size());
  tail_ += s.size();
}

void Buffer::consume(size_t n) {
  head_ += n;
  if (head_ == tail_) head_ = tail_ = 0;
}

void Buffer::release() {
  if (data_) freeBlock(data_, cap_);
  data_ = nullptr;
  cap_ = head_ = tail_ = 0;
}

}  // namespace banyan::dp::proxy
