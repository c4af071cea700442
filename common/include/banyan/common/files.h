// Small file helpers the control plane shares (state files, keys, certificates).
#pragma once

#include <string>
#include <string_view>

#include "banyan/common/result.h"

namespace banyan::common {

// Writes a file atomically with the given mode (a temporary beside it, then rename):
// a reader sees the old file or the whole new one. With `durable` the file and its
// directory are also fsynced, so the file survives a power cut, not just a crash.
// The temporary is "<path>.tmp": two writers of one path must hold a lock.
Result<void> writeFileAtomic(const std::string& path, std::string_view contents, unsigned mode,
                             bool durable = true);
// mkdir -p with the given mode for created directories.
Result<void> makeDirs(const std::string& path, unsigned mode);

}  // namespace banyan::common
