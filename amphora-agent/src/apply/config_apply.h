// Applying a banyan-proxy config document pushed by the controller
// (PUT /1.0/config): validate it with the proxy itself, store it atomically, and
// hand it to the running proxy over the control socket. The stored file is what a
// restarted proxy starts from, so it only ever holds a document the proxy accepted.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"
#include "proxy_control/proxy_control.h"

namespace banyan::agent::apply {

enum class DocChange {
  kIdentical,    // byte for byte the same document
  kMembersOnly,  // only pools' members (and/or the generation) differ
  kFull,         // listeners, pools, monitors or settings differ (or unparsable)
};

// Pure: how NEW differs from OLD. Used to report "delta" and to log what changed.
DocChange classifyChange(std::string_view old_doc, std::string_view new_doc);

struct ApplyOutcome {
  uint64_t generation = 0;
  std::string sha256;      // of the stored document
  bool delta = false;      // only members changed: listeners were not touched
  bool unchanged = false;  // the same document was already stored and running
};

// Runs a program and collects its combined stdout+stderr; the ProcessRunner seam.
struct ProcessOutput {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string output;
};
common::Result<ProcessOutput> runProcess(const std::vector<std::string>& argv, int timeout_ms);

// Thread-safe; one apply at a time (the controller may retry concurrently).
class ConfigApplier {
 public:
  ConfigApplier(std::string config_path, std::string proxy_binary, const proxy_control::ProxyControl& control);

  // Makes sure a stored document exists (an empty one on first boot) so the proxy
  // can start.
  common::Result<void> ensureStored();

  // kInvalidArgument: the proxy refused the document (message = reason, context =
  // JSON pointer); the stored and running configs are unchanged and the refused
  // document is kept next to the stored one as "<config>.rejected".
  // kUnavailable: the proxy or the disk failed.
  common::Result<ApplyOutcome> apply(std::string_view document);

  // Keeps a document refused before it reached the proxy (the firewall could not be
  // derived from it) as "<config>.rejected", as apply() keeps the ones the proxy refuses.
  void keepRejected(std::string_view document, const common::Error& why);

  // The stored document (kNotFound before the first apply).
  common::Result<std::string> stored() const;
  const std::string& configPath() const { return config_path_; }

 private:
  common::Result<void> checkWithBinary(const std::string& temp_path);
  void commitRejected(const std::string& temp_path, const common::Error& why);

  std::string config_path_;
  std::string proxy_binary_;
  const proxy_control::ProxyControl& control_;
  mutable std::mutex mu_;
};

}  // namespace banyan::agent::apply
