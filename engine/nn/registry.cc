// The registry of layer types: the one place a new layer is added.
#include <map>

#include "engine/nn/activation.h"
#include "engine/nn/factories.h"

namespace kiln::nn {

namespace {
using Factory = LayerPtr (*)(const Config&);
const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> kRegistry{
      {"dense", make_dense},
      {"activation", make_activation},
      {"relu", make_activation},
      {"leaky_relu", make_activation},
      {"sigmoid", make_activation},
      {"tanh", make_activation},
      {"gelu", make_activation},
      {"softmax", make_activation},
      {"conv1d", make_conv1d},
      {"conv2d", make_conv2d},
      {"depthwise_conv2d", make_depthwise_conv2d},
      {"batch_norm", make_batch_norm},
      {"layer_norm", make_layer_norm},
      {"max_pool1d", make_pool},
      {"max_pool2d", make_pool},
      {"avg_pool1d", make_pool},
      {"avg_pool2d", make_pool},
      {"global_avg_pool", make_global_avg_pool},
      {"flatten", make_flatten},
      {"reshape", make_reshape},
      {"dropout", make_dropout},
      {"residual", make_residual},
      {"embedding", make_embedding},
      {"positional_embedding", make_positional_embedding},
      {"multi_head_attention", make_multi_head_attention},
      {"attention", make_attention},
      {"transformer_block", make_transformer_block},
      {"vae_sampling", make_vae_sampling},
      {"sum_squares", make_sum_squares},
      {"upsample1d", make_upsample},
      {"upsample2d", make_upsample},
  };
  return kRegistry;
}
}  // namespace

std::vector<std::string> layer_types() {
  std::vector<std::string> out;
  for (const auto& [k, v] : registry()) out.push_back(k);
  return out;
}

void check_layer_keys(const Config& c, const std::string& type, const std::vector<std::string>& keys) {
  const std::string name = c.get<std::string>("name", "");
  Config(c.node(), c.file(), c.where() + " (" + type + (name.empty() ? "" : " '" + name + "'") + ")")
      .check_unused(keys);
}

LayerPtr make_layer(const Config& c) {
  if (!c.has("type")) c.fail("type", "a layer needs a 'type' (e.g. type: dense) in " + c.where());
  std::string type = c.get<std::string>("type", "");
  auto it = registry().find(type);
  if (it == registry().end()) {
    std::string near = closest_match(type, layer_types());
    c.fail("type", "unknown layer type '" + type + "'" +
                       (near.empty() ? "" : "; did you mean '" + near + "'?") +
                       " (valid: " + join(layer_types()) + ")");
  }
  return it->second(c);
}

}  // namespace kiln::nn
