#include <gtest/gtest.h>
#include <sys/stat.h>

#include "certs/certs.h"
#include "support/test_env.h"
#include "support/test_pki.h"

namespace banyan::agent::certs {
namespace {

TEST(CertName, OnlyPlainNamesAreValid) {
  const std::string longest(128, 'x');
  for (const char* good : {"a", "listener-1.pem", "A_b.C-9", "..a", "a..", longest.c_str()}) {
    EXPECT_TRUE(isValidName(good)) << good;
  }
  for (const char* bad : {"", ".", "..", "../etc/passwd", "a/b", "/abs", "a b", "a\\b", "naïve", "a%2fb", "a\n"}) {
    EXPECT_FALSE(isValidName(bad)) << bad;
  }
  EXPECT_FALSE(isValidName(std::string(129, 'x')));
}

class Bundles : public ::testing::Test {
 protected:
  testing::TestCa ca{"bundle-ca"};
  testing::PemPair leaf = ca.issue("www.example.org", true);
  testing::PemPair other = ca.issue("other.example.org", true);
};

TEST_F(Bundles, CertChainAndKeyParse) {
  auto b = parseBundle(leaf.cert + ca.certPem() + leaf.key);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->certificate_count, 2);
  EXPECT_NE(b->subject.find("www.example.org"), std::string::npos);
  EXPECT_NE(b->key_pem.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(b->cert_chain_pem.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(Bundles, KeyFirstIsAccepted) { EXPECT_TRUE(parseBundle(leaf.key + leaf.cert).ok()); }

TEST_F(Bundles, RefusalsSayWhatIsWrong) {
  // A base64 line cut out of the middle: the DER lengths no longer add up.
  std::string corrupt_cert = leaf.cert;
  size_t second_line = corrupt_cert.find('\n', corrupt_cert.find('\n') + 1) + 1;
  corrupt_cert.erase(second_line, corrupt_cert.find('\n', second_line) + 1 - second_line);
  std::string corrupt_key = leaf.key;
  corrupt_key[60] = corrupt_key[60] == 'A' ? 'B' : 'A';
  struct Row {
    const char* what;
    std::string pem;
    const char* message_part;
  };
  const Row rows[] = {
      {"empty", "", "no certificate"},
      {"garbage", "hello", "no certificate"},
      {"key only", leaf.key, "no certificate"},
      {"cert only", leaf.cert, "no private key"},
      {"two keys", leaf.cert + leaf.key + other.key, "more than one private key"},
      {"key of another cert", leaf.cert + other.key, "does not match"},
      {"corrupt cert", corrupt_cert + leaf.key, "parse"},
      {"corrupt key", leaf.cert + corrupt_key, "parse"},
      {"unknown block", leaf.cert + leaf.key + "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "unexpected PEM block"},
      {"encrypted key", leaf.cert + "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
       "encrypted"},
  };
  for (const auto& row : rows) {
    auto r = parseBundle(row.pem);
    ASSERT_FALSE(r.ok()) << row.what;
    EXPECT_NE(r.error().message.find(row.message_part), std::string::npos)
        << row.what << ": got \"" << r.error().message << "\"";
  }
}

TEST_F(Bundles, CertificateFilesWithoutAKeyAreCaFiles) {
  auto ca_file = parseCertificateFile(ca.certPem() + leaf.cert);
  ASSERT_TRUE(ca_file.ok()) << ca_file.error().message;
  EXPECT_FALSE(ca_file->has_key);
  EXPECT_EQ(ca_file->certificate_count, 2);
  EXPECT_FALSE(parseBundle(ca.certPem()).ok()) << "a TLS bundle still needs its key";
  auto bundle = parseCertificateFile(leaf.cert + leaf.key);
  ASSERT_TRUE(bundle.ok());
  EXPECT_TRUE(bundle->has_key);
  for (const std::string& bad : {std::string(), leaf.key, leaf.cert + other.key, std::string("hello")})
    EXPECT_FALSE(parseCertificateFile(bad).ok()) << bad;
}

TEST_F(Bundles, StoreKeepsBundlesPrivateAndDeleteIsIdempotent) {
  testing::TempDir tmp;
  CertStore store(tmp.path() + "/certs");
  ASSERT_TRUE(store.put("web", leaf.cert + leaf.key).ok());
  struct stat st;
  ASSERT_EQ(stat(store.pathOf("web").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(store.get("web").value(), leaf.cert + leaf.key);
  EXPECT_FALSE(store.put("bad", leaf.cert + other.key).ok());
  EXPECT_EQ(store.get("bad").error().code, common::ErrorCode::kNotFound);
  EXPECT_TRUE(store.remove("web").ok());
  EXPECT_TRUE(store.remove("web").ok());
  EXPECT_FALSE(store.put("../escape", leaf.cert + leaf.key).ok());
  EXPECT_NE(stat((tmp.path() + "/escape.pem").c_str(), &st), 0);
}

}  // namespace
}  // namespace banyan::agent::certs
