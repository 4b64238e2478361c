// `kiln symreg`'s command line: the flags, their help text, and every check that needs no data, so that a
// typo fails at once instead of after the CSV is read or the search has run. Also turns the flags into the
// search's options, loss and export targets (symreg.cc checks these only after the data, as the order of
// its error messages is part of the command's behaviour).
//
//   Flags f;
//   CLI::Option* test_split = add_flags(app, f);
//   ... f.test_split_given = test_split->count() > 0;
//   const int islands = check_flags(f, comm.size());
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "symreg/loss.h"
#include "symreg/search.h"

namespace kiln::symreg {

struct Flags {
  std::string data, target, features, ops = "+,-,*,/", complexity, forbid, out = "runs/symreg", exp, loss,
                                      select = "best", loss_floor = "auto", weights, function = "kiln_symreg",
                                      hls_type = "ap_fixed<16, 6>", teacher, teacher_target = "score";
  int max_complexity = 30, max_depth = 10, generations = 100, threads = 1, islands = 4, population = 100,
      lut_size = 1024, islands_per_rank = 0;  // 0: --islands in all, shared by the ranks
  double time_limit = 0, test_split = 0.2, target_loss = -1, teacher_noise = 0.1;
  int64_t seed = 1, teacher_samples = 0;
  bool classes = false, no_header = false, quiet = false, overwrite = false;
  bool test_split_given =
      false;  // --test-split on the command line (with --teacher it overrides the teacher's)
};

// Defines every flag on `app`, bound to `f`. Returns --test-split's option: whether it was given is known
// only after parsing.
CLI::Option* add_flags(CLI::App& app, Flags& f);

// "a,,b" -> {"a", "b"}.
std::vector<std::string> split_list(const std::string& s);

// Shortest text that reads back as v ("nan", "inf", "0.1", "10000000", "1e+300"), for messages.
std::string number(double v);

// --loss-floor: "auto" (-1: the search computes the targets' float noise floor) or a number >= 0.
double parse_loss_floor(const std::string& s);

// Every numeric flag, before any data is read: CLI11 only checks that the text converts, and the search
// treats some bad values as others (--threads -2 as all cores, --time-limit nan as no limit). The upper
// bounds keep a typo from becoming hours of work or an allocation failure. Returns the islands in all, over
// `ranks` ranks.
int check_flags(const Flags& f, int ranks);

// The search's options from --ops, --complexity, --forbid, the limits, --loss-floor and `islands` in all
// (InputError on a bad operator, complexity or nesting).
SearchOptions search_options(const Flags& f, int islands);

// --loss, or its default (l2_margin with --classes or --teacher-target label, else mse); InputError when
// it does not suit the labels.
LossKind choose_loss(const Flags& f);

// --export as a list of "c" and "hls" (InputError on anything else).
std::vector<std::string> export_targets(const Flags& f);

}  // namespace kiln::symreg
