#include "balancer/balancer.h"

#include <netinet/in.h>

#include <cstring>

#include "balancer/mix64.h"
#include "banyan/common/logging.h"

namespace banyan::dp::balancer {
namespace {

// Domain tags keep an IPv4 address, an IPv6 address and a port from ever feeding
// the mixer the same word. Changing them changes every client's member, so both
// amphorae must run the same values.
constexpr uint64_t kIpv4Tag = 0x4a7c15f39cc0605dULL;
constexpr uint64_t kIpv6Tag = 0x1ce4e5b94d049bb1ULL;
constexpr uint64_t kPortTag = 0x2545f4914f6cdd1dULL;
constexpr uint64_t kUnknownFamilyHash = 0x5851f42d4c957f2dULL;

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

// Big-endian load so the hash does not depend on the host's byte order.
uint64_t loadBe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

void Selector::collectEligible(std::span<const MemberView> members) {
  eligible_.clear();
  for (size_t i = 0; i < members.size(); ++i) {
    const MemberView& m = members[i];
    if (!m.backup && m.usable && m.weight > 0) eligible_.push_back(static_cast<int>(i));
  }
  if (!eligible_.empty()) return;
  // Octavia's backup semantics (HAProxy `option allbackups`): only when every
  // primary is out do the backups take traffic, and then all of them together.
  for (size_t i = 0; i < members.size(); ++i) {
    const MemberView& m = members[i];
    if (m.backup && m.usable && m.weight > 0) eligible_.push_back(static_cast<int>(i));
  }
}

int Selector::pick(std::span<const MemberView> members, uint64_t hash) {
  collectEligible(members);
  switch (algorithm_) {
    case Algorithm::RoundRobin:
      return pickRoundRobin(members);
    case Algorithm::LeastConnections:
      return pickLeastConnections(members);
    case Algorithm::SourceIp:
    case Algorithm::SourceIpPort:
      return pickMaglev(members, hash);
  }
  return -1;
}

// Smooth weighted round robin as in nginx (ngx_http_upstream_get_peer): every pick
// adds each eligible member's weight to its current value, takes the largest (the
// first one on ties) and subtracts the total weight from it. Over sum(weights)
// picks each member is chosen exactly `weight` times, spread out rather than in bursts.
int Selector::pickRoundRobin(std::span<const MemberView> members) {
  if (current_.size() != members.size()) current_.assign(members.size(), 0);
  int best = -1;
  int64_t total = 0;
  size_t e = 0;
  for (size_t i = 0; i < members.size(); ++i) {
    if (e < eligible_.size() && eligible_[e] == static_cast<int>(i)) {
      ++e;
      const int64_t w = members[i].weight;
      current_[i] += w;
      total += w;
      if (best < 0 || current_[i] > current_[best]) best = static_cast<int>(i);
    } else {
      // A member that left the set restarts from zero when it comes back, so
      // credit it earned (or owed) earlier cannot cause a burst.
      current_[i] = 0;
    }
  }
  if (best >= 0) current_[best] -= total;
  return best;
}

// Minimises (active + 1) / weight, like HAProxy's leastconn: the "+ 1" makes a
// heavier idle member win over a lighter idle one. Compared by cross-multiplication
// in 64 bits (both factors < 2^32 + 1). The scan starts at a rotating position and
// only a strictly better member replaces the best so far, so equal members alternate.
int Selector::pickLeastConnections(std::span<const MemberView> members) {
  const size_t n = eligible_.size();
  if (n == 0) return -1;
  size_t pos = lc_cursor_ % n;
  size_t best_pos = pos;
  for (size_t k = 1; k < n; ++k) {
    if (++pos == n) pos = 0;
    const MemberView& cand = members[eligible_[pos]];
    const MemberView& best = members[eligible_[best_pos]];
    const uint64_t cand_load = (static_cast<uint64_t>(cand.active) + 1) * best.weight;
    const uint64_t best_load = (static_cast<uint64_t>(best.active) + 1) * cand.weight;
    if (cand_load < best_load) best_pos = pos;
  }
  lc_cursor_ = static_cast<uint32_t>(best_pos + 1);
  return eligible_[best_pos];
}

int Selector::pickMaglev(std::span<const MemberView> members, uint64_t hash) {
  if (eligible_.empty()) return -1;
  // The signature is (id_hash, weight) per eligible member in member order; the
  // table stores positions in eligible_, so an equal signature means the cached
  // table still maps to the right members.
  bool same = maglev_built_ && maglev_key_.size() == 2 * eligible_.size();
  for (size_t k = 0; same && k < eligible_.size(); ++k) {
    const MemberView& m = members[eligible_[k]];
    same = maglev_key_[2 * k] == m.id_hash && maglev_key_[2 * k + 1] == m.weight;
  }
  if (!same) {
    maglev_key_.clear();
    maglev_entries_.clear();
    for (int idx : eligible_) {
      const MemberView& m = members[idx];
      maglev_key_.push_back(m.id_hash);
      maglev_key_.push_back(m.weight);
      maglev_entries_.push_back(MaglevEntry{m.id_hash, m.weight});
    }
    maglev_built_ = maglev_.build(maglev_entries_);
    LB_CHECK(maglev_built_, "eligible members all have weight > 0");
  }
  const int k = maglev_.lookup(hash);
  LB_DCHECK(k >= 0 && static_cast<size_t>(k) < eligible_.size(), "Maglev slot maps to an eligible member");
  return eligible_[k];
}

uint64_t hashSourceAddress(const struct sockaddr_storage& addr, bool with_port) {
  uint64_t h;
  uint16_t port_be;
  if (addr.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &addr, sizeof(sin));
    uint8_t bytes[4];
    std::memcpy(bytes, &sin.sin_addr, sizeof(bytes));
    h = mix64(kIpv4Tag ^ loadBe(bytes, 4));
    port_be = sin.sin_port;
  } else if (addr.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &addr, sizeof(sin6));
    uint8_t bytes[16];
    std::memcpy(bytes, &sin6.sin6_addr, sizeof(bytes));
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes, kMappedPrefix, sizeof(kMappedPrefix)) == 0) {
      // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; they must land
      // on the same member as through an IPv4 socket.
      h = mix64(kIpv4Tag ^ loadBe(bytes + 12, 4));
    } else {
      h = mix64(mix64(kIpv6Tag ^ loadBe(bytes, 8)) ^ loadBe(bytes + 8, 8));
    }
    port_be = sin6.sin6_port;
  } else {
    return kUnknownFamilyHash;
  }
  if (with_port) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&port_be);
    h = mix64(h ^ (kPortTag + loadBe(p, 2)));
  }
  return h;
}

// FNV-1a 64 spreads the bytes; its low bits are weak, so a splitmix64 finalizer
// follows (Maglev takes the id hash modulo the table size).
uint64_t hashString(std::string_view s) {
  uint64_t h = kFnvOffset;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return mix64(h);
}

}  // namespace banyan::dp::balancer
