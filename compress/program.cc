#include "compress/program.h"

#include <algorithm>
#include <cmath>

#include "compress/quantize_kernel.h"
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

Requantizer::Requantizer(int fc, const FixedType& t, int out_shift)
    : t_(t), s_(fc - t.f), out_shift_(out_shift) {
  const int w = t.k + t.i + t.f;
  zero_ = w <= 0;
  if (zero_) return;
  KILN_CHECK(w < 62, "fixed-point width " + std::to_string(w) + " too wide for int64 codes");
  if (s_ <= 0) KILN_CHECK(-s_ < 62, "shift by " + std::to_string(-s_));
  if (s_ > 0 && s_ < 63) step_ = int64_t{1} << s_, half_ = step_ >> 1;
  // Overflow on the code grid: [lo, hi] = [-k 2^(i+f), 2^(i+f) - 1].
  const int mag = t.i + t.f;  // w - k
  hi_ = mag >= 0 ? (int64_t{1} << mag) - 1 : 0;
  // SAT_SYM's range is symmetric: even the exact minimum code maps to -max (-2.0 -> -1.75 in ap_fixed<4,2>).
  lo_ = t.k ? (t.overflow == Overflow::kSatSym ? -hi_ : -(int64_t{1} << mag)) : 0;
  const bool nearest = t.round == Round::kRnd || t.round == Round::kStochastic;
  simple_ = (nearest || t.round == Round::kTrn) && s_ < 63;
  rs_ = std::max(s_, 0), ls_ = std::max(-s_, 0), width_ = w;
  add_ = nearest && s_ > 0 ? half_ : 0;  // floor((c + half) / step) = floor(c / step) + (r >= half)
}

int64_t Requantizer::overflow(int64_t q) const {
  switch (t_.overflow) {
    case Overflow::kWrap: {
      const int64_t mod = int64_t{1} << (t_.k + t_.i + t_.f);
      int64_t m = q & (mod - 1);  // two's complement: q mod 2^w
      if (t_.k && m >= (mod >> 1)) m -= mod;
      return m;
    }
    case Overflow::kSat:
      return q < lo_ ? lo_ : hi_;
    case Overflow::kSatSym:
      return q < lo_ ? (t_.k ? -hi_ : 0) : hi_;
    case Overflow::kSatZero:
      return 0;
  }
  return q;
}

int64_t requantize(int64_t c, int fc, const FixedType& t) { return Requantizer(fc, t)(c); }

namespace {
// The simple form for overflow mode kOv and sign kK (the same for every entry of a quantize op): the same
// codes as Requantizer::operator() (|c| < 2^62, so c + add does not overflow), in a loop of int64 vector
// operations that AVX2 has. Its missing arithmetic shift is a logical one between two flips of a negative
// value's bits (~v >> s == ~(v >> s)); WRAP's sign extension from `width` bits is (v & mask ^ sign) - sign.
template <Overflow kOv, bool kK>
void requantize_simple(const RequantizeRows::Fast& q, const int64_t* __restrict x, int64_t* __restrict y,
                       int64_t n) {
  const int64_t nb = static_cast<int64_t>(q.size());
  const int64_t* __restrict add = q.add.data();
  const int64_t* __restrict rs = q.rs.data();
  const int64_t* __restrict ls = q.ls.data();
  const int64_t* __restrict lo = q.lo.data();
  const int64_t* __restrict hi = q.hi.data();
  const int64_t* __restrict mask = q.mask.data();
  const int64_t* __restrict sign = q.sign.data();
  const int64_t* __restrict out_shift = q.out_shift.data();
  const int64_t* __restrict keep = q.keep.data();
  // Tiles of entries, each over all rows: a tile's nine constants (72 bytes per entry) stay in L1 across the
  // rows of a batch instead of streaming from L2 once per sample.
  constexpr int64_t kTile = 256;
  for (int64_t ea = 0; ea < nb; ea += kTile)
    for (int64_t r0 = 0, eb = std::min(nb, ea + kTile); r0 < n; r0 += nb) {
      const int64_t* __restrict xr = x + r0;
      int64_t* __restrict yr = y + r0;
      for (int64_t e = ea; e < eb; ++e) {
        const uint64_t c = static_cast<uint64_t>(xr[e] + add[e]);
        const uint64_t flip = static_cast<uint64_t>(-static_cast<int64_t>(xr[e] + add[e] < 0));
        uint64_t v = ((c ^ flip) >> rs[e]) ^ flip;  // floor((x + add) / 2^rs)
        v <<= ls[e];
        int64_t q;
        if constexpr (kOv == Overflow::kWrap) {
          q = kK ? static_cast<int64_t>(
                       ((v & static_cast<uint64_t>(mask[e])) ^ static_cast<uint64_t>(sign[e])) -
                       static_cast<uint64_t>(sign[e]))
                 : static_cast<int64_t>(v & static_cast<uint64_t>(mask[e]));
        } else if constexpr (kOv == Overflow::kSatZero) {
          const int64_t s = static_cast<int64_t>(v);
          q = (s < lo[e]) | (s > hi[e]) ? 0 : s;
        } else {  // SAT, and SAT_SYM, whose lo is -hi when signed
          const int64_t s = static_cast<int64_t>(v);
          q = s < lo[e] ? lo[e] : s;
          q = q > hi[e] ? hi[e] : q;
        }
        yr[e] =
            static_cast<int64_t>((static_cast<uint64_t>(q) << out_shift[e]) & static_cast<uint64_t>(keep[e]));
      }
    }
}
}  // namespace

RequantizeRows::RequantizeRows(std::vector<Requantizer> rq) : rq_(std::move(rq)) {
  bool simple = !rq_.empty();
  for (const Requantizer& q : rq_)
    simple = simple && (q.zero_ || q.simple_) && q.t_.k == rq_[0].t_.k && q.t_.overflow == rq_[0].t_.overflow;
  if (!simple) return;
  for (const Requantizer& q : rq_) {  // a pruned entry: any valid shifts, its result is replaced by 0
    const int width = q.zero_ ? 1 : q.width_;
    fast_.add.push_back(q.add_), fast_.rs.push_back(q.rs_), fast_.ls.push_back(q.ls_);
    fast_.lo.push_back(q.lo_), fast_.hi.push_back(q.hi_);
    fast_.mask.push_back(static_cast<int64_t>((uint64_t{1} << width) - 1));
    fast_.sign.push_back(static_cast<int64_t>(uint64_t{1} << (width - 1)));
    fast_.out_shift.push_back(q.zero_ ? 0 : q.out_shift_);
    fast_.keep.push_back(q.zero_ ? 0 : -1);
  }
}

void RequantizeRows::run(const int64_t* x, int64_t* y, int64_t n) const {
  const int64_t nb = static_cast<int64_t>(rq_.size());
  if (fast_.size() == 0) {
    for (int64_t r0 = 0; r0 < n; r0 += nb)
      for (int64_t e = 0; e < nb; ++e) y[r0 + e] = rq_[static_cast<size_t>(e)](x[r0 + e]);
    return;
  }
  const Overflow ov = rq_[0].t_.overflow;
  const bool k = rq_[0].t_.k != 0;
  if (ov == Overflow::kWrap)
    return k ? requantize_simple<Overflow::kWrap, true>(fast_, x, y, n)
             : requantize_simple<Overflow::kWrap, false>(fast_, x, y, n);
  if (ov == Overflow::kSatZero) return requantize_simple<Overflow::kSatZero, false>(fast_, x, y, n);
  requantize_simple<Overflow::kSat, false>(fast_, x, y, n);  // SAT, SAT_SYM
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

namespace {
// The scalar definition, element by element (every rounding mode; the path the kernel below cannot take).
void quantize_input_scalar(const Program& p, const float* x, int64_t n, int64_t* codes) {
  const Buffer& b = p.input();
  const TypeTable& tt = p.input_types;
  std::vector<PreparedType> types;  // each entry's type prepared once (pruned entries: unused)
  for (size_t j = 0; j < tt.f.size(); ++j)
    types.push_back(tt.width(j) > 0 ? prepare(tt.type(j)) : PreparedType{tt.type(j), true, 1, 1, 0, 0, 1});
  for (int64_t r = 0; r < n; ++r)
    for (int64_t e = 0; e < b.size; ++e) {
      const PreparedType& t = types[static_cast<size_t>(tt.entry(e, b.shape.back()))];
      if (t.pruned) continue;
      const double xq = quantize_traced(static_cast<double>(x[r * b.size + e]), t, 0.5, true).value;
      codes[r * b.size + e] = to_code(xq, t.t.f) * (int64_t{1} << (b.frac - t.t.f));
    }
}
}  // namespace

std::vector<int64_t> quantize_input(const Program& p, const float* x, int64_t n) {
  const Buffer& b = p.input();
  const TypeTable& tt = p.input_types;
  std::vector<int64_t> codes(static_cast<size_t>(n * b.size));
  // The quantizer's own vectorised kernel (compress/quantize_kernel.h: bit for bit the scalar definition)
  // where it applies, as the quantized forward runs it; entry e serves the elements j with j % entries == e
  // in all three patterns (one entry, one per channel of the last axis, one per element).
  const int64_t entries = static_cast<int64_t>(tt.f.size());
  std::vector<int> ib(tt.f.size());
  for (size_t j = 0; j < tt.f.size(); ++j) ib[j] = tt.type(j).i;
  const auto table = entries > 0 && b.size % entries == 0
                         ? qkernel::make_table(tt.k, ib, tt.f, tt.round, tt.overflow, /*training=*/false)
                         : nullptr;
  if (!table) {
    quantize_input_scalar(p, x, n, codes.data());
    return codes;
  }
  std::vector<double> scale(tt.f.size());  // 2^f per entry
  for (size_t j = 0; j < tt.f.size(); ++j) scale[j] = std::ldexp(1.0, tt.f[j]);
  std::vector<float> xq(codes.size());
  qkernel::forward(*table, x, xq.data(), n * b.size);
  for (int64_t r0 = 0; r0 < n * b.size; r0 += entries)
    for (size_t e = 0; e < tt.f.size(); ++e) {
      if (tt.width(e) <= 0) continue;  // pruned: code 0
      // |f| <= 64 on the kernel's path: the product is exactly ldexp(xq, f), without its call per element.
      const double v = static_cast<double>(xq[static_cast<size_t>(r0) + e]);
      codes[static_cast<size_t>(r0) + e] =
          checked_code(v * scale[e], v, tt.f[e]) * (int64_t{1} << (b.frac - tt.f[e]));
    }
  return codes;
}

const std::vector<int64_t>& run(const Program& p, const int64_t* input_codes, int64_t samples,
                                Codes& workspace) {
  // The ops' exactness rests on every code lying in its buffer's proven range (a float product's bound, its
  // fast conversions), so an input outside the input types' range is refused instead of computed wrongly.
  const Buffer& in = p.input();
  KILN_CHECK(samples >= 1, "deployed program: " + std::to_string(samples) + " samples");
  if (static_cast<int64_t>(p.input_lo.size()) == in.size)
    for (int64_t j = 0; j < samples * in.size; ++j) {
      const size_t e = static_cast<size_t>(j % in.size);
      if (input_codes[j] < p.input_lo[e] || input_codes[j] > p.input_hi[e])
        throw InputError("deployed program: input code " + std::to_string(input_codes[j]) + " at element " +
                         std::to_string(e) +
                         (samples > 1 ? " of sample " + std::to_string(j / in.size) : "") +
                         " is outside its type's range [" + std::to_string(p.input_lo[e]) + ", " +
                         std::to_string(p.input_hi[e]) + "]");
    }
  workspace.buf.resize(p.buffers.size());
  workspace.samples = samples;
  workspace[0].assign(input_codes, input_codes + samples * in.size);
  for (const Op& op : p.ops) kRun[op.kind](p, op, workspace);
  return workspace[static_cast<size_t>(p.output)];
}

std::vector<int64_t> run(const Program& p, const std::vector<int64_t>& input_codes) {
  const Buffer& in = p.input();
  if (static_cast<int64_t>(input_codes.size()) != in.size)
    throw ShapeError("deployed program: " + std::to_string(input_codes.size()) +
                     " input codes, the model takes " + std::to_string(in.size));
  Codes buf;
  return run(p, input_codes.data(), 1, buf);
}

}  // namespace kiln::compress
