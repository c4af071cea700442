// keepalived VRRP for ACTIVE_STANDBY amphorae: a pure renderer of
// keepalived.conf and a manager of one keepalived process per runtime
// directory.
//
// Failover semantics (as Octavia's amphora): the check command runs every
// check_interval_s; after check_fall failures the instance enters FAULT,
// releases the VIP and advertises priority 0, so the peer takes the VIP at once
// (even with nopreempt, which ignores mere priority changes). The new MASTER
// announces the VIP with gratuitous ARP / unsolicited neighbour advertisements
// (garp_* settings) so clients and the gateway re-learn its MAC.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::agent::system {

struct VrrpConfig {
  std::string instance_name = "banyan";  // [A-Za-z0-9_-]; Octavia: the LB id without dashes
  std::string interface;                 // VRRP interface (eth1 in Octavia's amphora)
  std::string vip;                       // address only
  int vip_prefix = 32;                   // 32 / 128 as Octavia configures the VIP
  int virtual_router_id = 1;             // 1..255, equal on both amphorae
  int priority = 100;                    // 1..254; Octavia: MASTER 100, BACKUP 90
  int advert_interval_s = 1;
  std::string local_address;                // unicast_src_ip: this amphora's VRRP address
  std::vector<std::string> peer_addresses;  // unicast peers
  std::string auth_pass;  // VRRP PASS authentication, 1..8 printable chars; empty = none
  // Run by keepalived as root, split on spaces (no shell): e.g.
  // "/usr/lib/banyan/proxy-check /run/banyan/proxy.sock". Empty = no check.
  std::string check_command;
  int check_interval_s = 5;  // Octavia: vrrp_check_interval 5, fall 2, rise 2
  int check_fall = 2;
  int check_rise = 2;
  bool nopreempt = true;  // a recovered amphora does not take the VIP back (one move, not two)
  // Gratuitous ARP / unsolicited NA: on becoming MASTER, after garp_master_delay_s
  // send garp_master_repeat announcements; then every garp_master_refresh_s
  // (0 = never) garp_master_refresh_repeat more, as Octavia (refresh 5, repeat 2).
  int garp_master_delay_s = 1;
  int garp_master_repeat = 5;
  int garp_master_refresh_s = 5;
  int garp_master_refresh_repeat = 2;
  // Source routing that follows the VIP (Octavia's virtual_routes/virtual_rules):
  // when vip_table != 0, the MASTER also installs "<vip_subnet_cidr> dev <if> src
  // <vip> table N", "default via <gateway> dev <if> onlink table N" (if gateway),
  // and "from <vip> table N priority 100".
  uint32_t vip_table = 0;
  std::string vip_subnet_cidr;
  std::string gateway;
  // Set by Keepalived::apply to its own notify script; for the renderer alone.
  std::string notify_command;
};

// Rejects anything that would not render to a safe, valid keepalived.conf
// (bad addresses, names with spaces or braces, quotes in commands, ranges).
common::Result<void> validateVrrpConfig(const VrrpConfig& config);
// Pure: the keepalived.conf text for an already validated config.
std::string renderKeepalivedConfig(const VrrpConfig& config);

enum class VrrpState { kMaster, kBackup, kFault, kUnknown };
const char* toString(VrrpState state);

// Owns one keepalived process (VRRP subsystem only) and its files in
// runtime_dir: keepalived.conf, notify.sh, the state file "vrrp.state" written
// by notify.sh on every transition, pid files and keepalived.log. The process
// runs in the network namespace of the thread that calls apply() (fork
// inherits it). Not thread-safe; the agent calls it from one API thread.
// Destroying the object leaves keepalived running (an agent restart must not
// drop the VIP); a new object on the same runtime_dir adopts it via its pid file.
class Keepalived {
 public:
  explicit Keepalived(std::string runtime_dir,
                      std::string keepalived_binary = "/usr/sbin/keepalived");

  // Validate, write keepalived.conf.next, fsync, `keepalived --config-test`,
  // rename into place, then start keepalived or SIGHUP the running one.
  // Applying the config already running is a no-op. A config keepalived
  // rejects is kept as keepalived.conf.rejected and returned as
  // kInvalidArgument with the checker's output; the running config stays.
  common::Result<void> apply(const VrrpConfig& config);
  VrrpState state() const;
  // SIGTERM (keepalived releases the VIP), wait up to 5 s, then SIGKILL. Idempotent.
  common::Result<void> stop();
  bool running() const;
  pid_t pid() const { return pid_; }

  std::string configPath() const { return dir_ + "/keepalived.conf"; }
  std::string statePath() const { return dir_ + "/vrrp.state"; }

 private:
  common::Result<void> start();
  void adopt();

  std::string dir_;
  std::string binary_;
  mutable pid_t pid_ = 0;  // cleared by running() once the process is gone
  bool child_ = false;     // started by this object (reap with waitpid) vs adopted
  bool stopping_ = false;  // an exit during stop() is expected, not worth a warning
};

}  // namespace banyan::agent::system
