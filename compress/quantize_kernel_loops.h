// The element loops of quantize_kernel.cc, included there twice: once for the build's baseline instruction
// set (x86-64-v3: AVX2 and FMA) and once under `#pragma GCC target` for AVX-512, each copy in its own
// namespace (KILN_QK_ISA). Both give the same bits: every element goes through the same IEEE operations (no
// fast-math), and every sum runs over the rows in the same order whatever the vector width, because the loops
// vectorise across bit entries, never across one sum's terms. GCC does fuse a * b + c into an FMA here (its
// default for C++), in either copy; that changes no value because every such product is exact: power-of-two
// scalings of integer-valued codes, float x float in double, and x 0 or x 1. A new product in these loops
// must be exact too, or kept out of a sum: quantize_kernel_test compares both copies with the
// element-by-element definition, which would then differ. The baseline copy must be included first, so that
// the headers' inline functions and templates are compiled outside the AVX-512 region. No include guard, by
// design.
namespace KILN_QK_ISA {

namespace {

constexpr double kLn2 = 0.69314718055994530942;
// Entries per tile: the element loops run over all rows of one tile of bit entries before the next, so that
// the tile's constants and sums (about 50 bytes per entry) stay in L1 instead of streaming from L2 once per
// row. Each entry's sums still run over the rows in ascending order.
constexpr int64_t kTile = 512;
// Tiles run in parallel from this many elements on (over_tiles).
constexpr int64_t kParallel = 1 << 15;
// What the backward does with gx: nothing (no gradient wanted), add to it, or write 0 + the gradient into a
// buffer just allocated (the same bits as adding to a zero fill, without the fill).
// kInPlace: gx is g's own buffer (the output gradient is not needed afterwards): each element's g is read
// before its gx is written, through gx alone, so no two restrict pointers alias.
constexpr int kNone = 0, kAdd = 1, kFresh = 2, kInPlace = 3;

FixedType type_of(const Table& t, int64_t e) {
  return {t.k, t.i[static_cast<size_t>(e)], t.f[static_cast<size_t>(e)], t.round, t.overflow};
}

// The element's code and region, the same expressions in the forward and the backward (the backward
// recomputes them from x instead of reading a stored region: less memory traffic, and a loop of floats only,
// which the compiler vectorises 8 wide; a byte array in the loop made it 32 wide and spill).
struct Code {
  float rc;          // the rounded code, in units of 2^-f
  int above, below;  // outside [lo, hi]
};

template <bool kRnd>
inline Code code_of(float s, float hi, float lo) {
  const float fl = std::floor(s);
  const float rc = kRnd ? (s - fl >= 0.5f ? fl + 1.f : fl) : fl;
  return {rc, rc > hi, rc < lo};
}

// The rows of a tile are runs of at most 2 KB, one per sample, nb entries apart. The backward's x (and often
// its gradient) is a training step's activation that left the cache after the forward, and the range pass is
// the first to read a fresh activation: each of their rows asks for the one kAhead rows further on. An HGQ
// epoch of the Fashion-MNIST CNN ran about 3% faster for each (ABBA pairs); two rows ahead did better than
// one or four, and the forward, which reads x after the range pass, gained nothing. The backward's two calls
// are written out in each loop: a shared helper for them compiled to fewer prefetches (92 instead of 156 in
// the binary) and an epoch 3% slower (8 of 8 ABBA pairs).
constexpr int64_t kAhead = 2;
inline void prefetch_row(const float* p, int64_t ea, int64_t eb, bool write) {
  for (int64_t e = ea; e < eb; e += 16) {  // 16 floats: a 64-byte line
    if (write)
      __builtin_prefetch(p + e, 1);
    else
      __builtin_prefetch(p + e);
  }
}

// Runs tile(ea, eb) over the entries in tiles of kTile, in parallel once there are enough elements; each
// tile's sums stay on one thread in the same order, so the results do not depend on the thread count. The
// element loops live in their own functions: inside the parallel region's outlined body the compiler loses
// the restrict qualifiers and no longer vectorises them.
template <class Tile>
int over_tiles(int64_t nb, int64_t n, Tile&& tile) {
  int any = 0;
  const int64_t tiles = (nb + kTile - 1) / kTile;
#pragma omp parallel for schedule(static) reduction(| : any) if (n >= kParallel && tiles > 1)
  for (int64_t q = 0; q < tiles; ++q) any |= tile(q * kTile, std::min(nb, (q + 1) * kTile));
  return any;
}

// 1 when the scalar definition must compute the element: a NaN, inf, huge or underflowed (subnormal, or 0
// from a nonzero x) code s, or a WRAP overflow at inference whose code is too large for the float wrap below.
inline int needs_scalar(float xv, float s, float rc, int over, int wrap_now) {
  const float as = std::fabs(s);
  const int ok = (as < 0x1p62f) & ((as >= 0x1p-126f) | (xv == 0.f));
  return (ok ^ 1) | (wrap_now & over & (std::fabs(rc) >= 0x1p23f));
}

// The WRAP of an overflowing code rc at inference: rc - m floor((rc - lo) / m), m = 2^(k+i+f) = hi - lo + 1,
// which lands in [lo, hi]. Exact in float for |rc| < 2^23 (every step is an integer below 2^24 in magnitude
// or a power-of-two scaling), and a zero result takes rc's sign, as fmod gives it in the definition.
inline float wrap_code(float rc, float lo, float m, float inv_m) {
  const float w = rc - m * std::floor((rc - lo) * inv_m);
  return w == 0.f ? std::copysign(0.f, rc) : w;
}

// One row's elements [ea, eb), xr and yr pointing at element ea: the element loop, instantiated per rounding
// and overflow mode so that each is a straight vectorisable select chain. Returns bit 0 when some element
// must be redone by the scalar definition (forward's second pass finds which) and, with kFlagOver, bit 1 when
// some unpruned element lies outside its range (computed without wrapping it).
template <bool kRnd, Overflow kOv, bool kWrapNow, bool kFlagOver>
int forward_row(const Table& t, const float* __restrict xr, float* __restrict yr, int64_t ea, int64_t eb) {
  const float* __restrict scale = t.scale.data() + ea;
  const float* __restrict inv = t.inv.data() + ea;
  const float* __restrict hi = t.hi.data() + ea;
  const float* __restrict lo = t.lo.data() + ea;
  const float* __restrict top = t.top.data() + ea;
  const float* __restrict bottom = t.bottom.data() + ea;
  const float* __restrict mod = t.modulus.data() + ea;
  const float* __restrict inv_mod = t.inv_modulus.data() + ea;
  const int32_t* __restrict pruned = t.pruned.data() + ea;
  int any_scalar = 0, any_over = 0;
  // Selects on same-width values and bitwise & | (no short circuits) keep this loop vectorised.
  for (int64_t e = 0; e < eb - ea; ++e) {
    const float xv = xr[e], s = xv * scale[e];
    const Code c = code_of<kRnd>(s, hi[e], lo[e]);
    const int over = c.above | c.below;
    float v = c.rc * inv[e];
    if constexpr (kOv == Overflow::kSat || kOv == Overflow::kSatSym) {
      v = c.below ? bottom[e] : v;
      v = c.above ? top[e] : v;
    }
    if constexpr (kOv == Overflow::kSatZero) v = over ? 0.f : v;
    if constexpr (kWrapNow) v = over ? wrap_code(c.rc, lo[e], mod[e], inv_mod[e]) * inv[e] : v;
    const int p = pruned[e];
    yr[e] = p ? 0.f : v;
    any_scalar |= needs_scalar(xv, s, c.rc, over, kWrapNow) & (p ^ 1);
    if constexpr (kFlagOver) any_over |= over & (p ^ 1);
  }
  return any_scalar | (any_over << 1);
}

// The band [ea, eb) of `rows` rows: x row r at x + r * nb (the whole tensor), its output at out + r * ld (out
// and ld: the band's own layout; the whole tensor's is out + ea and nb). WRAP at inference first quantizes a
// row without wrapping, which is the result wherever nothing overflows (after calibration nearly everywhere),
// and redoes only the rows with an overflow through the wrapping loop, whose floor and selects cost about
// twice as much per element.
template <bool kRnd, Overflow kOv, bool kWrapNow>
int forward_band_rows(const Table& t, const float* x, int64_t rows, float* out, int64_t ld, int64_t ea,
                      int64_t eb) {
  const int64_t nb = t.nb();
  int any_scalar = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * nb + ea;
    float* yr = out + r * ld;
    if constexpr (kWrapNow) {
      const int flags = forward_row<kRnd, kOv, false, true>(t, xr, yr, ea, eb);
      any_scalar |= (flags & 2) ? forward_row<kRnd, kOv, true, false>(t, xr, yr, ea, eb) : flags;
    } else {
      any_scalar |= forward_row<kRnd, kOv, false, false>(t, xr, yr, ea, eb);
    }
  }
  return any_scalar;
}

// mark[j] = 1 for the elements forward_row sends to the scalar definition, else 0 (the same test).
template <bool kRnd>
void mark_scalar(const Table& t, const float* __restrict x, uint8_t* __restrict mark, int64_t n) {
  const int64_t nb = t.nb();
  const float* __restrict scale = t.scale.data();
  const float* __restrict hi = t.hi.data();
  const float* __restrict lo = t.lo.data();
  const int32_t* __restrict pruned = t.pruned.data();
  const int wrap_now = t.overflow == Overflow::kWrap && !t.training;
  for (int64_t r0 = 0; r0 < n; r0 += nb)
    for (int64_t e = 0; e < nb; ++e) {
      const float xv = x[r0 + e], s = xv * scale[e];
      const Code c = code_of<kRnd>(s, hi[e], lo[e]);
      mark[r0 + e] =
          static_cast<uint8_t>(needs_scalar(xv, s, c.rc, c.above | c.below, wrap_now) & (pruned[e] == 0));
    }
}

// The forward of one band (forward_band_rows) in t's modes.
template <bool kRnd>
int forward_band_mode(const Table& t, const float* x, int64_t rows, float* out, int64_t ld, int64_t ea,
                      int64_t eb) {
  switch (t.overflow) {
    case Overflow::kWrap:
      return t.training ? forward_band_rows<kRnd, Overflow::kWrap, false>(t, x, rows, out, ld, ea, eb)
                        : forward_band_rows<kRnd, Overflow::kWrap, true>(t, x, rows, out, ld, ea, eb);
    case Overflow::kSat:
      return forward_band_rows<kRnd, Overflow::kSat, false>(t, x, rows, out, ld, ea, eb);
    case Overflow::kSatSym:
      return forward_band_rows<kRnd, Overflow::kSatSym, false>(t, x, rows, out, ld, ea, eb);
    case Overflow::kSatZero:
      return forward_band_rows<kRnd, Overflow::kSatZero, false>(t, x, rows, out, ld, ea, eb);
  }
  return 1;
}

// The whole tensor, in tiles of entries (each a band of all rows).
template <bool kRnd>
int forward_mode(const Table& t, const float* x, float* out, int64_t n) {
  const int64_t nb = t.nb();
  return over_tiles(nb, n, [&](int64_t ea, int64_t eb) {
    return forward_band_mode<kRnd>(t, x, n / nb, out + ea, nb, ea, eb);
  });
}

// Element by element through the scalar definition and its surrogate: the exact path, for a tensor holding
// an element the float path could not take.
void backward_exact(const Table& t, const float* x, const float* g, int64_t n, float* gx, double* df_acc,
                    double* di_acc) {
  const int64_t nb = t.nb();
  for (int64_t r0 = 0; r0 < n; r0 += nb) {
    for (int64_t e = 0; e < nb; ++e) {
      const int64_t j = r0 + e;
      const FixedType ty = type_of(t, e);
      const LocalGrad lg = quantize_surrogate(x[j], quantize_traced(x[j], prepare(ty), 0.5, !t.training), ty);
      if (gx) gx[j] += g[j] * static_cast<float>(lg.dx);
      if (df_acc) df_acc[e] += static_cast<double>(g[j]) * static_cast<float>(lg.df);
      if (di_acc) di_acc[e] += static_cast<double>(g[j]) * static_cast<float>(lg.di);
    }
  }
}

// The same without scalar elements, as selects the compiler vectorises; sums in the same order. The region
// comes from code_of, as in the forward.
template <bool kRnd, int kGx>
void backward_tile(const Table& t, const float* __restrict x, const float* __restrict g, int64_t n,
                   float* __restrict gx, double* __restrict df_acc, double* __restrict di_acc, int64_t ea,
                   int64_t eb) {
  const int64_t nb = t.nb();
  const int wrap = t.overflow == Overflow::kWrap, unsigned_sat = !wrap && t.k == 0;
  const float* __restrict scale = t.scale.data();
  const float* __restrict inv = t.inv.data();
  const float* __restrict hi = t.hi.data();
  const float* __restrict lo = t.lo.data();
  const int32_t* __restrict pruned = t.pruned.data();
  const float* __restrict adf = t.above_df.data();
  const float* __restrict adi = t.above_di.data();
  const float* __restrict bdf = t.below_df.data();
  const float* __restrict bdi = t.below_di.data();
  for (int64_t r0 = 0; r0 < n; r0 += nb) {
    const float* __restrict xr = x + r0;
    const float* __restrict gr = g + r0;
    if (r0 + kAhead * nb < n) {
      prefetch_row(xr + kAhead * nb, ea, eb, false);
      prefetch_row((kGx == kInPlace ? gx + r0 : gr) + kAhead * nb, ea, eb, kGx == kInPlace);
    }
    for (int64_t e = ea; e < eb; ++e) {
      const float xv = xr[e], gv = kGx == kInPlace ? gx[r0 + e] : gr[e];
      const Code c = code_of<kRnd>(xv * scale[e], hi[e], lo[e]);
      const int pr = pruned[e] != 0, above = c.above & (pr ^ 1);
      const int straight = (((c.above | c.below) ^ 1) | wrap) & (pr ^ 1);
      const float rounded = c.rc * inv[e];
      const float df_in = static_cast<float>(kLn2 * (static_cast<double>(xv) - static_cast<double>(rounded)));
      const int dead = unsigned_sat & (xv < 0.f);
      const float pr_grad = dead ? 0.f : static_cast<float>(kLn2 * static_cast<double>(xv));
      float df = above ? adf[e] : bdf[e], di = above ? adi[e] : bdi[e];
      df = straight ? df_in : df;
      di = straight ? 0.f : di;
      df = pr ? pr_grad : df;
      di = pr ? (wrap ? 0.f : pr_grad) : di;
      if constexpr (kGx == kAdd) gx[r0 + e] += gv * (straight ? 1.f : 0.f);
      if constexpr (kGx == kFresh || kGx == kInPlace) gx[r0 + e] = 0.f + gv * (straight ? 1.f : 0.f);
      df_acc[e] += static_cast<double>(gv) * df;
      di_acc[e] += static_cast<double>(gv) * di;
    }
  }
}

template <bool kRnd, int kGx>
void backward_rows(const Table& t, const float* x, const float* g, int64_t n, float* gx, double* df_acc,
                   double* di_acc) {
  over_tiles(t.nb(), n, [&](int64_t ea, int64_t eb) {
    backward_tile<kRnd, kGx>(t, x, g, n, gx, df_acc, di_acc, ea, eb);
    return 0;
  });
}

// WRAP in training or at inference, no scalar elements: the general loop above with what WRAP fixes folded
// in. Every element is straight through except the pruned ones (dx 0); df is ln2 (x - rounded), with 0 in
// place of rounded for a pruned element (its ln2 x); di is 0 everywhere, so its sum over the rows is +0
// unless some g is inf or NaN (g * 0 is then NaN): a float sum of g * 0 per entry tracks exactly that, and is
// added to di at the end. Under RND, x - rounded is exact in float (Sterbenz: |rounded| / 2 <= |x| <= 2
// |rounded| unless rounded is 0), so only the product with ln2 needs double, as in the general loop.
template <bool kRnd, int kGx>
void backward_wrap_tile(const Table& t, const float* __restrict x, const float* __restrict g, int64_t n,
                        float* __restrict gx, double* __restrict df_acc, float* __restrict gz, int64_t ea,
                        int64_t eb) {
  const int64_t nb = t.nb();
  const float* __restrict scale = t.scale.data();
  const float* __restrict inv = t.inv.data();
  const int32_t* __restrict pruned = t.pruned.data();
  for (int64_t r0 = 0; r0 < n; r0 += nb) {
    const float* __restrict xr = x + r0;
    const float* __restrict gr = g + r0;
    if (r0 + kAhead * nb < n) {
      prefetch_row(xr + kAhead * nb, ea, eb, false);
      prefetch_row((kGx == kInPlace ? gx + r0 : gr) + kAhead * nb, ea, eb, kGx == kInPlace);
    }
    for (int64_t e = ea; e < eb; ++e) {
      const float xv = xr[e], gv = kGx == kInPlace ? gx[r0 + e] : gr[e];
      const int pr = pruned[e] != 0;
      const float rc = code_of<kRnd>(xv * scale[e], 0.f, 0.f).rc;  // WRAP: the region does not matter
      const float rounded = pr ? 0.f : rc * inv[e];
      const double d =
          kRnd ? static_cast<double>(xv - rounded) : static_cast<double>(xv) - static_cast<double>(rounded);
      const float df = static_cast<float>(kLn2 * d);
      if constexpr (kGx == kAdd) gx[r0 + e] += gv * (pr ? 0.f : 1.f);
      if constexpr (kGx == kFresh || kGx == kInPlace) gx[r0 + e] = 0.f + gv * (pr ? 0.f : 1.f);
      df_acc[e] += static_cast<double>(gv) * df;
      gz[e] += gv * 0.f;
    }
  }
}

template <bool kRnd, int kGx>
void backward_wrap(const Table& t, const float* x, const float* g, int64_t n, float* gx, double* df_acc,
                   double* di_acc) {
  const int64_t nb = t.nb();
  std::vector<float> zero_sum(static_cast<size_t>(nb), 0.f);
  float* gz = zero_sum.data();
  over_tiles(nb, n, [&](int64_t ea, int64_t eb) {
    backward_wrap_tile<kRnd, kGx>(t, x, g, n, gx, df_acc, gz, ea, eb);
    return 0;
  });
  for (int64_t e = 0; e < nb; ++e) di_acc[e] += static_cast<double>(gz[e]);
}

// lo[e] = min(lo[e], x[j]) and hi[e] = max(hi[e], x[j]) over the elements j of entries [ea, eb), rows in
// order.
void min_max_tile(const float* __restrict x, int64_t n, int64_t nb, float* __restrict lo,
                  float* __restrict hi, int64_t ea, int64_t eb) {
  for (int64_t r0 = 0; r0 < n; r0 += nb) {
    if (r0 + kAhead * nb < n) prefetch_row(x + r0 + kAhead * nb, ea, eb, false);
    for (int64_t e = ea; e < eb; ++e) {
      lo[e] = std::min(lo[e], x[r0 + e]);
      hi[e] = std::max(hi[e], x[r0 + e]);
    }
  }
}

template <bool kRnd>
void backward_mode(const Table& t, const float* x, const float* g, int64_t n, float* gx, int gx_mode,
                   double* df, double* di) {
  const bool wrap = t.overflow == Overflow::kWrap;
  switch (gx_mode) {
    case kNone:
      return wrap ? backward_wrap<kRnd, kNone>(t, x, g, n, gx, df, di)
                  : backward_rows<kRnd, kNone>(t, x, g, n, gx, df, di);
    case kAdd:
      return wrap ? backward_wrap<kRnd, kAdd>(t, x, g, n, gx, df, di)
                  : backward_rows<kRnd, kAdd>(t, x, g, n, gx, df, di);
    case kFresh:
      return wrap ? backward_wrap<kRnd, kFresh>(t, x, g, n, gx, df, di)
                  : backward_rows<kRnd, kFresh>(t, x, g, n, gx, df, di);
    default:  // in place (gx == g): the loops read the buffer through gx only
      return wrap ? backward_wrap<kRnd, kInPlace>(t, x, g, n, gx, df, di)
                  : backward_rows<kRnd, kInPlace>(t, x, g, n, gx, df, di);
  }
}

}  // namespace

int forward(const Table& t, const float* x, float* out, int64_t n) {
  const int64_t nb = t.nb();
  KILN_CHECK(nb > 0 && n % nb == 0, "qkernel::forward: " + std::to_string(n) + " elements for " +
                                        std::to_string(nb) + " bit entries");
  const int any =
      t.round == Round::kRnd ? forward_mode<true>(t, x, out, n) : forward_mode<false>(t, x, out, n);
  if (!any) return 0;
  // Rare (non-finite inputs, huge codes): mark the elements again (a vectorised pass over bytes)
  // and redo them through the scalar definition, skipping chunks without one.
  std::vector<uint8_t> mark(static_cast<size_t>(n));
  if (t.round == Round::kRnd)
    mark_scalar<true>(t, x, mark.data(), n);
  else
    mark_scalar<false>(t, x, mark.data(), n);
  constexpr int64_t kChunk = 256;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t c1 = std::min(n, c0 + kChunk);
    int hit = 0;
    for (int64_t j = c0; j < c1; ++j) hit |= mark[static_cast<size_t>(j)];
    if (!hit) continue;
    for (int64_t j = c0; j < c1; ++j) {
      if (!mark[static_cast<size_t>(j)]) continue;
      const PreparedType p = prepare(type_of(t, j % nb));
      out[j] = static_cast<float>(quantize_traced(x[j], p, 0.5, !t.training).value);
    }
  }
  return 1;
}

void column_min_max(const float* x, int64_t n, int64_t nb, float* lo, float* hi) {
  KILN_CHECK(nb > 0 && n % nb == 0, "qkernel::column_min_max: " + std::to_string(n) + " elements for " +
                                        std::to_string(nb) + " entries");
  over_tiles(nb, n, [&](int64_t ea, int64_t eb) {
    min_max_tile(x, n, nb, lo, hi, ea, eb);
    return 0;
  });
}

void backward(const Table& t, const float* x, bool exact, const float* g, int64_t n, float* gx, bool gx_fresh,
              double* df_acc, double* di_acc) {
  const int64_t nb = t.nb();
  KILN_CHECK(!(exact && gx == g), "qkernel::backward: in place needs the vectorised path");
  if (exact) {
    if (gx && gx_fresh) std::fill(gx, gx + n, 0.f);
    return backward_exact(t, x, g, n, gx, df_acc, di_acc);
  }
  // Sums nobody asked for go to scratch: the loop stays free of branches.
  std::vector<double> scratch_f(df_acc ? 0 : static_cast<size_t>(nb)),
      scratch_i(di_acc ? 0 : static_cast<size_t>(nb));
  double* df = df_acc ? df_acc : scratch_f.data();
  double* di = di_acc ? di_acc : scratch_i.data();
  const int mode = !gx ? kNone : gx == g ? kInPlace : gx_fresh ? kFresh : kAdd;
  if (t.round == Round::kRnd)
    backward_mode<true>(t, x, g, n, gx, mode, df, di);
  else
    backward_mode<false>(t, x, g, n, gx, mode, df, di);
}

int forward_band(const Table& t, const float* x, int64_t rows, float* out, int64_t ld, int64_t ea,
                 int64_t eb) {
  return t.round == Round::kRnd ? forward_band_mode<true>(t, x, rows, out, ld, ea, eb)
                                : forward_band_mode<false>(t, x, rows, out, ld, ea, eb);
}

}  // namespace KILN_QK_ISA
