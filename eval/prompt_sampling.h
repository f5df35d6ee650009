#pragma once
// Seeded sampling of prompt indices that gives the same answer on every platform and
// compiler (std::shuffle and the std:: distributions are implementation-defined).
//
// Algorithm (fixed; changing it changes which prompts a seeded cell runs on):
//  1. Generator: SplitMix64 (Steele, Lea, Flood 2014) with state = seed; each draw adds
//     0x9E3779B97F4A7C15 to the state and mixes it with the published constants.
//  2. Uniform integer in [0, m): draw r until r >= (2^64 - m) mod m (rejection, no modulo
//     bias), then r mod m.
//  3. Partial Fisher–Yates over [0, n): for i = 0..k-1, j = i + uniform(n - i), swap(a[i], a[j]).
//  4. The first k entries, sorted ascending: samples keep the file order.

#include <cstdint>
#include <vector>

namespace kvsafe::eval {

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  // Uniform in [0, bound); bound must be > 0.
  std::uint64_t uniform(std::uint64_t bound);

 private:
  std::uint64_t state_;
};

// k distinct indices of [0, n), ascending; all of them when k >= n.
std::vector<std::size_t> sample_indices(std::size_t n, std::size_t k, std::uint64_t seed);

}  // namespace kvsafe::eval
