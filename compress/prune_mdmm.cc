#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_mdmm(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'mdmm' is not implemented yet");
}

}  // namespace kiln::compress
