// UpSampling1D / UpSampling2D (nearest neighbour, channels-last), the decoder half of convolutional
// autoencoders. Float only: the deployed fixed-point model refuses them (compress/deploy.cc), so they serve
// float teachers.
#include "engine/nn/factories.h"
#include "engine/ops.h"

namespace kiln::nn {

namespace {

// `size`: an integer (every spatial axis) or a list of `dims` integers, each >= 1; default 2.
std::vector<int> read_size(const Config& c, const std::string& type, int dims) {
  const size_t n = static_cast<size_t>(dims);
  if (!c.has("size")) return std::vector<int>(n, 2);
  const bool scalar = c.raw("size").IsScalar();
  std::vector<int> s =
      scalar ? std::vector<int>(n, c.get<int>("size", 0)) : c.get<std::vector<int>>("size", {});
  if (s.size() != n)
    c.fail("size", type + ": size must be an integer or a list of " + std::to_string(n) + " integers, got " +
                       std::to_string(s.size()));
  for (int v : s)
    if (v < 1) c.fail("size", type + ": size must be >= 1, got " + std::to_string(v));
  return s;
}

// dims = 1 ([L, C] -> [L * s, C]) or 2 ([H, W, C] -> [H * sh, W * sw, C]).
class Upsample : public Layer {
 public:
  Upsample(const Config& c, int dims)
      : dims_(dims), size_(read_size(c, dims == 1 ? "upsample1d" : "upsample2d", dims)) {}
  std::string type() const override { return dims_ == 1 ? "upsample1d" : "upsample2d"; }
  Shape build(const Shape& in, std::mt19937_64&) override {
    if (static_cast<int>(in.size()) != dims_ + 1)
      shape_error(in,
                  "needs " + std::string(dims_ == 1 ? "[length, channels]" : "[height, width, channels]"));
    out_shape_ = in;
    for (size_t d = 0; d < size_.size(); ++d) out_shape_[d] *= size_[d];
    return out_shape_;
  }
  Var forward(const Var& x, Context&) override {
    return dims_ == 1 ? upsample1d(x, size_[0]) : upsample2d(x, size_[0], size_[1]);
  }

 private:
  int dims_;
  std::vector<int> size_;
};

}  // namespace

LayerPtr make_upsample(const Config& c) {
  const std::string type = c.get<std::string>("type", "");
  check_layer_keys(c, type, {"type", "name", "size"});
  return std::make_unique<Upsample>(c, type == "upsample1d" ? 1 : 2);
}

}  // namespace kiln::nn
