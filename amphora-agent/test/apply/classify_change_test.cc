// classifyChange decides whether a PUT /1.0/config is a member-only delta.
#include <gtest/gtest.h>

#include "apply/config_apply.h"

namespace banyan::agent::apply {
namespace {

constexpr char kBase[] = R"({"generation": 1, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80, "default_pool_id": "p"}],
  "pools": [{"id": "p", "members": [{"id": "m1", "address": "127.0.0.1", "protocol_port": 81}]}]})";

TEST(ClassifyChange, SameBytesAreIdentical) { EXPECT_EQ(classifyChange(kBase, kBase), DocChange::kIdentical); }

TEST(ClassifyChange, MemberAndGenerationChangesAreADelta) {
  constexpr char kNew[] = R"({"generation": 2, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80, "default_pool_id": "p"}],
    "pools": [{"id": "p", "members": [{"id": "m2", "address": "127.0.0.1", "protocol_port": 82, "weight": 3}]}]})";
  EXPECT_EQ(classifyChange(kBase, kNew), DocChange::kMembersOnly);
}

TEST(ClassifyChange, PropertyOrderDoesNotMatter) {
  constexpr char kNew[] = R"({"pools": [{"members": [{"id": "m1", "address": "127.0.0.1", "protocol_port": 81}], "id": "p"}],
    "listeners": [{"protocol_port": 80, "id": "l", "default_pool_id": "p", "address": "127.0.0.1"}], "generation": 1})";
  EXPECT_EQ(classifyChange(kBase, kNew), DocChange::kMembersOnly);
}

TEST(ClassifyChange, ListenerPoolOrMonitorChangesAreFull) {
  const char* changed[] = {
      R"({"generation": 2, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 90, "default_pool_id": "p"}],
          "pools": [{"id": "p", "members": [{"id": "m1", "address": "127.0.0.1", "protocol_port": 81}]}]})",
      R"({"generation": 2, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80, "default_pool_id": "p"}],
          "pools": [{"id": "p", "lb_algorithm": "SOURCE_IP", "members": [{"id": "m1", "address": "127.0.0.1", "protocol_port": 81}]}]})",
      R"({"generation": 2, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80, "default_pool_id": "p"}],
          "pools": [{"id": "p", "health_monitor": {"id": "h"}, "members": [{"id": "m1", "address": "127.0.0.1", "protocol_port": 81}]}]})",
      R"({"generation": 2, "settings": {"workers": 1}, "listeners": [{"id": "l", "address": "127.0.0.1", "protocol_port": 80, "default_pool_id": "p"}],
          "pools": [{"id": "p", "members": [{"id": "m1", "address": "127.0.0.1", "protocol_port": 81}]}]})",
      "not json",
  };
  for (const char* doc : changed) EXPECT_EQ(classifyChange(kBase, doc), DocChange::kFull) << doc;
}

}  // namespace
}  // namespace banyan::agent::apply
