#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_magnitude(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'magnitude' is not implemented yet");
}

}  // namespace kiln::compress
