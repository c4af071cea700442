// Replaces the global operator new/delete to count allocations, so tests can
// assert the match path makes none. In its own translation unit: when GCC
// inlines these definitions into callers it misreports malloc/free as mismatched.
#include "alloc_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  std::abort();  // out of memory is fatal (STYLE.md, Errors)
}
void* operator new[](std::size_t size) { return ::operator new(size); }
// Every form that pairs with the deletes below (std::stable_sort's buffer uses
// the nothrow one); otherwise ASan's versions pair with our delete.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return ::operator new(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return ::operator new(size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace banyan::dp::l7::testing {
long allocationCount() { return g_allocations.load(std::memory_order_relaxed); }
}  // namespace banyan::dp::l7::testing
