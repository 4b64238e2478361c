#include "engine/check.h"

namespace kiln {

void check_failed(const char* file, int line, const char* expr, const std::string& hint) {
  throw InternalError(std::string(file) + ":" + std::to_string(line) + ": check failed: " + expr + " (" + hint + ")");
}

}  // namespace kiln
