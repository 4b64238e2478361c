// Checkpoints: everything needed to use or resume a trained model, in one file.
//
// Layout: "KILNCKPT" (8 bytes), format version (u32), payload size (u64), CRC-32 of the payload (u32),
// then the payload, a cereal portable binary archive. A truncated file, a flipped bit, another format
// version or a foreign file each gives an InputError naming the file and what is wrong.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/nn/model.h"
#include "engine/optim/optimizer.h"
#include "engine/train/trainer.h"

namespace kiln::train {

constexpr uint32_t kCheckpointVersion = 2;  // 2 added best_state; version 1 files still load

struct Checkpoint {
  std::string model_yaml;  // the `model:` section the model was built from
  Shape input_shape;
  std::map<std::string, Tensor> params, buffers;
  data::Standardizer standardizer;
  std::vector<std::string> class_names, feature_names;
  std::string task = "classification";
  std::string config_yaml;  // the whole run config, for resuming
  std::map<std::string, Tensor> optimizer_state;
  std::vector<EpochRecord> history;
  uint64_t seed = 0;
  std::map<std::string, Tensor> best_state;  // early stopping's best epoch (Trainer::best_state), or empty
  std::string path;  // the file it was loaded from (not stored): error messages name it
};

// Captures the model's parameters and buffers (and, if given, optimiser state and history).
Checkpoint make_checkpoint(nn::Model& m, const data::Standardizer& st, const data::Dataset& reference);
void save_checkpoint(const Checkpoint& c, const std::string& path);  // written atomically (tmp + rename)
Checkpoint load_checkpoint(const std::string& path);
// Builds the model from the checkpoint and loads its parameters and buffers (shapes checked).
std::unique_ptr<nn::Model> restore_model(const Checkpoint& c);
void load_weights(nn::Model& m, const Checkpoint& c);

}  // namespace kiln::train
