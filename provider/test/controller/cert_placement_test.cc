// The push-config step's certificate placement (docs/certificates.md, "Controller"):
// which files the controller PUTs on an amphora, which it leaves, which it deletes,
// and the statuses a push ends with, through the real API, store, flows and local cert
// manager, with the agent faked (controller_fixture.h).
#include <algorithm>
#include <fstream>

#include "certs/placement.h"
#include "certs/tls_certificate.h"
#include "controller_fixture.h"

namespace banyan::provider::controller::testing {
namespace {

using certs::test::sharedPki;

class CertPlacement : public ControllerFixture {
 protected:
  void SetUp() override {
    ControllerFixture::SetUp();
    if (HasFatalFailure()) return;
    storeListenerCertificates();
    if (HasFatalFailure()) return;
    tls_file_ = certs::placedName(tls_ref_, true);
    ca_file_ = certs::placedName(kCaRef, false);
  }

  std::string onlyAmphora(const std::string& lb) {
    auto addresses = amphoraAddresses(lb);
    EXPECT_EQ(addresses.size(), 1u);
    return addresses.empty() ? "" : addresses[0];
  }

  std::string tls_file_, ca_file_;
};

TEST_F(CertPlacement, TheFirstPushPutsEveryFileAndTheDocumentNamesTheAgentsPaths) {
  std::string lb = activeLoadBalancer();
  agent_.takePuts();
  std::string listener = tlsListener(lb);
  drain();
  EXPECT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_EQ(status("loadbalancer", lb), "ACTIVE");
  EXPECT_EQ(sorted(agent_.takePuts()), sorted({tls_file_, ca_file_}));
  std::string address = onlyAmphora(lb);
  auto amp = agent_.amphora(address);
  ASSERT_EQ(amp.certificates.size(), 2u);
  // The bundle is certificate, intermediates and key, as the proxy loads it.
  const std::string& bundle = amp.certificates[tls_file_];
  EXPECT_NE(bundle.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(amp.certificates[ca_file_], sharedPki().read("ca.pem"));
  ASSERT_FALSE(amp.documents.empty());
  const std::string& doc = amp.documents.back();
  AmphoraClient::Endpoint endpoint{address, 9443};
  EXPECT_NE(doc.find(FakeAmphoraClient::pathOf(endpoint, tls_file_)), std::string::npos) << doc;
  EXPECT_NE(doc.find(FakeAmphoraClient::pathOf(endpoint, ca_file_)), std::string::npos) << doc;
}

TEST_F(CertPlacement, AnUnchangedSecondPushPutsNothing) {
  std::string lb = activeLoadBalancer();
  std::string listener = tlsListener(lb);
  drain();
  agent_.takePuts();
  size_t pushes = agent_.amphora(onlyAmphora(lb)).documents.size();
  rename(listener, "renamed");
  drain();
  EXPECT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_TRUE(agent_.takePuts().empty());
  EXPECT_TRUE(agent_.takeDeletes().empty());
  // The document still went (its generation changed), naming the files already there.
  auto amp = agent_.amphora(onlyAmphora(lb));
  EXPECT_EQ(amp.documents.size(), pushes + 1);
  EXPECT_NE(amp.documents.back().find(FakeAmphoraClient::pathOf({onlyAmphora(lb), 9443}, tls_file_)),
            std::string::npos);
}

TEST_F(CertPlacement, AChangedCertificatePutsExactlyThatFile) {
  std::string lb = activeLoadBalancer();
  std::string listener = tlsListener(lb);
  drain();
  agent_.takePuts();
  // The CA behind the reference is replaced (an operator rotated it in the store).
  writeSecret(kCaRef, sharedPki().read("int.pem"));
  rename(listener, "after-rotation");
  drain();
  EXPECT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_EQ(agent_.takePuts(), std::vector<std::string>{ca_file_});
  EXPECT_EQ(agent_.amphora(onlyAmphora(lb)).certificates[ca_file_], sharedPki().read("int.pem"));
  EXPECT_TRUE(agent_.takeDeletes().empty());
}

TEST_F(CertPlacement, RemovingTheLastTlsListenerDeletesItsFiles) {
  std::string lb = activeLoadBalancer();
  std::string first = tlsListener(lb, 443);
  drain();
  std::string second = tlsListener(lb, 8443);
  drain();
  agent_.takeDeletes();
  // Another listener still uses both files: nothing goes.
  call("DELETE", "/v2/lbaas/listeners/" + first, "", 204);
  drain();
  EXPECT_FALSE(exists("listener", first));
  EXPECT_TRUE(agent_.takeDeletes().empty());
  EXPECT_EQ(agent_.amphora(onlyAmphora(lb)).certificates.size(), 2u);
  call("DELETE", "/v2/lbaas/listeners/" + second, "", 204);
  drain();
  EXPECT_FALSE(exists("listener", second));
  EXPECT_EQ(status("loadbalancer", lb), "ACTIVE");
  EXPECT_EQ(sorted(agent_.takeDeletes()), sorted({tls_file_, ca_file_}));
  EXPECT_TRUE(agent_.amphora(onlyAmphora(lb)).certificates.empty());
}

TEST_F(CertPlacement, FilesTheControllerDidNotPlaceAreLeftAlone) {
  std::string lb = activeLoadBalancer();
  std::string address = onlyAmphora(lb);
  // Not "tls-"/"pem-": someone else's file on the amphora.
  ASSERT_TRUE(agent_.putCertificate({address, 9443}, "operator-bundle", "x").ok());
  std::string listener = tlsListener(lb);
  drain();
  call("DELETE", "/v2/lbaas/listeners/" + listener, "", 204);
  drain();
  EXPECT_EQ(sorted(agent_.takeDeletes()), sorted({tls_file_, ca_file_}));
  EXPECT_EQ(agent_.amphora(address).certificates.count("operator-bundle"), 1u);
}

TEST_F(CertPlacement, AnAgentWithoutTheListingStillGetsADocumentThatNeedsNoCertificates) {
  agent_.setListingMissing(true);
  std::string lb = activeLoadBalancer();
  std::string listener = create("/v2/lbaas/listeners", "listener",
                                "\"loadbalancer_id\":\"" + lb + "\",\"protocol\":\"HTTP\",\"protocol_port\":80");
  drain();
  EXPECT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_EQ(status("loadbalancer", lb), "ACTIVE");
  auto amp = agent_.amphora(onlyAmphora(lb));
  ASSERT_FALSE(amp.documents.empty());
  EXPECT_NE(amp.documents.back().find(listener), std::string::npos);
  EXPECT_TRUE(agent_.takePuts().empty());
}

TEST_F(CertPlacement, AnAgentWithoutTheListingFailsAListenerThatNeedsCertificates) {
  std::string lb = activeLoadBalancer();
  agent_.setListingMissing(true);
  size_t pushes = agent_.amphora(onlyAmphora(lb)).documents.size();
  std::string listener = tlsListener(lb);
  drain();
  EXPECT_EQ(status("listener", listener), "ERROR");
  EXPECT_EQ(status("loadbalancer", lb), "ACTIVE");
  EXPECT_EQ(agent_.amphora(onlyAmphora(lb)).documents.size(), pushes);
}

TEST_F(CertPlacement, ACertificateThatCannotBeFetchedMarksTheListenerErrorAndLeavesTheLoadBalancerActive) {
  std::string lb = activeLoadBalancer();
  size_t pushes = agent_.amphora(onlyAmphora(lb)).documents.size();
  std::string listener = tlsListener(lb);
  // Deleted from the store after the API checked it, before the controller reads it.
  std::filesystem::remove(cert_dir_ + "/" + tls_ref_ + ".crt");
  drain();
  EXPECT_EQ(status("listener", listener), "ERROR");
  EXPECT_EQ(status("loadbalancer", lb), "ACTIVE");
  // Nothing reached the amphora: the old document keeps serving.
  EXPECT_TRUE(agent_.takePuts().empty());
  EXPECT_EQ(agent_.amphora(onlyAmphora(lb)).documents.size(), pushes);
}

TEST_F(CertPlacement, ANewAmphoraOfAFailoverGetsTheFilesInTheSameStep) {
  std::string lb = activeLoadBalancer();
  std::string listener = tlsListener(lb);
  drain();
  std::vector<std::string> before = computeIds(lb);
  agent_.takePuts();
  // The fake compute driver hands the new amphora the old one's address: its agent
  // starts empty.
  agent_.forget(onlyAmphora(lb));
  call("PUT", "/v2/lbaas/loadbalancers/" + lb + "/failover", "", 202);
  drain();
  EXPECT_EQ(status("loadbalancer", lb), "ACTIVE");
  ASSERT_NE(computeIds(lb), before);
  std::string after = onlyAmphora(lb);
  EXPECT_EQ(sorted(agent_.takePuts()), sorted({tls_file_, ca_file_}));
  EXPECT_EQ(agent_.amphora(after).certificates.size(), 2u);
}

TEST_F(CertPlacement, WithoutACacheEveryPushReadsTheCertManager) {
  std::string lb = activeLoadBalancer();
  std::string listener = tlsListener(lb);
  drain();
  int reads = counting_->reads();
  EXPECT_EQ(reads, 2);
  rename(listener, "again");
  drain();
  EXPECT_EQ(counting_->reads(), reads + 2);
}

class CertCache : public CertPlacement {
 protected:
  void SetUp() override {
    CertPlacement::SetUp();
    if (HasFatalFailure()) return;
    options_.certificate_cache_ttl = std::chrono::seconds(60);
    remakeController();
  }
};

TEST_F(CertCache, AnUnchangedPushWithinTheTtlDoesNotReadTheCertManager) {
  std::string lb = activeLoadBalancer();
  std::string listener = tlsListener(lb);
  drain();
  EXPECT_EQ(counting_->reads(), 2);
  agent_.takePuts();
  now_ += std::chrono::seconds(59);
  rename(listener, "again");
  drain();
  EXPECT_EQ(status("listener", listener), "ACTIVE");
  EXPECT_EQ(counting_->reads(), 2);
  EXPECT_TRUE(agent_.takePuts().empty());
  // A second listener naming the same references reads nothing either.
  std::string second = tlsListener(lb, 8443);
  drain();
  EXPECT_EQ(status("listener", second), "ACTIVE");
  EXPECT_EQ(counting_->reads(), 2);
}

TEST_F(CertCache, AnExpiredEntryIsReadAgainAndAReplacedFileReachesTheAmphora) {
  std::string lb = activeLoadBalancer();
  std::string listener = tlsListener(lb);
  drain();
  agent_.takePuts();
  writeSecret(kCaRef, sharedPki().read("int.pem"));
  rename(listener, "cached");
  drain();
  // Still the cached CA: nothing read, nothing placed.
  EXPECT_EQ(counting_->reads(), 2);
  EXPECT_TRUE(agent_.takePuts().empty());
  now_ += std::chrono::seconds(60);
  rename(listener, "expired");
  drain();
  EXPECT_EQ(counting_->reads(), 4);
  EXPECT_EQ(agent_.takePuts(), std::vector<std::string>{ca_file_});
  EXPECT_EQ(agent_.amphora(onlyAmphora(lb)).certificates[ca_file_], sharedPki().read("int.pem"));
}

TEST_F(CertCache, EntriesAreKeptPerProject) {
  std::string lb_a = activeLoadBalancer();
  tlsListener(lb_a);
  drain();
  EXPECT_EQ(counting_->reads(), 2);
  project_ = "project-b";
  std::string lb_b = activeLoadBalancer();
  std::string listener_b = tlsListener(lb_b);
  drain();
  EXPECT_EQ(status("listener", listener_b), "ACTIVE");
  // The same references, read again as project-b.
  EXPECT_EQ(counting_->reads(), 4);
}

}  // namespace
}  // namespace banyan::provider::controller::testing
