// C99 for microcontrollers: NAME.c + NAME.h computing exactly what the deployed fixed-point model computes.
// No malloc, no stdio, no libm; the integer entry point NAME_run uses integers only (shifts for the
// power-of-two scales); weights are `static const` tables in flash: a dense layer's as packed rows of the
// narrowest integer type (codegen/emit_c_dense.h; SMLAD on Arm cores with the DSP extension), other layers'
// as sparse lists (pruned weights are absent); activations live in two static ping-pong buffers sized at
// generation time. NAME_quantize_input / NAME_predict are a float convenience layer (standardisation + input
// quantization, doubles without libm), compiled out with -DNAME_NO_FLOAT.
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

struct COptions {
  // false: the earlier kernels (sparse lists for every multiply-accumulate, the generic requantiser for every
  // quantizer, ReLU as a conditional store), byte for byte the C of the emitter before packed rows; bit-exact
  // as well. bench/run_codegen.sh measures both in one run.
  bool fast_kernels = true;
};

CFiles emit_c(const Program& p, const COptions& o = {});

}  // namespace kiln::codegen
