#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_autosparse(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'autosparse' is not implemented yet");
}

}  // namespace kiln::compress
