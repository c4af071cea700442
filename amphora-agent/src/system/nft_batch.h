// Private to the system module: one nftables transaction built with libnftnl
// and sent over NETLINK_NETFILTER, plus a small rule builder. Not included by
// other modules (libnftnl types stay out of the public headers).
#pragma once

#include <libnftnl/rule.h>

#include <cstdint>
#include <string>
#include <vector>

#include "banyan/common/result.h"
#include "system/ip_prefix.h"

namespace banyan::agent::system::nft {

// nft's datatype ids (nftables src/datatype.h), stored in the set so that
// `nft list` prints elements as addresses and ports rather than raw integers.
inline constexpr uint32_t kTypeInteger = 4;
inline constexpr uint32_t kTypeIpAddr = 7;
inline constexpr uint32_t kTypeIp6Addr = 8;
inline constexpr uint32_t kTypeInetService = 13;
inline constexpr uint32_t kTypeBits = 6;  // concatenated types: (a << 6) | b

struct SetDef {
  std::string name;
  uint32_t key_type = 0;
  uint32_t key_len = 0;
  uint32_t flags = 0;      // NFT_SET_MAP, NFT_SET_INTERVAL, ...
  uint32_t data_type = 0;  // maps only
  uint32_t data_len = 0;
  bool key_host_order = false;  // integer keys computed by the kernel (hash)
};

struct Element {
  std::vector<uint8_t> key;
  std::vector<uint8_t> data;  // maps only
};

// One transaction may touch several tables of several families (the kernel
// accepts a batch of mixed families and still applies it all or nothing).
// Objects are added to the current table: the constructor's, until useTable.
class Batch {
 public:
  Batch(uint16_t family, std::string table);

  // Switches the table (and family) later add*/delete* calls act on.
  void useTable(uint16_t family, std::string table);

  void addTable();
  void deleteTable();
  // hooknum < 0: a regular chain (jump target). device: the interface of a
  // netdev-family base chain (hook ingress), empty otherwise.
  void addChain(const std::string& name, int hooknum = -1, int priority = 0,
                const char* type = "filter", uint32_t policy = 1 /* NF_ACCEPT */,
                const std::string& device = "");
  // Returns the transaction-local set id rules use to refer to the new set.
  uint32_t addSet(const SetDef& def, const std::vector<Element>& elements);
  // Takes ownership of rule (built with RuleBuilder).
  void addRule(nftnl_rule* rule);

  // Sends begin + messages + end in one sendmsg and reads every answer. The
  // kernel aborts the whole transaction on the first failing message.
  common::Result<void> commit();
  // libnftnl's text of every object, in order.
  const std::string& describe() const { return text_; }
  size_t messageCount() const { return seqs_.size(); }

 private:
  char* reserve();
  void finish(const char* what);

  // What a message is, for errors: the verb, plus the table when it is not
  // the constructor's (the first table keeps its plain, historic names).
  std::string label(const char* verb) const;

  uint16_t family_;
  std::string table_;
  uint16_t first_family_;
  std::string first_table_;
  std::vector<char> bytes_;
  std::vector<char> scratch_;
  std::vector<std::pair<uint32_t, std::string>> seqs_;  // seq -> what, for errors
  uint32_t next_seq_ = 1;
  uint32_t next_set_id_ = 1;
  std::string text_;
};

// Appends expressions to a rule. Registers: data goes in NFT_REG32_xx; each
// match loads into register 1 and compares, as nft itself does.
class RuleBuilder {
 public:
  RuleBuilder(uint16_t family, const std::string& table, const std::string& chain);
  ~RuleBuilder();
  RuleBuilder(const RuleBuilder&) = delete;
  RuleBuilder& operator=(const RuleBuilder&) = delete;

  RuleBuilder& nfproto(int family);  // meta nfproto ipv4|ipv6
  // meta protocol ip|ip6 (the ethertype): the netdev family's way to say
  // "IPv4" or "IPv6" (nfproto means nothing there).
  RuleBuilder& etherProto(int family);
  RuleBuilder& l4proto(uint8_t proto);  // meta l4proto
  RuleBuilder& iifname(const std::string& name);
  RuleBuilder& ctStateEstablishedOrRelated();
  RuleBuilder& ctStatusDnat();
  RuleBuilder& ctOriginalDaddr(const IpAddress& a);
  RuleBuilder& saddrIn(const IpPrefix& p);   // needs nfproto first
  RuleBuilder& daddrIs(const IpAddress& a);  // needs nfproto first
  RuleBuilder& daddrInSet(int family, const std::string& set, uint32_t set_id);
  RuleBuilder& dport(uint16_t port);  // transport header, tcp/udp/sctp
  RuleBuilder& icmpv6Type(uint8_t type);
  RuleBuilder& counter();
  RuleBuilder& accept();
  RuleBuilder& drop();
  RuleBuilder& jump(const std::string& chain);
  RuleBuilder& comment(const std::string& text);
  // dnat to (map set_id)[jhash(saddr . sport) mod modulus], data = addr . port.
  RuleBuilder& dnatByHash(int family, uint32_t modulus, uint32_t seed, const std::string& map,
                          uint32_t map_id);
  // netdev family only: fwd <family> to (map set_id)[jhash(saddr . sport) mod
  // modulus] device <ifindex>. The packet leaves `ifindex` unchanged but for
  // its TTL / hop limit, to the MAC the kernel's neighbour table has for the
  // map's address (resolved by ARP/ND if needed); it is stolen from the stack.
  RuleBuilder& fwdByHash(int family, uint32_t ifindex, uint32_t modulus, uint32_t seed,
                         const std::string& map, uint32_t map_id);
  RuleBuilder& masquerade();
  RuleBuilder& snatTo(const IpAddress& a);

  // Hands the rule to the caller (Batch::addRule takes it).
  nftnl_rule* release();

 private:
  void payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);
  void cmpEq(uint32_t sreg, const void* data, uint32_t len);
  // jhash(saddr . sport) mod modulus, looked up in the map: the source address is
  // loaded into addr_reg, the source port into port_reg, and the map's value for the
  // slot ends in out_reg (the hash goes there first).
  void hashLookup(int family, uint32_t addr_reg, uint32_t port_reg, uint32_t out_reg, uint32_t modulus,
                  uint32_t seed, const std::string& map, uint32_t map_id);
  void immediateVerdict(int verdict, const char* chain);

  nftnl_rule* rule_;
};

}  // namespace banyan::agent::system::nft
