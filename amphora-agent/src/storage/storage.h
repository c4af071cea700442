// The agent's state on disk: atomic file replacement and content digests. Every file
// the controller pushes (proxy config, certificates, agent settings) goes through
// writeFileAtomic, so a crash or a full disk leaves either the old or the new file,
// never a torn one (STYLE.md "Apply config atomically and idempotently").
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "banyan/common/result.h"

namespace banyan::agent::storage {

// Writes PATH.next-<random> with MODE, fsyncs it, renames it over PATH and fsyncs the
// directory. On failure PATH is unchanged and the temporary file is removed.
common::Result<void> writeFileAtomic(const std::string& path, std::string_view data, mode_t mode);

// Like writeFileAtomic but keeps the temporary file for the caller to validate before
// committing with commitFile (rename + directory fsync) or discarding it.
common::Result<std::string> writeTempFile(const std::string& path, std::string_view data, mode_t mode);
common::Result<void> commitFile(const std::string& temp_path, const std::string& path);

// Whole file; kNotFound when it does not exist.
common::Result<std::string> readFile(const std::string& path);
// Removes PATH; a missing file is fine (idempotent DELETE).
common::Result<void> removeFile(const std::string& path);
// mkdir -p with MODE for the directories it creates.
common::Result<void> makeDirs(const std::string& path, mode_t mode);


}  // namespace banyan::agent::storage
