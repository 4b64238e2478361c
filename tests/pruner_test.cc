// The pruning schedule (PQuant's driver) and what a pruned model carries: stages at the right epochs,
// rewinding, masks honoured by the optimiser and kept in checkpoints, EBOPs that count only the remaining
// weights, hgq_gamma in the loss, the collapse guard, and config errors that name the key.
#include "compress/pruner.h"

#include "engine/optim/optimizer.h"
#include "engine/train/checkpoint.h"
#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using namespace kiln::compress;

namespace {

const char* kModel =
    "layers: [{type: dense, name: fc1, units: 8, activation: relu}, {type: dense, name: out, units: 3}]";

PruningOptions parse(const std::string& pruning, const std::string& training) {
  return parse_pruning(Config::parse(pruning, "p.yaml", "pruning"),
                       Config::parse(training, "p.yaml", "training"));
}

train::EpochRecord record(int epoch, double val_accuracy = 0.9) {
  train::EpochRecord r;
  r.epoch = epoch;
  r.val_accuracy = val_accuracy;
  return r;
}

int64_t zeros(const Tensor& t) { return (t.vec().array() == 0.f).count(); }

}  // namespace

TEST_CASE("the schedule: pretraining, a round, hard masks, fine-tuning") {
  auto m = nn::Model::from_yaml(kModel, {4}, 1);
  PruningOptions o = parse("{pruning_method: magnitude, sparsity: 0.5, ramp_epochs: 2}",
                           "{epochs: 3, pretraining_epochs: 2, fine_tuning_epochs: 2}");
  CHECK(o.total_epochs() == 7);
  Pruner p(*m, o);
  REQUIRE(p.targets().size() == 2);
  nn::Parameter* w = m->layers()[0]->param("weight");
  for (int e = 1; e <= 2; ++e) {  // pretraining: nothing pruned, no mask on the parameter
    p.start_epoch(e);
    CHECK(p.stage() == Pruner::kPretraining);
    CHECK(w->mask.empty());
    CHECK(zeros(w->var.value()) == 0);
    p.end_epoch(record(e));
  }
  p.start_epoch(3);  // stage epoch 0: the polynomial ramp's first step, masks on the parameters
  CHECK(p.stage() == Pruner::kPruning);
  REQUIRE(!w->mask.empty());
  CHECK(zeros(w->var.value()) == zeros(w->mask));
  p.end_epoch(record(3));
  p.start_epoch(4);
  p.end_epoch(record(4));
  p.start_epoch(5);
  p.end_epoch(record(5));  // the round's last epoch: masks harden
  CHECK(p.stage() == Pruner::kFinal);
  CHECK(p.sparsity() == doctest::Approx(0.5).epsilon(0.02));
  // The optimiser keeps pruned weights at zero through fine-tuning.
  auto params = m->parameters();
  for (auto* q : params) q->var.grad() = Tensor(q->var.shape(), 1.f);
  auto opt = optim::make_optimizer(optim::OptimizerOptions{});
  opt->step(params, 0.1f);
  CHECK(zeros(w->var.value()) >= zeros(w->mask));
  CHECK(p.sparsity() == doctest::Approx(0.5).epsilon(0.02));
}

TEST_CASE("rewind restores round 0's saved weights and keeps the masks") {
  auto m = nn::Model::from_yaml(kModel, {4}, 1);
  Pruner p(*m, parse("{pruning_method: magnitude, sparsity: 0.5, ramp_epochs: 1}",
                     "{epochs: 2, rounds: 2, rewind: every-round, save_weights_epoch: 0}"));
  nn::Parameter* w = m->layers()[0]->param("weight");
  const Tensor before = w->var.value();
  p.start_epoch(1);  // saves the weights, then prunes
  const Tensor saved = before;
  for (int64_t j = 0; j < w->var.size(); ++j) w->var.value()[j] += 0.5f * w->mask[j];  // "training"
  p.end_epoch(record(1));
  p.start_epoch(2);
  p.end_epoch(record(2));  // end of round 1: rewind
  for (int64_t j = 0; j < w->var.size(); ++j) CHECK(w->var.value()[j] == saved[j] * w->mask[j]);
  CHECK(zeros(w->mask) > 0);
}

TEST_CASE("masks, stage and the rewind point survive a checkpoint") {
  auto m = nn::Model::from_yaml(kModel, {4}, 1);
  const auto o = parse("{pruning_method: magnitude, sparsity: 0.6, ramp_epochs: 1}",
                       "{epochs: 1, fine_tuning_epochs: 1}");
  Pruner p(*m, o);
  p.start_epoch(1);
  p.end_epoch(record(1));
  REQUIRE(p.stage() == Pruner::kFinal);
  data::Dataset ref;
  train::Checkpoint ck = train::make_checkpoint(*m, data::Standardizer{}, ref);
  auto m2 = nn::Model::from_yaml(kModel, {4}, 2);  // other initial weights
  Pruner p2(*m2, o);
  train::load_weights(*m2, ck);
  p2.sync();
  CHECK(p2.stage() == Pruner::kFinal);
  nn::Parameter* w1 = m->layers()[0]->param("weight");
  nn::Parameter* w2 = m2->layers()[0]->param("weight");
  REQUIRE(w2->mask.shape() == w1->mask.shape());
  for (int64_t j = 0; j < w1->var.size(); ++j) CHECK(w2->mask[j] == w1->mask[j]);
  CHECK(p2.sparsity() == doctest::Approx(p.sparsity()));
}

TEST_CASE("with HGQ, EBOPs count only the remaining weights, and hgq_gamma reaches the loss") {
  auto m = nn::Model::from_yaml("layers: [{type: dense, name: d, units: 3}]", {2}, 1);
  HgqOptions q = parse_quantization(Config::parse(
      "{default_fractional_bits: 2, default_data_fractional_bits: 3, hgq_beta: 0, hgq_gamma: 0.5}", "q.yaml",
      "quantization"));
  QuantizedModel qm(*m, q);
  const double dense =
      qm.ebops_value();  // quantization.md's example without the bias change: 4 * 3 per product
  Pruner p(*m, parse("{pruning_method: magnitude, sparsity: 0.5, ramp_epochs: 1}", "{epochs: 1}"), &qm);
  p.start_epoch(1);
  p.end_epoch(record(1));
  nn::Parameter* w = m->layers()[0]->param("weight");
  REQUIRE(zeros(w->mask) == 3);  // 3 of 6 weights
  // Each weight costs b_in (4) * b_w (3) = 12; three are gone.
  CHECK(qm.ebops_value() == doctest::Approx(dense - 3 * 12));
  // gamma * sum(bits): inputs 2 x 4, the 3 remaining weights x 3, biases 3 x 3 (beta 0).
  HgqLoss hl(std::shared_ptr<QuantizedModel>(&qm, [](QuantizedModel*) {}), q);
  hl.start_epoch(1);
  CHECK(hl.loss().value()[0] == doctest::Approx(0.5 * (2 * 4 + 3 * 3 + 3 * 3)));
}

TEST_CASE("the collapse guard names the method, the epoch and the sparsity") {
  auto m = nn::Model::from_yaml(kModel, {4}, 1);
  Pruner p(*m, parse("{pruning_method: magnitude, sparsity: 0.9, ramp_epochs: 1}", "{epochs: 2}"));
  p.set_classes(3);
  p.start_epoch(1);
  p.end_epoch(record(1, 0.6));  // above 1.5 x 1/3
  p.start_epoch(2);
  try {
    p.end_epoch(record(2, 0.4));
    FAIL("no error");
  } catch (const InputError& e) {
    const std::string s = e.what();
    CHECK(s.find("magnitude") != std::string::npos);
    CHECK(s.find("epoch 2 (round 1 of 1, epoch 2 of 2)") != std::string::npos);
    // 50 of 56 weights by magnitude, and the next layer's weights fed by units left with nothing.
    const size_t at = s.find("with sparsity ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(s.substr(at + 14)) >= 0.89);
  }
}

TEST_CASE("pruning config errors name the key") {
  auto m = nn::Model::from_yaml(kModel, {4}, 1);
  auto err = [&](const std::string& pr, const std::string& tr) {
    try {
      Pruner p(*m, parse(pr, tr));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err("{pruning_method: prune_all}", "{}").find("unknown pruning_method 'prune_all'") !=
        std::string::npos);
  CHECK(err("{pruning_method: magnitude, sparsity: 1.5}", "{}").find("sparsity must be in (0, 1)") !=
        std::string::npos);
  CHECK(err("{pruning_method: magnitude, epsilon: 0.1}", "{}").find("unknown key 'epsilon'") !=
        std::string::npos);
  CHECK(err("{pruning_method: magnitude}", "{rewind: sometimes}").find("rewind must be never") !=
        std::string::npos);
  CHECK(err("{pruning_method: magnitude, disable_pruning_for_layers: [fc9]}", "{}").find("'fc9'") !=
        std::string::npos);
  CHECK(err("{pruning_method: magnitude, disable_pruning_for_layers: [fc1, out]}", "{}")
            .find("no Dense or Conv") != std::string::npos);
  // Another method's mapping is skipped; the chosen method's mapping is read.
  CHECK(err("{pruning_method: magnitude, pdp: {epsilon: 0.1}, magnitude: {exponent: 2}}", "{}") ==
        "no error");
  CHECK(err("{pruning_method: magnitude, magnitude: {epsilon: 0.1}}", "{}").find("unknown key 'epsilon'") !=
        std::string::npos);
}

TEST_CASE(
    "structured pruning: removed units vanish from the next layer too, and the model computes the same") {
  auto m = nn::Model::from_yaml(R"(layers:
  - {type: dense, name: fc1, units: 8, activation: relu}
  - {type: dense, name: fc2, units: 6, activation: relu}
  - {type: dense, name: out, units: 3})",
                                {5}, 3);
  Pruner p(*m, parse("{pruning_method: pdp, sparsity: 0.5, pdp: {structured_pruning: true, epsilon: 1}}",
                     "{epochs: 1}"));
  REQUIRE(p.targets().size() == 2);  // the output layer's units are the classes: not the method's
  p.start_epoch(1);
  p.end_epoch(record(1));
  REQUIRE(p.stage() == Pruner::kFinal);
  auto layers = m->layers();
  std::vector<std::pair<Tensor*, int64_t>> fed_by_removed;  // next-layer weights that read a removed unit
  // fc1: 4 of 8 units removed; fc2's rows fed by them are zero and masked; likewise out's rows from fc2.
  for (size_t l = 0; l + 1 < layers.size(); ++l) {
    const Tensor& b = layers[l]->param("bias")->var.value();
    const Tensor& nw = layers[l + 1]->param("weight")->var.value();
    const Tensor& nm = layers[l + 1]->param("weight")->mask;
    const int64_t outs = nw.shape().back();
    int removed = 0;
    for (int64_t u = 0; u < b.size(); ++u) {
      bool dead = b[u] == 0.f;
      for (int64_t j = 0; j < layers[l]->param("weight")->var.dim(0); ++j)
        dead = dead && layers[l]->param("weight")->var.value()[j * b.size() + u] == 0.f;
      if (!dead) continue;
      ++removed;
      for (int64_t o = 0; o < outs; ++o) {
        fed_by_removed.push_back({&layers[l + 1]->param("weight")->var.value(), u * outs + o});
        CHECK(nw[u * outs + o] == 0.f);
        CHECK(nm[u * outs + o] == 0.f);
      }
    }
    CHECK(removed == static_cast<int>(b.size()) / 2);
  }
  // Those rows multiply exact zeros: any values there leave the outputs unchanged.
  std::mt19937_64 rng(5);
  Tensor x = testing::random_tensor({16, 5}, rng);
  nn::Context ctx;
  NoGradGuard ng;
  const Tensor y = m->forward(Var(x), ctx).value();
  for (auto& [w, j] : fed_by_removed) (*w)[j] = 0.37f;
  const Tensor y2 = m->forward(Var(x), ctx).value();
  for (int64_t j = 0; j < y.size(); ++j) CHECK(y2[j] == y[j]);
}
