#include "tls/ticket_keys.h"

#include <gtest/gtest.h>

namespace banyan::dp::tls {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

class TicketKeysTest : public testing::Test {
 protected:
  steady_clock::time_point now_ = steady_clock::time_point() + seconds(1000);
  TicketKeys keys_{seconds(60), [this] { return now_; }};
};

TEST_F(TicketKeysTest, TheFirstKeyIsMadeOnFirstUseAndKeptWithinThePeriod) {
  EXPECT_EQ(keys_.generated(), 0u);
  TicketKeys::Key a = keys_.current();
  now_ += seconds(59);
  TicketKeys::Key b = keys_.current();
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(keys_.generated(), 1u);
}

TEST_F(TicketKeysTest, ANewKeyIsMadeWhenThePeriodEnds) {
  TicketKeys::Key a = keys_.current();
  now_ += seconds(60);
  TicketKeys::Key b = keys_.current();
  EXPECT_NE(a.name, b.name);
  EXPECT_NE(a.aes, b.aes);
  EXPECT_NE(a.hmac, b.hmac);
  EXPECT_EQ(keys_.generated(), 2u);
}

TEST_F(TicketKeysTest, PreviousKeysStillOpenTicketsButAskForRenewal) {
  TicketKeys::Key old = keys_.current();
  now_ += seconds(61);
  keys_.current();
  bool is_current = true;
  auto found = keys_.find(old.name.data(), &is_current);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->aes, old.aes);
  EXPECT_FALSE(is_current);
}

TEST_F(TicketKeysTest, TheCurrentKeyIsFoundAsCurrent) {
  TicketKeys::Key k = keys_.current();
  bool is_current = false;
  ASSERT_TRUE(keys_.find(k.name.data(), &is_current));
  EXPECT_TRUE(is_current);
}

TEST_F(TicketKeysTest, AKeyIsForgottenAfterKeptRotations) {
  TicketKeys::Key first = keys_.current();
  bool is_current = false;
  for (size_t i = 1; i < TicketKeys::kKept; ++i) {
    now_ += seconds(60);
    keys_.current();
    EXPECT_TRUE(keys_.find(first.name.data(), &is_current)) << "after rotation " << i;
  }
  now_ += seconds(60);
  keys_.current();
  EXPECT_FALSE(keys_.find(first.name.data(), &is_current));
}

TEST_F(TicketKeysTest, LookingUpATicketRotatesAnExpiredCurrentKey) {
  TicketKeys::Key first = keys_.current();
  now_ += seconds(120);
  bool is_current = true;
  ASSERT_TRUE(keys_.find(first.name.data(), &is_current));
  EXPECT_FALSE(is_current);
  EXPECT_EQ(keys_.generated(), 2u);
}

TEST_F(TicketKeysTest, AnUnknownNameIsNotFound) {
  keys_.current();
  uint8_t name[16] = {1, 2, 3};
  bool is_current = false;
  EXPECT_FALSE(keys_.find(name, &is_current));
}

TEST_F(TicketKeysTest, AShorterPeriodTakesEffectAtOnce) {
  TicketKeys::Key a = keys_.current();
  now_ += seconds(10);
  keys_.setPeriod(seconds(5));
  EXPECT_NE(keys_.current().name, a.name);
}

TEST(RenewsTicket, Tls13TicketsAlwaysAndTls12TicketsOnlyFromAnOlderKey) {
  EXPECT_TRUE(renewsTicket(TLS1_3_VERSION, true));
  EXPECT_TRUE(renewsTicket(TLS1_3_VERSION, false));
  EXPECT_FALSE(renewsTicket(TLS1_2_VERSION, true));
  EXPECT_TRUE(renewsTicket(TLS1_2_VERSION, false));
}

}  // namespace
}  // namespace banyan::dp::tls
