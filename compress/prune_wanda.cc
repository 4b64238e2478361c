#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_wanda(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'wanda' is not implemented yet");
}

}  // namespace kiln::compress
