// kiln's own, independent host model of the subset of the Xilinx arbitrary-precision types (ap_int.h,
// ap_fixed.h) that kiln's generated HLS C++ uses. It is NOT Xilinx's code and contains none of its text: it
// is written from the documented semantics (../shared/reference/quantization.md) and from the behaviour of
// Xilinx's open-source headers (read for facts only), and checked against kiln::compress::quantize and the
// reference tables (tests/ap_fixed_test.cc). Generated firmware includes "ap_fixed.h" / "ap_int.h"; on the
// host these resolve here, in the HLS tool to Xilinx's headers, and the two must agree bit for bit. So this
// model is deliberately a SUBSET: what it cannot reproduce exactly does not compile (static_assert or a
// deleted overload) instead of silently computing something else.
//
// This file holds what ap_int.h and ap_fixed.h share: the mode enums, the forward declarations (with the
// Xilinx defaults) and ap_host_detail, the exact integer arithmetic behind every conversion. Include
// ap_fixed.h or ap_int.h, not this file.
#ifndef KILN_HLS_HOST_AP_COMMON_H_
#define KILN_HLS_HOST_AP_COMMON_H_

#include <cmath>
#include <cstdint>
#include <type_traits>

// Quantization (rounding) modes, applied to the bits below the destination's LSB.
enum ap_q_mode {
  AP_RND,          // nearest, ties toward +inf
  AP_RND_ZERO,     // nearest, ties toward zero
  AP_RND_MIN_INF,  // nearest, ties toward -inf
  AP_RND_INF,      // nearest, ties away from zero
  AP_RND_CONV,     // nearest, ties to even
  AP_TRN,          // floor (toward -inf), the default
  AP_TRN_ZERO,     // toward zero
};

// Overflow modes, applied after rounding.
enum ap_o_mode {
  AP_SAT,       // clip to [min, max]
  AP_SAT_ZERO,  // any overflow gives 0
  AP_SAT_SYM,   // signed: clip to [-max, max] (the minimum code itself also becomes -max)
  AP_WRAP,      // two's complement wrap, the default
  AP_WRAP_SM,   // sign-magnitude wrap: not modeled (static_assert)
};

template <int W, bool S>
struct ap_int_base;
template <int W>
struct ap_int;
template <int W>
struct ap_uint;
template <int W, int I, bool S = true, ap_q_mode Q = AP_TRN, ap_o_mode O = AP_WRAP, int N = 0>
struct ap_fixed_base;
template <int W, int I, ap_q_mode Q = AP_TRN, ap_o_mode O = AP_WRAP, int N = 0>
struct ap_fixed;
template <int W, int I, ap_q_mode Q = AP_TRN, ap_o_mode O = AP_WRAP, int N = 0>
struct ap_ufixed;

// Everything below is kiln's machinery, not Xilinx API: generated code must never name it.
namespace ap_host_detail {

// Intermediate values need up to 127 bits (a 64 x 64-bit product, a sum aligned to a common LSB).
// __extension__ keeps -pedantic quiet about the GCC/Clang builtin type.
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

constexpr int imax(int a, int b) { return a > b ? a : b; }

// The C integer types Xilinx accepts as operands, with the width and signedness it gives them (an int
// operand acts as ap_int<32>, a bool as ap_uint<1>). Other integral types (wchar_t, char16_t...) are left
// out.
template <typename T>
struct c_int {
  static constexpr bool value = std::is_same<T, bool>::value || std::is_same<T, char>::value ||
                                std::is_same<T, signed char>::value ||
                                std::is_same<T, unsigned char>::value || std::is_same<T, short>::value ||
                                std::is_same<T, unsigned short>::value || std::is_same<T, int>::value ||
                                std::is_same<T, unsigned>::value || std::is_same<T, long>::value ||
                                std::is_same<T, unsigned long>::value || std::is_same<T, long long>::value ||
                                std::is_same<T, unsigned long long>::value;
  static constexpr int width = std::is_same<T, bool>::value ? 1 : static_cast<int>(sizeof(T) * 8);
  static constexpr bool is_signed = std::is_signed<T>::value;
};
template <typename T>
using if_c_int = typename std::enable_if<c_int<T>::value, int>::type;

// v * 2^n without left-shifting a negative number (undefined in C++17). The caller guarantees no overflow.
inline i128 scale(i128 v, int n) { return v * static_cast<i128>(static_cast<u128>(1) << n); }

// The W-bit two's complement pattern of `b`, widened to 64 bits the way the type reads it: sign-extended
// when S, zero-extended otherwise. Every ap_* object keeps its bits in this canonical form.
inline uint64_t canonical(u128 b, int W, bool S) {
  const uint64_t mask = W == 64 ? ~uint64_t{0} : (uint64_t{1} << W) - 1;
  uint64_t p = static_cast<uint64_t>(b) & mask;
  if (S && ((p >> (W - 1)) & 1)) p |= ~mask;
  return p;
}

// The integer a canonical pattern stands for.
inline i128 value_of(uint64_t bits, bool S) {
  if (S && (bits >> 63))
    return -static_cast<i128>(~bits) - 1;  // two's complement, no implementation-defined cast
  return static_cast<i128>(bits);
}

inline int64_t as_int64(uint64_t v) {
  return v >> 63 ? -static_cast<int64_t>(~v) - 1 : static_cast<int64_t>(v);
}
inline int32_t as_int32(uint32_t v) {
  return v >> 31 ? -static_cast<int32_t>(~v) - 1 : static_cast<int32_t>(v);
}

// floor(v / 2^s) for s in [0, 127].
inline i128 floor_shift(i128 v, int s) {
  if (v >= 0) return static_cast<i128>(static_cast<u128>(v) >> s);
  return -static_cast<i128>(static_cast<u128>(-(v + 1)) >> s) - 1;
}

// v / 2^s rounded to an integer by mode q (s >= 1, |v| <= 2^126). Works on the floor and the exact
// remainder, so no case is approximate: rem < half, == half (a tie) and > half are told apart exactly.
inline i128 round_shift(i128 v, int s, ap_q_mode q) {
  if (s >= 128) {  // |v / 2^s| <= 1/4: only the sign matters, and no mode sees a tie
    v = v > 0 ? 1 : (v < 0 ? -1 : 0);
    s = 2;
  }
  const i128 fl = floor_shift(v, s);
  const u128 rem = static_cast<u128>(v) & ((static_cast<u128>(1) << s) - 1);  // v - fl * 2^s, in [0, 2^s)
  const u128 half = static_cast<u128>(1) << (s - 1);
  bool up = false;
  switch (q) {
    case AP_TRN:
      up = false;
      break;
    case AP_TRN_ZERO:
      up = v < 0 && rem != 0;
      break;
    case AP_RND:
      up = rem >= half;
      break;
    case AP_RND_ZERO:
      up = rem > half || (rem == half && v < 0);
      break;
    case AP_RND_MIN_INF:
      up = rem > half;
      break;
    case AP_RND_INF:
      up = rem > half || (rem == half && v > 0);
      break;
    case AP_RND_CONV:
      up = rem > half || (rem == half && (fl & 1) != 0);
      break;
  }
  return fl + (up ? 1 : 0);
}

// The exact value v * 2^sh (any int sh, |v| <= 2^126) as a code of a (W, S) type under modes q and o:
// rounding first, then overflow handling of the rounded code (ap_fixed's order, so rounding itself can
// overflow: 1.9 -> 2.0 -> -2 in ap_fixed<4,2,AP_RND,AP_WRAP>). Returns the canonical bits.
inline uint64_t quantize(i128 v, int sh, int W, bool S, ap_q_mode q, ap_o_mode o) {
  if (sh < 0) {
    v = round_shift(v, -sh, q);
    sh = 0;
  }
  if (v == 0) return 0;
  const i128 hi = S ? scale(1, W - 1) - 1 : scale(1, W) - 1;
  const i128 lo = !S ? 0 : (o == AP_SAT_SYM ? -hi : -hi - 1);
  bool above = v > 0;  // with sh >= 64, |v| * 2^sh >= 2^64 is outside every W <= 64 range
  bool below = v < 0;
  if (sh < 64) {
    above = v > floor_shift(hi, sh);
    below = v < -floor_shift(-lo, sh);  // ceil(lo / 2^sh)
    if (!above && !below) return canonical(static_cast<u128>(scale(v, sh)), W, S);
  }
  switch (o) {
    case AP_WRAP:
      return sh >= 64 ? 0 : canonical(static_cast<u128>(v) << sh, W, S);
    case AP_SAT_ZERO:
      return 0;
    default:  // AP_SAT, AP_SAT_SYM (AP_WRAP_SM is rejected at compile time)
      return canonical(static_cast<u128>(above ? hi : lo), W, S);
  }
}

// A double as v * 2^e with |v| < 2^53 exactly (frexp also normalises subnormals). Infinities and NaN act
// as a value of magnitude 2^1024 with their sign bit, as in the Xilinx model: they saturate under the SAT
// modes and give 0 under WRAP. Returns e; v through the pointer.
inline int split_double(double d, i128* v) {
  if (!std::isfinite(d)) {
    *v = std::signbit(d) ? -1 : 1;
    return 1024;
  }
  if (d == 0) {
    *v = 0;
    return 0;
  }
  int e = 0;
  const double m = std::frexp(d, &e);  // d = m * 2^e, 0.5 <= |m| < 1
  *v = static_cast<i128>(static_cast<int64_t>(std::ldexp(m, 53)));
  return e - 53;
}

// The integer part of code * 2^-(W-I), truncated toward zero like C's double -> int, modulo 2^64 (the low
// bits are what to_int(), to_int64() and the conversion to ap_int read).
template <int W, int I, bool S>
inline u128 integer_part(i128 code) {
  static_assert(
      I > 0 || (I == 0 && !S),
      "kiln ap_types: the integer part of an ap_fixed with I <= 0 (signed) or I < 0 (unsigned) is not "
      "modeled: Xilinx's to_int()/ap_int conversion gives -1 for negative values or reads an unset "
      "register there. The value lies in (-1, 1); compare it with 0 instead");
  constexpr int F = W - I;  // <= 64 here
  if constexpr (F <= 0) {
    if constexpr (-F >= 64) {
      return 0;
    } else {
      return static_cast<u128>(code) << -F;
    }
  } else {
    if (code >= 0) return static_cast<u128>(code) >> F;
    return static_cast<u128>(-static_cast<i128>(static_cast<u128>(-code) >> F));
  }
}

// Sign of a * 2^-fa - b * 2^-fb, exactly (|a|, |b| < 2^64, any fa, fb).
inline int compare_scaled(i128 a, int fa, i128 b, int fb) {
  if (fa < fb) return -compare_scaled(b, fb, a, fa);
  const int d = fa - fb;  // b is shifted left by d to share a's LSB
  if (d >= 64) {          // any nonzero b * 2^d is beyond |a| < 2^64
    if (b != 0) return b > 0 ? -1 : 1;
    return a > 0 ? 1 : (a < 0 ? -1 : 0);
  }
  const i128 bs = scale(b, d);  // < 2^127
  return a < bs ? -1 : (a > bs ? 1 : 0);
}

// A shift of a W-bit pattern by sh places (left when sh >= 0) inside the same type: bits shifted out are
// lost, a left shift by W or more gives 0, a right shift by W or more gives the sign fill, a right shift
// floors (arithmetic for signed types, logical for unsigned).
inline uint64_t shift_bits(uint64_t bits, long long sh, int W, bool S) {
  if (sh >= 0) {
    if (sh >= W) return 0;
    return canonical(static_cast<u128>(bits) << sh, W, S);
  }
  const unsigned long long r = 0ULL - static_cast<unsigned long long>(sh);
  const i128 v = value_of(bits, S);
  if (r >= static_cast<unsigned long long>(W)) return v < 0 ? ~uint64_t{0} : 0;
  return canonical(static_cast<u128>(floor_shift(v, static_cast<int>(r))), W, S);
}

// Xilinx's comparison of two fixed-point codes of (W1, I1, S1) and (W2, I2, S2). The codes are first
// aligned to a common LSB (the left operand gains one integer bit when it is the one widened), then compared
// as ap_private integers, which follow C's rule for mixed signedness: when the unsigned side is at least 32
// bits and at least as wide as the signed side, both are read as unsigned, so a negative signed operand
// compares ABOVE every unsigned one (like -1 < 1u being false in C). Integers are the case I = W.
template <int W1, int I1, bool S1, int W2, int I2, bool S2>
struct compare_rule {
  static constexpr int F1 = W1 - I1, F2 = W2 - I2;
  static constexpr int wa = F1 >= F2 ? W1 : imax(W1 + F2 - F1 + 1, 1);  // aligned width of the left operand
  static constexpr int wb = F1 <= F2 ? W2 : imax(W2 + F1 - F2, 1);      // ... and of the right one
  static constexpr bool mixed = S1 != S2;
  static constexpr int wu = S1 ? wb : wa;  // unsigned side (when mixed)
  static constexpr int ws = S1 ? wa : wb;  // signed side
  static constexpr bool c_rule = mixed && wu >= 32 && wu >= ws;
  // Wider mixed-sign comparisons go through Xilinx's multi-word integers, whose rule is not modeled.
  static constexpr bool modeled = !mixed || imax(wa, wb) <= 63;
};

template <int W1, int I1, bool S1, int W2, int I2, bool S2>
inline int compare(i128 a, i128 b) {
  typedef compare_rule<W1, I1, S1, W2, I2, S2> R;
  static_assert(
      R::modeled,
      "kiln ap_types: comparing signed and unsigned operands this wide (aligned to a common LSB, more "
      "than 63 bits) is not modeled; convert one operand so both have the same signedness");
  if (R::c_rule) {
    if (S1 && a < 0) return 1;
    if (S2 && b < 0) return -1;
  }
  return compare_scaled(a, R::F1, b, R::F2);
}

template <int W1, int I1, bool S1, int W2, int I2, bool S2>
inline bool equal(i128 a, i128 b) {
  typedef compare_rule<W1, I1, S1, W2, I2, S2> R;
  static_assert(
      R::modeled,
      "kiln ap_types: comparing signed and unsigned operands this wide (aligned to a common LSB, more "
      "than 63 bits) is not modeled; convert one operand so both have the same signedness");
  if constexpr (R::c_rule) {
    // Both sides are read as wu-bit unsigned numbers: a negative signed value v stands for v + 2^wu.
    constexpr int f = imax(R::F1, R::F2);
    i128 aa = scale(a, f - R::F1), bb = scale(b, f - R::F2);  // aligned codes, < 2^63 (modeled)
    if (S1 && aa < 0) aa += scale(1, R::wu);
    if (S2 && bb < 0) bb += scale(1, R::wu);
    return aa == bb;
  }
  return compare_scaled(a, R::F1, b, R::F2) == 0;
}

// Result types of full-precision arithmetic, with Xilinx's rules. For ap_fixed (F = W - I):
//   a * b -> W1 + W2 bits, I1 + I2 integer bits, signed if either is;
//   a + b -> F = max(F1, F2), I = max(I1 + (S2 && !S1), I2 + (S1 && !S2)) + 1 (an unsigned operand gains a
//            bit when the other is signed), signed if either is;
//   a - b -> the same widths, always signed.
// ap_int is the case I = W. These are the exact ranges, so the results never round or overflow.
template <int W, int I, bool S>
struct fixed_of {
  typedef ap_fixed<W, I> type;
};
template <int W, int I>
struct fixed_of<W, I, false> {
  typedef ap_ufixed<W, I> type;
};
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
struct fixed_same {  // the ap_fixed / ap_ufixed spelling of an ap_fixed_base
  typedef ap_fixed<W, I, Q, O, N> type;
};
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct fixed_same<W, I, false, Q, O, N> {
  typedef ap_ufixed<W, I, Q, O, N> type;
};
template <int W, bool S>
struct int_of {
  typedef ap_int<W> type;
};
template <int W>
struct int_of<W, false> {
  typedef ap_uint<W> type;
};

template <int W1, int I1, bool S1, int W2, int I2, bool S2>
struct fixed_rtype {
  static constexpr int F1 = W1 - I1, F2 = W2 - I2;
  static constexpr int mult_w = W1 + W2, mult_i = I1 + I2;
  static constexpr bool mult_s = S1 || S2;
  static constexpr int plus_f = imax(F1, F2);
  static constexpr int plus_i = imax(I1 + (S2 && !S1), I2 + (S1 && !S2)) + 1;
  static constexpr int plus_w = plus_i + plus_f;
  static constexpr bool plus_s = S1 || S2;
  typedef typename fixed_of<mult_w, mult_i, mult_s>::type mult;
  typedef typename fixed_of<plus_w, plus_i, plus_s>::type plus;
  typedef typename fixed_of<plus_w, plus_i, true>::type minus;
};

template <int W1, bool S1, int W2, bool S2>
struct int_rtype {
  static constexpr int mult_w = W1 + W2;
  static constexpr int plus_w = imax(W1 + (S2 && !S1), W2 + (S1 && !S2)) + 1;
  typedef typename int_of<mult_w, S1 || S2>::type mult;
  typedef typename int_of<plus_w, S1 || S2>::type plus;
  typedef typename int_of<plus_w, true>::type minus;
};

// The stored bits, for the free operators and the tests; generated code must not use it.
struct access {
  template <int W, bool S>
  static i128 code(const ap_int_base<W, S>& x) {
    return value_of(x.bits_, S);
  }
  template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
  static i128 code(const ap_fixed_base<W, I, S, Q, O, N>& x) {
    return value_of(x.bits_, S);
  }
  template <int W, bool S>
  static void set_code(ap_int_base<W, S>& x, i128 c) {
    x.bits_ = canonical(static_cast<u128>(c), W, S);
  }
  template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
  static void set_code(ap_fixed_base<W, I, S, Q, O, N>& x, i128 c) {
    x.bits_ = canonical(static_cast<u128>(c), W, S);
  }
  // An R holding code c (c is taken modulo 2^W: callers pass codes that fit).
  template <typename R>
  static R make(i128 c) {
    R r;
    set_code(r, c);
    return r;
  }
};

// Full-precision arithmetic on codes; the result type holds the exact result.
template <int W1, int I1, bool S1, int W2, int I2, bool S2>
inline typename fixed_rtype<W1, I1, S1, W2, I2, S2>::mult fixed_mult(i128 a, i128 b) {
  typedef fixed_rtype<W1, I1, S1, W2, I2, S2> R;
  static_assert(
      R::mult_w <= 64,
      "kiln ap_types: the full-precision product is wider than 64 bits, which this host model does not "
      "hold; narrow an operand (or accumulate with *= into a declared type)");
  return access::make<typename R::mult>(a * b);
}
template <int W1, int I1, bool S1, int W2, int I2, bool S2>
inline typename fixed_rtype<W1, I1, S1, W2, I2, S2>::plus fixed_add(i128 a, i128 b) {
  typedef fixed_rtype<W1, I1, S1, W2, I2, S2> R;
  static_assert(R::plus_w <= 64,
                "kiln ap_types: the full-precision sum is wider than 64 bits, which this host model does not "
                "hold; narrow an operand (or accumulate with += into a declared type)");
  return access::make<typename R::plus>(scale(a, R::plus_f - R::F1) + scale(b, R::plus_f - R::F2));
}
template <int W1, int I1, bool S1, int W2, int I2, bool S2>
inline typename fixed_rtype<W1, I1, S1, W2, I2, S2>::minus fixed_sub(i128 a, i128 b) {
  typedef fixed_rtype<W1, I1, S1, W2, I2, S2> R;
  static_assert(
      R::plus_w <= 64,
      "kiln ap_types: the full-precision difference is wider than 64 bits, which this host model does "
      "not hold; narrow an operand (or accumulate with -= into a declared type)");
  return access::make<typename R::minus>(scale(a, R::plus_f - R::F1) - scale(b, R::plus_f - R::F2));
}

// Relational operators, dispatched on one enum so each operator spelling is one line.
enum relation { kLt, kGt, kLe, kGe, kEq, kNe };
template <int W1, int I1, bool S1, int W2, int I2, bool S2>
inline bool relate(relation r, i128 a, i128 b) {
  if (r == kEq) return equal<W1, I1, S1, W2, I2, S2>(a, b);
  if (r == kNe) return !equal<W1, I1, S1, W2, I2, S2>(a, b);
  const int c = compare<W1, I1, S1, W2, I2, S2>(a, b);
  return r == kLt ? c < 0 : r == kGt ? c > 0 : r == kLe ? c <= 0 : c >= 0;
}
inline bool relate_double(relation r, double a, double b) {
  switch (r) {
    case kLt:
      return a < b;
    case kGt:
      return a > b;
    case kLe:
      return a <= b;
    case kGe:
      return a >= b;
    case kEq:
      return a == b;
    case kNe:
      return a != b;
  }
  return false;
}

// A C-integer shift amount as a long long, clamped so that negating it cannot overflow (every amount
// beyond +-1024 acts like +-1024 on a type of at most 64 bits).
template <typename T>
inline long long shift_amount(T sh) {
  if constexpr (c_int<T>::is_signed) {
    const long long v = static_cast<long long>(sh);
    return v > 1024 ? 1024 : (v < -1024 ? -1024 : v);
  } else {
    const unsigned long long u = static_cast<unsigned long long>(sh);
    return u > 1024 ? 1024 : static_cast<long long>(u);
  }
}

}  // namespace ap_host_detail

#endif  // KILN_HLS_HOST_AP_COMMON_H_
