#include "controller/flow.h"

#include <algorithm>
#include <thread>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "banyan/common/logging.h"

namespace banyan::provider::controller {

using common::ErrorCode;
using common::makeError;

std::string FlowState::get(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::string() : it->second;
}

bool FlowState::has(std::string_view key) const { return values_.find(key) != values_.end(); }

void FlowState::set(std::string_view key, std::string value) { values_[std::string(key)] = std::move(value); }

void FlowState::erase(std::string_view key) {
  auto it = values_.find(key);
  if (it != values_.end()) values_.erase(it);
}

std::string FlowState::toJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [k, v] : values_) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  return buf.GetString();
}

Result<FlowState> FlowState::fromJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return makeError(ErrorCode::kInvalidArgument, "flow state is not a JSON object");
  }
  FlowState state;
  for (const auto& m : doc.GetObject()) {
    if (!m.value.IsString()) {
      return makeError(ErrorCode::kInvalidArgument, "flow state values are strings", m.name.GetString());
    }
    state.set(std::string_view(m.name.GetString(), m.name.GetStringLength()),
              std::string(m.value.GetString(), m.value.GetStringLength()));
  }
  return state;
}

namespace {

class FunctionStep final : public Step {
 public:
  FunctionStep(std::string name, std::function<Result<void>(FlowState&)> execute,
               std::function<Result<void>(FlowState&)> revert)
      : name_(std::move(name)), execute_(std::move(execute)), revert_(std::move(revert)) {}
  std::string_view name() const override { return name_; }
  Result<void> execute(FlowState& state) override { return execute_(state); }
  Result<void> revert(FlowState& state) override { return revert_ ? revert_(state) : Result<void>(); }

 private:
  std::string name_;
  std::function<Result<void>(FlowState&)> execute_;
  std::function<Result<void>(FlowState&)> revert_;
};

class ThreadSleeper final : public Sleeper {
 public:
  void sleep(std::chrono::milliseconds duration) override { std::this_thread::sleep_for(duration); }
};

}  // namespace

std::unique_ptr<Step> makeStep(std::string name, std::function<Result<void>(FlowState&)> execute,
                               std::function<Result<void>(FlowState&)> revert) {
  return std::make_unique<FunctionStep>(std::move(name), std::move(execute), std::move(revert));
}

Sleeper& realSleeper() {
  static ThreadSleeper sleeper;
  return sleeper;
}

FlowResult runFlow(const std::vector<std::unique_ptr<Step>>& steps, FlowState& state, const RetryPolicy& retry,
                   Sleeper& sleeper, const FlowHooks& hooks) {
  FlowResult result;
  size_t done = 0;
  for (; done < steps.size(); ++done) {
    Step& step = *steps[done];
    auto backoff = retry.initial_backoff;
    Result<void> r;
    for (int attempt = 1;; ++attempt) {
      ++result.attempts;
      r = step.execute(state);
      // Only the environment's failures are worth waiting out; bad input or a broken
      // assumption will fail the same way again.
      if (r || r.error().code != ErrorCode::kUnavailable || attempt >= retry.max_attempts) break;
      LB_DEBUG("flow step failed, retrying step=%.*s attempt=%d error=%s", static_cast<int>(step.name().size()),
               step.name().data(), attempt, r.error().message.c_str());
      sleeper.sleep(backoff);
      auto next = std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(backoff.count()) * retry.multiplier));
      backoff = std::min(next, retry.max_backoff);
    }
    if (!r) {
      result.ok = false;
      result.failed_step = std::string(step.name());
      result.error = r.error();
      break;
    }
    if (hooks.after_step && !hooks.after_step(step.name())) {
      result.ok = false;
      result.interrupted = true;
      result.failed_step = std::string(step.name());
      result.error = makeError(ErrorCode::kUnavailable, "flow interrupted; the job will be resumed");
      return result;  // no revert: whoever resumes the job finishes it
    }
  }
  if (result.ok) return result;
  // The failed step may have done part of its work; it is idempotent, so its revert
  // runs too, then every earlier step's, newest first.
  for (size_t i = std::min(done + 1, steps.size()); i-- > 0;) {
    auto r = steps[i]->revert(state);
    if (!r) {
      result.revert_errors.push_back(std::string(steps[i]->name()) + ": " + r.error().message);
      LB_WARN("flow revert failed step=%.*s error=%s", static_cast<int>(steps[i]->name().size()),
              steps[i]->name().data(), r.error().message.c_str());
    }
  }
  return result;
}

}  // namespace banyan::provider::controller
