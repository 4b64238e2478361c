// The C generator's state and kernel writers, private to emit_c.cc (the driver: emit_c(), the buffers, the
// header and the entry points) and emit_c_layers.cc (one kernel per op kind).
#pragma once
#include <cstdint>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "codegen/emit_c.h"
#include "codegen/emit_util.h"

namespace kiln::codegen::c_detail {

// The generated C's names of the rounding and overflow modes (the enums of its preamble, emit_c.cc).
const char* round_name(compress::Round r);
const char* overflow_name(compress::Overflow o);

struct Emitter {
  const Program& p;
  COptions opt;
  std::string N;  // the model's name, the prefix of public symbols
  std::ostringstream tables, funcs, run;
  int64_t const_bytes = 0, code_bytes = 0;
  std::set<int> kept;       // residual blocks' inputs: their own static arrays, outside the ping-pong buffers
  std::map<int, int> slot;  // every other buffer but the input: ping-pong union 0 (kiln_a) or 1 (kiln_b)
  bool dsp = false;         // some layer has an SMLAD path: the preamble defines KILN_DSP

  const Buffer& buf(int b) const { return p.buffers[static_cast<size_t>(b)]; }
  std::string type(int b) const { return int_type(buf(b).min(), buf(b).max()); }
  int bytes(int b) const { return int_bytes(buf(b).min(), buf(b).max()); }
  std::string ptr(int b) const {
    if (b == 0) return "x";
    if (kept.count(b)) return "kiln_k" + std::to_string(b);
    return std::string(slot.at(b) == 0 ? "kiln_a" : "kiln_b") + ".i" + std::to_string(8 * bytes(b));
  }

  // The kernels (emit_c_layers.cc): each writes `static void kiln_op<id>(...)` to `funcs` and its constants
  // to `tables`, and adds to const_bytes and code_bytes.
  void layer_norm(const Op& op, const std::string& id);
  void add_const(const Op& op, const std::string& id);
  void slice(const Op& op, const std::string& id);
  void sum_squares(const Op& op, const std::string& id);
  void scores(const Op& op, const std::string& id);
  void context(const Op& op, const std::string& id);
  void add(const Op& op, const std::string& id);
  std::pair<std::string, std::string> type_tables(std::ostream& os, const TypeTable& t, int grid,
                                                  const std::string& id, int64_t channels);
  // Returns whether the op calls the generic kiln_requant.
  bool quantize(const Op& op, const std::string& id);
  void mac(const Op& op, const std::string& id);
  void lut(const Op& op, const std::string& id);
  void hard_tanh(const Op& op, const std::string& id);
  void softmax(const Op& op, const std::string& id);
  void avg_pool(const Op& op, const std::string& id);
  void max_pool(const Op& op, const std::string& id);
};

}  // namespace kiln::codegen::c_detail
