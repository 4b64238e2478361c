#include "engine/nn/model.h"

#include <algorithm>
#include <iomanip>
#include <set>
#include <sstream>

namespace kiln::nn {

std::unique_ptr<Model> Model::from_config(const Config& c, const Shape& input_shape, uint64_t seed) {
  c.check_unused({"layers"});
  std::vector<Config> items = c.children("layers");
  if (items.empty()) c.fail("layers", "the model needs a non-empty 'layers' list");
  auto m = std::make_unique<Model>();
  m->body_ = make_sequential(items, "");
  std::set<std::string> names;
  for (size_t i = 0; i < m->body_.layers().size(); ++i) {
    const std::string& n = m->body_.layers()[i]->name();
    if (!names.insert(n).second) items[i].fail("name", "layer name '" + n + "' is used twice");
  }
  m->input_shape_ = input_shape;
  // Built layer by layer so that a shape error points at the layer's line in the config.
  std::mt19937_64 rng(seed);
  Shape shape = input_shape;
  for (size_t i = 0; i < m->body_.layers().size(); ++i) {
    const Layer& l = *m->body_.layers()[i];
    try {
      shape = m->body_.layers()[i]->setup(shape, rng);
    } catch (const ShapeError& e) {
      const std::string what = e.what();
      const std::string who =
          what.rfind("layer '", 0) == 0 ? "" : "layer '" + l.name() + "' (" + l.type() + "): ";
      throw ShapeError(items[i].location() + ": " + who + what);
    } catch (const std::bad_alloc&) {
      throw ShapeError(items[i].location() + ": layer '" + l.name() + "' (" + l.type() +
                       "): its parameters do not fit in memory");
    }
    // Activations are allocated per batch in training: refuse a per-sample output that could never fit.
    constexpr int64_t kMaxSample = int64_t{1} << 26;
    if (shape_numel(shape) > kMaxSample || shape_numel(shape) < 0)
      throw ShapeError(items[i].location() + ": layer '" + l.name() + "' (" + l.type() + ") outputs " +
                       shape_str(shape) + " per sample, more than kiln's limit of 2^26 values");
  }
  m->output_shape_ = shape;
  m->last_location_ = items.back().location();
  YAML::Emitter out;
  out << c.node();
  m->spec_yaml_ = out.c_str();
  std::set<std::string> pnames;
  for (Parameter* p : m->parameters())
    if (!pnames.insert(p->name).second)
      throw InputError("parameter name '" + p->name + "' is used twice; rename a layer");
  return m;
}

std::unique_ptr<Model> Model::from_yaml(const std::string& yaml, const Shape& input_shape, uint64_t seed,
                                        const std::string& source) {
  return from_config(Config::parse(yaml, source, "model"), input_shape, seed);
}

Var Model::forward(const Var& x, Context& ctx) {
  const Shape& s = x.shape();
  bool ok = s.size() == input_shape_.size() + 1;
  for (size_t i = 0; ok && i < input_shape_.size(); ++i) ok = s[i + 1] == input_shape_[i];
  if (!ok)
    throw ShapeError("model input: got " + shape_str(s) + ", the model was built for [batch" +
                     (input_shape_.empty() ? "" : ", ") + shape_str(input_shape_).substr(1));
  return body_.forward(x, ctx);
}

Tensor Model::predict(const Tensor& x, const std::string& layer, int64_t batch_size) {
  NoGradGuard ng;
  const int64_t n = x.ndim() ? x.dim(0) : 0, per = n ? x.size() / n : 0;
  const std::set<std::string> capture{layer};
  Tensor out;
  for (int64_t at = 0; at < n; at += batch_size) {
    const int64_t b = std::min(batch_size, n - at);
    Shape sh = x.shape();
    sh[0] = b;
    Tensor xb(sh);
    std::copy_n(x.data() + at * per, b * per, xb.data());
    Context ctx;
    if (!layer.empty()) ctx.capture = &capture;
    Var y = forward(Var(xb), ctx);
    if (!layer.empty() && !ctx.captured.count(layer))
      throw InputError("predict: the model has no layer '" + layer + "'");
    const Tensor& v = layer.empty() ? y.value() : ctx.captured.at(layer).value();
    const int64_t w = v.size() / b;
    if (at == 0) out = Tensor({n, w});
    std::copy_n(v.data(), b * w, out.data() + at * w);
  }
  return out;
}

std::string Model::nonfinite_origin(const Tensor& x, Context& ctx) {
  for (Parameter* p : parameters())
    if (!p->var.value().vec().allFinite()) return "parameter '" + p->name + "'";
  NoGradGuard ng;
  Var h(x);
  for (const LayerPtr& l : body_.layers()) {
    h = l->forward(h, ctx);
    if (!h.value().vec().allFinite()) return "layer '" + l->name() + "' (" + l->type() + ")";
  }
  return "";
}

std::vector<Parameter*> Model::parameters() {
  std::vector<Parameter*> out;
  body_.parameters(out);
  return out;
}

std::vector<Layer*> Model::layers() {
  std::vector<Layer*> out;
  for (const auto& l : body_.layers()) l->collect(out);
  return out;
}

std::vector<Buffer> Model::buffers() {
  std::vector<Buffer> out;
  body_.buffers(out);
  return out;
}

std::vector<SummaryRow> Model::summary() const {
  std::vector<SummaryRow> rows;
  body_.summary(rows);
  return rows;
}

int64_t Model::num_params() const {
  int64_t n = 0;
  for (const auto& r : summary()) n += r.params;
  return n;
}

std::string Model::summary_text() const {
  std::vector<SummaryRow> rows = summary();
  size_t wn = 5, wt = 4, ws = 12;
  for (const auto& r : rows) {
    wn = std::max(wn, r.name.size());
    wt = std::max(wt, r.type.size());
    ws = std::max(ws, shape_str(r.output).size() + 7);
  }
  std::ostringstream os;
  auto line = [&](char ch) { os << std::string(wn + wt + ws + 16, ch) << '\n'; };
  os << std::left << std::setw(static_cast<int>(wn + 2)) << "Layer" << std::setw(static_cast<int>(wt + 2))
     << "Type" << std::setw(static_cast<int>(ws + 2)) << "Output shape" << std::right << std::setw(10)
     << "Params" << '\n';
  line('=');
  os << std::left << std::setw(static_cast<int>(wn + 2)) << "input" << std::setw(static_cast<int>(wt + 2))
     << "input" << std::setw(static_cast<int>(ws + 2)) << "[batch, " + shape_str(input_shape_).substr(1)
     << std::right << std::setw(10) << 0 << '\n';
  int64_t total = 0;
  for (const auto& r : rows) {
    std::string shape = "[batch" + std::string(r.output.empty() ? "" : ", ") + shape_str(r.output).substr(1);
    os << std::left << std::setw(static_cast<int>(wn + 2)) << r.name << std::setw(static_cast<int>(wt + 2))
       << r.type << std::setw(static_cast<int>(ws + 2)) << shape << std::right << std::setw(10) << r.params
       << '\n';
    total += r.params;
  }
  line('=');
  os << "Total params: " << total << '\n';
  return os.str();
}

}  // namespace kiln::nn
