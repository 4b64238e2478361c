// The C generator's quantizer op (kQuantize) in 32-bit integers with its rounding and overflow modes resolved
// at generation time: y = overflow(round(x 2^-s)) 2^t per element, with s, t and the bounds [lo, hi] of each
// element's type as constants or small tables. Branch-free for the vectoriser and about a third of the
// generic requantiser's instructions on a Cortex-M4. It covers truncation and round-half-up (HGQ's modes)
// with every overflow mode, when the codes and shifts fit 32 bits; any other op keeps emit_c's kiln_requant.
#pragma once
#include <ostream>
#include <string>

#include "codegen/emit_c_dense.h"
#include "codegen/emit_util.h"

namespace kiln::codegen {

// Whether emit_quantize_fast can print op exactly.
bool quantize_fast_fits(const Program& p, const Op& op);

// Writes the op's tables and `static void kiln_op<id>(const X *x, Y *y)`; requires quantize_fast_fits.
EmittedBytes emit_quantize_fast(std::ostream& tables, std::ostream& funcs, const Program& p, const Op& op,
                                const std::string& id);

}  // namespace kiln::codegen
