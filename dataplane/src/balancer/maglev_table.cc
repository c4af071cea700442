#include "balancer/maglev_table.h"

#include <algorithm>

#include "balancer/mix64.h"
#include "banyan/common/logging.h"

namespace banyan::dp::balancer {
namespace {

// Seeds for the offset and skip hashes. Changing them reshuffles every table, so
// both amphorae of a load balancer must run the same values.
constexpr uint64_t kOffsetSeed = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kSkipSeed = 0xc2b2ae3d27d4eb4fULL;

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; static_cast<uint64_t>(d) * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

}  // namespace

bool MaglevTable::build(std::span<const MaglevEntry> entries, uint32_t size) {
  LB_CHECK(isPrime(size), "Maglev table size must be prime for full permutations");
  table_.clear();

  // Fill in id_hash order, not input order: both amphorae must build identical
  // tables from the same member set however the configuration lists it. Equal
  // id_hash (the same member listed twice) falls back to weight, then position.
  std::vector<uint32_t> order;
  order.reserve(entries.size());
  uint32_t max_weight = 0;
  for (uint32_t i = 0; i < entries.size(); ++i) {
    if (entries[i].weight == 0) continue;
    order.push_back(i);
    max_weight = std::max(max_weight, entries[i].weight);
  }
  if (order.empty()) return false;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (entries[a].id_hash != entries[b].id_hash) return entries[a].id_hash < entries[b].id_hash;
    if (entries[a].weight != entries[b].weight) return entries[a].weight < entries[b].weight;
    return a < b;
  });

  struct Cursor {
    uint32_t next;    // next candidate slot of this member's permutation
    uint32_t skip;    // in [1, size-1], coprime with the prime size
    uint64_t credit;  // accumulated weight, spent max_weight per turn
  };
  std::vector<Cursor> cursors(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    const uint64_t id = entries[order[k]].id_hash;
    cursors[k].next = static_cast<uint32_t>(mix64(id ^ kOffsetSeed) % size);
    cursors[k].skip = static_cast<uint32_t>(mix64(id ^ kSkipSeed) % (size - 1)) + 1;
    cursors[k].credit = 0;
  }

  table_.assign(size, -1);
  uint32_t filled = 0;
  // Each round every member earns its weight; a turn costs max_weight, so the
  // heaviest members take a turn every round and a member of half that weight
  // every other round. Every turn claims exactly one empty slot (paper, Pseudocode 1),
  // walking the member's permutation offset, offset+skip, ... (mod size).
  while (filled < size) {
    for (size_t k = 0; k < order.size() && filled < size; ++k) {
      Cursor& c = cursors[k];
      c.credit += entries[order[k]].weight;
      if (c.credit < max_weight) continue;
      c.credit -= max_weight;
      // 64-bit so slot + skip cannot wrap for sizes above 2^31.
      uint64_t slot = c.next;
      while (table_[slot] >= 0) {
        slot += c.skip;
        if (slot >= size) slot -= size;
      }
      table_[slot] = static_cast<int32_t>(order[k]);
      slot += c.skip;
      if (slot >= size) slot -= size;
      c.next = static_cast<uint32_t>(slot);
      ++filled;
    }
  }
  return true;
}

}  // namespace banyan::dp::balancer
