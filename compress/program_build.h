// Range and grid helpers that ProgramBuilder methods in more than one compress/program_*.cc file share.
// Internal to compress/ (only those files include it; program.h is the interface). Inline: small
// builder-time helpers, compiled in each file that uses them.
#pragma once
#include <algorithm>
#include <vector>

#include "compress/program.h"

namespace kiln::compress::program_build {

// The finest grid of the nonzero codes (a pruned weight or bias is 0 on any grid).
inline int finest(const std::vector<int64_t>& code, const std::vector<int>& frac) {
  int f = 0;
  bool any = false;
  for (size_t j = 0; j < code.size(); ++j)
    if (code[j] != 0) f = any ? std::max(f, frac[j]) : frac[j], any = true;
  return f;
}

// A buffer of the given shape on `frac` whose every element lies in [lo, hi].
inline Buffer uniform_buffer(const Shape& shape, int frac, int64_t lo, int64_t hi) {
  Buffer b;
  b.shape = shape, b.size = shape_numel(shape), b.frac = frac;
  b.lo.assign(static_cast<size_t>(b.size), lo), b.hi.assign(static_cast<size_t>(b.size), hi);
  return b;
}

}  // namespace kiln::compress::program_build
