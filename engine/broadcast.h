// Numpy broadcasting as an index map: for each flat index of the output, the flat index of an input
// whose shape broadcasts to it. Shared by the elementwise ops and by ops with broadcast parameters
// (quantizers' per-channel bit widths).
#pragma once
#include "engine/tensor.h"

namespace kiln {

// Maps each flat index of the output to the flat index of an input of shape `in` broadcast to `out`.
class BroadcastMap {
 public:
  BroadcastMap(const Shape& in, const Shape& out) : numel_in_(shape_numel(in)) {
    if (in == out) {
      kind_ = kSame;
    } else if (numel_in_ == 1) {
      kind_ = kScalar;
    } else if (is_suffix(in, out)) {
      kind_ = kSuffix;  // [.., C] against [N, .., C]: index modulo numel
    } else {
      kind_ = kGeneral;
      size_t n = out.size();
      out_ = out;
      strides_.assign(n, 0);
      int64_t s = 1;
      for (size_t i = n; i-- > 0;) {
        size_t j = i - (n - in.size());
        bool present = i >= n - in.size();
        if (present && in[j] != 1) strides_[i] = s;
        if (present) s *= in[j];
      }
    }
  }
  int64_t operator()(int64_t i) const {
    switch (kind_) {
      case kSame: return i;
      case kScalar: return 0;
      case kSuffix: return i % numel_in_;
      default: {
        int64_t off = 0;
        for (size_t d = out_.size(); d-- > 0;) {
          off += (i % out_[d]) * strides_[d];
          i /= out_[d];
        }
        return off;
      }
    }
  }

 private:
  static bool is_suffix(const Shape& in, const Shape& out) {
    if (in.size() > out.size()) return false;
    for (size_t i = 0; i < in.size(); ++i)
      if (in[in.size() - 1 - i] != out[out.size() - 1 - i]) return false;
    return true;
  }
  enum Kind { kSame, kScalar, kSuffix, kGeneral } kind_;
  int64_t numel_in_;
  Shape out_, strides_;
};

}  // namespace kiln
