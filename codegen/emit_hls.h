// HLS C++ in hls4ml's layout (io_parallel, latency strategy) computing exactly what the deployed
// fixed-point model computes:
//
//   DIR/firmware/NAME.cpp, NAME.h      the top function NAME(input_t x[N_INPUT], result_t y[N_OUTPUT])
//   DIR/firmware/defines.h             sizes; ap_fixed/ap_ufixed types for every tensor and quantizer
//   DIR/firmware/parameters.h          one config struct per layer (n_in, n_out, reuse_factor, n_zeros, ...)
//   DIR/firmware/weights/wN.h, bN.h    constant nonzero weights with their output unit and input offset
//                                      (hls4ml's compressed layout), and biases
//   DIR/firmware/quantize_input.h      float features -> input_t (standardisation, the input quantizer)
//   DIR/NAME_test.cpp, tb_data/*.dat   C-simulation test bench (tb_input_features.dat,
//   tb_output_predictions.dat) DIR/build_prj.tcl                  Vitis HLS project script
//
// Kernels are loops with HLS pragmas, as hls4ml writes them: a multiply-accumulate layer loops over its
// nonzero weights only (a pruned weight is neither a multiplier nor a line), fully unrolled, the function
// pipelined at II = reuse factor with the multipliers limited to match; a quantizer with a type per channel
// or element loops, per distinct ap_fixed type, over a constant list of the lanes that have it (per-element
// widths realised exactly, in as many loops as types). Accumulators are as wide as the exact bound over all
// inputs, so nothing overflows. The generated source grows with the layers and types, not the weights.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "codegen/emit_util.h"

namespace kiln::codegen {

struct HlsOptions {
  int reuse_factor = 1;                    // default for every multiply-accumulate layer
  std::map<std::string, int> layer_reuse;  // per layer name (the Op's name)
  // latency: the products fully unrolled, the layer pipelined at II = reuse factor with the multipliers
  // limited to match; resource: a loop of reuse-factor iterations pipelined at II = 1, each issuing
  // ceil(nonzero / reuse factor) products (hls4ml's ReuseLoop / MultLoop).
  std::string strategy = "latency";
  std::string part = "xcvu13p-flga2577-2-e";
  double clock_period_ns = 5;
};

// The files of the project, path (relative to DIR) -> contents. Throws InputError for an invalid reuse
// factor, naming the layer and the valid choices.
std::map<std::string, std::string> emit_hls(const Program& p, const HlsOptions& o);

// hls4ml's rule for a multiplier array of n_in x n_out, and the valid choices.
bool valid_reuse_factor(int64_t n_in, int64_t n_out, int64_t rf);
std::vector<int64_t> valid_reuse_factors(int64_t n_in, int64_t n_out);

// The test bench's data files for samples (raw features, one row each) and the expected outputs.
std::string tb_lines(const std::vector<double>& values, int64_t per_line, int precision);

}  // namespace kiln::codegen
