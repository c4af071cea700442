// A Store that tells someone when a committed write queued a job: in a process that
// runs the API and a worker (`banyan-provider all`), the worker wakes at once instead
// of at its next poll. Every call is forwarded to the wrapped store.
#pragma once

#include <functional>
#include <memory>

#include "store/store.h"

namespace banyan::provider::store {

// `on_job` runs on the writing thread after the commit; it must be quick (signal a
// condition variable). `inner` must outlive the returned store.
std::unique_ptr<Store> makeNotifyingStore(Store& inner, std::function<void()> on_job);

}  // namespace banyan::provider::store
