#include "codegen/export.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "codegen/emit_c.h"
#include "codegen/emit_hls.h"
#include "codegen/emit_util.h"
#include "compress/deploy.h"
#include "engine/train/run_config.h"

namespace kiln::codegen {

namespace {

// hls4ml's default precision for a model without quantizers: ap_fixed<16,6>, truncation and wrap-around.
compress::HgqOptions default_precision() {
  compress::HgqOptions o;
  o.enable = true;
  compress::QuantSpec s;
  s.k = 1, s.i = 5, s.f = 10;
  s.round = compress::Round::kTrn, s.overflow = compress::Overflow::kWrap;
  s.granularity = compress::Granularity::kTensor;
  o.weight = o.bias = s;
  s.activation = true;
  o.data = s;
  o.beta = 0;
  return o;
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream f(path);
  f << text;
  if (!f) throw InputError("cannot write " + path.string());
}

struct Row {
  std::string name, kind;
  int64_t mults = 0, nonzero = 0, weight_bits = 0, out_elements = 0, out_bits = 0;
  double ebops = 0;
};

std::vector<Row> resource_rows(const Program& p, const compress::QuantizedModel& qm) {
  std::map<std::string, double> ebops;
  {
    NoGradGuard ng;
    for (const auto& l : qm.layers())  // a residual block's EBOPs are its add's
      ebops[l.layer->name() + (l.input2 ? ".add" : "")] = qm.ebops(l).value()[0];
  }
  std::vector<Row> rows;
  for (const Op& op : p.ops) {
    Row r;
    r.name = op.name, r.kind = compress::op_kind_name(op.kind);
    const Buffer& y = p.buffers[static_cast<size_t>(op.out)];
    r.out_elements = y.size, r.out_bits = signed_bits(y.min(), y.max());
    if (op.kind == Op::kDense || op.kind == Op::kConv || op.kind == Op::kDepthwise) {
      const int64_t positions = op.kind == Op::kDense ? op.rows : op.win.OH * op.win.OW;
      r.mults = positions * static_cast<int64_t>(op.weights.size());
      r.nonzero = positions * op.nonzero();
      for (int b : op.weight_bits) r.weight_bits += b;
    }
    if (op.kind != Op::kQuantize)  // MACs, pooling and adds have EBOPs
      if (auto it = ebops.find(op.name); it != ebops.end()) r.ebops = it->second;
    rows.push_back(r);
  }
  return rows;
}

Row total_of(const std::vector<Row>& rows) {
  Row total;
  for (const Row& x : rows)
    total.mults += x.mults, total.nonzero += x.nonzero, total.ebops += x.ebops,
        total.weight_bits += x.weight_bits;
  return total;
}

std::string report_text(const std::vector<Row>& rows, const ExportOptions& o, const ExportResult& r) {
  std::ostringstream os;
  os << std::left << std::setw(22) << "layer" << std::setw(15) << "kind" << std::right << std::setw(10)
     << "mults" << std::setw(10) << "nonzero" << std::setw(12) << "EBOPs" << std::setw(12) << "weight bits"
     << std::setw(10) << "outputs" << std::setw(6) << "bits" << '\n';
  for (const Row& x : rows)
    os << std::left << std::setw(22) << x.name << std::setw(15) << x.kind << std::right << std::setw(10)
       << x.mults << std::setw(10) << x.nonzero << std::setw(12) << std::fixed << std::setprecision(0)
       << x.ebops << std::setw(12) << x.weight_bits << std::setw(10) << x.out_elements << std::setw(6)
       << x.out_bits << '\n';
  const Row total = total_of(rows);
  os << std::left << std::setw(37) << "total" << std::right << std::setw(10) << total.mults << std::setw(10)
     << total.nonzero << std::setw(12) << total.ebops << std::setw(12) << total.weight_bits << '\n';
  if (o.target == "c")
    os << "flash " << r.flash_bytes << " bytes, RAM " << r.ram_bytes
       << " bytes (static buffers; plus a small stack)\n";
  return os.str();
}

std::string report_json(const std::vector<Row>& rows, const ExportOptions& o, const ExportResult& r) {
  using Json = nlohmann::ordered_json;
  auto row = [](const Row& x, bool named) {
    Json j;
    if (named) j["name"] = x.name, j["kind"] = x.kind;
    j["multiplications"] = x.mults;
    j["nonzero_multiplications"] = x.nonzero;
    j["ebops"] = x.ebops;
    j["weight_bits"] = x.weight_bits;
    if (named) j["output_elements"] = x.out_elements, j["output_bits"] = x.out_bits;
    return j;
  };
  Json j;
  j["target"] = o.target;
  j["name"] = o.name;
  j["layers"] = Json::array();
  for (const Row& x : rows) j["layers"].push_back(row(x, true));
  j["total"] = row(total_of(rows), false);
  if (o.target == "c") j["flash_bytes"] = r.flash_bytes, j["ram_bytes"] = r.ram_bytes;
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// The run's test split (raw features, and the deployed model's outputs) for the HLS test bench.
bool tb_data(const train::Checkpoint& ck, const compress::DeployedModel& d, int64_t n, std::string* in,
             std::string* out, std::string* why) {
  try {
    Config cfg = Config::parse(ck.config_yaml, "the checkpoint's run config");
    train::DataOptions o = train::parse_data(cfg.child("data"));
    o.standardize = false;  // raw features for the test bench; the checkpoint's standardiser for the model
    const data::Dataset t = train::load_data(o, ck.seed).split.test;
    n = std::min(n, t.size());
    if (n <= 0) throw InputError("the test split is empty");
    std::vector<int64_t> idx;
    for (int64_t j = 0; j < n; ++j) idx.push_back(j);
    const Tensor xr = data::subset(t, idx).x;
    Tensor xs = xr;
    if (!ck.standardizer.empty()) ck.standardizer.apply(xs);
    std::vector<double> raw_v(xr.data(), xr.data() + xr.size()), pred = d.forward(xs);
    *in = tb_lines(raw_v, xr.size() / n, 9);
    *out = tb_lines(pred, d.outputs(), 17);
    return true;
  } catch (const std::exception& e) {
    *why = e.what();
    return false;
  }
}

}  // namespace

void ExportOptions::validate() const {
  if (target != "c" && target != "hls")
    throw InputError("export target '" + target + "' is not one of: c, hls");
  if (out_dir.empty()) throw InputError("export needs an output directory (--out)");
  if (identifier(name) != name)
    throw InputError("export name '" + name + "' is not a C identifier (letters, digits, _)");
  if (reuse_factor < 1) throw InputError("reuse factor must be >= 1, got " + std::to_string(reuse_factor));
  if (tb_samples < 0) throw InputError("tb_samples must be >= 0, got " + std::to_string(tb_samples));
}

ExportResult export_checkpoint(const train::Checkpoint& ck, const ExportOptions& o) {
  o.validate();
  compress::RestoredModel rm = compress::restore_quantized(ck);
  std::shared_ptr<compress::QuantizedModel> qm = rm.quantized;
  ExportResult r;
  if (!qm) {
    qm = std::make_shared<compress::QuantizedModel>(*rm.model, default_precision());
    r.note = "float model: exported at hls4ml's default precision ap_fixed<16,6> (AP_TRN, AP_WRAP)";
  }
  compress::DeployedModel d = compress::DeployedModel::freeze(*rm.model, *qm);
  r.program = prepare(d, o.name);
  r.program.mean = ck.standardizer.mean, r.program.scale = ck.standardizer.scale;
  for (const auto& [layer, rf] : o.layer_reuse) {
    bool found = false;
    for (const Op& op : r.program.ops) found = found || op.name == layer;
    if (!found)
      throw InputError("reuse factor given for layer '" + layer +
                       "', which has no multiply-accumulate in the model");
  }
  const std::filesystem::path dir(o.out_dir);
  if (o.dry_run) {  // the emitters still run: they validate reuse factors and types
    if (o.target == "c")
      emit_c(r.program);
    else {
      HlsOptions h;
      h.reuse_factor = o.reuse_factor, h.layer_reuse = o.layer_reuse, h.strategy = o.strategy;
      emit_hls(r.program, h);
    }
    return r;
  }
  if (o.target == "c") {
    CFiles f = emit_c(r.program);
    write(dir / (o.name + ".h"), f.header);
    write(dir / (o.name + ".c"), f.source);
    r.flash_bytes = f.const_bytes + f.code_bytes, r.ram_bytes = f.ram_bytes;
  } else {
    HlsOptions h;
    h.reuse_factor = o.reuse_factor, h.layer_reuse = o.layer_reuse, h.strategy = o.strategy;
    for (const auto& [path, text] : emit_hls(r.program, h)) write(dir / path, text);
    std::string in, out, why;
    if (o.tb_samples > 0 && tb_data(ck, d, o.tb_samples, &in, &out, &why)) {
      write(dir / "tb_data/tb_input_features.dat", in);
      write(dir / "tb_data/tb_output_predictions.dat", out);
    } else if (o.tb_samples > 0) {
      r.note += (r.note.empty() ? "" : "; ") + std::string("no test-bench data written (") + why + ")";
    }
  }
  std::vector<Row> rows = resource_rows(r.program, *qm);
  r.report_text = report_text(rows, o, r);
  r.report_json = report_json(rows, o, r);
  write(dir / "resources.txt", r.report_text);
  write(dir / "resources.json", r.report_json);
  return r;
}

ExportOptions parse_export(const Config& c, const std::string& run_dir) {
  c.check_unused(
      {"target", "name", "reuse_factor", "reuse_factor_per_layer", "strategy", "tb_samples", "dir"});
  ExportOptions o;
  o.target = c.get<std::string>("target", "c");
  if (o.target != "c" && o.target != "hls")
    c.fail("target", "export target '" + o.target + "' is not one of: c, hls");
  o.name = c.get<std::string>("name", "kiln_model");
  if (identifier(o.name) != o.name) c.fail("name", "export name '" + o.name + "' is not a C identifier");
  o.reuse_factor = c.get<int>("reuse_factor", 1);
  if (o.reuse_factor < 1) c.fail("reuse_factor", "reuse_factor must be >= 1");
  Config per = c.child("reuse_factor_per_layer");
  for (auto it = per.node().begin(); it != per.node().end(); ++it) {
    const std::string layer = it->first.as<std::string>();
    o.layer_reuse[layer] = per.get<int>(layer, 1);
  }
  o.strategy = c.get<std::string>("strategy", "latency");
  if (o.strategy != "latency" && o.strategy != "resource")
    c.fail("strategy", "strategy '" + o.strategy + "' is not one of: latency, resource");
  o.tb_samples = c.get<int64_t>("tb_samples", 100);
  const std::string sub = c.get<std::string>("dir", "firmware_" + o.target);
  const std::filesystem::path sp(sub);
  bool inside = !sub.empty() && sp.is_relative();
  for (const auto& part : sp) inside = inside && part != "..";
  if (!inside)
    c.fail("dir",
           "export dir '" + sub + "' must be a relative path inside the run directory (e.g. firmware_c)");
  o.out_dir = run_dir + "/" + sub;
  return o;
}

}  // namespace kiln::codegen
