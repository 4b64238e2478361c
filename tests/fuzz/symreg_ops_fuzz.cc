// libFuzzer target: the operator flags of //tools:symreg: --ops and --complexity (symreg::OpSet::parse)
// and --forbid (OpSet::parse_forbidden). Input: the three flag values separated by newlines.
// An accepted set must print (names()) as a --ops value that parses back to the same operators.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "symreg/ops.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace kiln;

void run(std::string_view in) {
  std::string flag[3];
  for (std::string& f : flag) {
    const size_t nl = in.find('\n');
    f = std::string(in.substr(0, nl));
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  }
  symreg::OpSet s = symreg::OpSet::parse(flag[0], flag[1]);
  s.parse_forbidden(flag[2]);
  symreg::OpSet back = symreg::OpSet::parse(s.names());
  for (int i = 0; i < symreg::kNumOps; ++i) {
    const auto op = static_cast<symreg::Op>(i);
    if (back.allowed(op) != s.allowed(op)) fuzz::violated("names() '" + s.names() + "' does not parse back");
    if (s.allowed(op) && (s.complexity(op) < 1 || s.complexity(op) > 1000))
      fuzz::violated("complexity " + std::to_string(s.complexity(op)) + " accepted");
  }
  if (s.binary().empty() && s.unary().empty()) fuzz::violated("an operator set without operators");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // A message quotes one item of a flag, clipped; the flag name and the list of known operators.
  fuzz::expect_rejection([&] { run(in); }, 0);
  return 0;
}
