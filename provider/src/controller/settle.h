// How a finished job leaves the database: the statuses Octavia's worker writes at the
// end of a flow (docs/provider-api.md "Jobs"). The API locks a load balancer while
// anything under it is PENDING_*, so when a job of that load balancer ends, every
// PENDING_* object under it belongs to that job.
#pragma once

#include <string>

#include "banyan/common/result.h"
#include "store/store.h"

namespace banyan::provider::controller {

// The object kinds of a load balancer's tree, children first.
inline constexpr const char* kChildKinds[] = {"l7rule", "l7policy", "member", "healthmonitor",
                                              "listener", "pool"};

// Success: PENDING_CREATE/PENDING_UPDATE objects become ACTIVE (health monitors, L7
// policies and rules also get operating status ONLINE or OFFLINE by admin_state_up),
// PENDING_DELETE objects are removed, and a load balancer in PENDING_DELETE is removed
// with everything under it (its amphorae, statistics and VRRP settings too).
common::Result<void> settleSucceeded(store::Transaction& tx, const std::string& lb_id);

// Failure: the job's object goes ERROR (for member.batch_update: the members it
// touched), and so do objects that were being created or deleted with it; parents that
// were only PENDING_UPDATE go back to ACTIVE. A failed load balancer job leaves the
// load balancer ERROR.
common::Result<void> settleFailed(store::Transaction& tx, const std::string& lb_id,
                                  const std::string& job_kind, const std::string& object_id);

}  // namespace banyan::provider::controller
