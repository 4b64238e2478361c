// The files //tools:train writes into a run directory besides the checkpoint: history.csv,
// training_curves.svg and metrics.json.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/train/trainer.h"
#include "tools/compression.h"

namespace kiln {

// v with `prec` decimals; "" for NaN or inf (an empty CSV cell, a blank in the summary line).
std::string fmt_fixed(double v, int prec = 4);

// One row per epoch; loss terms' extra columns (ebops, beta, ...) after the fixed ones.
std::string history_csv(const std::vector<train::EpochRecord>& h);

// Loss, accuracy and AUC (or validation MSE) and the learning rate per epoch, one panel each.
void write_curves(const std::string& path, const std::vector<train::EpochRecord>& h, bool classification);

// metrics.json: the test metrics, the training history's totals, pruning and quantization results, then the
// keys of `extra` (anomaly metrics) and the wall time.
std::string metrics_json(const train::EvalResult& test, const data::Dataset& d, const train::Trainer& tr,
                         const nn::Model& m, double wall, const CompressionRun& comp,
                         const nlohmann::ordered_json& extra);

}  // namespace kiln
