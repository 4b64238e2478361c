#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_activation_pruning(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'activation_pruning' is not implemented yet");
}

}  // namespace kiln::compress
