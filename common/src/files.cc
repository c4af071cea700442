#include "banyan/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace banyan::common {

Result<void> writeFileAtomic(const std::string& path, std::string_view contents, unsigned mode,
                             bool durable) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return makeError(ErrorCode::kUnavailable, std::string("open: ") + std::strerror(errno), tmp);
  auto fail = [&](const char* what) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return makeError(ErrorCode::kUnavailable, std::string(what) + ": " + std::strerror(err), path);
  };
  // open() applies the umask; the caller's mode (0600 for keys) is what must hold.
  if (fchmod(fd, mode) != 0) return fail("fchmod");
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t w = ::write(fd, contents.data() + done, contents.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail("write");
    done += static_cast<size_t>(w);
  }
  if (durable && fsync(fd) != 0) return fail("fsync");
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return makeError(ErrorCode::kUnavailable, std::string("rename: ") + std::strerror(err), path);
  }
  if (!durable) return {};
  // The rename is durable only once the directory is synced.
  std::string dir = path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
  int dir_fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return {};
}

Result<void> makeDirs(const std::string& path, unsigned mode) {
  if (path.empty()) return {};
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string part = path.substr(0, pos);
    if (part.empty()) continue;
    if (mkdir(part.c_str(), mode) != 0 && errno != EEXIST) {
      return makeError(ErrorCode::kUnavailable, std::string("mkdir: ") + std::strerror(errno),
                       part);
    }
  }
  return {};
}

}  // namespace banyan::common
