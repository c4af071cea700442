#include "proxy/buffer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace banyan::dp::proxy {
namespace {

// Bytes that differ from their neighbours, so a shifted or truncated copy shows.
std::string pattern(size_t n, size_t seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

TEST(Buffer, NewBufferHoldsNoStorage) {
  Buffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.writableSize(), 0u);
  EXPECT_EQ(b.view(), "");
}

TEST(Buffer, AppendThenConsumeRoundTripsTheBytes) {
  Buffer b;
  b.append("hello ");
  b.append("world");
  EXPECT_EQ(b.view(), "hello world");
  EXPECT_EQ(b.size(), 11u);
  b.consume(6);
  EXPECT_EQ(b.view(), "world");
  b.append("!");
  EXPECT_EQ(b.view(), "world!");
  b.consume(6);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.view(), "");
}

TEST(Buffer, AppendingNothingAllocatesNothing) {
  Buffer b;
  b.append("");
  EXPECT_EQ(b.data(), nullptr);
}

TEST(Buffer, WritableThenCommitAppendsWhatWasWritten) {
  Buffer b;
  char* w = b.writable(5);
  ASSERT_NE(w, nullptr);
  EXPECT_GE(b.writableSize(), 5u);
  EXPECT_EQ(b.writableSize(), Buffer::kBlockSize);  // the first allocation is one block
  memcpy(w, "abcde", 5);
  b.commit(3);  // a short read: only part of the space was filled
  EXPECT_EQ(b.view(), "abc");
  EXPECT_EQ(b.writable(1), b.data() + 3);
}

TEST(Buffer, ConsumingEverythingMakesTheWholeBlockWritableAgain) {
  Buffer b;
  b.append(pattern(10000));
  b.consume(10000);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.writableSize(), Buffer::kBlockSize);
}

TEST(Buffer, GrowingPastOneBlockKeepsEveryByte) {
  Buffer b;
  const std::string all = pattern(3 * Buffer::kBlockSize + 123);
  for (size_t off = 0; off < all.size(); off += 1000) b.append(std::string_view(all).substr(off, 1000));
  EXPECT_EQ(b.size(), all.size());
  EXPECT_EQ(b.view(), all);
  b.consume(Buffer::kBlockSize);
  EXPECT_EQ(b.view(), std::string_view(all).substr(Buffer::kBlockSize));
}

TEST(Buffer, WritableLargerThanABlockGrowsAndKeepsTheUnconsumedBytes) {
  Buffer b;
  const std::string head = pattern(Buffer::kBlockSize - 10);
  b.append(head);
  b.consume(100);
  char* w = b.writable(Buffer::kBlockSize);  // a head bigger than one block being parsed
  EXPECT_GE(b.writableSize(), Buffer::kBlockSize);
  EXPECT_EQ(w, b.data() + b.size());
  EXPECT_EQ(b.view(), std::string_view(head).substr(100));
}

TEST(Buffer, WritableCompactsInPlaceWhenTheConsumedFrontMakesRoom) {
  Buffer b;
  const std::string bytes = pattern(12000);
  b.append(bytes);
  const char* block = b.data();
  b.consume(9000);
  ASSERT_LT(b.writableSize(), 8000u);
  char* w = b.writable(8000);
  // The 3000 live bytes moved to the front of the same block: no new storage.
  EXPECT_EQ(b.data(), block);
  EXPECT_EQ(w, block + 3000);
  EXPECT_EQ(b.view(), std::string_view(bytes).substr(9000));
  EXPECT_EQ(b.writableSize(), Buffer::kBlockSize - 3000);
}

TEST(Buffer, ReleaseIfEmptyFreesTheStorageOfAnEmptyBuffer) {
  Buffer b;
  b.append("abc");
  b.consume(3);
  b.releaseIfEmpty();
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.writableSize(), 0u);
  b.append("again");  // usable after release
  EXPECT_EQ(b.view(), "again");
}

TEST(Buffer, ReleaseIfEmptyKeepsABufferThatHoldsBytes) {
  Buffer b;
  b.append("abcdef");
  b.consume(2);
  const char* before = b.data();
  b.releaseIfEmpty();
  EXPECT_EQ(b.data(), before);
  EXPECT_EQ(b.view(), "cdef");
}

TEST(Buffer, ClearDropsBytesAndStorage) {
  Buffer b;
  b.append(pattern(2 * Buffer::kBlockSize));
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.writableSize(), 0u);
}

TEST(Buffer, ReleasedBlockIsReusedByTheNextBufferOnTheSameThread) {
  const char* block;
  {
    Buffer a;
    a.append("x");
    block = a.data();
  }  // the destructor returns the block to this thread's cache
  Buffer b;
  b.append("y");
  EXPECT_EQ(b.data(), block);
  EXPECT_EQ(b.view(), "y");
}

TEST(Buffer, BuffersOnManyThreadsKeepTheirOwnBytes) {
  // Each thread has its own block cache; blocks handed around inside one
  // thread must never end up shared between two live buffers.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &mismatches] {
      for (int round = 0; round < 200; ++round) {
        Buffer x, y;
        const std::string px = pattern(100 + round, t), py = pattern(200 + round, t + 1);
        x.append(px);
        y.append(py);
        if (x.view() != px || y.view() != py) ++mismatches;
        if (x.data() == y.data()) ++mismatches;
        x.consume(x.size());
        x.releaseIfEmpty();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace banyan::dp::proxy
