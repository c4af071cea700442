// The controller side of banyan-provider: the worker, the health manager and
// housekeeping, built from the configuration and run until stopped. main.cc chooses
// which of them run (the roles); the API server is started beside them.
#pragma once

#include <memory>

#include "banyan/common/options.h"
#include "banyan/common/result.h"
#include "certs/cert_manager.h"
#include "store/store.h"

namespace banyan::provider::app {

struct ControllerRoles {
  bool worker = false;
  bool health = false;
  bool housekeeping = false;
};

class ControllerRuntime {
 public:
  virtual ~ControllerRuntime() = default;  // stops every thread it started
  // A job was queued by this process (the API): the worker, if any, looks now.
  virtual void jobQueued() = 0;
};

// Builds the drivers, the deployment PKI, the agent client, the controller and the
// roles' threads. Errors name the option or the part that failed. `cert_manager`
// reads listener and pool certificates for the config pushes (null: none).
common::Result<std::unique_ptr<ControllerRuntime>> startControllerRoles(
    const common::OptionSet& options, store::Store& store, const ControllerRoles& roles,
    std::shared_ptr<certs::CertManager> cert_manager = nullptr);

// Removes every amphora namespace, veth and bridge the netns drivers created on this
// host, and their state files (uninstall, test teardown). The database is not touched.
common::Result<void> cleanupNetns(const common::OptionSet& options);

}  // namespace banyan::provider::app
