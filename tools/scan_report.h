// A scan's files: the journal (trials.jsonl, one finished trial per line, appended as trials end: what a
// rerun resumes from), scan.csv (every trial), front.csv and front.svg (the combined Pareto front).
#pragma once
#include <string>
#include <vector>

#include "tools/scan_space.h"

namespace kiln::scan {

// The finished trials in `path`, in file order; a torn last line (a kill while appending) is ignored.
std::vector<Result> read_journal(const std::string& path);
// Appends one line and syncs it to disk.
void append_journal(const std::string& path, const Result& r);

// The metric columns of the tables: the objectives, then the usual metrics any result has.
std::vector<std::string> metric_columns(const ScanSpec& s, const std::vector<Result>& results);

// scan.csv (rows in trial order), front.csv and front.svg; returns the ids of the trials on the front.
std::vector<int> write_tables(const std::string& dir, const ScanSpec& s, std::vector<Result> results);

// "final_val_accuracy 0.9611 ebops 10445" for a progress line.
std::string objectives_text(const ScanSpec& s, const Result& r);

}  // namespace kiln::scan
