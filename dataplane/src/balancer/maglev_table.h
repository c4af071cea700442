// Weighted Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4), with weights applied
// by letting a member take several turns per round in proportion to its weight.
// Building is deterministic given the entries, so every amphora builds the same
// table and clients keep affinity across failover.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace banyan::dp::balancer {

struct MaglevEntry {
  uint64_t id_hash;  // seeds the member's permutation
  uint32_t weight;   // > 0
};

class MaglevTable {
 public:
  static constexpr uint32_t kDefaultSize = 65537;  // prime, >> 100 x members

  // Builds the table; entry order does not matter. Returns false on empty input.
  bool build(std::span<const MaglevEntry> entries, uint32_t size = kDefaultSize);
  // Index into the `entries` given to build(), or -1 when the table is empty.
  int lookup(uint64_t hash) const;
  bool empty() const { return table_.empty(); }
  uint32_t size() const { return static_cast<uint32_t>(table_.size()); }

 private:
  std::vector<int32_t> table_;
};

}  // namespace banyan::dp::balancer
