// splitmix64 finalizer (Steele, Lea, Flood: "Fast splittable pseudorandom
// number generators", 2014): bijective, so distinct inputs never collide, and
// every input bit affects every output bit. Shared by the address hash and the
// Maglev permutations; changing it changes every client's member.
#pragma once

#include <cstdint>

namespace banyan::dp::balancer {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace banyan::dp::balancer
