// C99 for microcontrollers: NAME.c + NAME.h computing exactly what the deployed fixed-point model computes.
// No malloc, no stdio, no libm; the integer entry point NAME_run uses integers only (shifts for the
// power-of-two scales); weights are `static const` sparse lists (pruned weights are absent); activations
// live in two static ping-pong buffers sized at generation time. NAME_quantize_input / NAME_predict are a
// float convenience layer (standardisation + input quantization, doubles without libm), compiled out with
// -DNAME_NO_FLOAT.
#pragma once
#include <string>

#include "codegen/emit_util.h"

namespace kiln::codegen {

struct CFiles {
  std::string header, source;
  int64_t const_bytes = 0;  // every static const table (flash, .rodata)
  int64_t ram_bytes = 0;    // the two ping-pong buffers (.bss)
  int64_t code_bytes = 0;   // an estimate of the machine code for Cortex-M4 (flash, .text)
};

CFiles emit_c(const Program& p);

}  // namespace kiln::codegen
