#include "controller/flow.h"

#include <gtest/gtest.h>

namespace banyan::provider::controller {
namespace {

using common::ErrorCode;
using common::makeError;

class CountingSleeper final : public Sleeper {
 public:
  void sleep(std::chrono::milliseconds d) override { waits.push_back(d.count()); }
  std::vector<int64_t> waits;
};

// Steps that record what ran, in order, into one log.
struct Recorder {
  std::vector<std::string> log;
  std::unique_ptr<Step> ok(const std::string& name) {
    return makeStep(
        name, [this, name](FlowState& s) { log.push_back("do " + name); s.set(name, "done"); return Result<void>(); },
        [this, name](FlowState& s) { log.push_back("undo " + name); s.erase(name); return Result<void>(); });
  }
  std::unique_ptr<Step> failing(const std::string& name, ErrorCode code, int failures) {
    auto left = std::make_shared<int>(failures);
    return makeStep(
        name,
        [this, name, code, left](FlowState&) -> Result<void> {
          log.push_back("do " + name);
          if (*left > 0) {
            --*left;
            return makeError(code, name + " failed");
          }
          return {};
        },
        [this, name](FlowState&) { log.push_back("undo " + name); return Result<void>(); });
  }
};

TEST(Flow, RunsStepsInOrderAndKeepsTheirOutputs) {
  Recorder rec;
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(rec.ok("a"));
  steps.push_back(rec.ok("b"));
  FlowState state;
  CountingSleeper sleeper;
  auto r = runFlow(steps, state, {}, sleeper);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(rec.log, (std::vector<std::string>{"do a", "do b"}));
  EXPECT_EQ(state.get("b"), "done");
  EXPECT_EQ(r.attempts, 2);
}

TEST(Flow, RetriesATransientFailureWithExponentialCappedBackoff) {
  Recorder rec;
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(rec.failing("wait-for-agent", ErrorCode::kUnavailable, 4));
  FlowState state;
  CountingSleeper sleeper;
  RetryPolicy retry{.max_attempts = 5, .initial_backoff = std::chrono::milliseconds(100), .multiplier = 3,
                    .max_backoff = std::chrono::milliseconds(1000)};
  auto r = runFlow(steps, state, retry, sleeper);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(sleeper.waits, (std::vector<int64_t>{100, 300, 900, 1000}));
  EXPECT_EQ(r.attempts, 5);
}

TEST(Flow, ARefusalIsNotRetriedAndEverythingThatRanIsRevertedNewestFirst) {
  Recorder rec;
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(rec.ok("allocate-vip"));
  steps.push_back(rec.ok("boot-amphora"));
  steps.push_back(rec.failing("push-config", ErrorCode::kInvalidArgument, 1));
  steps.push_back(rec.ok("never"));
  FlowState state;
  CountingSleeper sleeper;
  auto r = runFlow(steps, state, {}, sleeper);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failed_step, "push-config");
  EXPECT_EQ(r.error.message, "push-config failed");
  EXPECT_TRUE(sleeper.waits.empty());
  EXPECT_EQ(rec.log, (std::vector<std::string>{"do allocate-vip", "do boot-amphora", "do push-config",
                                               "undo push-config", "undo boot-amphora", "undo allocate-vip"}));
  EXPECT_FALSE(state.has("allocate-vip"));
}

TEST(Flow, ATransientFailureThatOutlivesItsRetriesFailsTheFlow) {
  Recorder rec;
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(rec.ok("a"));
  steps.push_back(rec.failing("b", ErrorCode::kUnavailable, 100));
  FlowState state;
  CountingSleeper sleeper;
  auto r = runFlow(steps, state, RetryPolicy{.max_attempts = 3}, sleeper);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.failed_step, "b");
  EXPECT_EQ(sleeper.waits.size(), 2u);
  EXPECT_EQ(rec.log.back(), "undo a");
}

TEST(Flow, FailedRevertsAreReportedAndTheRestStillRevert) {
  Recorder rec;
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(rec.ok("a"));
  steps.push_back(makeStep(
      "b", [](FlowState&) { return Result<void>(); },
      [](FlowState&) -> Result<void> { return makeError(ErrorCode::kUnavailable, "compute gone"); }));
  steps.push_back(rec.failing("c", ErrorCode::kInternal, 1));
  FlowState state;
  CountingSleeper sleeper;
  auto r = runFlow(steps, state, {}, sleeper);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.revert_errors, (std::vector<std::string>{"b: compute gone"}));
  EXPECT_EQ(rec.log.back(), "undo a");
}

TEST(Flow, AnInterruptedFlowStopsWithoutRevertingSoTheNextWorkerResumesIt) {
  Recorder rec;
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(rec.ok("a"));
  steps.push_back(rec.ok("b"));
  FlowState state;
  CountingSleeper sleeper;
  FlowHooks hooks{.after_step = [](std::string_view step) { return step != "a"; }};
  auto r = runFlow(steps, state, {}, sleeper, hooks);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(rec.log, (std::vector<std::string>{"do a"}));
  EXPECT_EQ(state.get("a"), "done");
}

TEST(FlowState, RoundTripsThroughJsonAndRefusesAnythingElse) {
  FlowState s;
  s.set("vip_address", "203.0.113.7");
  s.set("quote", "a \"b\"");
  auto back = FlowState::fromJson(s.toJson());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->get("vip_address"), "203.0.113.7");
  EXPECT_EQ(back->get("quote"), "a \"b\"");
  EXPECT_FALSE(FlowState::fromJson("[1]"));
  EXPECT_FALSE(FlowState::fromJson("{\"a\": 1}"));
  EXPECT_FALSE(FlowState::fromJson("{"));
}

}  // namespace
}  // namespace banyan::provider::controller
