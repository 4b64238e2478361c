#include "compress/prune_method.h"

namespace kiln::compress {

PruneMethodPtr make_dst(const Config& c, const PruneCommon&) {
  c.fail("pruning_method", "pruning_method 'dst' is not implemented yet");
}

}  // namespace kiln::compress
