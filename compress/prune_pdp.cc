#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_pdp(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'pdp' is not implemented yet");
}

}  // namespace kiln::compress
