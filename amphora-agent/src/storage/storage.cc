#include "storage/storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace banyan::agent::storage {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

common::Error sysError(const char* what, const std::string& path) {
  return makeError(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                   std::string(what) + ": " + std::strerror(errno), path);
}

std::string dirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Result<void> fsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sysError("open directory", dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    errno = err;
    return sysError("fsync directory", dir);
  }
  return {};
}

std::string randomSuffix() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string s(12, '0');
  uint64_t v = rng();
  for (auto& c : s) {
    c = kHex[v & 0xf];
    v >>= 4;
  }
  return s;
}

}  // namespace

Result<std::string> writeTempFile(const std::string& path, std::string_view data, mode_t mode) {
  std::string temp = path + ".next-" + randomSuffix();
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return sysError("create", temp);
  // open() applies the umask; the mode is part of the contract (keys are 0600).
  if (::fchmod(fd, mode) != 0) {
    auto e = sysError("chmod", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return e;
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto e = sysError("write", temp);
      ::close(fd);
      ::unlink(temp.c_str());
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto e = sysError("fsync", temp);
    ::close(fd);
    ::unlink(temp.c_str());
    return e;
  }
  if (::close(fd) != 0) {
    auto e = sysError("close", temp);
    ::unlink(temp.c_str());
    return e;
  }
  return temp;
}

Result<void> commitFile(const std::string& temp_path, const std::string& path) {
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    auto e = sysError("rename", path);
    ::unlink(temp_path.c_str());
    return e;
  }
  return fsyncDir(dirOf(path));
}

Result<void> writeFileAtomic(const std::string& path, std::string_view data, mode_t mode) {
  auto temp = writeTempFile(path, data, mode);
  if (!temp) return temp.error();
  return commitFile(temp.value(), path);
}

Result<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sysError("open", path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto e = sysError("read", path);
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<void> removeFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sysError("unlink", path);
  return fsyncDir(dirOf(path));
}

Result<void> makeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return makeError(ErrorCode::kInvalidArgument, "empty directory path");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string part = path.substr(0, pos);
    if (part.empty()) continue;
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return sysError("mkdir", part);
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return sysError("stat", path);
  if (!S_ISDIR(st.st_mode)) return makeError(ErrorCode::kUnavailable, "not a directory", path);
  return {};
}

}  // namespace banyan::agent::storage
