// Two kinds of error (style.md, principle 8):
//  - KILN_CHECK: a programming bug. Throws InternalError with file, line, the expression and a hint.
//  - ShapeError / InputError: bad user input (a model that does not fit its data, a bad file or config).
//    Their messages name the layer, file, line or key and the values found; tools print them as one line.
#pragma once
#include <stdexcept>
#include <string>

namespace kiln {

struct InternalError : std::logic_error {
  using std::logic_error::logic_error;
};
struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "a, b, c": a list of names (any range of strings) for a message.
template <class Range>
std::string join(const Range& items, const std::string& sep = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : sep) + std::string(item);
  return out;
}

[[noreturn]] void check_failed(const char* file, int line, const char* expr, const std::string& hint);

}  // namespace kiln

#define KILN_CHECK(cond, hint)                                            \
  do {                                                                    \
    if (!(cond)) ::kiln::check_failed(__FILE__, __LINE__, #cond, (hint)); \
  } while (0)
