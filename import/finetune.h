// --config BASE.yaml: an imported model ready for kiln's training. BASE's `data:`, `training:` and
// `compression:` sections are kept and its `model:` section becomes the imported model's, so that
//
//   kiln import --keras M.json --weights W.h5 --config hgq.yaml --out imp
//   kiln train --config imp/train.yaml --resume imp/model.ckpt --out runs/finetuned
//
// fine-tunes the imported weights (with HGQ and pruning, if BASE asks for them), and //tools:export finds the
// config's data for its HLS test bench.
#pragma once
#include <memory>
#include <string>

#include "engine/nn/model.h"
#include "import/imported.h"

namespace kiln::import {

// A copy of `m` for training with BASE's loss: kiln's cross-entropies take logits and apply their softmax
// (binary: sigmoid) themselves, so a final softmax (sigmoid) is left out, with a note (the argmax, and so
// the predicted class, is unchanged).
Imported for_training(const Imported& m, const std::string& base_path);

// BASE's YAML with `model:` set to the imported layers (comments are not kept).
std::string config_with_model(const std::string& base_path, const Imported& m);

}  // namespace kiln::import
