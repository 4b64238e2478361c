// Export: a trained checkpoint to firmware sources (C for microcontrollers, or an HLS project), with the
// resource report. Used by //tools:export and by //tools:train's `export:` section.
//
//   ExportOptions o;  o.target = "c";  o.out_dir = "runs/jet/firmware";  o.name = "jet";
//   ExportResult r = export_checkpoint(train::load_checkpoint("runs/jet/model.ckpt"), o);
//   std::cout << r.report_text;
//
// A float (unquantized) model exports at hls4ml's default precision, ap_fixed<16,6> (AP_TRN, AP_WRAP) for
// every weight, bias and layer input (ap_ufixed<15,5> for an input fed by a ReLU).
#pragma once
#include <map>
#include <string>

#include "codegen/emit_util.h"
#include "engine/train/checkpoint.h"

namespace kiln::codegen {

struct ExportOptions {
  std::string target = "c";  // c | hls
  std::string out_dir;
  std::string name = "kiln_model";
  int reuse_factor = 1;                    // HLS: every multiply-accumulate layer
  std::map<std::string, int> layer_reuse;  // HLS: per layer name
  std::string strategy = "latency";        // HLS: latency | resource (hls4ml's strategies)
  int64_t tb_samples = 100;  // HLS test-bench samples from the run's test split (when its data can be loaded)
  bool dry_run = false;   // everything but writing files: checks a model can be exported before training it
  void validate() const;  // InputError naming the bad option
};

struct ExportResult {
  Program program;
  std::string report_text, report_json;    // also written as DIR/resources.txt and DIR/resources.json
  int64_t flash_bytes = 0, ram_bytes = 0;  // C: predicted .text + .rodata and .bss
  std::string note;                        // e.g. why no test-bench data was written
};

ExportResult export_checkpoint(const train::Checkpoint& ck, const ExportOptions& o);

// Parses an `export:` section of a run config (target, name, reuse_factor, reuse_factor_per_layer,
// strategy, tb_samples, dir); `dir` is a directory inside the run (default firmware_<target>), so that the
// firmware is written and committed with the run: out_dir = RUN_DIR/dir.
ExportOptions parse_export(const Config& c, const std::string& run_dir);

}  // namespace kiln::codegen
