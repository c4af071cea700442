#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "storage/storage.h"
#include "support/test_env.h"

namespace banyan::agent::storage {
namespace {

int entries(const std::string& dir) {
  int n = 0;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST(WriteFileAtomic, ReplacesContentWithTheGivenModeAndLeavesNoTemporary) {
  testing::TempDir tmp;
  std::string path = tmp.path() + "/f";
  ASSERT_TRUE(writeFileAtomic(path, "one", 0644).ok());
  ASSERT_TRUE(writeFileAtomic(path, "two", 0600).ok());
  EXPECT_EQ(readFile(path).value(), "two");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(entries(tmp.path()), 1);
}

TEST(WriteFileAtomic, FailureLeavesTheOldFile) {
  testing::TempDir tmp;
  std::string path = tmp.path() + "/f";
  ASSERT_TRUE(writeFileAtomic(path, "old", 0600).ok());
  // A directory in the way of the rename: the write fails, the file stays.
  std::string blocked = tmp.path() + "/d";
  ASSERT_EQ(mkdir(blocked.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((blocked + "/x").c_str(), 0700), 0);
  EXPECT_FALSE(writeFileAtomic(blocked, "new", 0600).ok());
  EXPECT_EQ(readFile(path).value(), "old");
  EXPECT_EQ(entries(tmp.path()), 2);
}

TEST(ReadFile, MissingFileIsNotFound) {
  testing::TempDir tmp;
  auto r = readFile(tmp.path() + "/none");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, common::ErrorCode::kNotFound);
  EXPECT_TRUE(removeFile(tmp.path() + "/none").ok()) << "removing a missing file is fine";
}

}  // namespace
}  // namespace banyan::agent::storage
