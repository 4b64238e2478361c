// The `compression: quantization:` section (PQuant/HGQ key names) parsed into HgqOptions.
#include <cmath>
#include <sstream>

#include "compress/hgq.h"

namespace kiln::compress {

namespace {

// A bit-width key: finite and within +-kMaxBits (the quantizer's own limit); beyond it the integer
// conversions of a bit count overflow.
double bits(const Config& cfg, const char* key, double fallback) {
  const double v = cfg.get<double>(key, fallback);
  if (!(std::fabs(v) <= kMaxBits)) {
    std::ostringstream os;
    os << key << " must be a bit width between -" << kMaxBits << " and " << kMaxBits << ", got " << v;
    cfg.fail(key, os.str());
  }
  return v;
}

// One slot's spec: `base` overridden by the keys of `c` (layer_specific entries).
QuantSpec read_spec(const Config& c, QuantSpec base) {
  c.check_unused({"integer_bits", "fractional_bits", "keep_negatives", "round_mode", "overflow_mode",
                  "granularity", "trainable"});
  base.i = bits(c, "integer_bits", base.i);
  base.f = bits(c, "fractional_bits", base.f);
  base.k = c.get<bool>("keep_negatives", base.k == 1) ? 1 : 0;
  try {
    if (c.has("round_mode")) base.round = parse_round(c.get<std::string>("round_mode", ""));
    if (c.has("overflow_mode")) base.overflow = parse_overflow(c.get<std::string>("overflow_mode", ""));
    if (c.has("granularity")) base.granularity = parse_granularity(c.get<std::string>("granularity", ""));
  } catch (const InputError& e) {
    c.fail(c.has("granularity") ? "granularity" : "round_mode", e.what());
  }
  bool trainable = c.get<bool>("trainable", base.train_f);
  base.train_f = trainable;
  base.train_i = trainable && base.overflow != Overflow::kWrap;
  return base;
}

}  // namespace

HgqOptions parse_quantization(const Config& c) {
  HgqOptions o;
  c.check_unused({"enable_quantization",
                  "use_high_granularity_quantization",
                  "default_integer_bits",
                  "default_fractional_bits",
                  "default_data_integer_bits",
                  "default_data_fractional_bits",
                  "default_data_keep_negatives",
                  "round_mode",
                  "overflow_mode_parameters",
                  "overflow_mode_data",
                  "use_symmetric_quantization",
                  "granularity",
                  "data_granularity",
                  "hgq_beta",
                  "hgq_gamma",
                  "beta_schedule",
                  "target_ebops",
                  "pid",
                  "freeze_bits",
                  "bit_range",
                  "layer_specific",
                  "use_lut_activations",
                  "use_real_tanh",
                  "sigmoid_table",
                  "tanh_table",
                  "softmax_table",
                  "attention_softmax_table",
                  "gelu_table",
                  "fold_batch_norm"});
  o.fold_batch_norm = c.get<bool>("fold_batch_norm", true);
  o.use_lut_activations = c.get<bool>("use_lut_activations", true);
  o.use_real_tanh = c.get<bool>("use_real_tanh", false);
  auto table = [&](const char* key, const std::vector<std::string>& keys) {
    Config t = c.child(key);
    t.check_unused(keys);
    return t;
  };
  o.sigmoid_table = parse_lut(table("sigmoid_table", lut_config_keys()), LutFunction::kSigmoid);
  o.tanh_table = parse_lut(table("tanh_table", lut_config_keys()), LutFunction::kTanh);
  o.gelu_table = parse_lut(table("gelu_table", lut_config_keys()), LutFunction::kGelu);
  o.softmax_table = parse_softmax_lut(table("softmax_table", softmax_lut_config_keys()));
  o.attention_softmax_table = parse_softmax_lut(table("attention_softmax_table", softmax_lut_config_keys()),
                                                HgqOptions::default_attention_softmax());
  o.enable = c.get<bool>("enable_quantization", true);
  bool hgq = c.get<bool>("use_high_granularity_quantization", true);
  auto mode = [&](const char* key, auto parse, auto fallback) {
    if (!c.has(key)) return fallback;
    try {
      return parse(c.get<std::string>(key, ""));
    } catch (const InputError& e) {
      c.fail(key, e.what());
    }
  };
  Round round = mode("round_mode", parse_round, Round::kRnd);
  Overflow ov_p = mode("overflow_mode_parameters", parse_overflow, Overflow::kSat);
  Overflow ov_d = mode("overflow_mode_data", parse_overflow, Overflow::kSat);
  if (c.get<bool>("use_symmetric_quantization", false)) ov_p = Overflow::kSatSym;
  Granularity g_p = mode("granularity", parse_granularity, Granularity::kElement);
  Granularity g_d = mode("data_granularity", parse_granularity, Granularity::kElement);

  o.weight.i = bits(c, "default_integer_bits", 0.0);
  o.weight.f = bits(c, "default_fractional_bits", 7.0);
  o.weight.round = round, o.weight.overflow = ov_p, o.weight.granularity = g_p;
  o.weight.train_f = hgq, o.weight.train_i = hgq && ov_p != Overflow::kWrap;
  o.bias = o.weight;
  o.data.k = c.get<bool>("default_data_keep_negatives", true) ? 1 : 0;
  o.data.i = bits(c, "default_data_integer_bits", 0.0);
  o.data.f = bits(c, "default_data_fractional_bits", 7.0);
  o.data.round = round, o.data.overflow = ov_d, o.data.granularity = g_d, o.data.activation = true;
  o.data.train_f = hgq, o.data.train_i = hgq && ov_d != Overflow::kWrap;

  Config br = c.child("bit_range");
  br.check_unused({"min_fractional_bits", "max_fractional_bits", "min_integer_bits", "max_integer_bits"});
  for (QuantSpec* s : {&o.weight, &o.bias, &o.data}) {
    s->f_min = bits(br, "min_fractional_bits", s->f_min);
    s->f_max = bits(br, "max_fractional_bits", s->f_max);
    s->i_min = bits(br, "min_integer_bits", s->i_min);
    s->i_max = bits(br, "max_integer_bits", s->i_max);
    if (s->f_min > s->f_max || s->i_min > s->i_max)
      br.fail("min_fractional_bits", "bit_range: a minimum exceeds its maximum");
  }

  o.beta = c.get<double>("hgq_beta", 1e-5);
  o.gamma = c.get<double>("hgq_gamma", 0.0);
  if (o.beta < 0) c.fail("hgq_beta", "hgq_beta must be >= 0");
  if (o.gamma < 0) c.fail("hgq_gamma", "hgq_gamma must be >= 0");
  Config bs = c.child("beta_schedule");
  bs.check_unused({"type", "start_epoch", "end_epoch", "final_beta"});
  o.schedule.type = bs.get<std::string>("type", "constant");
  if (o.schedule.type != "constant" && o.schedule.type != "linear" && o.schedule.type != "log")
    bs.fail("type", "unknown beta_schedule '" + o.schedule.type + "' (valid: constant, linear, log)");
  o.schedule.start_epoch = bs.get<double>("start_epoch", 0.0);
  o.schedule.end_epoch = bs.get<double>("end_epoch", 0.0);
  o.schedule.final_beta = bs.get<double>("final_beta", o.beta);
  if (o.schedule.type != "constant" && o.schedule.end_epoch <= o.schedule.start_epoch)
    bs.fail("end_epoch", "end_epoch must be after start_epoch");
  if (o.schedule.type == "log" && (o.beta <= 0 || o.schedule.final_beta <= 0))
    bs.fail("final_beta", "a log beta_schedule needs hgq_beta and final_beta > 0");
  o.pid.target_ebops = c.get<double>("target_ebops", 0.0);
  Config pid = c.child("pid");
  pid.check_unused({"p", "i", "d"});
  o.pid.p = pid.get<double>("p", o.pid.p);
  o.pid.i = pid.get<double>("i", o.pid.i);
  o.pid.d = pid.get<double>("d", o.pid.d);

  Config fz = c.child("freeze_bits");
  fz.check_unused({"epoch", "ebops"});
  o.freeze.epoch = fz.get<int>("epoch", 0);
  o.freeze.ebops = fz.get<double>("ebops", 0.0);
  if (o.freeze.epoch < 0) fz.fail("epoch", "freeze_bits epoch must be >= 0 (0: never)");
  if (o.freeze.ebops < 0) fz.fail("ebops", "freeze_bits ebops must be >= 0 (0: never)");

  Config ls = c.child("layer_specific");
  for (auto it = ls.node().begin(); it != ls.node().end(); ++it) {
    std::string name = it->first.as<std::string>();
    Config lc = ls.child(name);
    lc.check_unused({"enable", "input", "weight", "bias"});
    LayerQuantOverride ov;
    ov.enable = lc.get<bool>("enable", true);
    ov.specs[nn::Slot::kInput] = read_spec(lc.child("input"), o.data);
    ov.specs[nn::Slot::kWeight] = read_spec(lc.child("weight"), o.weight);
    ov.specs[nn::Slot::kBias] = read_spec(lc.child("bias"), o.bias);
    o.layer_specific[name] = ov;
  }
  return o;
}

SoftmaxLutSpec HgqOptions::default_attention_softmax() {
  SoftmaxLutSpec s;
  s.input_type = {1, 6, 9, Round::kRnd, Overflow::kSat};
  return s;
}

}  // namespace kiln::compress
