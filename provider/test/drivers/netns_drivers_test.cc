// Integration tests of NetnsComputeDriver and NetnsNetworkDriver against the real
// kernel: named namespaces, bridges, veths, processes started inside amphorae.
//
// Isolation: before main() this process moves into a network namespace of its own
// (unshare(CLONE_NEWNET)), which plays "the host". The bridges and host ends of veths
// live there and vanish with the process even if it crashes, and the documentation
// ranges (192.0.2.0/24 is this machine's real eth0 subnet) cannot clash with the real
// host's routes. Named namespaces are global: they carry the prefix "bdt<pid>", are
// removed in TearDown and, failing that, by a global environment at exit.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "drivers/host_net.h"
#include "drivers/netns_compute.h"
#include "drivers/netns_network.h"
#include "drivers/process.h"

namespace banyan::provider::drivers {
namespace {

using common::ErrorCode;
using namespace std::chrono_literals;

const std::string kVipNet = "0f0f0f0f-0000-4000-8000-203000113000";
const std::string kSmallVipNet = "0f0f0f0f-0000-4000-8000-203000113248";
const std::string kMemberNet = "0f0f0f0f-0000-4000-8000-198051100000";
const std::string kV6VipNet = "0f0f0f0f-0000-4000-8000-20010db80001";
const char* kPython = "/usr/bin/python3";

// "bdt" (banyan drivers test) + our PID: unique among concurrent runs, and a run that
// crashed can be recognised by its PID being gone.
std::string testPrefix() { return "bdt" + std::to_string(getpid()); }

// Runs before main (and before any thread exists, so every thread inherits it).
const bool kIsolated = [] {
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("unshare(CLONE_NEWNET) (the netns tests need root)");
    std::_Exit(1);
  }
  auto lo = runCommand({"ip", "link", "set", "lo", "up"});
  return lo.ok() && lo->exit_code == 0;
}();

std::vector<std::string> namespacesWithPrefix(const std::string& prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    std::string name = e.path().filename();
    if (name.rfind(prefix + "-", 0) == 0) out.push_back(name);
  }
  return out;
}

// The PID in a namespace name this test makes ("bdt<pid>-amp-<8 hex>" or
// "bdt<pid>-memhost<n>"), or "" for any other name. (No std::regex: GCC 12 warns
// inside it under ASan.)
std::string ourNamespacePid(const std::string& name) {
  auto digits = [](std::string_view s, size_t min_len, bool hex) {
    if (s.size() < min_len) return false;
    for (char c : s) {
      if (!(std::isdigit(static_cast<unsigned char>(c)) || (hex && c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  };
  if (name.rfind("bdt", 0) != 0) return "";
  size_t dash = name.find('-', 3);
  if (dash == std::string::npos) return "";
  std::string pid = name.substr(3, dash - 3);
  std::string_view rest = std::string_view(name).substr(dash + 1);
  if (!digits(pid, 1, false)) return "";
  bool amp = rest.rfind("amp-", 0) == 0 && rest.size() == 12 && digits(rest.substr(4), 8, true);
  bool memhost = rest.rfind("memhost", 0) == 0 && digits(rest.substr(7), 1, false);
  return amp || memhost ? pid : "";
}

// A run killed before its TearDown leaves namespaces (and the processes inside)
// behind; the next run removes those whose PID is gone. Only names this test makes.
const bool kSweptStale = [] {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    std::string name = e.path().filename();
    std::string pid = ourNamespacePid(name);
    if (pid.empty()) continue;
    if (std::filesystem::exists("/proc/" + pid)) continue;
    (void)killNamespaceProcesses(name);
    (void)deleteNamespace(name);
  }
  return true;
}();

// The failsafe: whatever a failed test left in global namespace names goes at exit.
class LeftoverNamespaces : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& ns : namespacesWithPrefix(testPrefix())) {
      (void)killNamespaceProcesses(ns);
      (void)deleteNamespace(ns);
    }
  }
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new LeftoverNamespaces);

std::string run(const std::vector<std::string>& argv) {
  auto r = runCommand(argv);
  return r.ok() ? r->out + r->err : r.error().message;
}

bool waitFor(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

uint16_t icmpChecksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len % 2) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// An ICMP echo to an IPv4 address, sent again every 500 ms until the matching reply
// arrives or the timeout passes (a freshly plugged port may lose the first request to
// neighbour resolution on a loaded machine); true when the reply came.
bool ping(const std::string& address, std::chrono::milliseconds timeout = 3000ms) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return false;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  inet_pton(AF_INET, address.c_str(), &to.sin_addr);
  static std::atomic<uint16_t> seq{1};
  uint16_t id = static_cast<uint16_t>(getpid()), sq = seq++;
  uint8_t pkt[16] = {8,
                     0,
                     0,
                     0,
                     uint8_t(id >> 8),
                     uint8_t(id),
                     uint8_t(sq >> 8),
                     uint8_t(sq),
                     'b',
                     'a',
                     'n',
                     'y',
                     'a',
                     'n',
                     0,
                     0};
  uint16_t sum = icmpChecksum(pkt, sizeof(pkt));
  pkt[2] = uint8_t(sum >> 8);
  pkt[3] = uint8_t(sum);
  bool ok = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto next_send = std::chrono::steady_clock::now();
  while (!ok && std::chrono::steady_clock::now() < deadline) {
    if (std::chrono::steady_clock::now() >= next_send) {
      if (sendto(fd, pkt, sizeof(pkt), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) !=
          sizeof(pkt))
        break;
      next_send += 500ms;
    }
    pollfd p{fd, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(deadline, next_send) - std::chrono::steady_clock::now());
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) != 1) continue;
    uint8_t buf[1500];
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 28 || from.sin_addr.s_addr != to.sin_addr.s_addr) continue;
    size_t ihl = (buf[0] & 0xf) * 4u;
    if (static_cast<size_t>(n) < ihl + 8) continue;
    const uint8_t* icmp = buf + ihl;
    ok = icmp[0] == 0 && icmp[4] == pkt[4] && icmp[5] == pkt[5] && icmp[6] == pkt[6] &&
         icmp[7] == pkt[7];
  }
  close(fd);
  return ok;
}

// A minimal HTTP/1.0 GET; returns the whole response or "" on any failure.
std::string httpGet(const std::string& address, int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: test\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return response;
}

bool linkInHost(const std::string& name) { return linkExists(name); }

bool netnsListed(const std::string& name) {
  return run({"ip", "netns", "list"}).find(name) != std::string::npos;
}

// Names of every link in the (test's) host namespace, from `ip -j link`.
std::set<std::string> hostLinks() {
  std::set<std::string> out;
  rapidjson::Document doc;
  std::string text = run({"ip", "-j", "link"});
  doc.Parse(text.c_str());
  if (doc.IsArray()) {
    for (const auto& l : doc.GetArray()) out.insert(l["ifname"].GetString());
  }
  return out;
}

// The agent's PID as recorded in compute.json.
int recordedPid(const std::string& state_dir, const std::string& compute_id) {
  std::ifstream in(state_dir + "/compute.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto state = computeStateFromJson(text);
  if (!state) return 0;
  for (const auto& a : state->amphorae) {
    if (a.compute_id == compute_id) return a.pid;
  }
  return 0;
}

class NetnsDrivers : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kIsolated) << "could not bring lo up in the test's namespace";
    ASSERT_EQ(kEnv != nullptr && kSweptStale, true);
    char tmpl[] = "/tmp/banyan-netns-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    state_dir_ = tmpl;
    options_.state_dir = state_dir_;
    options_.name_prefix = testPrefix();
    options_.vip_networks = {kVipNet + "::203.0.113.0/25", kSmallVipNet + "::203.0.113.248/29"};
    options_.member_networks = {kMemberNet + "::198.51.100.0/24"};
    options_.management_cidr = "192.0.2.0/24";  // free inside the test's own namespace
    // The amphora's "agent" here is a tiny HTTP responder serving the amphora's own
    // directory on its management address: proof that it runs inside the namespace,
    // reachable from the host, with the spec's files in place.
    options_.agent_binary = kPython;
    options_.agent_args = {"-m",   "http.server", "--bind", "{lb_network_ip}",
                           "8000", "--directory", "{dir}"};
    options_.health_port = 8000;
    options_.stop_grace_ms = 1000;
  }

  void TearDown() override {
    if (network_) {
      auto ok = network_->cleanupAll();
      EXPECT_TRUE(ok.ok()) << ok.error().message;
    }
    if (compute_) {
      auto ok = compute_->cleanupAll();
      EXPECT_TRUE(ok.ok()) << ok.error().message;
    }
    for (const auto& ns : extra_namespaces_) {
      (void)killNamespaceProcesses(ns);
      (void)deleteNamespace(ns);
    }
    std::error_code ec;
    std::filesystem::remove_all(state_dir_, ec);
    EXPECT_TRUE(namespacesWithPrefix(testPrefix()).empty());
  }

  void makeDrivers() {
    auto compute = NetnsComputeDriver::create(options_);
    ASSERT_TRUE(compute.ok()) << compute.error().message;
    compute_ = std::move(*compute);
    auto network = NetnsNetworkDriver::create(options_);
    ASSERT_TRUE(network.ok()) << network.error().message;
    network_ = std::move(*network);
  }

  Instance buildActive(const std::string& amphora_id, std::vector<PlacedFile> files = {}) {
    auto instance =
        compute_->build({amphora_id, "lb-" + amphora_id, "[DEFAULT]\n", std::move(files), {}});
    EXPECT_TRUE(instance.ok()) << instance.error().message;
    if (!instance) return {};
    EXPECT_TRUE(waitFor(
        [&] { return compute_->status(instance->compute_id).value() == ComputeStatus::kActive; },
        10s))
        << "amphora never became ACTIVE; log: "
        << run({"cat", compute_->amphoraDir(instance->compute_id) + "/agent.log"});
    return *instance;
  }

  // A python HTTP responder inside `ns` on address:port serving `dir`.
  ProcessId serveIn(const std::string& ns, const std::string& address, int port,
                    const std::string& dir) {
    SpawnSpec spec{
        ns,
        {kPython, "-m", "http.server", "--bind", address, std::to_string(port), "--directory", dir},
        dir,
        dir + "/server.log",
        {}};
    auto pid = spawnInNamespace(spec);
    EXPECT_TRUE(pid.ok()) << pid.error().message;
    EXPECT_TRUE(waitFor([&] { return !httpGet(address, port, "/").empty(); }, 10s))
        << "listener " << address << ":" << port << " never answered";
    return pid.ok() ? *pid : ProcessId{};
  }

  std::string state_dir_;
  NetnsOptions options_;
  std::unique_ptr<NetnsComputeDriver> compute_;
  std::unique_ptr<NetnsNetworkDriver> network_;
  std::vector<std::string> extra_namespaces_;
};

TEST_F(NetnsDrivers,
       BuildingAnAmphoraStartsItsProgramInAReachableNamespaceAndRemoveTakesEverything) {
  makeDrivers();
  auto started = std::chrono::steady_clock::now();
  auto built = compute_->build({"amp-one",
                                "lb-one",
                                "[DEFAULT]\ndebug = true\n",
                                {{"certs/hello.txt", "hello from the amphora\n", 0600}}, {}});
  auto build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  ASSERT_TRUE(built.ok()) << built.error().message;
  std::printf("[ info ] one amphora built in %.1f ms\n", build_ms);
  const Instance& amp = *built;
  EXPECT_EQ(amp.compute_id.rfind(testPrefix() + "-amp-", 0), 0u) << amp.compute_id;
  EXPECT_EQ(amp.lb_network_ip, "192.0.2.2");  // the host holds .1
  EXPECT_TRUE(netnsListed(amp.compute_id));
  EXPECT_TRUE(ping(amp.lb_network_ip)) << "management address does not answer ping";
  ASSERT_TRUE(waitFor(
      [&] { return compute_->status(amp.compute_id).value() == ComputeStatus::kActive; }, 10s));
  EXPECT_EQ(httpGet(amp.lb_network_ip, 8000, "/certs/hello.txt").find("hello from the amphora"),
            httpGet(amp.lb_network_ip, 8000, "/certs/hello.txt").size() - 23);
  EXPECT_NE(httpGet(amp.lb_network_ip, 8000, "/agent.conf").find("debug = true"),
            std::string::npos);

  std::string dir = compute_->amphoraDir(amp.compute_id);
  struct stat st {};
  ASSERT_EQ(stat((dir + "/certs/hello.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int pid = recordedPid(state_dir_, amp.compute_id);
  ASSERT_GT(pid, 0);
  auto in_ns = pidsInNamespace(amp.compute_id);
  EXPECT_NE(std::find(in_ns.begin(), in_ns.end(), pid), in_ns.end())
      << "the agent is not inside the namespace";
  auto listed = compute_->list();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].amphora_id, "amp-one");
  std::string host_veth =
      testPrefix().substr(0, 4) + amp.compute_id.substr(amp.compute_id.size() - 8) + "e0";
  EXPECT_TRUE(hostLinks().count(host_veth)) << host_veth;

  ASSERT_TRUE(compute_->remove(amp.compute_id).ok());
  EXPECT_FALSE(netnsListed(amp.compute_id));
  EXPECT_FALSE(hostLinks().count(host_veth));
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_EQ(compute_->status(amp.compute_id).value(), ComputeStatus::kDeleted);
  EXPECT_TRUE(compute_->remove(amp.compute_id).ok()) << "remove must be idempotent";
  EXPECT_TRUE(compute_->list()->empty());
}

TEST_F(NetnsDrivers, AnAmphoraWhoseAgentDiesIsInErrorAndOneThatDoesNotAnswerYetIsBuilding) {
  options_.agent_binary = "/bin/sh";
  // Listens only after a while, then exits: BUILDING, then ACTIVE is skipped, ERROR.
  options_.agent_args = {"-c", "sleep 0.5; exit 3"};
  makeDrivers();
  auto amp = compute_->build({"amp-dies", "lb", "", {}, {}});
  ASSERT_TRUE(amp.ok()) << amp.error().message;
  EXPECT_EQ(compute_->status(amp->compute_id).value(), ComputeStatus::kBuilding);
  EXPECT_TRUE(waitFor(
      [&] { return compute_->status(amp->compute_id).value() == ComputeStatus::kError; }, 5s));
  ASSERT_TRUE(compute_->remove(amp->compute_id).ok());
}

TEST_F(NetnsDrivers, AFailedBuildLeavesNothingBehind) {
  options_.agent_binary = "/nonexistent/banyan-agent";
  makeDrivers();
  auto amp = compute_->build({"amp-bad", "lb", "", {}, {}});
  ASSERT_FALSE(amp.ok());
  EXPECT_NE(amp.error().message.find("/nonexistent/banyan-agent"), std::string::npos)
      << amp.error().message;
  EXPECT_TRUE(namespacesWithPrefix(testPrefix()).empty());
  EXPECT_TRUE(compute_->list()->empty());
  EXPECT_TRUE(std::filesystem::is_empty(state_dir_ + "/amphorae"));
  for (const auto& l : hostLinks()) EXPECT_TRUE(l == "lo" || l == testPrefix() + "-mgmt") << l;
}

TEST_F(NetnsDrivers, FilesOutsideTheAmphoraDirectoryAreRefused) {
  makeDrivers();
  for (const char* path : {"../escape", "/etc/passwd", "a/../../b", "", "agent.conf"}) {
    auto amp = compute_->build({"amp", "lb", "", {{path, "x", 0600}}, {}});
    ASSERT_FALSE(amp.ok()) << path;
    EXPECT_EQ(amp.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(namespacesWithPrefix(testPrefix()).empty());
}

TEST_F(NetnsDrivers, AManagementSubnetOverlappingAHostNetworkIsRefused) {
  // Stands for the real host's uplink (this machine's eth0 is in 192.0.2.0/24).
  ASSERT_EQ(run({"ip", "link", "add", "btdummy0", "type", "bridge"}), "");
  ASSERT_EQ(run({"ip", "addr", "add", "192.0.2.77/24", "dev", "btdummy0"}), "");
  makeDrivers();
  auto amp = compute_->build({"amp", "lb", "", {}, {}});
  (void)run({"ip", "link", "del", "btdummy0"});
  ASSERT_FALSE(amp.ok());
  EXPECT_NE(amp.error().message.find("overlaps"), std::string::npos) << amp.error().message;
  EXPECT_NE(amp.error().message.find("btdummy0"), std::string::npos) << amp.error().message;
}

TEST_F(NetnsDrivers, VipsComeFromThePoolOnceAndRequestsAreHonouredOrRefused) {
  makeDrivers();
  auto subnet = network_->subnet(kSmallVipNet);
  ASSERT_TRUE(subnet.ok());
  EXPECT_EQ(subnet->gateway_ip, "203.0.113.249");
  EXPECT_EQ(subnet->pool_start, "203.0.113.250");
  EXPECT_EQ(network_->network(kSmallVipNet)->subnet_ids, std::vector<std::string>{kSmallVipNet});
  EXPECT_EQ(network_->subnet("nope").error().code, ErrorCode::kNotFound);

  auto requested = network_->allocateVip("lb-r", kSmallVipNet, "203.0.113.253");
  ASSERT_TRUE(requested.ok()) << requested.error().message;
  EXPECT_EQ(requested->address, "203.0.113.253");
  EXPECT_EQ(requested->subnet_id, kSmallVipNet);
  auto taken = network_->allocateVip("lb-x", kSmallVipNet, "203.0.113.253");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, ErrorCode::kConflict);
  for (const char* outside :
       {"203.0.113.249", "203.0.113.255", "203.0.113.10", "198.51.100.7", "junk"}) {
    auto bad = network_->allocateVip("lb-x", kSmallVipNet, outside);
    ASSERT_FALSE(bad.ok()) << outside;
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument) << outside;
  }
  std::set<std::string> seen{requested->address};
  std::vector<Vip> vips{*requested};
  for (int i = 0; i < 4; ++i) {
    auto vip = network_->allocateVip("lb-" + std::to_string(i), kSmallVipNet, "");
    ASSERT_TRUE(vip.ok()) << vip.error().message;
    EXPECT_TRUE(seen.insert(vip->address).second) << vip->address;
    vips.push_back(*vip);
  }
  auto full = network_->allocateVip("lb-full", kSmallVipNet, "");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(full.error().message.find("no free address"), std::string::npos)
      << full.error().message;
  ASSERT_TRUE(network_->deallocateVip(vips[2]).ok());
  ASSERT_TRUE(network_->deallocateVip(vips[2]).ok()) << "deallocate must be idempotent";
  auto again = network_->allocateVip("lb-again", kSmallVipNet, "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->address, vips[2].address);
  EXPECT_EQ(network_->listPorts()->size(), 5u);
}

TEST_F(NetnsDrivers, PluggedVipIsReachableFromTheHostAndTwoAmphoraeHaveTheirOwnBaseAddresses) {
  makeDrivers();
  Instance a = buildActive("amp-a");
  Instance b = buildActive("amp-b");
  ASSERT_FALSE(a.compute_id.empty() || b.compute_id.empty());
  auto vip = network_->allocateVip("lb-ha", kVipNet, "");
  ASSERT_TRUE(vip.ok());
  auto plug_a = network_->plugVip(a.compute_id, *vip);
  auto plug_b = network_->plugVip(b.compute_id, *vip);
  ASSERT_TRUE(plug_a.ok()) << plug_a.error().message;
  ASSERT_TRUE(plug_b.ok()) << plug_b.error().message;
  EXPECT_EQ(plug_a->interface, "eth1");
  EXPECT_EQ(plug_a->gateway_ip, "203.0.113.1");
  EXPECT_EQ(plug_a->prefix_length, 25);
  EXPECT_NE(plug_a->address, plug_b->address);
  EXPECT_NE(plug_a->address, vip->address);
  auto again = network_->plugVip(a.compute_id, *vip);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->port_id, plug_a->port_id) << "plugging twice must not add a second interface";

  // Both base addresses answer from the host (what VRRP between the pair needs).
  EXPECT_TRUE(ping(plug_a->address));
  EXPECT_TRUE(ping(plug_b->address));
  std::string bridge = testPrefix() + "-vip0";
  std::string enslaved = run({"ip", "-o", "link", "show", "master", bridge});
  EXPECT_NE(enslaved.find(a.compute_id.substr(a.compute_id.size() - 8) + "e1"), std::string::npos)
      << enslaved;
  EXPECT_NE(enslaved.find(b.compute_id.substr(b.compute_id.size() - 8) + "e1"), std::string::npos)
      << enslaved;
  EXPECT_NE(run({"ip", "-n", a.compute_id, "link", "show", "eth1"}).find(plug_a->mac_address),
            std::string::npos);

  // The agent brings the VIP up inside the MASTER amphora; here the test does it.
  ASSERT_EQ(run({"ip", "-n", a.compute_id, "addr", "add", vip->address + "/32", "dev", "eth1"}),
            "");
  std::string web = compute_->amphoraDir(a.compute_id) + "/web";
  std::filesystem::create_directories(web);
  std::ofstream(web + "/index.txt") << "served on the VIP\n";
  ProcessId listener = serveIn(a.compute_id, vip->address, 8080, web);
  EXPECT_NE(httpGet(vip->address, 8080, "/index.txt").find("served on the VIP"), std::string::npos);

  auto plugged = network_->pluggedInterfaces(a.compute_id);
  ASSERT_TRUE(plugged.ok());
  ASSERT_EQ(plugged->size(), 1u);
  EXPECT_EQ((*plugged)[0].address, plug_a->address);

  std::string b_veth =
      testPrefix().substr(0, 4) + b.compute_id.substr(b.compute_id.size() - 8) + "e1";
  ASSERT_TRUE(linkInHost(b_veth));
  ASSERT_TRUE(network_->unplugVip(b.compute_id, *vip).ok());
  EXPECT_FALSE(linkInHost(b_veth));
  EXPECT_EQ(run({"ip", "-n", b.compute_id, "link", "show", "eth1"}).find("eth1:"),
            std::string::npos);
  // Deallocating the VIP takes the remaining base address (amp-a's) with it.
  ASSERT_TRUE(network_->deallocateVip(*vip).ok());
  EXPECT_TRUE(network_->listPorts()->empty());
  EXPECT_FALSE(ping(vip->address, 300ms));
  stopProcess(listener, 500ms);
}

TEST_F(NetnsDrivers, AnIpv6VipIsReachableFromTheHost) {
  options_.vip_networks.push_back(kV6VipNet + "::2001:db8:1::/64");
  makeDrivers();
  Instance amp = buildActive("amp-v6");
  ASSERT_FALSE(amp.compute_id.empty());
  auto vip = network_->allocateVip("lb-v6", kV6VipNet, "");
  ASSERT_TRUE(vip.ok()) << vip.error().message;
  EXPECT_EQ(vip->address, "2001:db8:1::2");
  auto plugged = network_->plugVip(amp.compute_id, *vip);
  ASSERT_TRUE(plugged.ok()) << plugged.error().message;
  EXPECT_EQ(plugged->address, "2001:db8:1::3");
  EXPECT_EQ(plugged->gateway_ip, "2001:db8:1::1");
  ASSERT_EQ(run({"ip", "-n", amp.compute_id, "addr", "add", vip->address + "/128", "dev", "eth1",
                 "nodad"}),
            "");
  std::string web = compute_->amphoraDir(amp.compute_id) + "/web6";
  std::filesystem::create_directories(web);
  std::ofstream(web + "/six.txt") << "served on an IPv6 VIP\n";
  SpawnSpec spec{amp.compute_id,
                 {kPython, "-m", "http.server", "--bind", vip->address, "8080", "--directory", web},
                 web,
                 web + "/server.log",
                 {}};
  auto server = spawnInNamespace(spec);
  ASSERT_TRUE(server.ok()) << server.error().message;
  std::string url = "http://[" + vip->address + "]:8080/six.txt";
  std::string body;
  EXPECT_TRUE(waitFor(
      [&] {
        auto r = runCommand({"curl", "-sS", "-g", "--max-time", "2", url});
        body = r.ok() ? r->out : "";
        return body == "served on an IPv6 VIP\n";
      },
      10s))
      << body;
  stopProcess(*server, 500ms);
}

TEST_F(NetnsDrivers, AMemberHostOnAPluggedMemberNetworkIsReachableFromTheAmphora) {
  makeDrivers();
  Instance amp = buildActive("amp-m");
  ASSERT_FALSE(amp.compute_id.empty());
  auto plugged = network_->plugNetwork(amp.compute_id, kMemberNet);
  ASSERT_TRUE(plugged.ok()) << plugged.error().message;
  EXPECT_EQ(plugged->interface, "eth1");
  EXPECT_EQ(plugged->cidr, "198.51.100.0/24");

  // The member host is a namespace of its own on the member bridge; the driver hands
  // it an address like any other port.
  std::string member_ns = testPrefix() + "-memhost1";
  ASSERT_TRUE(addNamespace(member_ns).ok());
  extra_namespaces_.push_back(member_ns);
  auto member = network_->plugNetwork(member_ns, kMemberNet);
  ASSERT_TRUE(member.ok()) << member.error().message;
  EXPECT_NE(member->address, plugged->address);
  std::string web = state_dir_ + "/member-web";
  std::filesystem::create_directories(web);
  std::ofstream(web + "/member.txt") << "member answers\n";
  ProcessId server = serveIn(member_ns, member->address, 8081, web);

  auto from_amphora =
      runCommand({"ip", "netns", "exec", amp.compute_id, "curl", "-sS", "--max-time", "3",
                  "http://" + member->address + ":8081/member.txt"});
  ASSERT_TRUE(from_amphora.ok());
  EXPECT_EQ(from_amphora->exit_code, 0) << from_amphora->err;
  EXPECT_EQ(from_amphora->out, "member answers\n");

  ASSERT_TRUE(network_->unplugNetwork(amp.compute_id, kMemberNet).ok());
  auto after = runCommand({"ip", "netns", "exec", amp.compute_id, "curl", "-sS", "--max-time", "1",
                           "http://" + member->address + ":8081/member.txt"});
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->exit_code, 0) << "still reachable after unplug";
  EXPECT_TRUE(network_->pluggedInterfaces(amp.compute_id)->empty());
  stopProcess(server, 500ms);
}

// ifname -> its addresses (not link-local), as `ip -j addr` shows them inside namespace NS.
std::map<std::string, std::set<std::string>> namespaceAddresses(const std::string& ns) {
  std::map<std::string, std::set<std::string>> out;
  rapidjson::Document doc;
  std::string text = run({"ip", "-n", ns, "-j", "addr"});
  doc.Parse(text.c_str());
  if (!doc.IsArray()) return out;
  for (const auto& l : doc.GetArray()) {
    auto& addrs = out[l["ifname"].GetString()];
    if (!l.HasMember("addr_info")) continue;
    for (const auto& a : l["addr_info"].GetArray()) {
      // IPv6 link-local addresses come with every interface; the driver's are global.
      if (a.HasMember("scope") && std::string(a["scope"].GetString()) == "link") continue;
      addrs.insert(a["local"].GetString());
    }
  }
  return out;
}

// Names of the links enslaved to BRIDGE in the (test's) host namespace.
std::set<std::string> bridgePorts(const std::string& bridge) {
  std::set<std::string> out;
  rapidjson::Document doc;
  std::string text = run({"ip", "-j", "link", "show", "master", bridge});
  doc.Parse(text.c_str());
  if (doc.IsArray()) {
    for (const auto& l : doc.GetArray()) out.insert(l["ifname"].GetString());
  }
  return out;
}

// What the controller does when the last member of a subnet goes (Octavia's
// HandleNetworkDeltas -> unplug_network): the amphora loses that interface and its
// address, its veth leaves the bridge, and its other networks are untouched.
TEST_F(NetnsDrivers, UnpluggingOneMemberNetworkRemovesOnlyThatInterfaceAndFreesItsAddress) {
  const std::string second_net = "0f0f0f0f-0000-4000-8000-203000113192";
  const std::string second_bridge = testPrefix() + "-m2";
  options_.member_networks.push_back(second_net + ":" + second_bridge + ":203.0.113.192/27");
  makeDrivers();
  Instance amp = buildActive("amp-unplug");
  ASSERT_FALSE(amp.compute_id.empty());
  auto vip = network_->allocateVip("lb-unplug", kVipNet, "");
  ASSERT_TRUE(vip.ok()) << vip.error().message;
  auto on_vip = network_->plugVip(amp.compute_id, *vip);
  ASSERT_TRUE(on_vip.ok()) << on_vip.error().message;
  auto first = network_->plugNetwork(amp.compute_id, kMemberNet);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = network_->plugNetwork(amp.compute_id, second_net);
  ASSERT_TRUE(second.ok()) << second.error().message;
  auto before = namespaceAddresses(amp.compute_id);
  ASSERT_EQ(before[second->interface], std::set<std::string>{second->address});
  ASSERT_EQ(bridgePorts(second_bridge).size(), 1u);

  ASSERT_TRUE(network_->unplugNetwork(amp.compute_id, second_net).ok());
  auto after = namespaceAddresses(amp.compute_id);
  EXPECT_EQ(after.count(second->interface), 0u) << run({"ip", "-n", amp.compute_id, "addr"});
  for (const auto& [ifname, addrs] : after) EXPECT_EQ(addrs.count(second->address), 0u) << ifname;
  EXPECT_TRUE(bridgePorts(second_bridge).empty());
  // The VIP and the other member network stay as they were.
  EXPECT_EQ(after[on_vip->interface], before[on_vip->interface]);
  EXPECT_EQ(after[first->interface], std::set<std::string>{first->address});
  auto left = network_->pluggedInterfaces(amp.compute_id);
  ASSERT_TRUE(left.ok());
  std::set<std::string> subnets;
  for (const auto& i : *left) subnets.insert(i.subnet_id);
  EXPECT_EQ(subnets, (std::set<std::string>{kVipNet, kMemberNet}));
  auto ports = network_->listPorts();
  ASSERT_TRUE(ports.ok());
  for (const auto& p : *ports) EXPECT_NE(p.address, second->address);
  // Unplugging what is gone succeeds; plugging again gives the network back.
  EXPECT_TRUE(network_->unplugNetwork(amp.compute_id, second_net).ok());
  auto again = network_->plugNetwork(amp.compute_id, second_net);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(namespaceAddresses(amp.compute_id)[again->interface], std::set<std::string>{again->address});
  EXPECT_EQ(bridgePorts(second_bridge).size(), 1u);
}

TEST_F(NetnsDrivers, StateSurvivesADriverRestartAndCleanupAllLeavesNothing) {
  makeDrivers();
  Instance amp = buildActive("amp-restart");
  ASSERT_FALSE(amp.compute_id.empty());
  auto vip = network_->allocateVip("lb-restart", kVipNet, "");
  ASSERT_TRUE(vip.ok());
  auto plug = network_->plugVip(amp.compute_id, *vip);
  ASSERT_TRUE(plug.ok()) << plug.error().message;
  auto member = network_->plugNetwork(amp.compute_id, kMemberNet);
  ASSERT_TRUE(member.ok()) << member.error().message;
  int pid = recordedPid(state_dir_, amp.compute_id);
  ASSERT_GT(pid, 0);

  // A new provider process: new driver objects on the same state dir.
  compute_.reset();
  network_.reset();
  makeDrivers();
  auto seen = compute_->get(amp.compute_id);
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  EXPECT_EQ(seen->status, ComputeStatus::kActive);
  EXPECT_EQ(seen->lb_network_ip, amp.lb_network_ip);
  EXPECT_EQ(network_->listPorts()->size(), 3u);
  EXPECT_EQ(network_->pluggedInterfaces(amp.compute_id)->size(), 2u);
  auto next_vip = network_->allocateVip("lb-2", kVipNet, "");
  ASSERT_TRUE(next_vip.ok());
  EXPECT_NE(next_vip->address, vip->address);
  EXPECT_NE(next_vip->address, plug->address);
  auto second = compute_->build({"amp-2", "lb-2", "", {}, {}});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_NE(second->lb_network_ip, amp.lb_network_ip);

  ASSERT_TRUE(network_->unplugAll(amp.compute_id).ok());
  ASSERT_TRUE(compute_->remove(amp.compute_id).ok());
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(netnsListed(amp.compute_id));

  // cleanupAll: the second amphora, its VIP, the bridges: everything goes.
  ASSERT_TRUE(network_->plugVip(second->compute_id, *next_vip).ok());
  ASSERT_TRUE(network_->cleanupAll().ok());
  ASSERT_TRUE(compute_->cleanupAll().ok());
  EXPECT_TRUE(namespacesWithPrefix(testPrefix()).empty());
  EXPECT_EQ(hostLinks(), std::set<std::string>{"lo"});
  EXPECT_TRUE(compute_->list()->empty());
  EXPECT_TRUE(network_->listPorts()->empty());
  EXPECT_TRUE(std::filesystem::is_empty(state_dir_ + "/amphorae"));
}

// A binary from the environment, else the build tree's; "" when neither exists.
std::string binaryPath(const char* env, const char* built) {
  if (const char* path = std::getenv(env); path != nullptr && *path != '\0') return path;
  return std::filesystem::exists(built) ? built : "";
}

#ifndef BANYAN_AGENT_PATH
#define BANYAN_AGENT_PATH ""
#define BANYAN_PROXY_PATH ""
#endif

TEST_F(NetnsDrivers, TheRealAgentBootsInAnAmphoraAndAnswersTheControllerOverMutualTls) {
  std::string agent = binaryPath("BANYAN_AGENT_BINARY", BANYAN_AGENT_PATH);
  std::string proxy = binaryPath("BANYAN_PROXY_BINARY", BANYAN_PROXY_PATH);
  if (agent.empty() || proxy.empty()) {
    GTEST_SKIP()
        << "build banyan-agent and banyan-proxy (cmake --build <dir> --target banyan-agent "
           "banyan-proxy) or set BANYAN_AGENT_BINARY and BANYAN_PROXY_BINARY";
  }
  // The controller's PKI, made here with openssl: a CA that signs the amphora's server
  // certificate (CN = amphora id) and the controller's client certificate.
  std::string pki = state_dir_ + "/pki";
  std::filesystem::create_directories(pki);
  auto openssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    auto r = runCommand(args);
    ASSERT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.error().message);
  };
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", pki + "/ca.key", "-out",
           pki + "/ca.pem", "-subj", "/CN=banyan-test-ca", "-days", "1"});
  for (const char* who : {"amp-e2e", "controller"}) {
    std::string base = pki + "/" + who;
    openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", base + ".key", "-out",
             base + ".csr", "-subj", std::string("/CN=") + who});
    openssl({"x509", "-req", "-in", base + ".csr", "-CA", pki + "/ca.pem", "-CAkey",
             pki + "/ca.key", "-CAcreateserial", "-out", base + ".pem", "-days", "1"});
  }
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };

  options_.agent_binary = agent;
  options_.agent_args = {"--config-file", "{config}"};
  options_.proxy_binary = proxy;
  options_.health_port = 9443;
  makeDrivers();
  std::string config =
      "[amphora_agent]\n"
      "bind_port = 9443\n"
      "agent_server_cert = {amphora_dir}/certs/server.pem\n"
      "agent_server_key = {amphora_dir}/certs/server.key\n"
      "agent_server_ca = {amphora_dir}/certs/client_ca.pem\n"
      "state_dir = {amphora_dir}/state\n"
      "proxy_binary = " +
      proxy +
      "\n"
      "proxy_control_socket = {amphora_dir}/proxy.sock\n"
      "amphora_id = amp-e2e\n"
      "system_driver = noop\n";
  auto built = compute_->build({"amp-e2e",
                                "lb-e2e",
                                config,
                                {{"certs/server.pem", slurp(pki + "/amp-e2e.pem"), 0600},
                                 {"certs/server.key", slurp(pki + "/amp-e2e.key"), 0600},
                                 {"certs/client_ca.pem", slurp(pki + "/ca.pem"), 0644}}, {}});
  ASSERT_TRUE(built.ok()) << built.error().message;
  std::string dir = compute_->amphoraDir(built->compute_id);
  ASSERT_TRUE(waitFor(
      [&] { return compute_->status(built->compute_id).value() == ComputeStatus::kActive; }, 20s))
      << "agent never answered; log: " << slurp(dir + "/agent.log");

  // The controller's view: mutual TLS to the management address, the CN as host name.
  std::string url = "https://amp-e2e:9443/1.0/info";
  std::string resolve = "amp-e2e:9443:" + built->lb_network_ip;
  auto info = runCommand({"curl", "-sS", "--max-time", "5", "--cacert", pki + "/ca.pem", "--cert",
                          pki + "/controller.pem", "--key", pki + "/controller.key", "--resolve",
                          resolve, url});
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->exit_code, 0) << info->err;
  EXPECT_NE(info->out.find("version"), std::string::npos) << info->out;
  auto anonymous = runCommand(
      {"curl", "-sS", "--max-time", "5", "--cacert", pki + "/ca.pem", "--resolve", resolve, url});
  ASSERT_TRUE(anonymous.ok());
  EXPECT_NE(anonymous->exit_code, 0) << "the agent answered a client without a certificate";

  // The agent started banyan-proxy inside the same namespace.
  auto proxyPids = [&] {
    std::vector<pid_t> out;
    for (pid_t pid : pidsInNamespace(built->compute_id)) {
      std::error_code ec;
      auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
      if (!ec && std::filesystem::equivalent(exe, proxy, ec)) out.push_back(pid);
    }
    return out;
  };
  EXPECT_TRUE(waitFor([&] { return !proxyPids().empty(); }, 10s)) << slurp(dir + "/agent.log");
  std::vector<pid_t> all = pidsInNamespace(built->compute_id);

  ASSERT_TRUE(compute_->remove(built->compute_id).ok());
  for (pid_t pid : all)
    EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid))) << pid;
  EXPECT_FALSE(netnsListed(built->compute_id));
}

TEST_F(NetnsDrivers, TenAmphoraeBuiltFromFourThreadsGetDistinctReachableAddresses) {
  options_.agent_binary = "/bin/sleep";
  options_.agent_args = {"600"};
  options_.health_port = 0;
  makeDrivers();
  // One build alone first: it also creates the management bridge, which the timed
  // builds below then share.
  auto first = compute_->build({"amp-first", "lb-conc", "", {}, {}});
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto single_start = std::chrono::steady_clock::now();
  auto single = compute_->build({"amp-single", "lb-conc", "", {}, {}});
  ASSERT_TRUE(single.ok()) << single.error().message;
  std::printf(
      "[ info ] one amphora built alone in %.1f ms\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - single_start)
          .count());
  ASSERT_TRUE(compute_->remove(first->compute_id).ok());
  ASSERT_TRUE(compute_->remove(single->compute_id).ok());
  constexpr int kAmphorae = 10;
  constexpr int kThreads = 4;
  std::mutex mu;
  std::vector<Instance> built;
  std::vector<double> millis;
  std::vector<std::string> errors;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kAmphorae; i = next++) {
        auto start = std::chrono::steady_clock::now();
        auto amp = compute_->build({"amp-" + std::to_string(i), "lb-conc", "", {}, {}});
        double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        std::lock_guard<std::mutex> lock(mu);
        if (amp) {
          built.push_back(*amp);
          millis.push_back(ms);
        } else {
          errors.push_back(amp.error().message);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(errors.empty()) << errors[0];
  ASSERT_EQ(built.size(), static_cast<size_t>(kAmphorae));
  std::set<std::string> ids, addresses;
  double total = 0, worst = 0;
  for (size_t i = 0; i < built.size(); ++i) {
    ids.insert(built[i].compute_id);
    addresses.insert(built[i].lb_network_ip);
    total += millis[i];
    worst = std::max(worst, millis[i]);
    EXPECT_TRUE(ping(built[i].lb_network_ip)) << built[i].lb_network_ip;
    EXPECT_EQ(compute_->status(built[i].compute_id).value(), ComputeStatus::kActive);
  }
  EXPECT_EQ(ids.size(), built.size());
  EXPECT_EQ(addresses.size(), built.size());
  std::printf("[ info ] %d amphorae from %d threads: mean %.1f ms, worst %.1f ms per build\n",
              kAmphorae, kThreads, total / kAmphorae, worst);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(compute_->cleanupAll().ok());
  std::printf(
      "[ info ] cleanupAll of %d amphorae took %.1f ms\n", kAmphorae,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  EXPECT_TRUE(namespacesWithPrefix(testPrefix()).empty());
}


// Zombie children of `parent` (state Z in /proc/<pid>/stat).
int zombieChildren(pid_t parent) {
  int zombies = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string text;
    if (!std::getline(in, text) || text.rfind(')') == std::string::npos) continue;
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string state, ppid;
    fields >> state >> ppid;
    if (state == "Z" && ppid == std::to_string(parent)) ++zombies;
  }
  return zombies;
}

// Two provider processes on one host (two `worker`s, or a worker and `housekeeping`)
// share the netns state dir. Builds from both at once get distinct namespaces and
// management addresses, each sees the other's amphorae, and when one removes the
// amphorae the other built, the builder still reaps their agents: it is their parent,
// and without that a long-running worker collects a zombie per amphora.
TEST_F(NetnsDrivers, TwoProcessesSharingTheStateDirBuildApartAndTheBuilderReapsAgentsTheOtherRemoved) {
  options_.agent_binary = "/bin/sleep";
  options_.agent_args = {"600"};
  options_.health_port = 0;
  makeDrivers();
  ASSERT_TRUE(compute_->ensureManagementBridge().ok());
  constexpr int kEach = 4;
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The other process: its own driver on the same state dir, as a second worker has.
    close(to_child[1]);
    close(from_child[0]);
    std::string out;
    auto other = NetnsComputeDriver::create(options_);
    for (int i = 0; other && i < kEach; ++i) {
      auto amp = (*other)->build({"amp-child-" + std::to_string(i), "lb-two", "", {}, {}});
      out += amp ? amp->compute_id + " " : "ERROR:" + amp.error().message + " ";
    }
    out += "\n";
    (void)!write(from_child[1], out.data(), out.size());
    char go = 0;
    (void)!read(to_child[0], &go, 1);  // the parent removed our amphorae
    int before = zombieChildren(getpid());
    if (other) (void)(*other)->list();
    int after = zombieChildren(getpid());
    std::string counts = std::to_string(before) + " " + std::to_string(after) + "\n";
    (void)!write(from_child[1], counts.data(), counts.size());
    _exit(0);
  }
  close(to_child[0]);
  close(from_child[1]);
  std::vector<std::string> mine;
  for (int i = 0; i < kEach; ++i) {
    auto amp = compute_->build({"amp-parent-" + std::to_string(i), "lb-two", "", {}, {}});
    ASSERT_TRUE(amp.ok()) << amp.error().message;
    mine.push_back(amp->compute_id);
  }
  auto readLine = [&] {
    std::string line;
    char c;
    while (read(from_child[0], &c, 1) == 1 && c != '\n') line += c;
    return line;
  };
  std::vector<std::string> theirs;
  {
    std::istringstream in(readLine());
    for (std::string id; in >> id;) theirs.push_back(id);
  }
  ASSERT_EQ(theirs.size(), static_cast<size_t>(kEach));
  for (const auto& id : theirs) ASSERT_EQ(id.rfind("ERROR:", 0), std::string::npos) << id;

  auto listed = compute_->list();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), static_cast<size_t>(2 * kEach));
  std::set<std::string> ids, addresses;
  for (const auto& i : *listed) {
    ids.insert(i.compute_id);
    addresses.insert(i.lb_network_ip);
    EXPECT_EQ(i.status, ComputeStatus::kActive) << i.compute_id << " of " << i.amphora_id;
    EXPECT_TRUE(ping(i.lb_network_ip)) << i.lb_network_ip;
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(2 * kEach));
  EXPECT_EQ(addresses.size(), static_cast<size_t>(2 * kEach));

  // This process removes the other's amphorae (a failover run by the other worker).
  for (const auto& id : theirs) EXPECT_TRUE(compute_->remove(id).ok()) << id;
  (void)!write(to_child[1], "g", 1);
  std::istringstream counts(readLine());
  int before = -1, after = -1;
  counts >> before >> after;
  int status = 0;
  waitpid(child, &status, 0);
  close(to_child[1]);
  close(from_child[0]);
  EXPECT_EQ(before, kEach) << "the removed agents were the builder's zombie children";
  EXPECT_EQ(after, 0) << "the builder's next driver call reaped them";
  auto left = compute_->list();
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->size(), static_cast<size_t>(kEach));
}


// A worker killed between recording a port and making its veth leaves a record without
// an interface; the worker that runs the job again plugs the same port and must get
// the interface made, with the recorded MAC (the agent looks the NIC up by it).
TEST_F(NetnsDrivers, APortRecordedButNeverMadeIsMadeWhenPluggedAgain) {
  options_.agent_binary = "/bin/sleep";
  options_.agent_args = {"600"};
  options_.health_port = 0;
  makeDrivers();
  auto amp = compute_->build({"amp-resume", "lb-resume", "", {}, {}});
  ASSERT_TRUE(amp.ok()) << amp.error().message;
  auto vip = network_->allocateVip("lb-resume", kVipNet, "");
  ASSERT_TRUE(vip.ok());
  auto first = network_->plugVip(amp->compute_id, *vip);
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::string veth = testPrefix().substr(0, 4) + amp->compute_id.substr(amp->compute_id.size() - 8) + "e1";
  // What the killed process left: the record, no veth (deleting the host end takes the
  // amphora's end with it).
  ASSERT_TRUE(deleteLink(veth).ok());
  ASSERT_FALSE(linkInHost(veth));
  auto again = network_->plugVip(amp->compute_id, *vip);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->port_id, first->port_id);
  EXPECT_EQ(again->address, first->address);
  EXPECT_TRUE(linkInHost(veth));
  EXPECT_NE(run({"ip", "-n", amp->compute_id, "link", "show", "eth1"}).find(first->mac_address),
            std::string::npos);
  EXPECT_TRUE(ping(first->address));
  EXPECT_EQ(network_->listPorts()->size(), 2u) << "the VIP and one base port, not a second one";
}

}  // namespace
}  // namespace banyan::provider::drivers
