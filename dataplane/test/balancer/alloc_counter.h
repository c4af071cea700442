// Test-only global allocation counter (alloc_counter.cc replaces operator new).
#pragma once

namespace banyan::dp::balancer {

// Number of operator new calls so far in this process.
long allocationCount();

}  // namespace banyan::dp::balancer
