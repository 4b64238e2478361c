// The HLS generator's state and kernel writers, private to emit_hls.cc (the driver: emit_hls(), the project's
// files), emit_hls_common.cc (types, conversions, tables) and emit_hls_layers.cc (one kernel per op kind).
#pragma once
#include <cstdint>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "codegen/emit_hls.h"
#include "codegen/emit_util.h"

namespace kiln::codegen::hls_detail {

// The container of a buffer: signed, as wide as its code range, `frac` fractional bits.
std::string container(int64_t lo, int64_t hi, int frac);

// A decimal that reads back as exactly code * 2^-frac (doubles hold these exactly: |code| < 2^53).
std::string exact(int64_t code, int frac);

struct Hls {
  const Program& p;
  const HlsOptions& o;
  std::ostringstream defines, params, layers, top, weights_inc;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> qtypes;  // ap_fixed spelling -> typedef name
  int lane_lists = 0;  // index lists of per-channel and per-element quantizers so far (unique names)

  const Buffer& buf(int b) const { return p.buffers[static_cast<size_t>(b)]; }
  std::string btype(int b) const {
    if (b == 0) return "input_t";
    if (b == p.output) return "result_t";
    return "layer" + std::to_string(b) + "_t";
  }
  std::string bname(int b) const {
    if (b == 0) return "x";
    if (b == p.output) return "y";
    return "layer" + std::to_string(b) + "_out";
  }

  // Types, quantizer conversions, signatures and constants (emit_hls_common.cc).
  std::string qtype(const TypeTable& t, size_t j);
  std::string convert(const TypeTable& t, size_t j, const std::string& y, const std::string& x);
  void quantize_body(std::ostream& os, const TypeTable& t, int64_t n, int64_t channels, const std::string& y,
                     const std::string& x, const std::string& ind);
  std::string signature(const Op& op, const std::string& fn) const;
  static std::string ap_type(const compress::FixedType& t);
  void table(const std::string& nm, const std::string& type, const std::vector<int64_t>& codes, int frac,
             const std::string& what);
  static std::string pow2_const(const std::string& nm, int e);
  static std::string int_array(const std::string& nm, const std::vector<int64_t>& v);

  // Kernels (emit_hls_layers.cc; the other op kinds' are inline in emit_hls()): each writes the function `fn`
  // to `layers`, and its types, tables and config to `defines`, `files` and `params`.
  void layer_norm(const Op& op, const std::string& fn);
  void lut(const Op& op, int id, const std::string& fn);
  void hard_tanh(const Op& op, const std::string& fn);
  void softmax(const Op& op, int id, const std::string& fn);
  void avg_pool(const Op& op, const std::string& fn);
  // Emits the layer; returns its reuse factor.
  int64_t mac(const Op& op, int id, const std::string& fn);
};

}  // namespace kiln::codegen::hls_detail
