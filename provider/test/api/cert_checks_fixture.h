// Shared by the tests of certificate checks kept out of the write transaction
// (api/cert_checks.h): a cert manager whose every read waits for another write to the
// same store (the local certificates: local_certs.h).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../certs/test_pki.h"
#include "api_server_fixture.h"
#include "local_certs.h"

namespace banyan::provider::api::cert_checks_test {

// The local cert manager, plus: every read first writes a record of its own to the
// store on another thread and waits (at most 2 s) for that write to commit.
class WaitingCertManager : public certs::CertManager {
 public:
  explicit WaitingCertManager(std::shared_ptr<certs::CertManager> inner)
      : inner_(std::move(inner)) {}
  void setStore(store::Store* store) { store_ = store; }
  // The other write also takes this load balancer's lock, as every child change does
  // (on PostgreSQL an advisory lock the API's transaction holds until it ends).
  void setLoadBalancer(const std::string& lb_id) {
    std::lock_guard<std::mutex> lock(threads_mu_);
    lb_id_ = lb_id;
  }
  int reads() const { return reads_.load(); }
  int readsThatSawAWrite() const { return unblocked_.load(); }

  common::Result<void> grantAccess(const certs::RequestContext& ctx,
                                   const std::string& ref) override {
    return inner_->grantAccess(ctx, ref);
  }
  common::Result<certs::TlsCertificate> getCertificate(const certs::RequestContext& ctx,
                                                       const std::string& ref) override {
    waitForAnotherWrite();
    return inner_->getCertificate(ctx, ref);
  }
  common::Result<std::string> getSecret(const certs::RequestContext& ctx,
                                        const std::string& ref) override {
    waitForAnotherWrite();
    return inner_->getSecret(ctx, ref);
  }

 private:
  void waitForAnotherWrite() {
    int n = ++reads_;
    if (store_ == nullptr) return;
    auto done = std::make_shared<std::promise<bool>>();
    auto landed = done->get_future();
    std::lock_guard<std::mutex> lock(threads_mu_);
    threads_.emplace_back([store = store_, done, n, lb_id = lb_id_] {
      auto r = store->write([&](store::Transaction& tx) -> common::Result<void> {
        if (!lb_id.empty())
          if (auto locked = tx.lockKey("loadbalancer:" + lb_id); !locked) return locked;
        store::Record rec{"probe", "probe-" + std::to_string(n), "", "", "", "{}", 0};
        return tx.insert(rec);
      });
      done->set_value(r.ok());
    });
    // Not landing in time means it waits for the API's transaction, and lands after it.
    if (landed.wait_for(std::chrono::seconds(2)) == std::future_status::ready && landed.get()) ++unblocked_;
  }

 public:
  // Before the store goes away.
  void joinWriters() {
    std::lock_guard<std::mutex> lock(threads_mu_);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::shared_ptr<certs::CertManager> inner_;
  store::Store* store_ = nullptr;
  std::atomic<int> reads_{0};
  std::atomic<int> unblocked_{0};
  std::mutex threads_mu_;
  std::vector<std::thread> threads_;
  std::string lb_id_;  // under threads_mu_
};

using testing::LocalCerts;

// An API on a noop provider whose cert manager is a WaitingCertManager over the local
// certificates; the manager's probe writes go to the API's own store.
class CertChecksFixture : public ::testing::Test {
 protected:
  static ApiOptions options(const std::shared_ptr<WaitingCertManager>& manager) {
    ApiOptions o = testing::noopOptions();
    o.default_provider_driver = "noop_driver";
    o.cert_manager = manager;
    return o;
  }
  void SetUp() override { manager->setStore(&api.store()); }
  void TearDown() override { manager->joinWriters(); }

  LocalCerts local;
  std::shared_ptr<WaitingCertManager> manager =
      std::make_shared<WaitingCertManager>(certs::makeLocalCertManager(local.dir));
  testing::ApiServer api{options(manager)};
};

}  // namespace banyan::provider::api::cert_checks_test
