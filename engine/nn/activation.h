// Activation functions by name, shared by the activation layers and the `activation:` key of Dense/Conv.
#pragma once
#include <string>

#include "engine/autograd.h"
#include "engine/config.h"

namespace kiln::nn {

struct Activation {
  std::string name = "linear";  // linear, relu, leaky_relu, sigmoid, tanh, gelu, softmax
  float alpha = 0.3f;           // leaky_relu slope
  Var apply(const Var& x) const;
};

// Reads `key` (e.g. "activation") from c; throws naming the valid names on an unknown one.
Activation parse_activation(const Config& c, const std::string& key);
bool is_activation_type(const std::string& type);

}  // namespace kiln::nn
