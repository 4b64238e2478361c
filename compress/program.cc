#include "compress/program.h"

#include <algorithm>
#include <cmath>

#include "engine/ops.h"

namespace kiln::compress {

Window window_of(const Shape& in, const Shape& out, const nn::Geometry& g) {
  const bool two = g.dims == 2;
  Window w;
  w.H = two ? in[0] : 1, w.W = in[two ? 1 : 0], w.C = in.back();
  w.KH = two ? g.window[0] : 1, w.KW = g.window[two ? 1 : 0];
  w.SH = two ? g.strides[0] : 1, w.SW = g.strides[two ? 1 : 0];
  w.OH = two ? out[0] : 1, w.OW = out[two ? 1 : 0];
  w.PH = two ? conv_pad_before(w.H, w.KH, w.SH, g.padding) : 0,
  w.PW = conv_pad_before(w.W, w.KW, w.SW, g.padding);
  return w;
}

bool Window::padded() const {
  return PH > 0 || PW > 0 || (OH - 1) * SH - PH + KH > H || (OW - 1) * SW - PW + KW > W;
}

int64_t requantize(int64_t c, int fc, const FixedType& t) {
  const int w = t.k + t.i + t.f;
  if (w <= 0) return 0;  // zero width: pruned
  KILN_CHECK(w < 62, "fixed-point width " + std::to_string(w) + " too wide for int64 codes");
  int64_t q;
  const int s = fc - t.f;
  if (s <= 0) {
    KILN_CHECK(-s < 62, "shift by " + std::to_string(-s));
    q = c * (int64_t{1} << -s);  // finer target grid: exact
  } else if (s >= 63) {
    // |c| < 2^62, so |c| / 2^s < 1/2: every nearest mode gives 0, TRN floors, TRN_ZERO truncates.
    q = (t.round == Round::kTrn && c < 0) ? -1 : 0;
  } else {
    const int64_t step = int64_t{1} << s, half = step >> 1;
    q = c >> s;                      // floor (arithmetic shift)
    const int64_t r = c - q * step;  // 0 <= r < step
    bool up = false;
    switch (t.round) {
      case Round::kTrn:
        up = false;
        break;
      case Round::kTrnZero:
        up = c < 0 && r != 0;
        break;
      case Round::kRnd:
      case Round::kStochastic:
        up = r >= half;
        break;
      case Round::kRndZero:
        up = r > half || (r == half && q < 0);
        break;
      case Round::kRndMinInf:
        up = r > half;
        break;
      case Round::kRndInf:
        up = r > half || (r == half && q >= 0);
        break;
      case Round::kRndConv:
        up = r > half || (r == half && (q & 1) != 0);
        break;
    }
    q += up ? 1 : 0;
  }
  // Overflow on the code grid: [lo, hi] = [-k 2^(i+f), 2^(i+f) - 1].
  const int mag = t.i + t.f;  // w - k
  const int64_t hi = mag >= 0 ? (int64_t{1} << mag) - 1 : 0;
  // SAT_SYM's range is symmetric: even the exact minimum code maps to -max (-2.0 -> -1.75 in ap_fixed<4,2>).
  const int64_t lo = t.k ? (t.overflow == Overflow::kSatSym ? -hi : -(int64_t{1} << mag)) : 0;
  if (q >= lo && q <= hi) return q;
  switch (t.overflow) {
    case Overflow::kWrap: {
      const int64_t mod = int64_t{1} << w;
      int64_t m = q & (mod - 1);  // two's complement: q mod 2^w
      if (t.k && m >= (mod >> 1)) m -= mod;
      return m;
    }
    case Overflow::kSat:
      return q < lo ? lo : hi;
    case Overflow::kSatSym:
      return q < lo ? (t.k ? -hi : 0) : hi;
    case Overflow::kSatZero:
      return 0;
  }
  return q;
}

int64_t Buffer::min() const {
  return std::min(held_min, lo.empty() ? 0 : *std::min_element(lo.begin(), lo.end()));
}
int64_t Buffer::max() const {
  return std::max(held_max, hi.empty() ? 0 : *std::max_element(hi.begin(), hi.end()));
}

int signed_bits(int64_t lo, int64_t hi) {
  int b = 1;
  while (b < 64 && (lo < -(int64_t{1} << (b - 1)) || hi > (int64_t{1} << (b - 1)) - 1)) ++b;
  return b;
}

int64_t TypeTable::entry(int64_t e, int64_t channels) const {
  switch (pattern) {
    case kUniform:
      return 0;
    case kChannel:
      return e % channels;
    case kElement:
      return e;
  }
  return e;
}

int64_t Op::nonzero() const {
  return std::count_if(weights.begin(), weights.end(), [](int64_t w) { return w != 0; });
}

namespace {
#define KILN_OP_NAME(kind, name, fn) name,
#define KILN_OP_RUN(kind, name, fn) &fn,
constexpr const char* kOpKindNames[] = {KILN_OP_KINDS(KILN_OP_NAME)};
constexpr void (*kRun[])(const Program&, const Op&, Codes&) = {KILN_OP_KINDS(KILN_OP_RUN)};
#undef KILN_OP_NAME
#undef KILN_OP_RUN
static_assert(std::size(kOpKindNames) == Op::kNumKinds && std::size(kRun) == Op::kNumKinds,
              "one entry per op kind");
}  // namespace

const char* op_kind_name(Op::Kind k) { return kOpKindNames[static_cast<size_t>(k)]; }

std::vector<int64_t> quantize_input(const Program& p, const float* x) {
  const Buffer& b = p.input();
  std::vector<int64_t> codes(static_cast<size_t>(b.size));
  for (int64_t e = 0; e < b.size; ++e) {
    const size_t j = static_cast<size_t>(p.input_types.entry(e, b.shape.back()));
    if (p.input_types.width(j) <= 0) continue;
    const FixedType t = p.input_types.type(j);
    codes[static_cast<size_t>(e)] =
        to_code(quantize(static_cast<double>(x[e]), t), t.f) * (int64_t{1} << (b.frac - t.f));
  }
  return codes;
}

std::vector<int64_t> run(const Program& p, const std::vector<int64_t>& input_codes) {
  Codes buf(p.buffers.size());
  buf[0] = input_codes;
  for (const Op& op : p.ops) kRun[op.kind](p, op, buf);
  return buf[static_cast<size_t>(p.output)];
}

}  // namespace kiln::compress
