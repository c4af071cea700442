// banyan-proxy: reads the config, builds the proxy, starts the loops, and
// turns signals into actions (SIGHUP reload, SIGTERM/SIGINT drain and exit).
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "banyan/common/logging.h"
#include "config/parse.h"
#include "control/control_server.h"
#include "proxy/proxy.h"
#include "tls/context.h"

namespace {

const char kUsage[] =
    "usage: banyan-proxy --config FILE [--control SOCKET] [--log-level LEVEL] [--no-io-batching]\n"
    "       banyan-proxy --check --config FILE\n"
    "       banyan-proxy --version | --help\n"
    "\n"
    "Runs in the foreground. SIGHUP re-reads FILE and applies it without closing\n"
    "listening sockets (an invalid file is refused and the running config stays);\n"
    "SIGTERM or SIGINT stops accepting, lets in-flight work finish, and exits.\n"
    "\n"
    "  --config FILE      the JSON config document (docs/proxy-config.md)\n"
    "  --control SOCKET   Unix socket for the control API (GET /stats, /health,\n"
    "                     /config, /version; PUT /config)\n"
    "  --check            validate FILE, print the first error, exit 0 or 1\n"
    "  --log-level LEVEL  debug, info (default), warning, error\n"
    "  --no-io-batching   one system call per socket read or write instead of one\n"
    "                     io_uring submission per loop iteration (the default when\n"
    "                     the kernel allows io_uring)\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace banyan;
  std::string config_path, control_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        fprintf(stderr, "banyan-proxy: %s needs a value\n%s", name, kUsage);
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--config") {
      config_path = value("--config");
    } else if (a == "--control") {
      control_path = value("--control");
    } else if (a == "--check") {
      check = true;
    } else if (a == "--no-io-batching") {
      dp::event::EventLoop::setIoBatchingDefault(false);
    } else if (a == "--log-level") {
      common::LogLevel level;
      std::string v = value("--log-level");
      if (!common::parseLogLevel(v, level)) {
        fprintf(stderr, "banyan-proxy: unknown log level %s\n", v.c_str());
        return 2;
      }
      common::setLogLevel(level);
    } else if (a == "--version") {
      printf("banyan-proxy %s\n", BANYAN_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      fputs(kUsage, stdout);
      return 0;
    } else {
      fprintf(stderr, "banyan-proxy: unknown argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    fprintf(stderr, "banyan-proxy: --config is required\n%s", kUsage);
    return 2;
  }

  auto loaded = dp::config::loadConfigFile(config_path);
  if (!loaded.ok()) {
    const auto& e = loaded.error();
    fprintf(stderr, "%s: %s: %s\n", config_path.c_str(),
            e.context.empty() ? "/" : e.context.c_str(), e.message.c_str());
    return 1;
  }
  if (check) {
    // Certificates too: a bundle that would be refused at apply fails the check.
    auto tls_ok = dp::tls::checkConfigTls(*loaded);
    if (!tls_ok.ok()) {
      const auto& e = tls_ok.error();
      fprintf(stderr, "%s: %s: %s\n", config_path.c_str(), e.context.c_str(), e.message.c_str());
      return 1;
    }
    printf("%s: valid\n", config_path.c_str());
    return 0;
  }

  // Signals are taken synchronously by this thread; every other thread
  // inherits the blocked mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Every client connection and every member connection is a descriptor: take
  // all the kernel allows this process (the soft limit is often 1024).
  rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
      LB_WARN("Cannot raise the open-file limit. error=%s", strerror(errno));
  }

  size_t workers = loaded->settings.workers;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  dp::proxy::Proxy proxy(workers);
  auto applied = proxy.applyFile(config_path);
  if (!applied.ok()) {
    const auto& e = applied.error();
    fprintf(stderr, "%s: %s: %s\n", config_path.c_str(),
            e.context.empty() ? "/" : e.context.c_str(), e.message.c_str());
    return 1;
  }
  proxy.start();
  dp::control::ControlServer control(proxy, BANYAN_VERSION);
  if (!control_path.empty()) {
    auto started = control.start(control_path);
    if (!started.ok()) {
      fprintf(stderr, "banyan-proxy: control socket %s: %s\n", control_path.c_str(),
              started.error().message.c_str());
      return 1;
    }
  }
  LB_INFO("banyan-proxy started. version=%s workers=%zu config=%s", BANYAN_VERSION, workers,
          config_path.c_str());

  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      auto r = proxy.applyFile(config_path);
      if (!r.ok())
        LB_ERROR("Reload refused; the running config stays. file=%s path=%s reason=%s",
                 config_path.c_str(), r.error().context.c_str(), r.error().message.c_str());
      continue;
    }
    LB_INFO("Stopping. signal=%s", strsignal(sig));
    control.stop();
    proxy.drainAndStop();
    return 0;
  }
}
