// The search's random number generator: xoshiro256** seeded through SplitMix64. Small (32 bytes), fast,
// and with our own distributions, so a seed gives the same numbers on every standard library.
// Every random operator takes an Rng& explicitly; the search gives each offspring slot its own Rng
// seeded from (master seed, generation, island, slot), which is why results do not depend on the thread
// count (style.md, principle 7).
//
//   Rng rng = Rng::derive(seed, {generation, island, slot});
//   int k = rng.below(10);  double u = rng.uniform();  double z = rng.normal();
#pragma once
#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace kiln::symreg {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) w = splitmix(seed);
  }
  // An independent stream for a task identified by `ids` under the master seed.
  static Rng derive(uint64_t seed, std::initializer_list<uint64_t> ids) {
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
    for (uint64_t id : ids) h = splitmix(h) ^ (id + 0x632be59bd9b4e019ull);
    return Rng(h);
  }

  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0], s_[3] ^= s_[1], s_[1] ^= s_[2], s_[0] ^= s_[3], s_[2] ^= t, s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Integer in [0, n), n >= 1 (Lemire's multiply-shift; the bias is below 2^-32 for our n).
  int below(int n) { return static_cast<int>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32); }
  bool chance(double p) { return uniform() < p; }
  double normal() {  // Box-Muller, one value per call
    double u = 1.0 - uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

}  // namespace kiln::symreg
