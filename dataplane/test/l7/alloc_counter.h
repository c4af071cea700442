// Test-only global allocation counter (alloc_counter.cc replaces operator new).
#pragma once

namespace banyan::dp::l7::testing {
long allocationCount();
}  // namespace banyan::dp::l7::testing
