// The PostgreSQL job channel (Store::listenForJobs): one dedicated connection in
// LISTEN banyan_jobs, its own thread waiting in poll() on the connection's socket and
// a wake pipe (for stop). A dropped connection (server restart, backend terminated,
// network cut noticed by TCP keepalives) is reopened with exponential backoff; the loss
// is logged once per outage, not once per attempt.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace banyan::provider::store {

// The channel enqueueJob() and retryJob() notify (pg_notify, sent at commit).
inline constexpr const char* kJobChannel = "banyan_jobs";

struct PostgresJobListenerOptions {
  // libpq keywords and values, as PostgresOptions::params.
  std::vector<std::pair<std::string, std::string>> params;
  std::chrono::milliseconds min_backoff{100};  // first wait after a loss, then doubled
  std::chrono::milliseconds max_backoff{5000};
};

std::unique_ptr<JobListener> startPostgresJobListener(PostgresJobListenerOptions options,
                                                      JobListenerCallbacks callbacks);

}  // namespace banyan::provider::store
