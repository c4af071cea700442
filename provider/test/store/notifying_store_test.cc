// makeNotifyingStore: the API's writes wake an in-process worker exactly when a
// committed write queued a job.
#include "store/notifying_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace banyan::provider::store {
namespace {

class NotifyingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/banyan-notify-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = openStore("sqlite:///" + dir_ + "/db.sqlite");
    ASSERT_TRUE(s.ok()) << s.error().message;
    inner_ = std::move(s.value());
    store_ = makeNotifyingStore(*inner_, [this] { ++calls_; });
  }
  void TearDown() override {
    store_.reset();
    inner_.reset();
    std::filesystem::remove_all(dir_);
  }
  Result<void> write(bool enqueue, bool fail) {
    return store_->write([&](Transaction& tx) -> Result<void> {
      Record r{"thing", "t" + std::to_string(n_++), "", "", "", "{}", 0};
      if (auto ok = tx.insert(r); !ok) return ok;
      if (enqueue) {
        JobSpec job;
        job.kind = "thing.create";
        if (auto ok = tx.enqueueJob(job); !ok) return ok.error();
      }
      if (fail) return common::makeError(common::ErrorCode::kConflict, "refused");
      return {};
    });
  }

  std::string dir_;
  std::unique_ptr<Store> inner_, store_;
  int calls_ = 0;
  int n_ = 0;
};

TEST_F(NotifyingStoreTest, OnlyACommittedWriteThatQueuedAJobNotifies) {
  ASSERT_TRUE(write(false, false).ok());
  EXPECT_EQ(calls_, 0);
  ASSERT_TRUE(write(true, false).ok());
  EXPECT_EQ(calls_, 1);
  EXPECT_FALSE(write(true, true).ok());  // rolled back: no job exists, nobody is woken
  EXPECT_EQ(calls_, 1);
  auto pending = store_->pendingJobs();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(*pending, 1);
}

}  // namespace
}  // namespace banyan::provider::store
