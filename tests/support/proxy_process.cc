#include "proxy_process.h"
#include "test_udp_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef BANYAN_PROXY_BIN
#error "BANYAN_PROXY_BIN must name the banyan-proxy binary"
#endif

namespace banyan::test {

std::string proxyBinary() { return BANYAN_PROXY_BIN; }

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/banyan-it-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void writeFile(const std::string& path, const std::string& contents) {
  // Write then rename, so a SIGHUP never sees half a file.
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << contents;
  }
  std::filesystem::rename(tmp, path);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

rapidjson::Document ControlResponse::json() const {
  rapidjson::Document doc;
  doc.Parse(body.c_str(), body.size());
  if (doc.HasParseError())
    throw std::runtime_error("control API answered non-JSON (status " + std::to_string(status) +
                             "): " + body);
  return doc;
}

namespace {

Fd connectUnix(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    throw std::runtime_error("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return Fd();
  return fd;
}

}  // namespace

bool ControlClient::reachable() const { return connectUnix(socket_path_).valid(); }

ControlResponse ControlClient::request(const std::string& method, const std::string& path,
                                       const std::string& body) const {
  Fd fd = connectUnix(socket_path_);
  if (!fd.valid())
    throw std::runtime_error("cannot connect to control socket " + socket_path_ + ": " +
                             std::strerror(errno));
  setTimeouts(fd.get(), timeout_ms_);
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: banyan\r\nConnection: close\r\n";
  if (!body.empty() || method == "PUT" || method == "POST") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  sendAll(fd.get(), req);
  ResponseReader reader;
  HttpResponse resp = reader.read(fd.get(), timeout_ms_);
  return ControlResponse{resp.status, resp.body};
}

namespace {
// Enabled listener ports of the document, of UDP listeners (udp) or the others.
std::vector<uint16_t> portsOf(const std::string& config_json, bool udp) {
  rapidjson::Document doc;
  doc.Parse(config_json.c_str(), config_json.size());
  std::vector<uint16_t> ports;
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("listeners") ||
      !doc["listeners"].IsArray())
    return ports;
  for (const auto& l : doc["listeners"].GetArray()) {
    if (!l.IsObject() || !l.HasMember("protocol_port") || !l["protocol_port"].IsInt()) continue;
    if (l.HasMember("admin_state_up") && l["admin_state_up"].IsBool() &&
        !l["admin_state_up"].GetBool())
      continue;
    bool is_udp = l.HasMember("protocol") && l["protocol"].IsString() &&
                  std::string(l["protocol"].GetString()) == "UDP";
    if (is_udp != udp) continue;
    ports.push_back(static_cast<uint16_t>(l["protocol_port"].GetInt()));
  }
  return ports;
}
}  // namespace

std::vector<uint16_t> listenerPorts(const std::string& config_json) {
  return portsOf(config_json, false);
}

std::vector<uint16_t> udpListenerPorts(const std::string& config_json) {
  return portsOf(config_json, true);
}

bool waitUdpBound(const std::vector<uint16_t>& ports, int timeout_ms) {
  return waitUntil(
      [&] {
        for (uint16_t p : ports)
          if (!isUdpPortBound(p)) return false;
        return true;
      },
      Millis(timeout_ms));
}

bool waitListening(const std::vector<uint16_t>& ports, int timeout_ms) {
  return waitUntil(
      [&] {
        for (uint16_t p : ports)
          if (!isPortListening(p)) return false;
        return true;
      },
      Millis(timeout_ms));
}

ProxyProcess::ProxyProcess(const std::string& config_json, ProxyRunOptions options)
    : config_path_(dir_.file("proxy.json")),
      control_path_(dir_.file("control.sock")),
      stderr_path_(dir_.file("stderr.log")),
      control_(control_path_) {
  writeFile(config_path_, config_json);
  std::vector<std::string> args = {proxyBinary(), "--config", config_path_, "--control",
                                   control_path_};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Opened before fork: only async-signal-safe calls may run in the child of
  // a multi-threaded process (the test members have threads).
  int err_fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int out_fd = ::open(dir_.file("stdout.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (err_fd < 0 || out_fd < 0 || null_fd < 0)
    throw std::runtime_error("cannot open proxy log files");
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ == 0) {
    // Never outlive the test binary, even if it crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(err_fd);
  ::close(out_fd);
  ::close(null_fd);
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (!options.wait_ready) return;
  try {
    waitReady(config_json, options.ready_timeout_ms);
  } catch (...) {
    stop();  // the destructor does not run for a throwing constructor
    throw;
  }
}

void ProxyProcess::waitReady(const std::string& config_json, int timeout_ms) {
  std::vector<uint16_t> ports = listenerPorts(config_json);
  std::vector<uint16_t> udp_ports = udpListenerPorts(config_json);
  bool ready = waitUntil(
      [&] {
        if (!running()) return true;
        return control_.reachable() && std::all_of(ports.begin(), ports.end(), isPortListening) &&
               std::all_of(udp_ports.begin(), udp_ports.end(), isUdpPortBound);
      },
      Millis(timeout_ms), Millis(5));
  if (!running()) {
    throw std::runtime_error("banyan-proxy exited during startup with status " +
                             std::to_string(exit_status_.value_or(-1)) + "; stderr:\n" +
                             stderrText());
  }
  if (!ready) {
    std::string missing;
    for (uint16_t p : ports)
      if (!isPortListening(p)) missing += " " + std::to_string(p);
    throw std::runtime_error("banyan-proxy not ready within " + std::to_string(timeout_ms) +
                             " ms (control reachable: " + (control_.reachable() ? "yes" : "no") +
                             ", ports not listening:" + missing + "); stderr:\n" + stderrText());
  }
}

ProxyProcess::~ProxyProcess() {
  // The spec: SIGTERM drains and exits 0. Checking it here catches crashes and
  // sanitizer reports at shutdown in every test.
  if (running()) {
    int status = stop();
    if (status != 0)
      ADD_FAILURE() << "banyan-proxy exited with status " << status << " after SIGTERM";
  }
  if (::testing::Test::HasFailure()) {
    std::cerr << "---- banyan-proxy stderr (pid " << pid_ << ", exit " << exit_status_.value_or(-1)
              << ") ----\n"
              << stderrText().substr(0, 20000) << "\n---- end of banyan-proxy stderr ----\n";
  }
}

ControlResponse ProxyProcess::applyConfig(const std::string& config_json,
                                          int ready_timeout_ms) const {
  ControlResponse resp = put("/config", config_json);
  if (resp.status == 200) {
    waitListening(listenerPorts(config_json), ready_timeout_ms);
    waitUdpBound(udpListenerPorts(config_json), ready_timeout_ms);
  }
  return resp;
}

void ProxyProcess::sendSignal(int signal) const {
  if (pid_ > 0 && !exit_status_) ::kill(pid_, signal);
}

static int decodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool ProxyProcess::running() {
  if (exit_status_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = decodeStatus(status);
    return false;
  }
  return true;
}

std::optional<int> ProxyProcess::waitExit(int timeout_ms) {
  waitUntil([&] { return !running(); }, Millis(timeout_ms), Millis(5));
  return exit_status_;
}

int ProxyProcess::stop(int timeout_ms) {
  if (!running()) return exit_status_.value_or(-1);
  ::kill(pid_, SIGTERM);
  if (auto status = waitExit(timeout_ms)) return *status;
  ::kill(pid_, SIGKILL);
  waitExit(5000);
  return exit_status_.value_or(-1);
}

CommandResult runProxyCommand(const std::vector<std::string>& args, int timeout_ms) {
  TempDir dir;
  std::vector<std::string> all = {proxyBinary()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out_fd = ::open(dir.file("out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int err_fd = ::open(dir.file("err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  CommandResult result;
  int status = 0;
  bool done = waitUntil([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, Millis(timeout_ms),
                        Millis(5));
  if (done) {
    result.exit_status = decodeStatus(status);
  } else {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  result.stdout_text = readFile(dir.file("out"));
  result.stderr_text = readFile(dir.file("err"));
  return result;
}

}  // namespace banyan::test
