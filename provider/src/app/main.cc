// banyan-provider [--config-file FILE] [--state-dir DIR] ROLE
// banyan-provider [--config-file FILE] store-certificate (--cert C --key K [...] | --pkcs12 F [...] | --ca F)
// banyan-provider --generate-sample-config
//
// Reads the configuration, builds the parts and runs the chosen role until SIGINT or
// SIGTERM (STYLE.md: main only reads config, builds objects and starts the loop).
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/api_service.h"
#include "app/cert_manager_setup.h"
#include "app/controller_runtime.h"
#include "app/provider_options.h"
#include "auth/noauth.h"
#include "auth/policy.h"
#include "certs/cert_manager.h"
#if __has_include("auth/keystone.h")
#include "auth/keystone.h"
#define BANYAN_HAVE_KEYSTONE 1
#endif
#include "banyan/common/http_server.h"
#include "banyan/common/logging.h"
#include "banyan/common/options.h"
#include "store/notifying_store.h"
#include "store/store.h"

namespace {

using namespace banyan;

constexpr int kExitUsage = 2;

void usage(FILE* out) {
  std::fprintf(out,
               "usage: banyan-provider [--config-file FILE]... [--state-dir DIR] ROLE\n"
               "       banyan-provider [--config-file FILE]... store-certificate\n"
               "           (--cert C.pem --key K.pem [--intermediates I.pem] [--passphrase-file F]\n"
               "            | --pkcs12 F.p12 [--passphrase-file F] | --ca CA_OR_CRL.pem)\n"
               "       banyan-provider --generate-sample-config\n"
               "roles: api, worker, health, housekeeping, all; netns-cleanup removes every\n"
               "netns amphora, veth and bridge of this host (the database is not touched)\n"
               "store-certificate adds a certificate (or a CA/CRL file) to local_cert_manager's\n"
               "storage_path and prints its reference. --passphrase-file names a file whose first\n"
               "line is the passphrase of the key or of the PKCS12 bundle: a passphrase given on\n"
               "the command line would be visible to every user of the host (ps, /proc/PID/cmdline)\n"
               "and kept in shell histories. The key is stored decrypted (mode 0600).\n");
}

bool makeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      partial = path.substr(0, i);
      if (mkdir(partial.c_str(), 0750) != 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

struct RunningApi {
  std::unique_ptr<provider::auth::Authenticator> authenticator;
  std::unique_ptr<provider::auth::Policy> policy;
  std::unique_ptr<provider::api::ApiService> service;
  std::unique_ptr<common::HttpServer> server;
};

// The API's handler threads: for reads, and for everything else ([api_settings]
// handler_threads and write_handler_threads; 0 is the default).
struct ApiThreads {
  size_t reads;
  size_t writes;
};
ApiThreads apiThreads(const common::OptionSet& options) {
  auto reads = static_cast<size_t>(options.getInt("api_settings", "handler_threads"));
  if (reads == 0) reads = std::max<size_t>(4, 2 * std::thread::hardware_concurrency());
  auto writes = static_cast<size_t>(options.getInt("api_settings", "write_handler_threads"));
  return {reads, writes == 0 ? reads : writes};
}

// Builds the API and starts its HTTP server; errors are logged. Returns an exit code
// on failure.
int startApi(const common::OptionSet& options, const ApiThreads& threads, provider::store::Store& store,
             std::shared_ptr<provider::certs::CertManager> cert_manager, RunningApi& out) {
  auto api_options = provider::app::apiOptionsFrom(options);
  if (!api_options.ok()) {
    LB_ERROR("bad configuration: %s: %s", api_options.error().context.c_str(), api_options.error().message.c_str());
    return 1;
  }
  api_options->cert_manager = std::move(cert_manager);
  bool noauth = api_options->noauth;
  if (noauth) {
    out.authenticator = provider::auth::makeNoauthAuthenticator();
  } else {
#ifdef BANYAN_HAVE_KEYSTONE
    auto made = provider::auth::makeKeystoneAuthenticator(provider::app::keystoneOptionsFrom(options));
    if (!made.ok()) {
      LB_ERROR("cannot set up Keystone authentication: %s", made.error().message.c_str());
      return 1;
    }
    out.authenticator = std::move(made.value());
#else
    LB_ERROR("auth_strategy = keystone is not available in this build");
    return kExitUsage;
#endif
  }
  provider::auth::PolicyOptions po;
  po.enforce_new_defaults = options.getBool("oslo_policy", "enforce_new_defaults");
  auto policy = provider::auth::makeOctaviaPolicy(options.getString("oslo_policy", "policy_file"), noauth, po);
  if (!policy.ok()) {
    LB_ERROR("cannot load the policy: %s", policy.error().message.c_str());
    return 1;
  }
  out.policy = std::move(policy.value());
  out.service = std::make_unique<provider::api::ApiService>(store, *out.authenticator, *out.policy,
                                                            std::move(api_options.value()));
  common::HttpServerOptions http;
  http.address = options.getString("api_settings", "bind_host");
  http.port = static_cast<uint16_t>(options.getInt("api_settings", "bind_port"));
  http.handler_threads = threads.reads;
  http.write_handler_threads = threads.writes;
  auto* service = out.service.get();
  auto server = common::startHttpServer(http, [service](const common::HttpRequest& r) { return service->handle(r); });
  if (!server.ok()) {
    LB_ERROR("cannot start the API server address=%s port=%u: %s", http.address.c_str(), http.port,
             server.error().message.c_str());
    return 1;
  }
  out.server = std::move(server.value());
  LB_INFO("Octavia v2 API listening address=%s port=%u auth=%s", http.address.c_str(), out.server->port(),
          noauth ? "noauth" : "keystone");
  return 0;
}

// Runs the chosen roles in this process until SIGINT or SIGTERM.
int runRoles(const common::OptionSet& options, bool api, const provider::app::ControllerRoles& roles) {
  std::string state_dir = options.getString("DEFAULT", "state_dir");
  if (!makeDirs(state_dir)) {
    LB_ERROR("cannot create the state directory dir=%s error=%s", state_dir.c_str(), std::strerror(errno));
    return 1;
  }
  // PostgreSQL, unless the URL says otherwise: a connection for every API handler
  // thread, so a read never waits for a connection that a write holds, and the
  // default's for the controller roles.
  const ApiThreads threads = apiThreads(options);
  const bool controller_roles = roles.worker || roles.health || roles.housekeeping;
  int pool_size = provider::store::kDefaultPoolSize;
  if (api)
    pool_size = static_cast<int>(threads.reads + threads.writes) + (controller_roles ? pool_size : 0);
  auto store = provider::store::openStore(provider::app::databaseUrl(options), pool_size);
  if (!store.ok()) {
    LB_ERROR("cannot open the database: %s", store.error().message.c_str());
    return 1;
  }
  // Block the stop signals before any thread starts so only sigwait() sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  // One for the API's checks and the worker's pushes.
  std::shared_ptr<provider::certs::CertManager> cert_manager;
  if (api || roles.worker) cert_manager = provider::app::certManagerOrNull(options);
  std::unique_ptr<provider::app::ControllerRuntime> controller;
  if (controller_roles) {
    auto started = provider::app::startControllerRoles(options, *store.value(), roles, cert_manager);
    if (!started.ok()) {
      LB_ERROR("cannot start the controller: %s%s%s", started.error().message.c_str(),
               started.error().context.empty() ? "" : ": ", started.error().context.c_str());
      return 1;
    }
    controller = std::move(started.value());
  }
  // With a worker in this process, the API's queued jobs wake it at once.
  std::unique_ptr<provider::store::Store> notifying;
  provider::store::Store* api_store = store.value().get();
  if (api && controller && roles.worker) {
    auto* runtime = controller.get();
    notifying = provider::store::makeNotifyingStore(*api_store, [runtime] { runtime->jobQueued(); });
    api_store = notifying.get();
  }
  RunningApi running;
  if (api) {
    if (int rc = startApi(options, threads, *api_store, cert_manager, running); rc != 0) return rc;
  }
  int sig = 0;
  sigwait(&stop, &sig);
  LB_INFO("stopping on signal %d", sig);
  if (running.server) running.server->stop();
  controller.reset();
  return 0;
}

std::optional<std::string> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// store-certificate: writes a new local_cert_manager reference and prints it (the
// operator's `openstack secret store` of the embedded default).
int storeCertificate(const common::OptionSet& options, const std::vector<std::string>& args) {
  std::string cert, key, intermediates, passphrase, passphrase_file, pkcs12, ca;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "banyan-provider: store-certificate: %s needs a value\n", args[i].c_str());
        return false;
      }
      out = args[++i];
      return true;
    };
    bool ok = true;
    if (args[i] == "--cert") ok = value(cert);
    else if (args[i] == "--key") ok = value(key);
    else if (args[i] == "--intermediates") ok = value(intermediates);
    else if (args[i] == "--passphrase-file") ok = value(passphrase_file);
    else if (args[i] == "--passphrase") {
      // Kept for scripts written before --passphrase-file; not in the usage any more.
      std::fprintf(stderr, "banyan-provider: store-certificate: --passphrase shows the passphrase to every "
                           "user of this host (ps); use --passphrase-file\n");
      ok = value(passphrase);
    }
    else if (args[i] == "--pkcs12") ok = value(pkcs12);
    else if (args[i] == "--ca") ok = value(ca);
    else {
      std::fprintf(stderr, "banyan-provider: store-certificate: unknown argument %s\n", args[i].c_str());
      ok = false;
    }
    if (!ok) return kExitUsage;
  }
  int kinds = (!cert.empty() || !key.empty()) + !pkcs12.empty() + !ca.empty();
  if (kinds != 1 || (!cert.empty() && key.empty()) || (cert.empty() && !key.empty()) ||
      (!intermediates.empty() && cert.empty()) || (!passphrase.empty() && cert.empty()) ||
      (!passphrase_file.empty() && !ca.empty()) || (!passphrase.empty() && !passphrase_file.empty())) {
    std::fprintf(stderr, "banyan-provider: store-certificate needs --cert and --key (with optional "
                         "--intermediates, --passphrase-file), or --pkcs12 (with optional --passphrase-file), "
                         "or --ca\n");
    return kExitUsage;
  }
  if (!passphrase_file.empty()) {
    auto text = readWhole(passphrase_file);
    if (!text) {
      std::fprintf(stderr, "banyan-provider: cannot read %s\n", passphrase_file.c_str());
      return 1;
    }
    // The first line, as openssl's -passin file: reads it.
    passphrase = text->substr(0, text->find('\n'));
    if (!passphrase.empty() && passphrase.back() == '\r') passphrase.pop_back();
    if (passphrase.empty()) {
      std::fprintf(stderr, "banyan-provider: store-certificate: the passphrase file %s is empty\n",
                   passphrase_file.c_str());
      return 1;
    }
  }
  if (options.getString("certificates", "cert_manager") != "local_cert_manager") {
    std::fprintf(stderr, "banyan-provider: store-certificate writes local_cert_manager references; this "
                         "configuration uses %s (store certificates there, e.g. openstack secret store)\n",
                 options.getString("certificates", "cert_manager").c_str());
    return 1;
  }
  auto read = [](const std::string& path) -> std::optional<std::string> {
    auto text = readWhole(path);
    if (!text) std::fprintf(stderr, "banyan-provider: cannot read %s\n", path.c_str());
    return text;
  };
  const std::string dir = provider::app::localStoragePath(options);
  common::Result<std::string> ref = std::string();
  if (!ca.empty()) {
    auto pem = read(ca);
    if (!pem) return 1;
    ref = provider::certs::storeLocalSecret(dir, *pem);
  } else {
    common::Result<provider::certs::TlsCertificate> parsed = provider::certs::TlsCertificate{};
    if (!pkcs12.empty()) {
      auto der = read(pkcs12);
      if (!der) return 1;
      parsed = provider::certs::fromPkcs12(*der, passphrase);
    } else {
      auto c = read(cert);
      auto k = read(key);
      std::optional<std::string> chain = std::string();
      if (!intermediates.empty()) chain = read(intermediates);
      if (!c || !k || !chain) return 1;
      parsed = provider::certs::fromPem(*c, *k, *chain, passphrase);
    }
    if (!parsed.ok()) {
      bool hint = !pkcs12.empty() && passphrase.empty() &&
                  parsed.error().message.find("without a passphrase") != std::string::npos;
      std::fprintf(stderr, "banyan-provider: store-certificate: %s%s\n", parsed.error().message.c_str(),
                   hint ? " (give it with --passphrase-file)" : "");
      return 1;
    }
    ref = provider::certs::storeLocalCertificate(dir, parsed.value());
  }
  if (!ref.ok()) {
    std::fprintf(stderr, "banyan-provider: store-certificate: %s%s%s\n", ref.error().message.c_str(),
                 ref.error().context.empty() ? "" : ": ", ref.error().context.c_str());
    return 1;
  }
  std::printf("%s\n", ref.value().c_str());
  return 0;
}

// The file name of the library whose malloc the process and every library in it call:
// the first definition in the global scope (jemalloc when the build links it, glibc's
// otherwise, or whatever LD_PRELOAD put first).
std::string mallocLibrary() {
  Dl_info info{};
  void* malloc_fn = ::dlsym(RTLD_DEFAULT, "malloc");
  if (!malloc_fn || ::dladdr(malloc_fn, &info) == 0 || !info.dli_fname) return "unknown";
  std::string path = info.dli_fname;
  return path.substr(path.rfind('/') + 1);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string allocator = mallocLibrary();
  if (allocator.rfind("libc.so", 0) == 0) {
    // The API builds every answer in memory it frees as a whole right after. With
    // glibc's defaults the freed pages went back to the kernel after each list (madvise,
    // a TLB flush on every CPU) and were faulted in again by the next: 15 % of a list's
    // CPU. Keeping up to 16 MiB per arena took SQLite pages of 50 load balancers at 50
    // clients from 615 to 924 req/s, for 6 MiB more resident memory. (jemalloc, the
    // default build's allocator, returns memory on a timer, not on every free.)
    ::mallopt(M_TRIM_THRESHOLD, 16 << 20);
    ::mallopt(M_MMAP_THRESHOLD, 4 << 20);
  }
  std::vector<std::string> config_files;
  std::string state_dir, role;
  std::vector<std::string> subcommand_args;  // what follows store-certificate
  bool sample = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (role == "store-certificate") {
      subcommand_args.push_back(arg);
      continue;
    }
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "banyan-provider: %s needs a value\n", name);
        std::exit(kExitUsage);
      }
      return argv[++i];
    };
    if (arg == "--config-file") config_files.push_back(value("--config-file"));
    else if (arg.rfind("--config-file=", 0) == 0) config_files.push_back(arg.substr(14));
    else if (arg == "--state-dir") state_dir = value("--state-dir");
    else if (arg.rfind("--state-dir=", 0) == 0) state_dir = arg.substr(12);
    else if (arg == "--generate-sample-config") sample = true;
    else if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "banyan-provider: unknown option %s\n", arg.c_str());
      usage(stderr);
      return kExitUsage;
    } else if (role.empty()) {
      role = arg;
    } else {
      std::fprintf(stderr, "banyan-provider: only one role may be given\n");
      return kExitUsage;
    }
  }

  common::OptionSet options;
  provider::app::declareProviderOptions(options);
  if (sample) {
    std::fputs(options.sampleConfig().c_str(), stdout);
    return 0;
  }
  if (role.empty()) {
    usage(stderr);
    return kExitUsage;
  }
  for (const auto& file : config_files) {
    auto r = options.loadFile(file);
    if (!r.ok()) {
      std::fprintf(stderr, "banyan-provider: %s: %s\n", r.error().context.c_str(), r.error().message.c_str());
      return 1;
    }
  }
  if (!state_dir.empty()) {
    auto r = options.set("DEFAULT", "state_dir", state_dir);
    if (!r.ok()) {
      std::fprintf(stderr, "banyan-provider: --state-dir: %s\n", r.error().message.c_str());
      return kExitUsage;
    }
  }
  common::LogLevel level = common::LogLevel::kInfo;
  if (!common::parseLogLevel(options.getString("DEFAULT", "log_level"), level)) level = common::LogLevel::kInfo;
  if (options.getBool("DEFAULT", "debug")) level = common::LogLevel::kDebug;
  common::setLogLevel(level);
  for (const auto& w : options.warnings()) LB_WARN("configuration: %s", w.c_str());
  LB_INFO("memory allocator: %s", allocator.c_str());
  // Before any HTTP server or client exists: the size is fixed at the library's first use.
  size_t io_threads = static_cast<size_t>(options.getInt("DEFAULT", "http_io_threads"));
  common::setHttpIoThreads(io_threads > 0 ? io_threads : std::max<size_t>(2, std::thread::hardware_concurrency()));

  if (role == "store-certificate") return storeCertificate(options, subcommand_args);
  if (role == "netns-cleanup") {
    auto ok = provider::app::cleanupNetns(options);
    if (!ok.ok()) {
      LB_ERROR("netns cleanup failed: %s %s", ok.error().message.c_str(), ok.error().context.c_str());
      return 1;
    }
    LB_INFO("netns amphorae, veths and bridges removed");
    return 0;
  }
  provider::app::ControllerRoles roles;
  bool api = false;
  if (role == "all") {
    api = roles.worker = roles.health = roles.housekeeping = true;
  } else if (role == "api") {
    api = true;
  } else if (role == "worker") {
    roles.worker = true;
  } else if (role == "health") {
    roles.health = true;
  } else if (role == "housekeeping") {
    roles.housekeeping = true;
  } else {
    std::fprintf(stderr, "banyan-provider: unknown role '%s'\n", role.c_str());
    usage(stderr);
    return kExitUsage;
  }
  return runRoles(options, api, roles);
}
