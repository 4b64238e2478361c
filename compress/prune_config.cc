// The `compression: pruning:` section and the schedule keys of `training:` (PruningOptions), and a trained
// model restored from its checkpoint with its quantizers and pruner (restore_quantized).
#include <algorithm>

#include "compress/pruner.h"

namespace kiln::compress {

const std::vector<std::string>& prune_schedule_keys() {
  static const std::vector<std::string> k{"pretraining_epochs", "fine_tuning_epochs", "rounds", "rewind",
                                          "save_weights_epoch", "pruning_first"};
  return k;
}

PruningOptions parse_pruning(const Config& section, const Config& t) {
  PruningOptions o;
  o.where = section.location();
  o.method = section.require<std::string>("pruning_method");
  std::vector<std::string> own = prune_method_keys(o.method);
  if (own.empty()) make_prune_method(section, o.method, o.common);  // unknown method: names the known ones
  // One config for every method: a mapping named after a method holds its keys, used when it is the
  // pruning_method (over the same keys at the top level); the other methods' mappings are skipped.
  // The merged mapping holds the original key and value nodes, so that messages keep their lines.
  const std::vector<std::string> methods = prune_method_names();
  YAML::Node sub;
  if (section.has(o.method)) {
    sub = section.raw(o.method);
    if (!sub.IsMap()) section.fail(o.method, o.method + " must be a mapping of the method's keys");
  }
  YAML::Node merged(YAML::NodeType::Map);
  for (const auto& kv : section.node()) {
    const std::string k = kv.first.as<std::string>();
    if (std::find(methods.begin(), methods.end(), k) != methods.end()) continue;
    if (sub && sub[k]) continue;  // the method's own mapping wins
    merged.force_insert(kv.first, kv.second);
  }
  if (sub)
    for (const auto& kv : sub) merged.force_insert(kv.first, kv.second);
  Config c(merged, section.file(), section.where());
  o.section = c;
  o.enable = c.get<bool>("enable_pruning", true);
  std::vector<std::string> allowed{"pruning_method", "enable_pruning", "sparsity",
                                   "disable_pruning_for_layers", "collapse_guard"};
  allowed.insert(allowed.end(), own.begin(), own.end());
  c.check_unused(allowed);
  o.common.sparsity = c.get<double>("sparsity", o.common.sparsity);
  if (!(o.common.sparsity > 0 && o.common.sparsity < 1))
    c.fail("sparsity", "sparsity must be in (0, 1), got " + std::to_string(o.common.sparsity));
  o.collapse_factor = c.get<double>("collapse_guard", o.collapse_factor);
  if (!(o.collapse_factor >= 0 && o.collapse_factor < 100))
    c.fail("collapse_guard", "collapse_guard (x chance accuracy; 0 = off) must be in [0, 100), got " +
                                 std::to_string(o.collapse_factor));
  if (c.has("disable_pruning_for_layers")) {
    YAML::Node n = c.raw("disable_pruning_for_layers");
    if (!n.IsSequence())
      c.fail("disable_pruning_for_layers", "disable_pruning_for_layers must be a list of layer names");
    for (const auto& e : n) {
      if (!e.IsScalar())
        c.fail("disable_pruning_for_layers", "disable_pruning_for_layers must be a list of layer names");
      o.disable_for_layers.push_back(e.as<std::string>());
    }
  }
  auto non_negative = [&](const char* key, int fallback) {
    int v = t.get<int>(key, fallback);
    if (v < 0) t.fail(key, std::string(key) + " must be >= 0, got " + std::to_string(v));
    return v;
  };
  o.common.epochs = t.get<int>("epochs", 10);
  o.pretraining_epochs = non_negative("pretraining_epochs", 0);
  o.fine_tuning_epochs = non_negative("fine_tuning_epochs", 0);
  o.common.rounds = t.get<int>("rounds", 1);
  if (o.common.rounds < 1) t.fail("rounds", "rounds must be >= 1, got " + std::to_string(o.common.rounds));
  o.save_weights_epoch = non_negative("save_weights_epoch", 0);
  o.rewind = t.get<std::string>("rewind", o.rewind);
  if (o.rewind != "never" && o.rewind != "every-round" && o.rewind != "post-training-stage")
    t.fail("rewind", "rewind must be never, every-round or post-training-stage, got '" + o.rewind + "'");
  o.pruning_first = t.get<bool>("pruning_first", true);
  const int64_t total =
      int64_t{o.pretraining_epochs} + int64_t{o.common.rounds} * o.common.epochs + o.fine_tuning_epochs;
  if (total > 1000000)
    t.fail(t.has("rounds") ? "rounds" : "epochs",
           "the pruning schedule (pretraining_epochs + rounds x epochs + fine_tuning_epochs) is " +
               std::to_string(total) + " epochs, more than the limit of 1000000");
  return o;
}

AttachedCompression attach_compression(nn::Model& m, const std::string& config_yaml,
                                       const std::string& name) {
  AttachedCompression a;
  Config cfg = Config::parse(config_yaml, name);
  Config q = cfg.child("compression").child("quantization");
  if (q.defined() && q.node().size() > 0) {
    HgqOptions o = parse_quantization(q);
    if (o.enable) a.quantized = std::make_shared<QuantizedModel>(m, o);
  }
  Config p = cfg.child("compression").child("pruning");
  if (p.defined() && p.node().size() > 0) {
    PruningOptions o = parse_pruning(p, cfg.child("training"));
    if (o.enable) a.pruner = std::make_shared<Pruner>(m, o, a.quantized.get());
  }
  return a;
}

RestoredModel restore_quantized(const train::Checkpoint& c) {
  RestoredModel r;
  r.model = nn::Model::from_yaml(c.model_yaml, c.input_shape, c.seed,
                                 c.path.empty() ? "checkpoint model spec" : c.path + " (model spec)");
  if (!c.config_yaml.empty()) {
    AttachedCompression a = attach_compression(*r.model, c.config_yaml, "the checkpoint's run config");
    r.quantized = std::move(a.quantized), r.pruner = std::move(a.pruner);
  }
  train::load_weights(*r.model, c);
  if (r.pruner) {
    r.pruner->sync();
    r.pruner->finish();
  }
  return r;
}

}  // namespace kiln::compress
