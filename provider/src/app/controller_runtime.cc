#include "app/controller_runtime.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "amphora/agent_client.h"
#include "amphora/pki.h"
#include "banyan/common/logging.h"
#include "controller/controller.h"
#include "controller/worker.h"
#include "drivers/netns_compute.h"
#include "drivers/netns_network.h"
#include "drivers/netns_options.h"
#include "drivers/noop_compute.h"
#include "drivers/noop_network.h"
#include "health/health_manager.h"
#include "health/heartbeat_receiver.h"

namespace banyan::provider::app {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

std::string randomSecret() {
  std::random_device rd;
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 64; ++i) out += kHex[rd() % 16];
  return out;
}

// A secret the operator did not configure: made once, kept in the state directory
// (mode 0600), so every process on this host and every restart agrees on it.
Result<std::string> persistentSecret(const std::string& path) {
  std::ifstream in(path);
  if (in) {
    std::string value;
    std::getline(in, value);
    if (!value.empty()) return value;
  }
  std::string value = randomSecret();
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return makeError(ErrorCode::kUnavailable, std::strerror(errno), tmp);
  std::string line = value + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  // link() fails when another process got there first: then theirs is the secret.
  if (ok && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) ok = false;
  ::unlink(tmp.c_str());
  if (!ok) return makeError(ErrorCode::kUnavailable, "cannot write the secret", path);
  std::ifstream again(path);
  std::getline(again, value);
  if (value.empty()) return makeError(ErrorCode::kUnavailable, "the secret file is empty", path);
  return value;
}

// Runs fn every `every` until stopped; the first run is immediate.
class Ticker {
 public:
  Ticker(std::chrono::milliseconds every, std::function<void()> fn)
      : thread_([this, every, fn = std::move(fn)] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!stop_) {
            lock.unlock();
            fn();
            lock.lock();
            cv_.wait_for(lock, every, [this] { return stop_; });
          }
        }) {}
  ~Ticker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

class Runtime : public ControllerRuntime {
 public:
  ~Runtime() override {
    // Stop in reverse order of dependence: nothing may call into a part already gone.
    housekeeping_spares_.reset();
    housekeeping_certs_.reset();
    if (receiver_) receiver_->stop();
    if (health_) health_->stop();
    job_listener_.reset();  // calls into the worker
    if (worker_) worker_->stop();
  }

  void jobQueued() override {
    if (worker_) worker_->wake();
  }

  std::unique_ptr<drivers::ComputeDriver> compute_;
  std::unique_ptr<drivers::NetworkDriver> network_;
  std::unique_ptr<amphora::Pki> pki_;
  std::unique_ptr<amphora::AgentClient> agent_;
  std::unique_ptr<controller::Controller> controller_;
  std::unique_ptr<controller::Worker> worker_;
  std::unique_ptr<store::JobListener> job_listener_;
  std::unique_ptr<health::HealthManager> health_;
  std::unique_ptr<health::HeartbeatReceiver> receiver_;
  std::unique_ptr<Ticker> housekeeping_spares_;
  std::unique_ptr<Ticker> housekeeping_certs_;
};

std::string hostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

Result<std::unique_ptr<ControllerRuntime>> startControllerRoles(const common::OptionSet& o, store::Store& store,
                                                                const ControllerRoles& roles,
                                                                std::shared_ptr<certs::CertManager> cert_manager) {
  auto rt = std::make_unique<Runtime>();
  const std::string state_dir = o.getString("DEFAULT", "state_dir");
  const char* cw = "controller_worker";
  const char* hm = "health_manager";

  auto netns_options = drivers::netnsOptionsFrom(o);
  if (!netns_options) return netns_options.error();
  auto netns_config = drivers::validateNetnsOptions(*netns_options);
  if (!netns_config) return netns_config.error();

  // Drivers.
  std::string compute_driver = o.getString(cw, "compute_driver");
  drivers::NetnsComputeDriver* netns_compute = nullptr;
  if (compute_driver == "netns") {
    auto c = drivers::NetnsComputeDriver::create(*netns_options);
    if (!c) return c.error();
    netns_compute = c->get();
    rt->compute_ = std::move(*c);
  } else {
    rt->compute_ = std::make_unique<drivers::NoopComputeDriver>(netns_options->management_cidr);
  }
  if (o.getString(cw, "network_driver") == "netns") {
    auto n = drivers::NetnsNetworkDriver::create(*netns_options);
    if (!n) return n.error();
    if (roles.worker) {
      if (auto ok = (*n)->ensureBridges(); !ok) return ok.error();
    }
    rt->network_ = std::move(*n);
  } else {
    std::vector<drivers::NetnsNetwork> nets = netns_config->vip_networks;
    nets.insert(nets.end(), netns_config->member_networks.begin(), netns_config->member_networks.end());
    rt->network_ = std::make_unique<drivers::NoopNetworkDriver>(nets);
  }

  // Where heartbeats are received and where amphorae send them.
  std::string bind_ip = o.getString(hm, "bind_ip");
  uint16_t bind_port = static_cast<uint16_t>(o.getInt(hm, "bind_port"));
  if (bind_ip.empty()) {
    if (netns_compute != nullptr) {
      // Amphorae reach the host on the management bridge only.
      if (auto ok = netns_compute->ensureManagementBridge(); !ok) return ok.error();
      bind_ip = netns_config->management.cidr.gateway().toString();
    } else {
      bind_ip = "127.0.0.1";
    }
  }
  std::vector<std::string> targets = o.getList(hm, "controller_ip_port_list");
  if (targets.empty()) {
    targets.push_back((bind_ip.find(':') != std::string::npos ? "[" + bind_ip + "]" : bind_ip) + ":" +
                      std::to_string(bind_port));
  }
  std::string heartbeat_key = o.getString(hm, "heartbeat_key");
  if (heartbeat_key.empty()) {
    auto key = persistentSecret(state_dir + "/heartbeat.key");
    if (!key) return key.error();
    heartbeat_key = *key;
  }

  // The deployment PKI and the agents' mutual-TLS client.
  amphora::PkiOptions pki_options;
  pki_options.dir = state_dir + "/pki";
  pki_options.ca_cert_file = o.getString("certificates", "ca_certificate");
  pki_options.ca_key_file = o.getString("certificates", "ca_private_key");
  pki_options.server_cert_validity_days =
      std::max<int>(1, static_cast<int>(o.getInt("certificates", "cert_validity_time") / 86400));
  auto pki = amphora::Pki::loadOrCreate(pki_options);
  if (!pki) return pki.error();
  rt->pki_ = std::move(*pki);
  auto client_cert = rt->pki_->controllerClientCert();
  if (!client_cert) return client_cert.error();
  amphora::AgentClientOptions agent_options;
  agent_options.ca_file = rt->pki_->caCertFile();
  agent_options.client_cert_file = rt->pki_->clientCertFile();
  agent_options.client_key_file = rt->pki_->clientKeyFile();
  agent_options.request_timeout = std::chrono::seconds(o.getInt("haproxy_amphora", "rest_request_read_timeout"));
  agent_options.lb_network_interface = o.getString("haproxy_amphora", "lb_network_interface");
  auto agent = amphora::AgentClient::make(agent_options);
  if (!agent) return agent.error();
  rt->agent_ = std::move(*agent);

  controller::ControllerOptions copt;
  copt.loadbalancer_topology = o.getString(cw, "loadbalancer_topology");
  copt.agent_port = static_cast<uint16_t>(o.getInt("haproxy_amphora", "bind_port"));
  copt.amp_active_wait = std::chrono::seconds(o.getInt(cw, "amp_active_retries") * o.getInt(cw, "amp_active_wait_sec"));
  copt.controller_ip_port_list = targets;
  copt.heartbeat_interval = static_cast<int>(o.getInt(hm, "heartbeat_interval"));
  copt.heartbeat_key = heartbeat_key;
  copt.amphora_proxy_binary = netns_options->proxy_binary;
  copt.amphora_log_level = o.getString("DEFAULT", "log_level");
  copt.session_cookie_secret = o.getString(cw, "session_cookie_secret");
  if (copt.session_cookie_secret.empty()) {
    auto secret = persistentSecret(state_dir + "/session_cookie.key");
    if (!secret) return secret.error();
    copt.session_cookie_secret = *secret;
  }
  copt.spare_amphora_pool_size = static_cast<int>(o.getInt("house_keeping", "spare_amphora_pool_size"));
  copt.cert_manager = std::move(cert_manager);
  copt.certificate_cache_ttl = std::chrono::seconds(o.getInt("certificates", "cache_ttl"));
  rt->controller_ = std::make_unique<controller::Controller>(store, *rt->compute_, *rt->network_, *rt->agent_,
                                                             *rt->pki_, copt);

  if (roles.worker) {
    controller::WorkerOptions wopt;
    wopt.worker_id = hostName() + ":" + std::to_string(getpid());
    wopt.threads = static_cast<int>(o.getInt(cw, "workers"));
    wopt.idle_poll = std::chrono::milliseconds(o.getInt(cw, "job_poll_interval"));
    wopt.notified_poll = std::chrono::milliseconds(o.getInt(cw, "job_notify_poll_interval"));
    rt->worker_ = std::make_unique<controller::Worker>(store, *rt->controller_, wopt);
    rt->worker_->start();
    // Jobs the API queues in other processes (or on other hosts) are announced by the
    // database where it can (PostgreSQL); else the worker polls.
    if (o.getBool(cw, "job_notifications")) {
      auto* worker = rt->worker_.get();
      store::JobListenerCallbacks callbacks;
      callbacks.on_job = [worker] { worker->wake(); };
      callbacks.on_connected = [worker](bool up) { worker->setNotified(up); };
      rt->job_listener_ = store.listenForJobs(std::move(callbacks));
    }
    LB_INFO("controller worker started threads=%d compute=%s heartbeats_to=%s job_notifications=%s", wopt.threads,
            compute_driver.c_str(), targets.front().c_str(), rt->job_listener_ ? "listen" : "poll");
  }
  if (roles.health) {
    health::HealthManagerOptions hopt;
    hopt.heartbeat_timeout = std::chrono::seconds(o.getInt(hm, "heartbeat_timeout"));
    hopt.health_check_interval = std::chrono::seconds(o.getInt(hm, "health_check_interval"));
    rt->health_ = std::make_unique<health::HealthManager>(store, hopt);
    health::HeartbeatReceiverOptions ropt;
    ropt.bind_ip = bind_ip;
    ropt.bind_port = bind_port;
    ropt.key = heartbeat_key;
    auto* manager = rt->health_.get();
    auto receiver = health::HeartbeatReceiver::start(
        ropt, [manager](const common::Heartbeat& hb, const std::string& source) { manager->onHeartbeat(hb, source); });
    if (!receiver) return receiver.error();
    rt->receiver_ = std::move(*receiver);
    rt->health_->start();
    LB_INFO("health manager listening address=%s port=%u", bind_ip.c_str(), rt->receiver_->port());
  }
  if (roles.housekeeping) {
    auto* ctl = rt->controller_.get();
    // Also with a pool size of 0: a spare left BOOTING by a crash is finished.
    rt->housekeeping_spares_ = std::make_unique<Ticker>(
        std::chrono::seconds(o.getInt("house_keeping", "spare_check_interval")), [ctl] {
          auto built = ctl->fillSparePool();
          if (!built) LB_WARN("spare pool fill failed error=%s", built.error().message.c_str());
        });
    auto buffer = std::chrono::duration_cast<std::chrono::hours>(
        std::chrono::seconds(o.getInt("house_keeping", "cert_expiry_buffer")));
    rt->housekeeping_certs_ =
        std::make_unique<Ticker>(std::chrono::seconds(o.getInt("house_keeping", "cert_interval")), [ctl, buffer] {
          auto rotated = ctl->rotateCertificates(buffer);
          if (!rotated) LB_WARN("certificate rotation failed error=%s", rotated.error().message.c_str());
        });
  }
  return std::unique_ptr<ControllerRuntime>(std::move(rt));
}

Result<void> cleanupNetns(const common::OptionSet& o) {
  auto netns_options = drivers::netnsOptionsFrom(o);
  if (!netns_options) return netns_options.error();
  auto compute = drivers::NetnsComputeDriver::create(*netns_options);
  if (!compute) return compute.error();
  auto network = drivers::NetnsNetworkDriver::create(*netns_options);
  if (!network) return network.error();
  // Amphorae first: their veths hang off the bridges the network driver removes.
  auto removed = (*compute)->cleanupAll();
  auto unplugged = (*network)->cleanupAll();
  if (!removed) return removed;
  return unplugged;
}

}  // namespace banyan::provider::app
