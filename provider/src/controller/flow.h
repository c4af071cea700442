// Flows: how the controller worker turns one job into work on the outside world.
//
// A flow is an ordered list of steps. Every step is idempotent, so a job whose worker
// died mid-flow is simply run again from the start by the next worker that claims it
// (DESIGN.md, data flow step 3); steps that already happened notice and do nothing.
// A step that fails with a transient error (kUnavailable: an amphora not answering yet,
// a busy database) is retried with exponential backoff; any other failure, or a
// transient one that outlives its retries, reverts the steps that ran, newest first,
// and the flow reports which step failed and why, so the caller can mark the objects
// ERROR with a reason an operator can read.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::controller {

using common::Result;

// Values a step leaves for later steps (an allocated VIP address, a compute id).
// Serialisable, so a flow's outputs can be kept with its job.
class FlowState {
 public:
  std::string get(std::string_view key) const;  // "" when unset
  bool has(std::string_view key) const;
  void set(std::string_view key, std::string value);
  void erase(std::string_view key);
  std::string toJson() const;
  static Result<FlowState> fromJson(std::string_view json);

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

class Step {
 public:
  virtual ~Step() = default;
  virtual std::string_view name() const = 0;
  // Idempotent: may run again after a crash or a retry.
  virtual Result<void> execute(FlowState& state) = 0;
  // Undoes execute() after a later step failed for good; idempotent too. A step with
  // nothing to undo keeps the default.
  virtual Result<void> revert(FlowState& /*state*/) { return {}; }
};

// A step from two functions, for flows assembled in place.
std::unique_ptr<Step> makeStep(std::string name, std::function<Result<void>(FlowState&)> execute,
                               std::function<Result<void>(FlowState&)> revert = nullptr);

struct RetryPolicy {
  int max_attempts = 5;  // per step, the first try included
  std::chrono::milliseconds initial_backoff{200};
  double multiplier = 2.0;
  std::chrono::milliseconds max_backoff{5000};
};

// Waits between retries. The real one sleeps; tests count.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void sleep(std::chrono::milliseconds duration) = 0;
};
Sleeper& realSleeper();

struct FlowResult {
  bool ok = true;
  std::string failed_step;               // when !ok
  common::Error error;                   // why it failed, when !ok
  std::vector<std::string> revert_errors;  // "step: message" for reverts that failed too
  int attempts = 0;                      // step executions in all, retries included
  bool interrupted = false;              // hooks.after_step stopped it; nothing reverted
};

struct FlowHooks {
  // Called after each step succeeds (the worker renews its job lease here). Returning
  // false stops the flow where it is, without reverting: the worker lost its claim or is
  // shutting down, and the next claimant resumes the job.
  std::function<bool(std::string_view step)> after_step;
};

FlowResult runFlow(const std::vector<std::unique_ptr<Step>>& steps, FlowState& state,
                   const RetryPolicy& retry, Sleeper& sleeper, const FlowHooks& hooks = {});

}  // namespace banyan::provider::controller
