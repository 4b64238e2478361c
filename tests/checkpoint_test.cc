// Checkpoint round trip (weights, buffers, standardiser, optimiser state, history) and every kind of
// damaged file: truncated, bit-flipped, wrong version, foreign, empty, missing.
#include "engine/train/checkpoint.h"

#include <sys/resource.h>

#include <cstdio>
#include <filesystem>

#include "tests/gradcheck.h"
#include "tests/test_files.h"

using namespace kiln;
using kiln::testing::file_bytes;
using kiln::testing::TempDir;

namespace {

// The InputError message of loading p, "" if it loads; any other exception fails the test case.
std::string load_error(const std::string& p) {
  try {
    train::load_checkpoint(p);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

train::Checkpoint sample_checkpoint() {
  auto m = nn::Model::from_yaml(
      "layers: [{type: dense, units: 3}, {type: batch_norm}, {type: dense, units: 2}]", {4}, 7);
  data::Standardizer st;
  st.mean = {1, 2, 3, 4};
  st.scale = {0.5f, 1, 2, 4};
  data::Dataset ref;
  ref.x = Tensor({1, 4});
  ref.labels = {0};
  ref.class_names = {"g", "q"};
  train::Checkpoint c = train::make_checkpoint(*m, st, ref);
  c.optimizer_state["step"] = Tensor({1}, {12.f});
  c.optimizer_state["dense_1.weight/m"] = Tensor({4, 3}, 0.25f);
  train::EpochRecord r;
  r.epoch = 1;
  r.val_accuracy = 0.5;
  c.history = {r};
  c.seed = 7;
  c.config_yaml = "training: {epochs: 1}\n";
  return c;
}

}  // namespace

TEST_CASE("round trip restores the model exactly") {
  TempDir tmp;
  train::Checkpoint c = sample_checkpoint();
  std::string p = tmp.path("ok.ckpt");
  train::save_checkpoint(c, p);
  train::Checkpoint back = train::load_checkpoint(p);
  CHECK(back.model_yaml == c.model_yaml);
  CHECK(back.input_shape == Shape{4});
  CHECK(back.params.size() == 6);
  for (const auto& [k, v] : c.params) CHECK(back.params.at(k).storage() == v.storage());
  CHECK(back.buffers.at("batch_norm_1.running_var").storage() == std::vector<float>{1, 1, 1});
  CHECK(back.standardizer.scale == std::vector<float>{0.5f, 1, 2, 4});
  CHECK(back.class_names == std::vector<std::string>{"g", "q"});
  CHECK(back.optimizer_state.at("dense_1.weight/m").shape() == Shape{4, 3});
  CHECK(back.history.size() == 1);
  CHECK(back.history[0].val_accuracy == 0.5);
  CHECK(std::isnan(back.history[0].val_auc));
  CHECK(back.config_yaml == c.config_yaml);
  auto m = train::restore_model(back);
  auto fresh = nn::Model::from_yaml(c.model_yaml, {4}, 99);  // other seed: other weights until loaded
  train::load_weights(*fresh, back);
  nn::Context ctx;
  Tensor x({2, 4}, {1, 2, 3, 4, -1, 0, 1, 2});
  CHECK(m->forward(Var(x), ctx).value().storage() == fresh->forward(Var(x), ctx).value().storage());
}

TEST_CASE("damaged files give one clear error each") {
  TempDir tmp;
  train::Checkpoint c = sample_checkpoint();
  std::string good = tmp.path("good.ckpt");
  train::save_checkpoint(c, good);
  std::string bytes = file_bytes(good);

  std::string p = tmp.write("truncated.ckpt", bytes.substr(0, bytes.size() / 2));
  CHECK(load_error(p).find("truncated") != std::string::npos);
  CHECK(load_error(p).find("truncated.ckpt") != std::string::npos);
  tmp.write("truncated.ckpt", bytes.substr(0, 15));
  CHECK(load_error(p).find("truncated checkpoint (15 bytes") != std::string::npos);

  std::string flipped = bytes;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x10);
  p = tmp.write("flipped.ckpt", flipped);
  CHECK(load_error(p).find("corrupted checkpoint (CRC-32 mismatch)") != std::string::npos);

  std::string v99 = bytes;
  v99[8] = 99;
  p = tmp.write("v99.ckpt", v99);
  CHECK(load_error(p).find("format version 99, this kiln reads versions 1 to 2") != std::string::npos);

  p = tmp.write("foreign.ckpt", "PK\x03\x04 this is a zip file, not a checkpoint");
  CHECK(load_error(p).find("not a kiln checkpoint") != std::string::npos);
  tmp.write("foreign.ckpt", "");
  CHECK(load_error(p).find("empty file, not a kiln checkpoint") != std::string::npos);
  tmp.write("foreign.ckpt", "KILN");
  CHECK(load_error(p).find("truncated checkpoint (4 bytes)") != std::string::npos);
  CHECK(load_error(tmp.path("missing.ckpt")).find("cannot open checkpoint") != std::string::npos);
}

TEST_CASE("weights that do not fit the model are rejected with both shapes") {
  train::Checkpoint c = sample_checkpoint();
  c.params["dense_1.weight"] = Tensor({5, 3});
  try {
    train::restore_model(c);
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("'dense_1.weight' has shape [5, 3], the model needs [4, 3]") !=
          std::string::npos);
  }
  c = sample_checkpoint();
  c.params.erase("dense_2.bias");
  CHECK_THROWS_AS(train::restore_model(c), InputError);
}

TEST_CASE(
    "a failed checkpoint write (file size limit) is one clear error and keeps the previous checkpoint") {
  TempDir dir;
  const std::string path = dir.path("model.ckpt");
  train::Checkpoint a = sample_checkpoint();
  train::save_checkpoint(a, path);
  const std::string before = file_bytes(path);
  train::Checkpoint b = a;
  b.optimizer_state["big"] = Tensor({4096}, 1.f);  // 16 KB more than the limit below allows
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit small = old;
  small.rlim_cur = before.size() + 4096;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string msg;
  try {
    train::save_checkpoint(b, path);
  } catch (const InputError& e) {
    msg = e.what();
  }
  REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
  CHECK(msg.find("cannot write '" + path + "'") != std::string::npos);
  CHECK(msg.find("File too large") != std::string::npos);
  CHECK(file_bytes(path) == before);  // the previous checkpoint, byte for byte
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK(train::load_checkpoint(path).optimizer_state.count("big") == 0);
}

TEST_CASE("checkpoint errors name the file: a missing or extra parameter, another shape") {
  TempDir dir;
  const std::string path = dir.path("m.ckpt");
  train::save_checkpoint(sample_checkpoint(), path);
  train::Checkpoint c = train::load_checkpoint(path);
  auto other = nn::Model::from_yaml(
      "layers: [{type: dense, units: 3}, {type: batch_norm}, {type: dense, units: 5}]", {4}, 7);
  std::string msg;
  try {
    train::load_weights(*other, c);
  } catch (const InputError& e) {
    msg = e.what();
  }
  CHECK(msg.find(path + ": parameter 'dense_2.weight' has shape [3, 2], the model needs [3, 5]") == 0);
  c.params["dense_1.input_q.f"] = Tensor({1}, 4.f);  // as an HGQ checkpoint has, read with a float config
  auto same = nn::Model::from_yaml(
      "layers: [{type: dense, units: 3}, {type: batch_norm}, {type: dense, units: 2}]", {4}, 7);
  msg.clear();
  try {
    train::load_weights(*same, c);
  } catch (const InputError& e) {
    msg = e.what();
  }
  CHECK(msg.find(path + ": the checkpoint has parameter 'dense_1.input_q.f', which this model does not") ==
        0);
}
