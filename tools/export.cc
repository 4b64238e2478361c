// kiln export: a trained checkpoint to firmware, C99 for microcontrollers or an hls4ml-style HLS project,
// bit-exact with kiln's deployed fixed-point model, with a resource report.
//
//   bazel run //tools:export -- --model runs/jet_hgq/model.ckpt --target hls --out firmware/jet [--name jet]
//                               [--reuse-factor 4] [--layer-reuse fc1=8] [--strategy resource] [--tb-samples
//                               100]
//
// Writes DIR/NAME.{c,h} (C) or DIR/firmware/... with a test bench and build_prj.tcl (HLS), plus
// DIR/resources.txt and resources.json. Bad input gives one line and exit 1.
#include "codegen/export.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "codegen/emit_util.h"
#include "tools/run_dir.h"
#include "tools/tool_main.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln export: generate C (microcontrollers) or HLS C++ (FPGAs) from a trained checkpoint"};
  std::string model;
  std::vector<std::string> layer_reuse;
  kiln::codegen::ExportOptions o;
  o.name = "";
  bool overwrite = false;
  app.add_option("--model", model, "checkpoint, e.g. runs/jet_hgq/model.ckpt")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--target", o.target, "c | hls")->required()->check(CLI::IsMember({"c", "hls"}));
  app.add_option("--out", o.out_dir, "output directory")->required();
  app.add_option("--name", o.name, "model name: file names and C symbols (default: the run's name)");
  app.add_option("--reuse-factor", o.reuse_factor,
                 "HLS ReuseFactor of every layer (validated as hls4ml does)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--layer-reuse", layer_reuse, "HLS ReuseFactor of one layer, LAYER=N (repeatable)");
  app.add_option("--strategy", o.strategy,
                 "HLS: latency (every product its own multiplier, II = ReuseFactor) or resource (the "
                 "multipliers reused ReuseFactor times in a pipelined loop)")
      ->check(CLI::IsMember({"latency", "resource"}));
  app.add_option("--tb-samples", o.tb_samples, "HLS test-bench samples from the run's test split (0: none)")
      ->check(CLI::Range(0, 1 << 30));
  app.add_flag("--overwrite", overwrite,
               "replace an earlier export in --out (kept until the new one is complete)");
  return kiln::run_tool("kiln export", app, argc, argv, [&] {
    kiln::RunDir::check(o.out_dir, "kiln export", overwrite);
    for (const std::string& s : layer_reuse) {
      const size_t eq = s.find('=');
      int rf = 0;
      try {
        rf = eq == std::string::npos ? 0 : std::stoi(s.substr(eq + 1));
      } catch (const std::exception&) {
        rf = 0;
      }
      if (rf < 1) throw kiln::InputError("--layer-reuse '" + s + "' is not LAYER=N with N >= 1");
      o.layer_reuse[s.substr(0, eq)] = rf;
    }
    kiln::train::Checkpoint ck = kiln::train::load_checkpoint(model);
    if (o.name.empty()) {
      std::string run = std::filesystem::path(model).parent_path().filename().string();
      o.name = kiln::codegen::identifier(run.empty() ? "kiln_model" : run);
    }
    // Written into OUT.partial and renamed: a failed export never leaves firmware that looks complete.
    const std::string out = o.out_dir;
    kiln::RunDir rd(out, "kiln export", overwrite);
    o.out_dir = rd.staging();
    kiln::codegen::ExportResult r;
    try {
      r = kiln::codegen::export_checkpoint(ck, o);
      rd.commit();
    } catch (const std::exception& e) {
      rd.fail(e.what());
      throw;
    }
    o.out_dir = out;
    if (!r.note.empty()) std::cerr << "kiln export: note: " << r.note << "\n";
    std::cout << r.report_text << "wrote " << o.out_dir
              << (o.target == "c" ? "/" + o.name + ".{c,h}" : "/firmware, tb_data, build_prj.tcl")
              << ", resources.{txt,json}\n";
    return 0;
  });
}
