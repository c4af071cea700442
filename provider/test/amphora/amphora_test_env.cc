#include "amphora_test_env.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace banyan::provider::amphora::testing {

void writeFile(const std::string& path, const std::string& content, int mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool BackgroundProcess::start(const std::vector<std::string>& argv_in, const std::string& output_file) {
  output_file_ = output_file;
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    int fd = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(devnull, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return true;
}

std::string BackgroundProcess::waitForOutput(const std::string& needle, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::istringstream lines(readFile(output_file_));
    for (std::string line; std::getline(lines, line);) {
      if (line.find(needle) != std::string::npos) return line;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

void BackgroundProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = 0;
}

bool AgentProcess::start(const std::string& dir, const std::string& amphora_id, const AgentFiles& files,
                         const std::string& bind_host, const std::string& netns) {
  dir_ = dir;
  std::string state = dir + "/state";
  ::mkdir(state.c_str(), 0700);
  return process_.start(
      dir,
      "[DEFAULT]\nlog_level = debug\n[amphora_agent]\nbind_host = " + bind_host + "\nbind_port = 0\n" +
          "agent_server_cert = " + files.server_cert + "\nagent_server_key = " + files.server_key + "\n" +
          "agent_server_ca = " + files.client_ca + "\nstate_dir = " + state + "\n" +
          "proxy_binary = " + agent::testing::proxyBinary() + "\nproxy_control_socket = " + dir +
          "/proxy.sock\n" + "amphora_id = " + amphora_id + "\n" +
          // Never the kernel driver here: plug requests would reconfigure this host.
          "system_driver = noop\n",
      state, netns);
}

std::string AgentProcess::log() const { return readFile(dir_ + "/agent.log"); }

}  // namespace banyan::provider::amphora::testing
