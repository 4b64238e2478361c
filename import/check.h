// --check INPUTS.npy --expect OUTPUTS.npy: kiln's forward of an imported model against the outputs the
// user's framework gave for the same inputs. The inputs are what the source model takes (already
// preprocessed: the checkpoint's standardisation is not applied); channels-first inputs of a PyTorch model
// are transposed to kiln's channels-last.
#pragma once
#include <string>

#include "engine/train/checkpoint.h"

namespace kiln::import {

struct CheckResult {
  int64_t samples = 0;
  double max_abs_diff = 0;
  int64_t worst_sample = 0, worst_output = 0;
};

CheckResult check_forward(const train::Checkpoint& ck, const std::string& inputs_npy,
                          const std::string& expect_npy, bool channels_first);

}  // namespace kiln::import
