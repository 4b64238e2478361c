// Layer factories, one per layer file; registry.cc maps YAML `type:` names to them.
#pragma once
#include "engine/nn/layer.h"

namespace kiln::nn {

LayerPtr make_dense(const Config& c);
LayerPtr make_activation(const Config& c);
LayerPtr make_conv1d(const Config& c);
LayerPtr make_conv2d(const Config& c);
LayerPtr make_depthwise_conv2d(const Config& c);
LayerPtr make_batch_norm(const Config& c);
LayerPtr make_layer_norm(const Config& c);
LayerPtr make_pool(const Config& c);  // max_pool1d, max_pool2d, avg_pool1d, avg_pool2d
LayerPtr make_global_avg_pool(const Config& c);
LayerPtr make_flatten(const Config& c);
LayerPtr make_reshape(const Config& c);
LayerPtr make_dropout(const Config& c);
LayerPtr make_residual(const Config& c);
LayerPtr make_embedding(const Config& c);
LayerPtr make_positional_embedding(const Config& c);
LayerPtr make_multi_head_attention(const Config& c);
LayerPtr make_attention(const Config& c);
LayerPtr make_transformer_block(const Config& c);
LayerPtr make_vae_sampling(const Config& c);
LayerPtr make_sum_squares(const Config& c);
LayerPtr make_upsample(const Config& c);  // upsample1d, upsample2d

// Rejects keys not in `keys`, naming the layer's type (and its name, if given) after its place in the list:
// "unknown key 'betta' in 'layers' item 2 (vae_sampling 'z')".
void check_layer_keys(const Config& c, const std::string& type, const std::vector<std::string>& keys);

}  // namespace kiln::nn
