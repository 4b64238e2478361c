// ap_int<W> / ap_uint<W>: kiln's independent host model of the Xilinx arbitrary-precision integers, for
// host simulation of generated HLS code (not Xilinx's code; see ap_common.h for what "model" promises).
//
//   ap_uint<8> a = 200;            // values wrap modulo 2^W on construction and assignment
//   ap_int<8> b = -3;
//   auto s = a + b;                // ap_int<10>: full precision (the unsigned side gains a bit)
//   auto p = a * b;                // ap_int<16>
//   long long v = s.to_int64();    // 197
//
// Result types: a * b -> W1 + W2 bits; a + b -> max(W1 + (S2 && !S1), W2 + (S1 && !S2)) + 1 bits; both
// signed if either operand is; a - b has the width of a + b and is always signed. A C integer operand acts
// as ap_int<32> (int), ap_uint<32> (unsigned), ap_int<64> (long, long long), ap_uint<1> (bool), etc.
// +=, -=, *= wrap into the left operand's width. Shifts keep the type: bits shifted out are lost.
// Comparisons are exact, except that mixed signed/unsigned operands follow C's conversion rule when the
// unsigned one has >= 32 bits and at least as many as the signed one (as Xilinx's do: ap_uint<32>(1) >
// ap_int<8>(-1) is false).
//
// Not modeled, so they do not compile: widths above 64, construction from float/double (Xilinx's own
// conversion misreads negative values of magnitude < 0.5; go through an ap_fixed), implicit conversion to
// built-in types (use to_int64(), to_int(), to_double() or a static_cast), division, bit and range
// selection, strings and streams.
#ifndef KILN_HLS_HOST_AP_INT_H_
#define KILN_HLS_HOST_AP_INT_H_

#include "ap_common.h"

template <int W, bool S>
struct ap_int_base {
  static_assert(
      W >= 1 && W <= 64,
      "kiln ap_types: ap_int/ap_uint width must be in [1, 64] (one 64-bit word in this host model); "
      "a wider full-precision result needs narrower operands");
  static const int width = W;

  ap_int_base() : bits_(0) {}
  template <int W2, bool S2>
  ap_int_base(const ap_int_base<W2, S2>& op) : bits_(wrap(ap_host_detail::access::code(op))) {}
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_int_base(T v) : bits_(wrap(static_cast<ap_host_detail::i128>(v))) {}
  ap_int_base(float) = delete;   // see the header comment: convert through an ap_fixed
  ap_int_base(double) = delete;  // likewise
  // The integer part, truncated toward zero, then wrapped.
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_int_base(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op)
      : bits_(ap_host_detail::canonical(
            ap_host_detail::integer_part<W2, I2, S2>(ap_host_detail::access::code(op)), W, S)) {}

  bool to_bool() const { return bits_ != 0; }
  int to_int() const { return ap_host_detail::as_int32(static_cast<uint32_t>(bits_)); }
  unsigned to_uint() const { return static_cast<unsigned>(bits_); }
  long to_long() const { return static_cast<long>(to_int64()); }
  unsigned long to_ulong() const { return static_cast<unsigned long>(bits_); }
  long long to_int64() const { return ap_host_detail::as_int64(bits_); }
  unsigned long long to_uint64() const { return bits_; }
  double to_double() const { return S ? static_cast<double>(to_int64()) : static_cast<double>(bits_); }
  float to_float() const { return S ? static_cast<float>(to_int64()) : static_cast<float>(bits_); }
  int length() const { return W; }
  // Xilinx converts implicitly to RetType (long long / unsigned long long) and from there to any built-in
  // type; here only explicitly (static_cast<int>(a), (double)a), to the same values.
  explicit operator bool() const { return to_bool(); }
  explicit operator int() const { return to_int(); }
  explicit operator unsigned() const { return to_uint(); }
  explicit operator long() const { return to_long(); }
  explicit operator unsigned long() const { return to_ulong(); }
  explicit operator long long() const { return to_int64(); }
  explicit operator unsigned long long() const { return to_uint64(); }
  explicit operator float() const { return to_float(); }
  explicit operator double() const { return to_double(); }

  // Compound assignment wraps into this type's width (what full precision followed by a WRAP conversion
  // gives; the product is taken modulo 2^128, whose low 64 bits are exact).
  template <int W2, bool S2>
  ap_int_base& operator+=(const ap_int_base<W2, S2>& op) {
    bits_ = wrap(code() + ap_host_detail::access::code(op));
    return *this;
  }
  template <int W2, bool S2>
  ap_int_base& operator-=(const ap_int_base<W2, S2>& op) {
    bits_ = wrap(code() - ap_host_detail::access::code(op));
    return *this;
  }
  template <int W2, bool S2>
  ap_int_base& operator*=(const ap_int_base<W2, S2>& op) {
    typedef ap_host_detail::u128 u128;
    bits_ = ap_host_detail::canonical(
        static_cast<u128>(code()) * static_cast<u128>(ap_host_detail::access::code(op)), W, S);
    return *this;
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_int_base& operator+=(T v) {
    return *this += ap_int_base<ap_host_detail::c_int<T>::width, ap_host_detail::c_int<T>::is_signed>(v);
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_int_base& operator-=(T v) {
    return *this -= ap_int_base<ap_host_detail::c_int<T>::width, ap_host_detail::c_int<T>::is_signed>(v);
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_int_base& operator*=(T v) {
    return *this *= ap_int_base<ap_host_detail::c_int<T>::width, ap_host_detail::c_int<T>::is_signed>(v);
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_int_base& operator<<=(T sh) {
    bits_ = ap_host_detail::shift_bits(bits_, ap_host_detail::shift_amount(sh), W, S);
    return *this;
  }
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_int_base& operator>>=(T sh) {
    bits_ = ap_host_detail::shift_bits(bits_, -ap_host_detail::shift_amount(sh), W, S);
    return *this;
  }

  // Xilinx computes -x as 0 - x with 0 an ap_uint<1>.
  typename ap_host_detail::int_rtype<1, false, W, S>::minus operator-() const {
    return ap_host_detail::access::make<typename ap_host_detail::int_rtype<1, false, W, S>::minus>(-code());
  }
  typename ap_host_detail::int_of<W, S>::type operator+() const {
    return ap_host_detail::access::make<typename ap_host_detail::int_of<W, S>::type>(code());
  }

 private:
  friend struct ap_host_detail::access;
  static uint64_t wrap(ap_host_detail::i128 v) {
    return ap_host_detail::canonical(static_cast<ap_host_detail::u128>(v), W, S);
  }
  ap_host_detail::i128 code() const { return ap_host_detail::value_of(bits_, S); }

  uint64_t bits_;  // the W-bit pattern, sign-extended (S) or zero-extended to 64 bits
};

template <int W>
struct ap_int : ap_int_base<W, true> {
  typedef ap_int_base<W, true> Base;
  ap_int() {}
  template <int W2, bool S2>
  ap_int(const ap_int_base<W2, S2>& op) : Base(op) {}
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_int(T v) : Base(v) {}
  ap_int(float) = delete;
  ap_int(double) = delete;
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_int(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op) : Base(op) {}
};

template <int W>
struct ap_uint : ap_int_base<W, false> {
  typedef ap_int_base<W, false> Base;
  ap_uint() {}
  template <int W2, bool S2>
  ap_uint(const ap_int_base<W2, S2>& op) : Base(op) {}
  template <typename T, ap_host_detail::if_c_int<T> = 0>
  ap_uint(T v) : Base(v) {}
  ap_uint(float) = delete;
  ap_uint(double) = delete;
  template <int W2, int I2, bool S2, ap_q_mode Q2, ap_o_mode O2, int N2>
  ap_uint(const ap_fixed_base<W2, I2, S2, Q2, O2, N2>& op) : Base(op) {}
};

// ---- arithmetic: full precision ---------------------------------------------------------------------
// Each operator for (ap_int, ap_int), (ap_int, C integer) and (C integer, ap_int); the C integer acts as
// the ap_int of its width and signedness.
#define KILN_AP_INT_ARITH(OP, KIND)                                                                   \
  template <int W1, bool S1, int W2, bool S2>                                                         \
  inline typename ap_host_detail::int_rtype<W1, S1, W2, S2>::KIND operator OP(                        \
      const ap_int_base<W1, S1>& a, const ap_int_base<W2, S2>& b) {                                   \
    typedef typename ap_host_detail::int_rtype<W1, S1, W2, S2>::KIND R;                               \
    return ap_host_detail::access::make<R>(ap_host_detail::access::code(a)                            \
                                               OP ap_host_detail::access::code(b));                   \
  }                                                                                                   \
  template <int W, bool S, typename T, ap_host_detail::if_c_int<T> = 0>                               \
  inline typename ap_host_detail::int_rtype<W, S, ap_host_detail::c_int<T>::width,                    \
                                            ap_host_detail::c_int<T>::is_signed>::KIND                \
  operator OP(const ap_int_base<W, S>& a, T b) {                                                      \
    return a OP ap_int_base<ap_host_detail::c_int<T>::width, ap_host_detail::c_int<T>::is_signed>(b); \
  }                                                                                                   \
  template <int W, bool S, typename T, ap_host_detail::if_c_int<T> = 0>                               \
  inline typename ap_host_detail::int_rtype<ap_host_detail::c_int<T>::width,                          \
                                            ap_host_detail::c_int<T>::is_signed, W, S>::KIND          \
  operator OP(T a, const ap_int_base<W, S>& b) {                                                      \
    return ap_int_base<ap_host_detail::c_int<T>::width, ap_host_detail::c_int<T>::is_signed>(a) OP b; \
  }

KILN_AP_INT_ARITH(*, mult)
KILN_AP_INT_ARITH(+, plus)
KILN_AP_INT_ARITH(-, minus)
#undef KILN_AP_INT_ARITH

// ---- shifts: same type, bits shifted out are lost ---------------------------------------------------
template <int W, bool S, typename T, ap_host_detail::if_c_int<T> = 0>
inline typename ap_host_detail::int_of<W, S>::type operator<<(const ap_int_base<W, S>& a, T sh) {
  typename ap_host_detail::int_of<W, S>::type r = a;
  return r <<= sh;
}
template <int W, bool S, typename T, ap_host_detail::if_c_int<T> = 0>
inline typename ap_host_detail::int_of<W, S>::type operator>>(const ap_int_base<W, S>& a, T sh) {
  typename ap_host_detail::int_of<W, S>::type r = a;
  return r >>= sh;
}

// ---- comparisons -------------------------------------------------------------------------------------
#define KILN_AP_INT_RELATION(OP, REL)                                                                 \
  template <int W1, bool S1, int W2, bool S2>                                                         \
  inline bool operator OP(const ap_int_base<W1, S1>& a, const ap_int_base<W2, S2>& b) {               \
    return ap_host_detail::relate<W1, W1, S1, W2, W2, S2>(                                            \
        ap_host_detail::REL, ap_host_detail::access::code(a), ap_host_detail::access::code(b));       \
  }                                                                                                   \
  template <int W, bool S, typename T, ap_host_detail::if_c_int<T> = 0>                               \
  inline bool operator OP(const ap_int_base<W, S>& a, T b) {                                          \
    return a OP ap_int_base<ap_host_detail::c_int<T>::width, ap_host_detail::c_int<T>::is_signed>(b); \
  }                                                                                                   \
  template <int W, bool S, typename T, ap_host_detail::if_c_int<T> = 0>                               \
  inline bool operator OP(T a, const ap_int_base<W, S>& b) {                                          \
    return ap_int_base<ap_host_detail::c_int<T>::width, ap_host_detail::c_int<T>::is_signed>(a) OP b; \
  }                                                                                                   \
  template <int W, bool S>                                                                            \
  inline bool operator OP(const ap_int_base<W, S>& a, double b) {                                     \
    return ap_host_detail::relate_double(ap_host_detail::REL, a.to_double(), b);                      \
  }                                                                                                   \
  template <int W, bool S>                                                                            \
  inline bool operator OP(double a, const ap_int_base<W, S>& b) {                                     \
    return ap_host_detail::relate_double(ap_host_detail::REL, a, b.to_double());                      \
  }

KILN_AP_INT_RELATION(<, kLt)
KILN_AP_INT_RELATION(>, kGt)
KILN_AP_INT_RELATION(<=, kLe)
KILN_AP_INT_RELATION(>=, kGe)
KILN_AP_INT_RELATION(==, kEq)
KILN_AP_INT_RELATION(!=, kNe)
#undef KILN_AP_INT_RELATION

#endif  // KILN_HLS_HOST_AP_INT_H_

// As with Xilinx's header, including ap_int.h also provides ap_fixed.
#ifndef KILN_HLS_HOST_AP_FIXED_H_
#include "ap_fixed.h"
#endif
