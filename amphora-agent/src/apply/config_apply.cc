#include "apply/config_apply.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <rapidjson/document.h>

#include "banyan/common/digest.h"
#include "banyan/common/logging.h"
#include "storage/storage.h"

namespace banyan::agent::apply {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

constexpr int kCheckTimeoutMs = 30000;
constexpr char kEmptyDocument[] = "{\"generation\": 0, \"listeners\": [], \"pools\": []}\n";

// Removes what a member-only change may touch, so the rest can be compared.
void stripMembers(rapidjson::Document& doc) {
  doc.RemoveMember("generation");
  auto pools = doc.FindMember("pools");
  if (pools == doc.MemberEnd() || !pools->value.IsArray()) return;
  for (auto& pool : pools->value.GetArray()) {
    if (pool.IsObject()) pool.RemoveMember("members");
  }
}

uint64_t generationOf(std::string_view doc) {
  rapidjson::Document d;
  d.Parse(doc.data(), doc.size());
  if (d.HasParseError() || !d.IsObject()) return 0;
  auto g = d.FindMember("generation");
  return g != d.MemberEnd() && g->value.IsUint64() ? g->value.GetUint64() : 0;
}

}  // namespace

DocChange classifyChange(std::string_view old_doc, std::string_view new_doc) {
  if (old_doc == new_doc) return DocChange::kIdentical;
  rapidjson::Document a, b;
  a.Parse(old_doc.data(), old_doc.size());
  b.Parse(new_doc.data(), new_doc.size());
  if (a.HasParseError() || b.HasParseError() || !a.IsObject() || !b.IsObject()) return DocChange::kFull;
  stripMembers(a);
  stripMembers(b);
  // RapidJSON compares objects by member name, not order: a re-serialized document
  // with the same content compares equal.
  return a == b ? DocChange::kMembersOnly : DocChange::kFull;
}

Result<ProcessOutput> runProcess(const std::vector<std::string>& argv_in, int timeout_ms) {
  LB_CHECK(!argv_in.empty(), "a program to run");
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return makeError(ErrorCode::kUnavailable, std::string("pipe: ") + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return makeError(ErrorCode::kUnavailable, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  ProcessOutput out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      timed_out = rc == 0;
      break;
    }
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.output.size() < (1u << 20)) out.output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.exit_code = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

ConfigApplier::ConfigApplier(std::string config_path, std::string proxy_binary,
                             const proxy_control::ProxyControl& control)
    : config_path_(std::move(config_path)), proxy_binary_(std::move(proxy_binary)), control_(control) {}

Result<void> ConfigApplier::ensureStored() {
  std::lock_guard<std::mutex> lock(mu_);
  auto existing = storage::readFile(config_path_);
  if (existing) return {};
  if (existing.error().code != ErrorCode::kNotFound) return existing.error();
  return storage::writeFileAtomic(config_path_, kEmptyDocument, 0600);
}

void ConfigApplier::commitRejected(const std::string& temp_path, const common::Error& why) {
  auto kept = storage::commitFile(temp_path, config_path_ + ".rejected");
  if (!kept) LB_WARN("Cannot keep the rejected config. error=%s", kept.error().message.c_str());
  LB_WARN("Config refused. path=%s reason=%s", why.context.c_str(), why.message.c_str());
}

void ConfigApplier::keepRejected(std::string_view document, const common::Error& why) {
  auto temp = storage::writeTempFile(config_path_, document, 0600);
  if (!temp) {
    LB_WARN("Cannot keep the rejected config. error=%s", temp.error().message.c_str());
    return;
  }
  commitRejected(temp.value(), why);
}

Result<std::string> ConfigApplier::stored() const {
  std::lock_guard<std::mutex> lock(mu_);
  return storage::readFile(config_path_);
}

Result<void> ConfigApplier::checkWithBinary(const std::string& temp_path) {
  auto run = runProcess({proxy_binary_, "--check", "--config", temp_path}, kCheckTimeoutMs);
  if (!run) return run.error();
  if (run->exit_code == 0) return {};
  if (run->exit_code != 1) {
    return makeError(ErrorCode::kUnavailable, "banyan-proxy --check failed: " + run->output, proxy_binary_);
  }
  // "FILE: <json pointer>: <reason>"
  std::string text = run->output;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  std::string prefix = temp_path + ": ";
  if (text.compare(0, prefix.size(), prefix) == 0) text.erase(0, prefix.size());
  std::string pointer;
  auto sep = text.find(": ");
  if (sep != std::string::npos && !text.empty() && text[0] == '/') {
    pointer = text.substr(0, sep);
    text.erase(0, sep + 2);
    if (pointer == "/") pointer.clear();
  }
  return makeError(ErrorCode::kInvalidArgument, text, pointer);
}

Result<ApplyOutcome> ConfigApplier::apply(std::string_view document) {
  std::lock_guard<std::mutex> lock(mu_);
  ApplyOutcome outcome;
  outcome.sha256 = common::sha256Hex(document);

  std::string previous;
  if (auto old = storage::readFile(config_path_)) previous = std::move(old.value());
  std::string running = previous;
  bool proxy_up = false;
  if (auto r = control_.get("/config"); r && r->status == 200) {
    proxy_up = true;
    running = r->body;
  }
  if (proxy_up && previous == document && running == document) {
    // A repeated PUT: already stored and live, nothing to do.
    outcome.unchanged = true;
    outcome.generation = generationOf(document);
    return outcome;
  }

  auto temp = storage::writeTempFile(config_path_, document, 0600);
  if (!temp) return temp.error();
  auto reject = [&](common::Error e) -> Result<ApplyOutcome> {
    commitRejected(temp.value(), e);
    return e;
  };

  if (proxy_up) {
    auto put = control_.put("/config", document);
    if (!put) {
      ::unlink(temp->c_str());
      return put.error();
    }
    rapidjson::Document reply;
    reply.Parse(put->body.data(), put->body.size());
    bool parsed = !reply.HasParseError() && reply.IsObject();
    if (put->status == 400) {
      std::string reason = "refused by banyan-proxy", pointer;
      if (parsed) {
        auto m = reply.FindMember("reason");
        if (m != reply.MemberEnd() && m->value.IsString()) reason = m->value.GetString();
        auto p = reply.FindMember("path");
        if (p != reply.MemberEnd() && p->value.IsString()) pointer = p->value.GetString();
      }
      return reject(makeError(ErrorCode::kInvalidArgument, reason, pointer));
    }
    if (put->status != 200) {
      ::unlink(temp->c_str());
      return makeError(ErrorCode::kUnavailable,
                       "banyan-proxy answered " + std::to_string(put->status) + ": " + put->body, "/config");
    }
    auto g = parsed ? reply.FindMember("generation") : reply.MemberEnd();
    outcome.generation = parsed && g != reply.MemberEnd() && g->value.IsUint64() ? g->value.GetUint64()
                                                                                   : generationOf(document);
  } else {
    // No proxy to ask: the binary validates; the supervisor starts it from the file.
    auto checked = checkWithBinary(temp.value());
    if (!checked) {
      if (checked.error().code == ErrorCode::kInvalidArgument) return reject(checked.error());
      ::unlink(temp->c_str());
      return checked.error();
    }
    outcome.generation = generationOf(document);
  }
  auto committed = storage::commitFile(temp.value(), config_path_);
  if (!committed) return committed.error();
  outcome.delta = classifyChange(running, document) == DocChange::kMembersOnly;
  LB_INFO("Config applied. generation=%llu sha256=%s delta=%s proxy=%s",
          static_cast<unsigned long long>(outcome.generation), outcome.sha256.c_str(),
          outcome.delta ? "true" : "false", proxy_up ? "running" : "not running");
  return outcome;
}

}  // namespace banyan::agent::apply
