#include "engine/nn/layer.h"

#include <cmath>
#include <map>

namespace kiln::nn {

Init parse_init(const Config& c, const std::string& key, Init fallback) {
  static const std::map<std::string, Init> kNames{{"glorot_uniform", Init::kGlorotUniform},
                                                  {"glorot_normal", Init::kGlorotNormal},
                                                  {"he_uniform", Init::kHeUniform},
                                                  {"he_normal", Init::kHeNormal},
                                                  {"zeros", Init::kZeros},
                                                  {"ones", Init::kOnes}};
  if (!c.has(key)) return fallback;
  std::string v = c.get<std::string>(key, "");
  auto it = kNames.find(v);
  if (it == kNames.end())
    c.fail(key, "unknown initializer '" + v +
                    "' (valid: glorot_uniform, glorot_normal, he_uniform, he_normal, zeros, ones)");
  return it->second;
}

Tensor init_tensor(const Shape& shape, Init init, int64_t fan_in, int64_t fan_out, std::mt19937_64& rng) {
  // Checked before allocating: a typo such as `units: 1000000000` would otherwise end in bad_alloc, or in
  // the machine swapping, with no word about which key asked for it.
  constexpr int64_t kMaxElements = int64_t{1} << 28;  // 1 GiB of float32
  const int64_t n = shape_numel(shape);
  if (n > kMaxElements || n < 0)
    throw ShapeError("a parameter of shape " + shape_str(shape) + " would have " + std::to_string(n) +
                     " elements, more than kiln's limit of 2^28 (1 GiB)");
  Tensor t(shape);
  double fi = static_cast<double>(std::max<int64_t>(fan_in, 1)),
         fo = static_cast<double>(std::max<int64_t>(fan_out, 1));
  auto uniform = [&](double limit) {
    std::uniform_real_distribution<double> u(-limit, limit);
    for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(u(rng));
  };
  // Keras draws "normal" initialisers from a normal truncated at two standard deviations; the stddev
  // is corrected (0.8796...) so the variance is the intended one.
  auto truncated_normal = [&](double stddev) {
    std::normal_distribution<double> n(0.0, stddev / 0.87962566103423978);
    for (int64_t i = 0; i < t.size(); ++i) {
      double v;
      do v = n(rng);
      while (std::fabs(v) > 2.0 * stddev / 0.87962566103423978);
      t[i] = static_cast<float>(v);
    }
  };
  switch (init) {
    case Init::kGlorotUniform:
      uniform(std::sqrt(6.0 / (fi + fo)));
      break;
    case Init::kGlorotNormal:
      truncated_normal(std::sqrt(2.0 / (fi + fo)));
      break;
    case Init::kHeUniform:
      uniform(std::sqrt(6.0 / fi));
      break;
    case Init::kHeNormal:
      truncated_normal(std::sqrt(2.0 / fi));
      break;
    case Init::kZeros:
      break;
    case Init::kOnes:
      t.fill(1.f);
      break;
  }
  return t;
}

const char* slot_name(Slot s) {
  static const char* kNames[kNumSlots] = {"input", "weight", "bias", "output", "activation", "input2"};
  return kNames[static_cast<int>(s)];
}

void Layer::parameters(std::vector<Parameter*>& out) {
  for (auto& p : params_) out.push_back(&p);
  for (auto& t : transforms_)
    if (t) t->parameters(out);
}

void Layer::buffers(std::vector<Buffer>& out) {
  for (auto& t : transforms_)
    if (t) t->buffers(out);
}

Parameter* Layer::param(const std::string& short_name) {
  for (auto& p : params_)
    if (p.name == name_ + "." + short_name) return &p;
  return nullptr;
}

Var Layer::through(Slot s, const Var& x, Context& ctx) const {
  Transform* t = transforms_[static_cast<int>(s)].get();
  return t ? t->apply(x, ctx) : x;
}

Var Layer::activate(const Activation& a, const Var& y, Context& ctx) const {
  Var out = transform(Slot::kActivation) ? through(Slot::kActivation, y, ctx) : a.apply(y);
  return through(Slot::kOutput, out, ctx);
}

void Layer::summary(std::vector<SummaryRow>& rows) const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.var.size();
  rows.push_back({name_, type(), out_shape_, n});
}

Parameter& Layer::add_param(const std::string& short_name, Tensor value, bool decay) {
  params_.push_back({name_ + "." + short_name, Var(std::move(value), true), decay, Tensor()});
  return params_.back();
}

void Layer::shape_error(const Shape& in, const std::string& why) const {
  throw ShapeError("layer '" + name_ + "' (" + type() + "): input shape " + shape_str(in) + " " + why);
}

Shape Sequential::build(const Shape& in, std::mt19937_64& rng) {
  Shape s = in;
  for (auto& l : layers_) s = l->setup(s, rng);
  return s;
}

Var Sequential::forward(Var x, Context& ctx) {
  for (auto& l : layers_) {
    x = l->forward(x, ctx);
    if (ctx.capture && ctx.capture->count(l->name())) ctx.captured[l->name()] = x;
  }
  return x;
}

void Sequential::parameters(std::vector<Parameter*>& out) {
  for (auto& l : layers_) l->parameters(out);
}
void Sequential::buffers(std::vector<Buffer>& out) {
  for (auto& l : layers_) l->buffers(out);
}
void Sequential::summary(std::vector<SummaryRow>& rows) const {
  for (const auto& l : layers_) l->summary(rows);
}

Sequential make_sequential(const std::vector<Config>& items, const std::string& prefix) {
  Sequential seq;
  std::map<std::string, int> counts;
  for (const Config& c : items) {
    LayerPtr l = make_layer(c);
    std::string name = c.get<std::string>("name", "");
    if (name.empty()) name = prefix + l->type() + "_" + std::to_string(++counts[l->type()]);
    l->set_name(name);
    seq.add(std::move(l));
  }
  return seq;
}

}  // namespace kiln::nn
