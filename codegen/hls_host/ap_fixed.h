// ap_fixed<W, I, Q, O, N> / ap_ufixed<W, I, Q, O, N>: kiln's independent host model of the Xilinx
// arbitrary-precision fixed-point types, for host simulation of generated HLS code (not Xilinx's code; see
// ap_common.h for what "model" promises). W bits in all, I of them integer bits (sign included for
// ap_fixed), so F = W - I fractional bits; I may be negative or larger than W. A value is code * 2^-F.
//
//   ap_fixed<4, 2, AP_RND, AP_WRAP> x = 1.9;   // rounds to 2.0 first, which then wraps: -2
//   ap_fixed<8, 3> w = 0.75, a = -1.5;
//   auto p = w * a;                             // ap_fixed<16, 6>: exact
//   ap_fixed<12, 4, AP_TRN, AP_WRAP> acc = 0;
//   acc += p;                                   // full precision, then converted with acc's own Q and O
//   double d = acc.to_double();
//
// Conversions (from double/float, C integers, ap_int and any ap_fixed) are exact: the real value is rounded
// with the destination's Q, then overflow is handled with its O; N (saturation bits) must be 0 and
// AP_WRAP_SM is not modeled. Default construction gives 0.
// Result types, all exact (F = W - I):
//   a * b  -> ap_fixed<W1 + W2, I1 + I2>, ap_ufixed if both operands are unsigned;
//   a + b  -> F = max(F1, F2), I = max(I1 + (S2 && !S1), I2 + (S1 && !S2)) + 1, signed if either is;
//   a - b  -> as a + b, always signed;   -a -> ap_fixed<W + 1, I + 1>.
// A C integer operand acts as ap_fixed<32, 32> (int), ap_ufixed<32, 32> (unsigned), <64, 64> (long), and so
// on; an ap_int<W2> as ap_fixed<W2, W2>. Results wider than 64 bits do not compile. +=, -=, *= compute the
// full-precision result internally (up to 126 bits) and convert it with the left operand's Q and O.
// Shifts by a C integer keep the type: the bit pattern moves within the W bits, bits shifted out are lost,
// a right shift floors, a negative amount shifts the other way; no rounding or saturation happens.
// Comparisons between fixed-point and integer operands are exact (with Xilinx's C-style rule for wide
// mixed-sign operands, see ap_common.h); comparisons with a double compare to_double() with it.
// to_int()/to_int64() truncate toward zero (-2.5 -> -2) and keep the low 32/64 bits.
//
// Not modeled, so they do not compile: widths above 64, implicit conversion to built-in types (use
// to_double(), to_float(), to_int(), or a static_cast), arithmetic with float/double (Xilinx has none
// either), division, ++/--, bit and range selection, strings and streams (print x.to_double()).
#ifndef KILN_HLS_HOST_AP_FIXED_H_
#define KILN_HLS_HOST_AP_FIXED_H_

#include "ap_common.h"
#include "ap_int.h"

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
struct ap_fixed_base {
  static_assert(W >= 1 && W <= 64,
                "kiln ap_types: ap_fixed width W must be in [1, 64] (one 64-bit word in this host model); a "
                "wider full-precision result needs narrower operands");
  static_assert(O != AP_WRAP_SM, "kiln ap_types: AP_WRAP_SM is not modeled");
  static_assert(N == 0, "kiln ap_types: saturation bits N != 0 are not modeled");
  static const int width = W;
  static const int iwidth = I;
  static const ap_q_mode qmode = Q;
  static const ap_o_mode omode = O;

  ap_fixed_base() : bits_(0) {}
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_fixed_base(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op)
      : bits_(from_scaled(ap_host_detail::access::code(op), W2 - I2)) {}
  template <int W2, bool S2>
  ap_fixed_base(const ap_int_base<W2, S2>& op) : bits_(from_scaled(ap_host_detail::access::code(op), 0)) {}
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_fixed_base(T v) : bits_(from_scaled(static_cast<ap_host_detail::i128>(v), 0)) {}
  ap_fixed_base(double d) : bits_(from_double(d)) {}
  ap_fixed_base(float f) : bits_(from_double(static_cast<double>(f))) {}

  // Nearest double / float (ties to even), exact when the code fits the significand (W <= 53 / 24).
  double to_double() const {
    return std::ldexp(S ? static_cast<double>(ap_host_detail::as_int64(bits_)) : static_cast<double>(bits_),
                      -F);
  }
  float to_float() const {
    return std::ldexp(S ? static_cast<float>(ap_host_detail::as_int64(bits_)) : static_cast<float>(bits_),
                      -F);
  }
  int to_int() const { return ap_host_detail::as_int32(static_cast<uint32_t>(integer())); }
  unsigned to_uint() const { return static_cast<unsigned>(integer()); }
  long long to_int64() const { return ap_host_detail::as_int64(static_cast<uint64_t>(integer())); }
  unsigned long long to_uint64() const { return static_cast<unsigned long long>(integer()); }
  int length() const { return W; }
  // Xilinx converts implicitly; here only explicitly (static_cast<double>(x), (int)x), with the same values.
  explicit operator double() const { return to_double(); }
  explicit operator float() const { return to_float(); }
  explicit operator bool() const { return bits_ != 0; }
  explicit operator int() const { return to_int(); }
  explicit operator unsigned() const { return to_uint(); }
  explicit operator long() const { return static_cast<long>(to_int64()); }
  explicit operator unsigned long() const { return static_cast<unsigned long>(to_uint64()); }
  explicit operator long long() const { return to_int64(); }
  explicit operator unsigned long long() const { return to_uint64(); }

  // Compound assignment: the exact full-precision result, converted with this type's Q and O.
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_fixed_base& operator+=(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op) {
    return accumulate<W2, I2, S2>(ap_host_detail::access::code(op), 1);
  }
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_fixed_base& operator-=(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op) {
    return accumulate<W2, I2, S2>(ap_host_detail::access::code(op), -1);
  }
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_fixed_base& operator*=(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op) {
    return multiply<W2, I2, S2>(ap_host_detail::access::code(op));
  }
  template <int W2, bool S2>
  ap_fixed_base& operator+=(const ap_int_base<W2, S2>& op) {
    return accumulate<W2, W2, S2>(ap_host_detail::access::code(op), 1);
  }
  template <int W2, bool S2>
  ap_fixed_base& operator-=(const ap_int_base<W2, S2>& op) {
    return accumulate<W2, W2, S2>(ap_host_detail::access::code(op), -1);
  }
  template <int W2, bool S2>
  ap_fixed_base& operator*=(const ap_int_base<W2, S2>& op) {
    return multiply<W2, W2, S2>(ap_host_detail::access::code(op));
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_fixed_base& operator+=(T v) {
    typedef ap_host_detail::c_int<T> C;
    return accumulate<C::width, C::width, C::is_signed>(static_cast<ap_host_detail::i128>(v), 1);
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_fixed_base& operator-=(T v) {
    typedef ap_host_detail::c_int<T> C;
    return accumulate<C::width, C::width, C::is_signed>(static_cast<ap_host_detail::i128>(v), -1);
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_fixed_base& operator*=(T v) {
    typedef ap_host_detail::c_int<T> C;
    return multiply<C::width, C::width, C::is_signed>(static_cast<ap_host_detail::i128>(v));
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_fixed_base& operator<<=(T sh) {
    bits_ = ap_host_detail::shift_bits(bits_, ap_host_detail::shift_amount(sh), W, S);
    return *this;
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_fixed_base& operator>>=(T sh) {
    bits_ = ap_host_detail::shift_bits(bits_, -ap_host_detail::shift_amount(sh), W, S);
    return *this;
  }

  ap_fixed<W + 1, I + 1> operator-() const {
    return ap_host_detail::access::make<ap_fixed<W + 1, I + 1>>(-code());
  }
  typename ap_host_detail::fixed_same<W, I, S, Q, O, N>::type operator+() const {
    return ap_host_detail::access::make<typename ap_host_detail::fixed_same<W, I, S, Q, O, N>::type>(code());
  }

 private:
  friend struct ap_host_detail::access;
  static constexpr int F = W - I;

  ap_host_detail::i128 code() const { return ap_host_detail::value_of(bits_, S); }
  ap_host_detail::u128 integer() const { return ap_host_detail::integer_part<W, I, S>(code()); }
  // The bits of v * 2^-f in this type.
  static uint64_t from_scaled(ap_host_detail::i128 v, int f) {
    return ap_host_detail::quantize(v, F - f, W, S, Q, O);
  }
  static uint64_t from_double(double d) {
    ap_host_detail::i128 v = 0;
    const int e = ap_host_detail::split_double(d, &v);  // d = v * 2^e
    return ap_host_detail::quantize(v, e + F, W, S, Q, O);
  }
  // this = this + sign * b * 2^-(W2 - I2), the sum taken exactly at the finer of the two LSBs.
  template <int W2, int I2, bool S2>
  ap_fixed_base& accumulate(ap_host_detail::i128 b, int sign) {
    typedef ap_host_detail::fixed_rtype<W, I, S, W2, I2, S2> R;
    static_assert(
        R::plus_w <= 126,
        "kiln ap_types: the full-precision sum inside +=/-= would exceed 126 bits; narrow an operand");
    const ap_host_detail::i128 sum =
        ap_host_detail::scale(code(), R::plus_f - F) + sign * ap_host_detail::scale(b, R::plus_f - R::F2);
    bits_ = ap_host_detail::quantize(sum, F - R::plus_f, W, S, Q, O);
    return *this;
  }
  // this = this * b * 2^-(W2 - I2), the product exact at F + F2 fractional bits.
  template <int W2, int I2, bool S2>
  ap_fixed_base& multiply(ap_host_detail::i128 b) {
    static_assert(
        W + W2 <= 126,
        "kiln ap_types: the full-precision product inside *= would exceed 126 bits; narrow an operand");
    bits_ = ap_host_detail::quantize(code() * b, -(W2 - I2), W, S, Q, O);
    return *this;
  }

  uint64_t bits_;  // the W-bit code, sign-extended (S) or zero-extended to 64 bits
};

template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct ap_fixed : ap_fixed_base<W, I, true, Q, O, N> {
  typedef ap_fixed_base<W, I, true, Q, O, N> Base;
  ap_fixed() {}
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_fixed(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op) : Base(op) {}
  template <int W2, bool S2>
  ap_fixed(const ap_int_base<W2, S2>& op) : Base(op) {}
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_fixed(T v) : Base(v) {}
  ap_fixed(double d) : Base(d) {}
  ap_fixed(float f) : Base(f) {}
};

template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct ap_ufixed : ap_fixed_base<W, I, false, Q, O, N> {
  typedef ap_fixed_base<W, I, false, Q, O, N> Base;
  ap_ufixed() {}
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_ufixed(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op) : Base(op) {}
  template <int W2, bool S2>
  ap_ufixed(const ap_int_base<W2, S2>& op) : Base(op) {}
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_ufixed(T v) : Base(v) {}
  ap_ufixed(double d) : Base(d) {}
  ap_ufixed(float f) : Base(f) {}
};

// ---- arithmetic: full precision ---------------------------------------------------------------------
// Each operator for (fixed, fixed), (fixed, C integer), (C integer, fixed), (fixed, ap_int), (ap_int,
// fixed). KILN_AP_FIXED_PARAMS(n) spells the template parameters of an ap_fixed_base operand, suffix n.
#define KILN_AP_FIXED_PARAMS(n) int W##n, int I##n, bool S##n, ap_q_mode Q##n, ap_o_mode O##n, int N##n
#define KILN_AP_FIXED_TYPE(n) ap_fixed_base<W##n, I##n, S##n, Q##n, O##n, N##n>
#define KILN_AP_CINT_W ap_host_detail::c_int<T>::width
#define KILN_AP_CINT_S ap_host_detail::c_int<T>::is_signed
#define KILN_AP_CODE(x) ap_host_detail::access::code(x)

#define KILN_AP_FIXED_ARITH(OP, KIND, FN)                                                                    \
  template <KILN_AP_FIXED_PARAMS(1), KILN_AP_FIXED_PARAMS(2)>                                                \
  inline typename ap_host_detail::fixed_rtype<W1, I1, S1, W2, I2, S2>::KIND operator OP(                     \
      const KILN_AP_FIXED_TYPE(1) & a, const KILN_AP_FIXED_TYPE(2) & b) {                                    \
    return ap_host_detail::FN<W1, I1, S1, W2, I2, S2>(KILN_AP_CODE(a), KILN_AP_CODE(b));                     \
  }                                                                                                          \
  template <KILN_AP_FIXED_PARAMS(1), typename T, ap_host_detail::if_c_int<T> = 0>                            \
  inline                                                                                                     \
      typename ap_host_detail::fixed_rtype<W1, I1, S1, KILN_AP_CINT_W, KILN_AP_CINT_W, KILN_AP_CINT_S>::KIND \
      operator OP(const KILN_AP_FIXED_TYPE(1) & a, T b) {                                                    \
    return ap_host_detail::FN<W1, I1, S1, KILN_AP_CINT_W, KILN_AP_CINT_W, KILN_AP_CINT_S>(                   \
        KILN_AP_CODE(a), static_cast<ap_host_detail::i128>(b));                                              \
  }                                                                                                          \
  template <KILN_AP_FIXED_PARAMS(2), typename T, ap_host_detail::if_c_int<T> = 0>                            \
  inline                                                                                                     \
      typename ap_host_detail::fixed_rtype<KILN_AP_CINT_W, KILN_AP_CINT_W, KILN_AP_CINT_S, W2, I2, S2>::KIND \
      operator OP(T a, const KILN_AP_FIXED_TYPE(2) & b) {                                                    \
    return ap_host_detail::FN<KILN_AP_CINT_W, KILN_AP_CINT_W, KILN_AP_CINT_S, W2, I2, S2>(                   \
        static_cast<ap_host_detail::i128>(a), KILN_AP_CODE(b));                                              \
  }                                                                                                          \
  template <KILN_AP_FIXED_PARAMS(1), int W2, bool S2>                                                        \
  inline typename ap_host_detail::fixed_rtype<W1, I1, S1, W2, W2, S2>::KIND operator OP(                     \
      const KILN_AP_FIXED_TYPE(1) & a, const ap_int_base<W2, S2>& b) {                                       \
    return ap_host_detail::FN<W1, I1, S1, W2, W2, S2>(KILN_AP_CODE(a), KILN_AP_CODE(b));                     \
  }                                                                                                          \
  template <int W1, bool S1, KILN_AP_FIXED_PARAMS(2)>                                                        \
  inline typename ap_host_detail::fixed_rtype<W1, W1, S1, W2, I2, S2>::KIND operator OP(                     \
      const ap_int_base<W1, S1>& a, const KILN_AP_FIXED_TYPE(2) & b) {                                       \
    return ap_host_detail::FN<W1, W1, S1, W2, I2, S2>(KILN_AP_CODE(a), KILN_AP_CODE(b));                     \
  }

KILN_AP_FIXED_ARITH(*, mult, fixed_mult)
KILN_AP_FIXED_ARITH(+, plus, fixed_add)
KILN_AP_FIXED_ARITH(-, minus, fixed_sub)
#undef KILN_AP_FIXED_ARITH

// ---- shifts: same type, the bit pattern moves, bits shifted out are lost -----------------------------
template <KILN_AP_FIXED_PARAMS(1), typename T, ap_host_detail::if_c_int<T> = 0>
inline typename ap_host_detail::fixed_same<W1, I1, S1, Q1, O1, N1>::type operator<<(
    const KILN_AP_FIXED_TYPE(1) & a, T sh) {
  typename ap_host_detail::fixed_same<W1, I1, S1, Q1, O1, N1>::type r = a;
  r <<= sh;
  return r;
}
template <KILN_AP_FIXED_PARAMS(1), typename T, ap_host_detail::if_c_int<T> = 0>
inline typename ap_host_detail::fixed_same<W1, I1, S1, Q1, O1, N1>::type operator>>(
    const KILN_AP_FIXED_TYPE(1) & a, T sh) {
  typename ap_host_detail::fixed_same<W1, I1, S1, Q1, O1, N1>::type r = a;
  r >>= sh;
  return r;
}

// ---- comparisons -------------------------------------------------------------------------------------
#define KILN_AP_FIXED_RELATION(OP, REL)                                                         \
  template <KILN_AP_FIXED_PARAMS(1), KILN_AP_FIXED_PARAMS(2)>                                   \
  inline bool operator OP(const KILN_AP_FIXED_TYPE(1) & a, const KILN_AP_FIXED_TYPE(2) & b) {   \
    return ap_host_detail::relate<W1, I1, S1, W2, I2, S2>(ap_host_detail::REL, KILN_AP_CODE(a), \
                                                          KILN_AP_CODE(b));                     \
  }                                                                                             \
  template <KILN_AP_FIXED_PARAMS(1), typename T, ap_host_detail::if_c_int<T> = 0>               \
  inline bool operator OP(const KILN_AP_FIXED_TYPE(1) & a, T b) {                               \
    return ap_host_detail::relate<W1, I1, S1, KILN_AP_CINT_W, KILN_AP_CINT_W, KILN_AP_CINT_S>(  \
        ap_host_detail::REL, KILN_AP_CODE(a), static_cast<ap_host_detail::i128>(b));            \
  }                                                                                             \
  template <KILN_AP_FIXED_PARAMS(2), typename T, ap_host_detail::if_c_int<T> = 0>               \
  inline bool operator OP(T a, const KILN_AP_FIXED_TYPE(2) & b) {                               \
    return ap_host_detail::relate<KILN_AP_CINT_W, KILN_AP_CINT_W, KILN_AP_CINT_S, W2, I2, S2>(  \
        ap_host_detail::REL, static_cast<ap_host_detail::i128>(a), KILN_AP_CODE(b));            \
  }                                                                                             \
  template <KILN_AP_FIXED_PARAMS(1), int W2, bool S2>                                           \
  inline bool operator OP(const KILN_AP_FIXED_TYPE(1) & a, const ap_int_base<W2, S2>& b) {      \
    return ap_host_detail::relate<W1, I1, S1, W2, W2, S2>(ap_host_detail::REL, KILN_AP_CODE(a), \
                                                          KILN_AP_CODE(b));                     \
  }                                                                                             \
  template <int W1, bool S1, KILN_AP_FIXED_PARAMS(2)>                                           \
  inline bool operator OP(const ap_int_base<W1, S1>& a, const KILN_AP_FIXED_TYPE(2) & b) {      \
    return ap_host_detail::relate<W1, W1, S1, W2, I2, S2>(ap_host_detail::REL, KILN_AP_CODE(a), \
                                                          KILN_AP_CODE(b));                     \
  }                                                                                             \
  template <KILN_AP_FIXED_PARAMS(1)>                                                            \
  inline bool operator OP(const KILN_AP_FIXED_TYPE(1) & a, double b) {                          \
    return ap_host_detail::relate_double(ap_host_detail::REL, a.to_double(), b);                \
  }                                                                                             \
  template <KILN_AP_FIXED_PARAMS(2)>                                                            \
  inline bool operator OP(double a, const KILN_AP_FIXED_TYPE(2) & b) {                          \
    return ap_host_detail::relate_double(ap_host_detail::REL, a, b.to_double());                \
  }

KILN_AP_FIXED_RELATION(<, kLt)
KILN_AP_FIXED_RELATION(>, kGt)
KILN_AP_FIXED_RELATION(<=, kLe)
KILN_AP_FIXED_RELATION(>=, kGe)
KILN_AP_FIXED_RELATION(==, kEq)
KILN_AP_FIXED_RELATION(!=, kNe)
#undef KILN_AP_FIXED_RELATION

#undef KILN_AP_FIXED_PARAMS
#undef KILN_AP_FIXED_TYPE
#undef KILN_AP_CINT_W
#undef KILN_AP_CINT_S
#undef KILN_AP_CODE

#endif  // KILN_HLS_HOST_AP_FIXED_H_
