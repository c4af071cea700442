// The deployment PKI: generation, reload, races between threads and processes, and the
// certificates it issues as the openssl CLI sees them.
#include "amphora/pki.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "amphora_test_env.h"

namespace banyan::provider::amphora {
namespace {

using common::ErrorCode;
using testing::readFile;
using testing::runCommand;
using testing::TempDir;
using testing::writeFile;

constexpr const char* kOpenssl = "/usr/bin/openssl";

int modeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

std::unique_ptr<Pki> mustLoad(const PkiOptions& options) {
  auto pki = Pki::loadOrCreate(options);
  EXPECT_TRUE(pki.ok()) << (pki.ok() ? "" : pki.error().message + " " + pki.error().context);
  return pki.ok() ? std::move(*pki) : nullptr;
}

// `openssl x509 -noout -text` of PEM.
std::string certText(const TempDir& dir, const std::string& pem) {
  writeFile(dir.path() + "/show.pem", pem);
  return runCommand({kOpenssl, "x509", "-noout", "-text", "-in", dir.path() + "/show.pem"}).out;
}

// `openssl verify` of PEM against the CA with extra arguments (-purpose, -verify_ip).
testing::ProcResult verify(const TempDir& dir, const Pki& pki, const std::string& pem,
                           std::vector<std::string> extra = {}) {
  writeFile(dir.path() + "/leaf.pem", pem);
  std::vector<std::string> argv = {kOpenssl, "verify", "-CAfile", pki.caCertFile()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(dir.path() + "/leaf.pem");
  return runCommand(argv);
}

std::chrono::seconds distance(std::chrono::system_clock::time_point a, std::chrono::system_clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::seconds>(a > b ? a - b : b - a);
}

TEST(Pki, GeneratesTheCaOnceWithPrivateFilesAndReloadsIt) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/state/pki";  // parents are created too
  auto first = mustLoad(options);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->caCertFile(), options.dir + "/ca.pem");
  EXPECT_EQ(modeOf(options.dir), 0700);
  EXPECT_EQ(modeOf(options.dir + "/ca.pem"), 0600);
  EXPECT_EQ(modeOf(options.dir + "/ca.key"), 0600);
  EXPECT_EQ(readFile(options.dir + "/ca.pem"), first->caCertPem());

  auto text = certText(tmp, first->caCertPem());
  EXPECT_NE(text.find("CA:TRUE, pathlen:0"), std::string::npos) << text;
  EXPECT_NE(text.find("prime256v1"), std::string::npos) << text;
  EXPECT_NE(text.find("ecdsa-with-SHA256"), std::string::npos) << text;
  EXPECT_NE(text.find("Certificate Sign, CRL Sign"), std::string::npos) << text;

  auto second = mustLoad(options);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->caCertPem(), first->caCertPem());
  // A certificate issued by the reloaded CA verifies against the first one's file.
  auto cert = second->issueServerCert("amp-1", "192.0.2.5");
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(verify(tmp, *first, cert->cert_pem).exit_code, 0);
}

TEST(Pki, ThreadsRacingOnOneDirAgreeOnOneCa) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  constexpr int kThreads = 8;
  std::vector<std::string> pems(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto pki = Pki::loadOrCreate(options);
      if (pki.ok()) pems[i] = (*pki)->caCertPem();
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(pems.begin(), pems.end());
  ASSERT_EQ(distinct.size(), 1u);
  EXPECT_FALSE(pems[0].empty());
  EXPECT_EQ(readFile(options.dir + "/ca.pem"), pems[0]);
}

TEST(Pki, ProcessesRacingOnOneDirAgreeOnOneCa) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  constexpr int kProcesses = 6;
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child only builds the PKI and reports the CA it got.
      auto pki = Pki::loadOrCreate(options);
      if (!pki.ok()) ::_exit(2);
      writeFile(tmp.path() + "/ca-" + std::to_string(i) + ".pem", (*pki)->caCertPem());
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::set<std::string> distinct;
  for (int i = 0; i < kProcesses; ++i) distinct.insert(readFile(tmp.path() + "/ca-" + std::to_string(i) + ".pem"));
  ASSERT_EQ(distinct.size(), 1u);
  EXPECT_EQ(*distinct.begin(), readFile(options.dir + "/ca.pem"));
}

TEST(Pki, ServerCertificateVerifiesWithItsSansAndNotAfter) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  auto before = std::chrono::system_clock::now();
  auto cert = pki->issueServerCert("5b0a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "192.0.2.17");
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_LT(distance(cert->not_after, before + std::chrono::hours(24 * 730)), std::chrono::seconds(120));
  auto parsed = certNotAfter(cert->cert_pem);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, cert->not_after);

  auto text = certText(tmp, cert->cert_pem);
  EXPECT_NE(text.find("Subject: CN = 5b0a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"), std::string::npos) << text;
  EXPECT_NE(text.find("IP Address:192.0.2.17, DNS:5b0a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS Web Server Authentication"), std::string::npos) << text;
  EXPECT_EQ(text.find("TLS Web Client Authentication"), std::string::npos) << text;

  auto ok = verify(tmp, *pki, cert->cert_pem, {"-purpose", "sslserver", "-verify_ip", "192.0.2.17"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  auto by_name = verify(tmp, *pki, cert->cert_pem, {"-verify_hostname", "5b0a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"});
  EXPECT_EQ(by_name.exit_code, 0) << by_name.out << by_name.err;
  // Another amphora's address, and use as a client certificate, are refused.
  EXPECT_NE(verify(tmp, *pki, cert->cert_pem, {"-verify_ip", "192.0.2.18"}).exit_code, 0);
  EXPECT_NE(verify(tmp, *pki, cert->cert_pem, {"-purpose", "sslclient"}).exit_code, 0);

  // The key is the certificate's, unencrypted, and EC P-256.
  writeFile(tmp.path() + "/leaf.key", cert->key_pem);
  auto key_pub = runCommand({kOpenssl, "pkey", "-in", tmp.path() + "/leaf.key", "-pubout"});
  auto cert_pub = runCommand({kOpenssl, "x509", "-in", tmp.path() + "/show.pem", "-noout", "-pubkey"});
  EXPECT_EQ(key_pub.exit_code, 0);
  EXPECT_EQ(key_pub.out, cert_pub.out);
}

TEST(Pki, ServerCertificateForAnIpv6Address) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  auto cert = pki->issueServerCert("amp-v6", "2001:db8::17");
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_NE(certText(tmp, cert->cert_pem).find("IP Address:2001:DB8:0:0:0:0:0:17"), std::string::npos);
  EXPECT_EQ(verify(tmp, *pki, cert->cert_pem, {"-verify_ip", "2001:db8::17"}).exit_code, 0);
}

TEST(Pki, ManyThreadsIssueFromOnePkiAtOnce) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  constexpr int kThreads = 4;
  constexpr int kEach = 10;
  std::vector<std::vector<std::string>> pems(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto cert = pki->issueServerCert("amp-" + std::to_string(t), "192.0.2." + std::to_string(i + 1));
        if (cert.ok()) pems[t].push_back(cert->cert_pem);
        if (i % 3 == 0) (void)pki->controllerClientCert();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> distinct;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(pems[t].size(), static_cast<size_t>(kEach));
    distinct.insert(pems[t].begin(), pems[t].end());
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(verify(tmp, *pki, pems[kThreads - 1][kEach - 1], {"-verify_ip", "192.0.2.10"}).exit_code, 0);
}

TEST(Pki, SerialNumbersAreRandom128BitIntegers) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  std::set<std::string> serials;
  for (int i = 0; i < 5; ++i) {
    auto cert = pki->issueServerCert("amp", "192.0.2.1");
    ASSERT_TRUE(cert.ok());
    writeFile(tmp.path() + "/s.pem", cert->cert_pem);
    auto r = runCommand({kOpenssl, "x509", "-noout", "-serial", "-in", tmp.path() + "/s.pem"});
    ASSERT_EQ(r.exit_code, 0);
    std::string hex = r.out.substr(r.out.find('=') + 1);
    hex.erase(hex.find_last_not_of("\n") + 1);
    EXPECT_EQ(hex.size(), 32u) << hex;
    serials.insert(hex);
  }
  EXPECT_EQ(serials.size(), 5u);
}

TEST(Pki, RefusesAddressesThatAreNotIpLiteralsAndOddAmphoraIds) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  struct Case {
    const char* id;
    const char* address;
  };
  for (const Case& c : {Case{"amp", "amp.example"}, Case{"amp", "192.0.2.1,DNS:evil"}, Case{"amp", ""},
                        Case{"", "192.0.2.1"}, Case{"amp,DNS:evil", "192.0.2.1"}, Case{"amp/1", "192.0.2.1"},
                        Case{"a\nb", "192.0.2.1"}}) {
    auto r = pki->issueServerCert(c.id, c.address);
    ASSERT_FALSE(r.ok()) << c.id << " " << c.address;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  auto long_id = pki->issueServerCert(std::string(65, 'a'), "192.0.2.1");
  EXPECT_FALSE(long_id.ok());
}

TEST(Pki, ControllerClientCertificateIsWrittenAndReusedWhileFarFromExpiry) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  options.client_cert_name = "controller-1";
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  auto first = pki->controllerClientCert();
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(readFile(pki->clientCertFile()), first->cert_pem);
  EXPECT_EQ(readFile(pki->clientKeyFile()), first->key_pem);
  EXPECT_EQ(modeOf(pki->clientKeyFile()), 0600);
  auto text = certText(tmp, first->cert_pem);
  EXPECT_NE(text.find("Subject: CN = controller-1"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS Web Client Authentication"), std::string::npos) << text;
  EXPECT_EQ(verify(tmp, *pki, first->cert_pem, {"-purpose", "sslclient"}).exit_code, 0);
  EXPECT_NE(verify(tmp, *pki, first->cert_pem, {"-purpose", "sslserver"}).exit_code, 0);

  // The same one again, also from another Pki object (another process) on the dir.
  auto again = pki->controllerClientCert();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->cert_pem, first->cert_pem);
  auto other = mustLoad(options);
  ASSERT_NE(other, nullptr);
  auto from_other = other->controllerClientCert();
  ASSERT_TRUE(from_other.ok());
  EXPECT_EQ(from_other->cert_pem, first->cert_pem);
  EXPECT_EQ(from_other->not_after, first->not_after);
}

TEST(Pki, ControllerClientCertificateIsReplacedWithin30DaysOfExpiry) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  options.client_cert_validity_days = 20;  // always within the 30-day renewal window
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  auto first = pki->controllerClientCert();
  ASSERT_TRUE(first.ok());
  auto second = pki->controllerClientCert();
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->cert_pem, first->cert_pem);
  EXPECT_EQ(readFile(pki->clientCertFile()), second->cert_pem);
  EXPECT_EQ(readFile(pki->clientKeyFile()), second->key_pem);

  // With a long validity, the next Pki on this dir renews the 20-day one once and then keeps it.
  options.client_cert_validity_days = 730;
  auto renewed = mustLoad(options);
  ASSERT_NE(renewed, nullptr);
  auto third = renewed->controllerClientCert();
  ASSERT_TRUE(third.ok());
  EXPECT_NE(third->cert_pem, second->cert_pem);
  auto fourth = renewed->controllerClientCert();
  ASSERT_TRUE(fourth.ok());
  EXPECT_EQ(fourth->cert_pem, third->cert_pem);
}

TEST(Pki, ClientCertificateOfAnotherCaInTheDirIsReplaced) {
  TempDir tmp;
  PkiOptions a;
  a.dir = tmp.path() + "/a";
  PkiOptions b;
  b.dir = tmp.path() + "/b";
  auto pki_a = mustLoad(a);
  auto pki_b = mustLoad(b);
  ASSERT_TRUE(pki_a && pki_b);
  auto foreign = pki_b->controllerClientCert();
  ASSERT_TRUE(foreign.ok());
  writeFile(pki_a->clientCertFile(), foreign->cert_pem);
  writeFile(pki_a->clientKeyFile(), foreign->key_pem);
  auto own = pki_a->controllerClientCert();
  ASSERT_TRUE(own.ok());
  EXPECT_NE(own->cert_pem, foreign->cert_pem);
  EXPECT_EQ(verify(tmp, *pki_a, own->cert_pem).exit_code, 0);
}

TEST(Pki, LoadsAConfiguredCaAndNeverGeneratesOne) {
  TempDir tmp;
  std::string ca = tmp.path() + "/operator-ca.pem";
  std::string key = tmp.path() + "/operator-ca.key";
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  options.ca_cert_file = ca;
  options.ca_key_file = key;
  auto missing = Pki::loadOrCreate(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(missing.error().context, ca);
  struct stat st;
  EXPECT_NE(::stat((options.dir + "/ca.pem").c_str(), &st), 0) << "no CA may be generated when one is configured";

  // An operator's CA made with the openssl CLI (RSA, to show the key type is not ours to choose).
  auto made = runCommand({kOpenssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", ca,
                          "-days", "3650", "-subj", "/CN=operator-ca", "-addext",
                          "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  EXPECT_EQ(pki->caCertFile(), ca);
  EXPECT_EQ(pki->caCertPem(), readFile(ca));
  auto cert = pki->issueServerCert("amp", "198.51.100.7");
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  EXPECT_EQ(verify(tmp, *pki, cert->cert_pem, {"-verify_ip", "198.51.100.7"}).exit_code, 0);

  // Only one of the pair configured, or a key of another certificate: refused.
  PkiOptions half = options;
  half.ca_key_file = "";
  EXPECT_FALSE(Pki::loadOrCreate(half).ok());
  auto other = runCommand({kOpenssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                           tmp.path() + "/other.key"});
  ASSERT_EQ(other.exit_code, 0);
  PkiOptions wrong_key = options;
  wrong_key.ca_key_file = tmp.path() + "/other.key";
  auto mismatch = Pki::loadOrCreate(wrong_key);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, ErrorCode::kInvalidArgument);
}

TEST(Pki, RefusesALeafCertificateAsTheCa) {
  TempDir tmp;
  PkiOptions gen;
  gen.dir = tmp.path() + "/gen";
  auto pki = mustLoad(gen);
  ASSERT_NE(pki, nullptr);
  auto leaf = pki->issueServerCert("amp", "192.0.2.1");
  ASSERT_TRUE(leaf.ok());
  writeFile(tmp.path() + "/leaf.pem", leaf->cert_pem);
  writeFile(tmp.path() + "/leaf.key", leaf->key_pem);
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  options.ca_cert_file = tmp.path() + "/leaf.pem";
  options.ca_key_file = tmp.path() + "/leaf.key";
  auto r = Pki::loadOrCreate(options);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a CA"), std::string::npos) << r.error().message;
}

TEST(Pki, ALoneCaKeyLeftByAnInterruptedStartIsReplaced) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  ASSERT_EQ(::mkdir(options.dir.c_str(), 0700), 0);
  writeFile(options.dir + "/ca.key", "left over\n");
  auto pki = mustLoad(options);
  ASSERT_NE(pki, nullptr);
  EXPECT_NE(readFile(options.dir + "/ca.key"), "left over\n");
  auto cert = pki->issueServerCert("amp", "192.0.2.1");
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(verify(tmp, *pki, cert->cert_pem).exit_code, 0);
}

TEST(Pki, ACaCertificateWithoutItsKeyIsAnError) {
  TempDir tmp;
  PkiOptions options;
  options.dir = tmp.path() + "/pki";
  ASSERT_NE(mustLoad(options), nullptr);
  ASSERT_EQ(::unlink((options.dir + "/ca.key").c_str()), 0);
  auto r = Pki::loadOrCreate(options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(Pki, RefusesBadOptions) {
  PkiOptions no_dir;
  EXPECT_EQ(Pki::loadOrCreate(no_dir).error().code, ErrorCode::kInvalidArgument);
  TempDir tmp;
  PkiOptions zero;
  zero.dir = tmp.path() + "/pki";
  zero.server_cert_validity_days = 0;
  EXPECT_EQ(Pki::loadOrCreate(zero).error().code, ErrorCode::kInvalidArgument);
  PkiOptions file_dir;
  writeFile(tmp.path() + "/file", "x");
  file_dir.dir = tmp.path() + "/file";
  EXPECT_FALSE(Pki::loadOrCreate(file_dir).ok());
}

TEST(CertNotAfter, ReadsTheFirstCertificateAndRefusesOtherText) {
  TempDir tmp;
  std::string cert = tmp.path() + "/c.pem";
  auto made = runCommand({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", tmp.path() + "/c.key", "-out", cert, "-days", "10", "-subj", "/CN=x"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto r = certNotAfter(readFile(cert));
  ASSERT_TRUE(r.ok());
  EXPECT_LT(distance(*r, std::chrono::system_clock::now() + std::chrono::hours(240)), std::chrono::seconds(120));
  EXPECT_EQ(certNotAfter("not a certificate").error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(certNotAfter("").ok());
}

}  // namespace
}  // namespace banyan::provider::amphora
