// The [database] connection URL grammar, one described row per case.
#include <gtest/gtest.h>

#include "store/store.h"
#include "store/store_url.h"

namespace banyan::provider::store {
namespace {

using common::ErrorCode;
using Params = std::vector<std::pair<std::string, std::string>>;

struct GoodUrl {
  const char* what;
  const char* url;
  Backend backend;
  std::string sqlite_path;
  Params pg_params;
  std::optional<int> pool_size;  // none: the URL names none
};

TEST(StoreUrl, AcceptsEveryDocumentedForm) {
  const GoodUrl cases[] = {
      {"absolute sqlite path", "sqlite:////var/lib/banyan/banyan.sqlite", Backend::kSqlite,
       "/var/lib/banyan/banyan.sqlite", {}},
      {"relative sqlite path", "sqlite:///state/banyan.sqlite", Backend::kSqlite, "state/banyan.sqlite", {}},
      {"sqlite path with an escaped space", "sqlite:////tmp/my%20db.sqlite", Backend::kSqlite,
       "/tmp/my db.sqlite", {}},
      {"postgresql with everything", "postgresql://octavia:pw@db.example:5433/octavia", Backend::kPostgres, "",
       {{"user", "octavia"}, {"password", "pw"}, {"host", "db.example"}, {"port", "5433"}, {"dbname", "octavia"}}},
      {"psycopg2 driver suffix", "postgresql+psycopg2://octavia:pw@127.0.0.1/octavia", Backend::kPostgres, "",
       {{"user", "octavia"}, {"password", "pw"}, {"host", "127.0.0.1"}, {"dbname", "octavia"}}},
      {"short scheme", "postgres://u@h/d", Backend::kPostgres, "", {{"user", "u"}, {"host", "h"}, {"dbname", "d"}}},
      {"percent-encoded user and password", "postgresql://us%40er:p%40ss%3Aw%2Fd%25@h:1/d", Backend::kPostgres, "",
       {{"user", "us@er"}, {"password", "p@ss:w/d%"}, {"host", "h"}, {"port", "1"}, {"dbname", "d"}}},
      {"empty password", "postgresql://u:@h/d", Backend::kPostgres, "",
       {{"user", "u"}, {"password", ""}, {"host", "h"}, {"dbname", "d"}}},
      {"IPv6 host with port", "postgresql://u:p@[::1]:5432/d", Backend::kPostgres, "",
       {{"user", "u"}, {"password", "p"}, {"host", "::1"}, {"port", "5432"}, {"dbname", "d"}}},
      {"socket directory in the query", "postgresql:///octavia?host=/var/run/postgresql", Backend::kPostgres, "",
       {{"dbname", "octavia"}, {"host", "/var/run/postgresql"}}},
      {"libpq options and our pool size", "postgresql://u:p@h/d?sslmode=require&pool_size=3&connect_timeout=2",
       Backend::kPostgres, "",
       {{"user", "u"}, {"password", "p"}, {"host", "h"}, {"dbname", "d"}, {"sslmode", "require"},
        {"connect_timeout", "2"}},
       3},
      {"uppercase scheme", "PostgreSQL://u:p@h/d", Backend::kPostgres, "",
       {{"user", "u"}, {"password", "p"}, {"host", "h"}, {"dbname", "d"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto parsed = parseStoreUrl(c.url);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->backend, c.backend);
    EXPECT_EQ(parsed->sqlite_path, c.sqlite_path);
    EXPECT_EQ(parsed->pg_params, c.pg_params);
    EXPECT_EQ(parsed->pool_size, c.pool_size);
  }
}

struct BadUrl {
  const char* what;
  const char* url;
  const char* message_part;  // the error must say this
};

TEST(StoreUrl, RejectsMalformedUrlsWithAClearMessage) {
  const BadUrl cases[] = {
      {"no scheme", "/var/lib/banyan.sqlite", "no scheme"},
      {"mysql", "mysql+pymysql://octavia:pw@h/octavia", "unsupported database scheme 'mysql+pymysql'"},
      {"sqlite without a path", "sqlite://", "sqlite URL must look like"},
      {"sqlite in memory", "sqlite:///", "no database file"},
      {"sqlite directory", "sqlite:////var/lib/", "directory"},
      {"sqlite options", "sqlite:////x.db?mode=ro", "options are not supported"},
      {"bad escape in sqlite path", "sqlite:////x%zz.db", "%-escape"},
      {"no database name", "postgresql://u:p@h:5432", "no database name"},
      {"empty database name", "postgresql://u:p@h:5432/", "no database name"},
      {"port not a number", "postgresql://u:p@h:54x2/d", "port '54x2'"},
      {"port out of range", "postgresql://u:p@h:70000/d", "port '70000'"},
      {"empty port", "postgresql://u:p@h:/d", "empty port"},
      {"truncated escape in password", "postgresql://u:p%4@h/d", "password"},
      {"unterminated IPv6", "postgresql://u:p@[::1/d", "IPv6"},
      {"unknown option", "postgresql://u:p@h/d?charset=utf8", "unsupported option 'charset'"},
      {"option without value", "postgresql://u:p@h/d?sslmode", "has no value"},
      {"bad pool size", "postgresql://u:p@h/d?pool_size=0", "pool_size"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto parsed = parseStoreUrl(c.url);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find(c.message_part), std::string::npos) << parsed.error().message;
  }
}

TEST(StoreUrl, ErrorsNeverContainThePassword) {
  auto parsed = parseStoreUrl("postgresql://u:Sup3rSecret@h:99999/d");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message.find("Sup3rSecret"), std::string::npos) << parsed.error().message;
}

TEST(StoreUrl, OpenStoreReportsAParseErrorWithoutTouchingAnything) {
  auto store = openStore("oracle://x/y");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace banyan::provider::store
