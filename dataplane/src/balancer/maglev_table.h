// Weighted Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4).
//
// Weights: the paper's populate loop gives every member one turn per round. Here
// every member accumulates `weight` credit per round and takes a turn whenever its
// credit reaches the largest weight W (then pays W). A member of weight w thus takes
// w/W turns per round on average, and since each turn claims exactly one slot its
// share of the table is proportional to its weight (to within one round).
//
// Building is deterministic and independent of the order of the entries (they are
// filled in id_hash order), so every amphora builds the same table and clients keep
// affinity across failover. Pure: no I/O. Not thread-safe; lookup() is const.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace banyan::dp::balancer {

struct MaglevEntry {
  uint64_t id_hash;  // seeds the member's permutation
  uint32_t weight;   // > 0; entries with weight 0 get no slot
};

class MaglevTable {
 public:
  static constexpr uint32_t kDefaultSize = 65537;  // prime, >> 100 x members

  // Builds the table; entry order does not matter. Returns false (and leaves the
  // table empty) on empty input or when no entry has weight > 0. `size` must be a
  // prime (so every skip generates a full permutation); anything else is a
  // programming error and crashes.
  bool build(std::span<const MaglevEntry> entries, uint32_t size = kDefaultSize);
  // Index into the `entries` given to build(), or -1 when the table is empty.
  int lookup(uint64_t hash) const {
    if (table_.empty()) return -1;
    return table_[hash % table_.size()];
  }
  bool empty() const { return table_.empty(); }
  uint32_t size() const { return static_cast<uint32_t>(table_.size()); }

 private:
  std::vector<int32_t> table_;
};

}  // namespace banyan::dp::balancer
