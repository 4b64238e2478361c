#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_cs(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'cs' is not implemented yet");
}

}  // namespace kiln::compress
