// banyan-agent: reads the config, builds the agent's parts, serves the mutual-TLS API
// until SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "api/agent_api.h"
#include "api/system_ops.h"
#include "app/agent_options.h"
#include "apply/config_apply.h"
#include "banyan/common/http_server.h"
#include "banyan/common/logging.h"
#include "banyan/common/options.h"
#include "certs/certs.h"
#include "heartbeat/heartbeat_sender.h"
#include "proxy_control/proxy_control.h"
#include "storage/storage.h"
#include "supervisor/supervisor.h"
#include "system_link/kernel_system_ops.h"

namespace {

const char kUsage[] =
    "usage: banyan-agent --config-file FILE\n"
    "       banyan-agent --generate-sample-config\n"
    "       banyan-agent --check-proxy SOCKET   (exit 0 when banyan-proxy answers there;\n"
    "                                            keepalived's VRRP track script)\n"
    "       banyan-agent --version | --help\n"
    "\n"
    "The amphora agent: the controller's mutual-TLS REST API, proxy config apply,\n"
    "banyan-proxy supervision and signed heartbeats (docs/agent-api.md).\n";

std::string selfPath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("/usr/bin/banyan-agent");
}

std::string dirOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace banyan;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config-file" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a == "--generate-sample-config") {
      common::OptionSet options;
      agent::app::declareAgentOptions(options);
      fputs(options.sampleConfig().c_str(), stdout);
      return 0;
    } else if (a == "--check-proxy" && i + 1 < argc) {
      return agent::proxy_control::ProxyControl(argv[i + 1], 2000).alive() ? 0 : 1;
    } else if (a == "--version") {
      printf("banyan-agent %s\n", BANYAN_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      fputs(kUsage, stdout);
      return 0;
    } else {
      fprintf(stderr, "banyan-agent: unknown or incomplete argument %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_file.empty()) {
    fprintf(stderr, "banyan-agent: --config-file is required\n%s", kUsage);
    return 2;
  }

  common::OptionSet options;
  agent::app::declareAgentOptions(options);
  if (auto r = options.loadFile(config_file); !r) {
    fprintf(stderr, "banyan-agent: %s: %s\n", r.error().context.c_str(), r.error().message.c_str());
    return 1;
  }
  for (const auto& w : options.warnings()) LB_WARN("%s", w.c_str());
  auto settings_r = agent::app::readAgentSettings(options);
  if (!settings_r) {
    fprintf(stderr, "banyan-agent: %s: %s: %s\n", config_file.c_str(), settings_r.error().context.c_str(),
            settings_r.error().message.c_str());
    return 1;
  }
  auto settings = std::move(settings_r.value());
  common::LogLevel level;
  if (common::parseLogLevel(settings.log_level, level)) common::setLogLevel(level);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  for (const auto& dir : {settings.state_dir, settings.state_dir + "/certs", settings.state_dir + "/vrrp",
                          dirOf(settings.proxy_control_socket)}) {
    if (auto r = agent::storage::makeDirs(dir, 0700); !r) {
      fprintf(stderr, "banyan-agent: %s: %s\n", r.error().context.c_str(), r.error().message.c_str());
      return 1;
    }
  }

  agent::proxy_control::ProxyControl control(settings.proxy_control_socket);
  agent::apply::ConfigApplier applier(settings.state_dir + "/proxy.json", settings.proxy_binary, control);
  if (auto r = applier.ensureStored(); !r) {
    fprintf(stderr, "banyan-agent: %s: %s\n", r.error().context.c_str(), r.error().message.c_str());
    return 1;
  }
  agent::supervisor::ProxySupervisor supervisor(
      agent::supervisor::SupervisorOptions{.proxy_binary = settings.proxy_binary,
                                           .config_path = applier.configPath(),
                                           .control_socket = settings.proxy_control_socket,
                                           .pid_file = settings.state_dir + "/proxy.pid",
                                           .log_level = settings.log_level},
      control);
  if (auto r = supervisor.start(); !r) {
    LB_ERROR("banyan-proxy is not running yet; retrying in the background. error=%s", r.error().message.c_str());
  }

  // Heartbeat settings pushed with PUT /1.0/agent-config win over the INI file.
  auto hb_settings = settings.heartbeat;
  const std::string agent_config_path = settings.state_dir + "/agent-config.json";
  if (auto stored = agent::storage::readFile(agent_config_path)) {
    auto merged = agent::api::mergeAgentConfig(hb_settings, stored.value());
    if (merged) {
      hb_settings = std::move(merged.value());
    } else {
      LB_ERROR("Ignoring the stored agent config. path=%s error=%s", agent_config_path.c_str(),
               merged.error().message.c_str());
    }
  }
  agent::heartbeat::HeartbeatSender heartbeat(settings.amphora_id, control, [&] { return supervisor.epoch(); },
                                              hb_settings);
  heartbeat.start();

  agent::certs::CertStore certs(settings.state_dir + "/certs");
  std::unique_ptr<agent::api::SystemOps> system;
  if (settings.system_driver == "noop") {
    system = std::make_unique<agent::api::NoopSystemOps>();
  } else {
    // keepalived moves the VIP away when this amphora's proxy stops answering.
    system = std::make_unique<agent::system_link::KernelSystemOps>(agent::system_link::KernelSystemOptions{
        .runtime_dir = settings.state_dir + "/vrrp",
        .keepalived_binary = settings.keepalived_binary,
        .check_command = selfPath() + " --check-proxy " + settings.proxy_control_socket});
  }
  agent::api::AgentApi api(
      agent::api::ApiOptions{.amphora_id = settings.amphora_id,
                             .state_dir = settings.state_dir,
                             .agent_server_cert = settings.agent_server_cert,
                             .agent_server_key = settings.agent_server_key,
                             .agent_version = BANYAN_VERSION,
                             .agent_port = settings.bind_port,
                             .management_cidrs = settings.management_cidrs},
      agent::api::ApiDeps{applier, certs, control, heartbeat, *system});
  if (settings.management_cidrs.empty()) {
    LB_WARN("[amphora_agent] management_cidrs is empty: the firewall leaves the agent port and VRRP open to "
            "every source. amp=%s",
            settings.amphora_id.c_str());
  }
  // The firewall goes up before the API listens when the port is known; with
  // bind_port = 0 only once the server has one.
  if (settings.bind_port != 0) {
    if (auto r = api.restoreFirewall(settings.bind_port); !r) {
      LB_ERROR("Firewall not restored at start. amp=%s error=%s", settings.amphora_id.c_str(),
               r.error().message.c_str());
    }
  }

  common::HttpServerOptions server_options;
  server_options.address = settings.bind_host;
  server_options.port = settings.bind_port;
  server_options.max_body_bytes = settings.max_body_bytes;
  server_options.tls = common::HttpServerTls{settings.agent_server_cert, settings.agent_server_key,
                                             settings.agent_server_ca};
  auto server = common::startHttpServer(server_options, [&api](const common::HttpRequest& req) {
    return api.handle(req);
  });
  if (!server) {
    fprintf(stderr, "banyan-agent: cannot serve the API: %s (%s)\n", server.error().message.c_str(),
            server.error().context.c_str());
    heartbeat.stop();
    supervisor.stop(true);
    return 1;
  }
  auto* server_ptr = server.value().get();
  api.setTlsReloader([server_ptr] { return server_ptr->reloadTls(); });
  if (settings.bind_port == 0) {
    if (auto r = api.restoreFirewall(server_ptr->port()); !r) {
      LB_ERROR("Firewall not restored at start. amp=%s error=%s", settings.amphora_id.c_str(),
               r.error().message.c_str());
    }
  }
  if (auto r = agent::storage::writeFileAtomic(settings.state_dir + "/api.port",
                                               std::to_string(server_ptr->port()) + "\n", 0644);
      !r) {
    LB_WARN("Cannot write the API port file. error=%s", r.error().message.c_str());
  }
  LB_INFO("banyan-agent started. amp=%s version=%s port=%u", settings.amphora_id.c_str(), BANYAN_VERSION,
          static_cast<unsigned>(server_ptr->port()));

  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  LB_INFO("Stopping. signal=%s", strsignal(sig));
  server_ptr->stop();
  heartbeat.stop();
  supervisor.stop(true);
  return 0;
}
