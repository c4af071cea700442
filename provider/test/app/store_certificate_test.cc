// `banyan-provider store-certificate` with passphrases: a PKCS12 bundle and an
// encrypted PEM key made by the openssl command, the passphrase read from a file
// (--passphrase-file), a wrong one refused with its own message.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Ran {
  int status = -1;
  std::string out, err;
};

class StoreCertificate : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/banyan-storecert-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/provider.conf") << "[DEFAULT]\nstate_dir = " << dir_ << "/state\n"
                                           << "[certificates]\ncert_manager = local_cert_manager\n"
                                           << "storage_path = " << dir_ << "/certs\n";
    std::ofstream(dir_ + "/pass.txt") << "correct horse\n";
    std::ofstream(dir_ + "/wrong.txt") << "battery staple\n";
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj "
       "/CN=www.example.com");
    sh("openssl pkcs12 -export -in cert.pem -inkey key.pem -passout file:pass.txt -out bundle.p12");
    sh("openssl pkey -in key.pem -aes256 -passout file:pass.txt -out key-enc.pem");
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void sh(const std::string& cmd) {
    int rc = std::system(("cd " + dir_ + " && " + cmd + " >/dev/null 2>&1").c_str());
    ASSERT_EQ(rc, 0) << cmd;
  }
  Ran provider(const std::string& args) {
    Ran r;
    std::string cmd = "cd " + dir_ + " && " BANYAN_PROVIDER_BIN " --config-file provider.conf " +
                      args + " >out.txt 2>err.txt";
    int rc = std::system(cmd.c_str());
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = slurp(dir_ + "/out.txt");
    r.err = slurp(dir_ + "/err.txt");
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r;
  }
  std::string dir_;
};

TEST_F(StoreCertificate, APassphraseProtectedPkcs12IsStoredWithItsPassphraseFromAFile) {
  Ran r = provider("store-certificate --pkcs12 bundle.p12 --passphrase-file pass.txt");
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(slurp(dir_ + "/certs/" + r.out + ".crt"), slurp(dir_ + "/cert.pem"));
  std::string key = slurp(dir_ + "/certs/" + r.out + ".key");
  EXPECT_NE(key.find("-----BEGIN PRIVATE KEY-----"), std::string::npos) << "stored decrypted";
}

TEST_F(StoreCertificate, AWrongPkcs12PassphraseIsRefusedAndStoresNothing) {
  Ran r = provider("store-certificate --pkcs12 bundle.p12 --passphrase-file wrong.txt");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("the PKCS12 passphrase is wrong"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/certs") &&
               !std::filesystem::is_empty(dir_ + "/certs"));
}

TEST_F(StoreCertificate, AMissingPkcs12PassphraseSaysHowToGiveIt) {
  Ran r = provider("store-certificate --pkcs12 bundle.p12");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("without a passphrase"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--passphrase-file"), std::string::npos) << r.err;
}

TEST_F(StoreCertificate, AnEncryptedPemKeyTakesItsPassphraseFromAFileToo) {
  Ran r =
      provider("store-certificate --cert cert.pem --key key-enc.pem --passphrase-file pass.txt");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(dir_ + "/certs/" + r.out + ".crt"), slurp(dir_ + "/cert.pem"));
}

TEST_F(StoreCertificate, APassphraseFileMeansNothingForACaAndHelpSaysWhyNotOnTheCommandLine) {
  Ran r = provider("store-certificate --ca cert.pem --passphrase-file pass.txt");
  EXPECT_EQ(r.status, 2) << r.err;
  Ran help = provider("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--passphrase-file"), std::string::npos);
  EXPECT_NE(help.out.find("visible to every"), std::string::npos) << help.out;
}

}  // namespace
