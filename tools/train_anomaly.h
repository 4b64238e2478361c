// An anomaly-detection run's outputs for //tools:train (data: anomaly:): the test split scored by the
// run's anomaly score, the teacher's or the reconstruction's beside it, and for a latent score the encoder
// alone with its score, the model the firmware runs.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/train/distill.h"
#include "engine/train/run_config.h"
#include "tools/compression.h"
#include "tools/run_dir.h"

namespace kiln {

// The encoder of a latent-score model with its sum-of-squares score (train::latent_score_spec) and its
// quantizers; built before training too, so that a latent layer it cannot use, or a compression section that
// does not fit it, fails before hours of training.
struct ScoreModel {
  std::unique_ptr<nn::Model> model;
  std::unique_ptr<CompressionRun> comp;
};
ScoreModel make_score_model(const Config& cfg, const nn::Model& trained, const std::string& latent,
                            uint64_t seed, int round_epochs);

// Scores `test` with the trained model (and the teacher's or the reconstruction's score, and for score
// `latent` the encoder score model filled from the trained weights and calibrated on train_x), prints the
// tables unless quiet, writes roc.svg and scores.csv into the run and the metrics into `extra`. Returns the
// encoder score model of a latent-score run, null otherwise.
std::unique_ptr<nn::Model> anomaly_outputs(const train::AnomalyOptions& a, nn::Model& model,
                                           const data::Dataset& test, const Tensor& train_x,
                                           const train::LoadedData& ld, const train::Distiller* distiller,
                                           ScoreModel& score, const RunDir& rd, bool quiet,
                                           nlohmann::ordered_json& extra);

}  // namespace kiln
