#include "system/nft_batch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>

namespace banyan::agent::system::nft {

using common::ErrorCode;
using common::makeError;
using common::Result;

namespace {

// Large enough for one message of kElemsPerMessage map elements.
constexpr size_t kScratchSize = 256 * 1024;
constexpr size_t kElemsPerMessage = 1024;

const char* familyName(uint16_t family) {
  switch (family) {
    case NFPROTO_INET:
      return "inet ";
    case NFPROTO_NETDEV:
      return "netdev ";
    case NFPROTO_IPV6:
      return "ip6 ";
    default:
      return "";  // ip: nft's default family, unnamed in its syntax
  }
}

std::string describeTable(uint16_t family, const std::string& name, const char* verb) {
  return std::string(verb) + " table " + familyName(family) + name + "\n";
}

template <typename Obj, typename Fn>
std::string snprintObj(const Obj* obj, Fn fn) {
  std::vector<char> buf(64 * 1024);
  int n = fn(buf.data(), buf.size(), obj, NFTNL_OUTPUT_DEFAULT, 0);
  if (n < 0) return "?\n";
  return std::string(buf.data(), std::min<size_t>(static_cast<size_t>(n), buf.size() - 1)) + "\n";
}

}  // namespace

Batch::Batch(uint16_t family, std::string table)
    : family_(family),
      table_(table),
      first_family_(family),
      first_table_(std::move(table)),
      scratch_(kScratchSize) {}

void Batch::useTable(uint16_t family, std::string table) {
  family_ = family;
  table_ = std::move(table);
}

std::string Batch::label(const char* verb) const {
  if (family_ == first_family_ && table_ == first_table_) return verb;
  return std::string(verb) + " in " + familyName(family_) + table_;
}

char* Batch::reserve() {
  std::fill(scratch_.begin(), scratch_.begin() + sizeof(nlmsghdr) + 64, 0);
  return scratch_.data();
}

void Batch::finish(const char* what) {
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(scratch_.data());
  size_t len = NLMSG_ALIGN(nlh->nlmsg_len);
  bytes_.insert(bytes_.end(), scratch_.data(), scratch_.data() + len);
  seqs_.emplace_back(nlh->nlmsg_seq, what);
}

void Batch::addTable() {
  nftnl_table* t = nftnl_table_alloc();
  nftnl_table_set_str(t, NFTNL_TABLE_NAME, table_.c_str());
  nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family_);
  // CREATE without EXCL: an existing table is fine. This is the first half of
  // "delete if present" (the kernel has no such verb): add, then delete.
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWTABLE, family_,
                                        NLM_F_CREATE | NLM_F_ACK, next_seq_++);
  nftnl_table_nlmsg_build_payload(nlh, t);
  nftnl_table_free(t);
  finish(label("add table").c_str());
  text_ += describeTable(family_, table_, "add");
}

void Batch::deleteTable() {
  nftnl_table* t = nftnl_table_alloc();
  nftnl_table_set_str(t, NFTNL_TABLE_NAME, table_.c_str());
  nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family_);
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_DELTABLE, family_, NLM_F_ACK, next_seq_++);
  nftnl_table_nlmsg_build_payload(nlh, t);
  nftnl_table_free(t);
  finish(label("delete table").c_str());
  text_ += describeTable(family_, table_, "delete");
}

void Batch::addChain(const std::string& name, int hooknum, int priority, const char* type,
                     uint32_t policy, const std::string& device) {
  nftnl_chain* c = nftnl_chain_alloc();
  nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table_.c_str());
  nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name.c_str());
  nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, family_);
  if (hooknum >= 0) {
    nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, static_cast<uint32_t>(hooknum));
    nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, priority);
    nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
    nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, policy);
    if (!device.empty()) nftnl_chain_set_str(c, NFTNL_CHAIN_DEV, device.c_str());
  }
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWCHAIN, family_,
                                        NLM_F_CREATE | NLM_F_ACK, next_seq_++);
  nftnl_chain_nlmsg_build_payload(nlh, c);
  text_ += "add chain " + snprintObj(c, nftnl_chain_snprintf);
  nftnl_chain_free(c);
  finish(label("add chain").c_str());
}

uint32_t Batch::addSet(const SetDef& def, const std::vector<Element>& elements) {
  uint32_t id = next_set_id_++;
  auto base = [&] {
    nftnl_set* s = nftnl_set_alloc();
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table_.c_str());
    nftnl_set_set_str(s, NFTNL_SET_NAME, def.name.c_str());
    nftnl_set_set_u32(s, NFTNL_SET_FAMILY, family_);
    nftnl_set_set_u32(s, NFTNL_SET_ID, id);
    return s;
  };
  nftnl_set* s = base();
  nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, def.key_type);
  nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, def.key_len);
  nftnl_set_set_u32(s, NFTNL_SET_FLAGS, def.flags);
  if (def.flags & NFT_SET_MAP) {
    nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, def.data_type);
    nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, def.data_len);
  }
  if (def.key_host_order) {
    // Tells `nft list` the keys are host-order integers (values computed by
    // the kernel, e.g. a hash), so slot 1 prints as 1, not 16777216.
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(64);
    nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, 1 /* BYTEORDER_HOST_ENDIAN */);
    nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
  }
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWSET, family_,
                                        NLM_F_CREATE | NLM_F_ACK, next_seq_++);
  nftnl_set_nlmsg_build_payload(nlh, s);
  text_ += "add set " + snprintObj(s, nftnl_set_snprintf);
  nftnl_set_free(s);
  finish(label("add set").c_str());

  for (size_t start = 0; start < elements.size(); start += kElemsPerMessage) {
    nftnl_set* es = base();
    size_t end = std::min(elements.size(), start + kElemsPerMessage);
    for (size_t i = start; i < end; ++i) {
      nftnl_set_elem* e = nftnl_set_elem_alloc();
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, elements[i].key.data(),
                         static_cast<uint32_t>(elements[i].key.size()));
      if (!elements[i].data.empty()) {
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, elements[i].data.data(),
                           static_cast<uint32_t>(elements[i].data.size()));
      }
      nftnl_set_elem_add(es, e);
    }
    nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWSETELEM, family_, NLM_F_CREATE | NLM_F_ACK,
                                next_seq_++);
    nftnl_set_elems_nlmsg_build_payload(nlh, es);
    text_ += "add element " + def.name + " " + std::to_string(end - start) + "\n";
    nftnl_set_free(es);
    finish(label("add set elements").c_str());
  }
  return id;
}

void Batch::addRule(nftnl_rule* rule) {
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reserve(), NFT_MSG_NEWRULE, family_,
                                        NLM_F_APPEND | NLM_F_CREATE | NLM_F_ACK, next_seq_++);
  nftnl_rule_nlmsg_build_payload(nlh, rule);
  text_ += "add rule " + snprintObj(rule, nftnl_rule_snprintf);
  nftnl_rule_free(rule);
  finish(label("add rule").c_str());
}

Result<void> Batch::commit() {
  std::vector<char> msg(MNL_SOCKET_BUFFER_SIZE);
  std::vector<char> out;
  nftnl_batch_begin(msg.data(), 0);
  out.insert(out.end(), msg.data(),
             msg.data() + NLMSG_ALIGN(reinterpret_cast<nlmsghdr*>(msg.data())->nlmsg_len));
  out.insert(out.end(), bytes_.begin(), bytes_.end());
  nftnl_batch_end(msg.data(), next_seq_);
  out.insert(out.end(), msg.data(),
             msg.data() + NLMSG_ALIGN(reinterpret_cast<nlmsghdr*>(msg.data())->nlmsg_len));

  mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
  if (nl == nullptr) {
    return makeError(ErrorCode::kUnavailable,
                     std::string("nftables netlink socket unavailable (nf_tables missing?): ") +
                         strerror(errno));
  }
  struct Closer {
    mnl_socket* s;
    ~Closer() { mnl_socket_close(s); }
  } closer{nl};
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    return makeError(ErrorCode::kUnavailable,
                     std::string("netlink bind failed: ") + strerror(errno));
  }
  int fd = mnl_socket_get_fd(nl);
  // The kernel answers every message before sendmsg returns; size the buffers
  // so neither the batch nor its acknowledgements are cut (each ack costs a
  // full skb of receive buffer). FORCE works as root, the plain option otherwise.
  int sndbuf = static_cast<int>(out.size() + 4096);
  int rcvbuf = static_cast<int>(std::max<size_t>(seqs_.size() * 1024 + 65536, 256 * 1024));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  int one = 1;
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  if (mnl_socket_sendto(nl, out.data(), out.size()) < 0) {
    return makeError(ErrorCode::kUnavailable,
                     std::string("sending nftables batch failed: ") + strerror(errno));
  }

  std::vector<char> buf(64 * 1024);
  size_t acks = 0;
  int first_err = 0;
  std::string first_what;
  while (acks < seqs_.size()) {
    // The kernel queues every answer before sendmsg returns; the wait only
    // guards against a kernel that stays silent, and after an error not
    // every message need be answered.
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, first_err != 0 ? 0 : 5000);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      if (first_err != 0) break;
      return makeError(ErrorCode::kUnavailable, "nftables did not answer the transaction", table_);
    }
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return makeError(ErrorCode::kUnavailable,
                       std::string("reading nftables answers failed: ") + strerror(errno));
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      ++acks;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (err->error != 0 && first_err == 0) {
        first_err = -err->error;
        for (auto& [seq, what] : seqs_) {
          if (seq == nlh->nlmsg_seq) first_what = what + " (message " + std::to_string(seq) + ")";
        }
      }
    }
  }
  if (first_err != 0) {
    return makeError(
        first_err == EPERM ? ErrorCode::kUnavailable : ErrorCode::kInternal,
        "nftables rejected the transaction: " + first_what + ": " + strerror(first_err), table_);
  }
  return {};
}

RuleBuilder::RuleBuilder(uint16_t family, const std::string& table, const std::string& chain)
    : rule_(nftnl_rule_alloc()) {
  nftnl_rule_set_str(rule_, NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_set_str(rule_, NFTNL_RULE_CHAIN, chain.c_str());
  nftnl_rule_set_u32(rule_, NFTNL_RULE_FAMILY, family);
}

RuleBuilder::~RuleBuilder() {
  if (rule_ != nullptr) nftnl_rule_free(rule_);
}

nftnl_rule* RuleBuilder::release() {
  nftnl_rule* r = rule_;
  rule_ = nullptr;
  return r;
}

void RuleBuilder::payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
  nftnl_expr* e = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
  nftnl_rule_add_expr(rule_, e);
}

void RuleBuilder::cmpEq(uint32_t sreg, const void* data, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  nftnl_rule_add_expr(rule_, e);
}

void RuleBuilder::immediateVerdict(int verdict, const char* chain) {
  nftnl_expr* e = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(verdict));
  if (chain != nullptr) nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
  nftnl_rule_add_expr(rule_, e);
}

static void metaLoad(nftnl_rule* r, uint32_t key) {
  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
  nftnl_rule_add_expr(r, e);
}

static void maskedNonZero(nftnl_rule* r, uint32_t mask) {
  uint32_t zero = 0;
  nftnl_expr* b = nftnl_expr_alloc("bitwise");
  nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
  nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
  nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, sizeof mask);
  nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof mask);
  nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof zero);
  nftnl_rule_add_expr(r, b);
  nftnl_expr* c = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32(c, NFTNL_EXPR_CMP_OP, NFT_CMP_NEQ);
  nftnl_expr_set(c, NFTNL_EXPR_CMP_DATA, &zero, sizeof zero);
  nftnl_rule_add_expr(r, c);
}

RuleBuilder& RuleBuilder::nfproto(int family) {
  metaLoad(rule_, NFT_META_NFPROTO);
  uint8_t v = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;
  cmpEq(NFT_REG_1, &v, 1);
  return *this;
}

RuleBuilder& RuleBuilder::etherProto(int family) {
  metaLoad(rule_, NFT_META_PROTOCOL);
  uint16_t be = htons(family == AF_INET ? ETH_P_IP : ETH_P_IPV6);
  cmpEq(NFT_REG_1, &be, 2);
  return *this;
}

RuleBuilder& RuleBuilder::l4proto(uint8_t proto) {
  metaLoad(rule_, NFT_META_L4PROTO);
  cmpEq(NFT_REG_1, &proto, 1);
  return *this;
}

RuleBuilder& RuleBuilder::iifname(const std::string& name) {
  metaLoad(rule_, NFT_META_IIFNAME);
  cmpEq(NFT_REG_1, name.c_str(), static_cast<uint32_t>(name.size() + 1));
  return *this;
}

RuleBuilder& RuleBuilder::ctStateEstablishedOrRelated() {
  nftnl_expr* e = nftnl_expr_alloc("ct");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
  nftnl_rule_add_expr(rule_, e);
  maskedNonZero(rule_, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
  return *this;
}

RuleBuilder& RuleBuilder::ctStatusDnat() {
  nftnl_expr* e = nftnl_expr_alloc("ct");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
  nftnl_rule_add_expr(rule_, e);
  maskedNonZero(rule_, IPS_DST_NAT);
  return *this;
}

RuleBuilder& RuleBuilder::ctOriginalDaddr(const IpAddress& a) {
  nftnl_expr* e = nftnl_expr_alloc("ct");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, a.family == AF_INET ? NFT_CT_DST_IP : NFT_CT_DST_IP6);
  nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
  nftnl_rule_add_expr(rule_, e);
  cmpEq(NFT_REG_1, a.bytes.data(), static_cast<uint32_t>(a.size()));
  return *this;
}

RuleBuilder& RuleBuilder::saddrIn(const IpPrefix& p) {
  if (p.prefix_len == 0) return *this;  // nfproto already matched the family
  const uint32_t len = static_cast<uint32_t>(p.address.size());
  payload(NFT_PAYLOAD_NETWORK_HEADER, p.address.family == AF_INET ? 12 : 8, len, NFT_REG_1);
  if (p.prefix_len < p.address.maxPrefix()) {
    IpPrefix all_ones{p.address, p.prefix_len};
    std::fill(all_ones.address.bytes.begin(), all_ones.address.bytes.end(), 0xff);
    IpAddress mask = all_ones.network();
    std::array<uint8_t, 16> zero{};
    nftnl_expr* b = nftnl_expr_alloc("bitwise");
    nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
    nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, len);
    nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, mask.bytes.data(), len);
    nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, zero.data(), len);
    nftnl_rule_add_expr(rule_, b);
  }
  IpAddress net = p.network();
  cmpEq(NFT_REG_1, net.bytes.data(), len);
  return *this;
}

RuleBuilder& RuleBuilder::daddrIs(const IpAddress& a) {
  payload(NFT_PAYLOAD_NETWORK_HEADER, a.family == AF_INET ? 16 : 24,
          static_cast<uint32_t>(a.size()), NFT_REG_1);
  cmpEq(NFT_REG_1, a.bytes.data(), static_cast<uint32_t>(a.size()));
  return *this;
}

RuleBuilder& RuleBuilder::daddrInSet(int family, const std::string& set, uint32_t set_id) {
  payload(NFT_PAYLOAD_NETWORK_HEADER, family == AF_INET ? 16 : 24, family == AF_INET ? 4 : 16,
          NFT_REG_1);
  nftnl_expr* e = nftnl_expr_alloc("lookup");
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set.c_str());
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
  nftnl_rule_add_expr(rule_, e);
  return *this;
}

RuleBuilder& RuleBuilder::dport(uint16_t port) {
  // The destination port sits at offset 2 of TCP, UDP and SCTP headers alike.
  uint16_t be = htons(port);
  payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
  cmpEq(NFT_REG_1, &be, 2);
  return *this;
}

RuleBuilder& RuleBuilder::icmpv6Type(uint8_t type) {
  payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
  cmpEq(NFT_REG_1, &type, 1);
  return *this;
}

RuleBuilder& RuleBuilder::counter() {
  nftnl_rule_add_expr(rule_, nftnl_expr_alloc("counter"));
  return *this;
}

RuleBuilder& RuleBuilder::accept() {
  immediateVerdict(NF_ACCEPT, nullptr);
  return *this;
}

RuleBuilder& RuleBuilder::drop() {
  immediateVerdict(NF_DROP, nullptr);
  return *this;
}

RuleBuilder& RuleBuilder::jump(const std::string& chain) {
  immediateVerdict(NFT_JUMP, chain.c_str());
  return *this;
}

RuleBuilder& RuleBuilder::comment(const std::string& text) {
  nftnl_udata_buf* ud = nftnl_udata_buf_alloc(512);
  std::string t = text.substr(0, 127);
  nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, t.c_str());
  nftnl_rule_set_data(rule_, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
                      nftnl_udata_buf_len(ud));
  nftnl_udata_buf_free(ud);
  return *this;
}

void RuleBuilder::hashLookup(int family, uint32_t addr_reg, uint32_t port_reg, uint32_t out_reg, uint32_t modulus,
                             uint32_t seed, const std::string& map, uint32_t map_id) {
  const uint32_t addr_len = family == AF_INET ? 4 : 16;
  payload(NFT_PAYLOAD_NETWORK_HEADER, family == AF_INET ? 12 : 8, addr_len, addr_reg);
  payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, port_reg);
  nftnl_expr* h = nftnl_expr_alloc("hash");
  nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
  nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_SREG, addr_reg);
  nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_LEN, addr_len + 4);
  nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_MODULUS, modulus);
  nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_SEED, seed);
  nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_OFFSET, 0);
  nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_DREG, out_reg);
  nftnl_rule_add_expr(rule_, h);
  nftnl_expr* l = nftnl_expr_alloc("lookup");
  nftnl_expr_set_u32(l, NFTNL_EXPR_LOOKUP_SREG, out_reg);
  nftnl_expr_set_u32(l, NFTNL_EXPR_LOOKUP_DREG, out_reg);
  nftnl_expr_set_str(l, NFTNL_EXPR_LOOKUP_SET, map.c_str());
  nftnl_expr_set_u32(l, NFTNL_EXPR_LOOKUP_SET_ID, map_id);
  nftnl_rule_add_expr(rule_, l);
}

RuleBuilder& RuleBuilder::dnatByHash(int family, uint32_t modulus, uint32_t seed,
                                     const std::string& map, uint32_t map_id) {
  const uint32_t addr_len = family == AF_INET ? 4 : 16;
  // saddr then sport, each padded to 4-byte registers: the concatenation nft
  // itself builds for `jhash ip saddr . tcp sport`.
  hashLookup(family, NFT_REG32_00, NFT_REG32_00 + addr_len / 4, NFT_REG32_00, modulus, seed, map, map_id);
  nftnl_expr* n = nftnl_expr_alloc("nat");
  nftnl_expr_set_u32(n, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
  nftnl_expr_set_u32(n, NFTNL_EXPR_NAT_FAMILY, family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
  nftnl_expr_set_u32(n, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG32_00);
  nftnl_expr_set_u32(n, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_00 + addr_len / 4);
  nftnl_rule_add_expr(rule_, n);
  return *this;
}

RuleBuilder& RuleBuilder::fwdByHash(int family, uint32_t ifindex, uint32_t modulus, uint32_t seed,
                                    const std::string& map, uint32_t map_id) {
  // The registers nft 1.0 itself allocates for `fwd ip to jhash ip saddr .
  // tcp sport mod N seed S map @m device "d"` (nft --debug=netlink): the
  // device index in reg 1, the hash input from reg 3 on (sport right after
  // the address, in a 4-byte register), slot and then address in reg 2.
  nftnl_expr* imm = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
  nftnl_expr_set(imm, NFTNL_EXPR_IMM_DATA, &ifindex, sizeof ifindex);
  nftnl_rule_add_expr(rule_, imm);
  hashLookup(family, NFT_REG_3, family == AF_INET ? NFT_REG32_09 : NFT_REG_4, NFT_REG_2, modulus, seed, map, map_id);
  nftnl_expr* f = nftnl_expr_alloc("fwd");
  nftnl_expr_set_u32(f, NFTNL_EXPR_FWD_SREG_DEV, NFT_REG_1);
  nftnl_expr_set_u32(f, NFTNL_EXPR_FWD_SREG_ADDR, NFT_REG_2);
  nftnl_expr_set_u32(f, NFTNL_EXPR_FWD_NFPROTO, family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
  nftnl_rule_add_expr(rule_, f);
  return *this;
}

RuleBuilder& RuleBuilder::masquerade() {
  nftnl_rule_add_expr(rule_, nftnl_expr_alloc("masq"));
  return *this;
}

RuleBuilder& RuleBuilder::snatTo(const IpAddress& a) {
  nftnl_expr* imm = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(imm, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
  nftnl_expr_set(imm, NFTNL_EXPR_IMM_DATA, a.bytes.data(), static_cast<uint32_t>(a.size()));
  nftnl_rule_add_expr(rule_, imm);
  nftnl_expr* n = nftnl_expr_alloc("nat");
  nftnl_expr_set_u32(n, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
  nftnl_expr_set_u32(n, NFTNL_EXPR_NAT_FAMILY, a.family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
  nftnl_expr_set_u32(n, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
  nftnl_rule_add_expr(rule_, n);
  return *this;
}

}  // namespace banyan::agent::system::nft
