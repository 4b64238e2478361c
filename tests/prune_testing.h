// Helpers shared by the pruning methods' unit tests (tests/prune_*_test.cc): a model's targets as the Pruner
// builds them (make_prune_target), a model with a method attached to them, and lookups of a method's stats,
// parameters and buffers.
//
//   testing::Setup s("cs", "final_temp: 16", "[{type: dense, name: a, units: 2}]", {3});
//   s.targets[0].weight->var.value() = ...;
//   Var w = testing::forward_weight(s, 0);  // what the forward pass of the pruning stage sees
//   CHECK(testing::stat(s, "cs_beta") == 1.0);
#pragma once
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compress/prune_method.h"
#include "engine/nn/model.h"

namespace kiln::testing {

// Every layer of m with a weight, in order, masks (and bias masks) all ones.
inline std::vector<compress::PruneTarget> targets_of(nn::Model& m) {
  std::vector<compress::PruneTarget> ts;
  for (nn::Layer* l : m.layers())
    if (l->param("weight")) ts.push_back(compress::make_prune_target(l));
  return ts;
}

// A model (`layers:` list `layers`, input shape `in`, init seed `seed`), its targets and the method `method`
// (`keys`: its `compression: pruning:` YAML) attached to them. The method keeps a pointer to `targets`, so a
// Setup never moves: build it in place (`Setup s(...)`, or return `Setup(...)` from a function).
struct Setup {
  std::unique_ptr<nn::Model> model;
  std::vector<compress::PruneTarget> targets;
  compress::PruneMethodPtr method;

  Setup(const std::string& method_name, const std::string& keys, const std::string& layers, const Shape& in,
        const compress::PruneCommon& common = {}, uint64_t seed = 1)
      : model(nn::Model::from_yaml("layers: " + layers, in, seed)), targets(targets_of(*model)) {
    method = compress::make_prune_method(Config::parse(keys, "p.yaml", "pruning"), method_name, common);
    method->attach(&targets);
  }
  Setup(const Setup&) = delete;
  Setup& operator=(const Setup&) = delete;
};

// The value of the method's stat `key` (a history.csv column); fails the test if there is none.
inline double stat(compress::PruneMethod& p, const std::string& key) {
  for (const auto& [k, v] : p.stats())
    if (k == key) return v;
  FAIL("no stat " << key);
  return 0;
}
inline double stat(Setup& s, const std::string& key) { return stat(*s.method, key); }

// The method's one trainable parameter of target i (a threshold, a score).
inline nn::Parameter* method_param(Setup& s, size_t i) {
  std::vector<nn::Parameter*> p;
  s.method->parameters(i, p);
  REQUIRE(p.size() == 1);
  return p[0];
}

// The weight the forward pass of the pruning stage uses for target i, with its graph.
inline Var forward_weight(Setup& s, size_t i) {
  nn::Context ctx;
  return s.method->weight(i, s.targets[i].weight->var, ctx);
}

// The method's state buffer `name` of target i; fails the test if there is none.
inline Tensor* buffer(compress::PruneMethod& p, size_t i, const std::string& name) {
  std::vector<nn::Buffer> bs;
  p.buffers(i, bs);
  for (const nn::Buffer& b : bs)
    if (b.name == name) return b.tensor;
  FAIL("no buffer " << name);
  return nullptr;
}

// Sets a parameter's values, keeping its shape.
inline void set(nn::Parameter* p, std::vector<float> v) {
  p->var.value() = Tensor(p->var.shape(), std::move(v));
}

}  // namespace kiln::testing
