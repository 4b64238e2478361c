// `kiln symreg --teacher`: a trained classifier as the oracle. Everything distillation adds to a run: the
// network and its run's split, its own feature columns of the CSV, its scores as the labels of the search
// (on the training rows and on inputs sampled around them), and the notes on how far its test AUC can be
// trusted.
//
//   Teacher t = load_teacher(f);         // before the data: a regression model is refused first
//   ... load_teacher_rows(f, t);         // load_search_data does this, before the split
//   teacher_targets(f, d, t, fit);       // make_targets does this
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "engine/train/checkpoint.h"
#include "tools/symreg_data.h"
#include "tools/symreg_flags.h"

namespace kiln::symreg {

// The network, the CSV columns it reads (raw, every row of the file, in file order) and how its classes map
// onto the CSV's labels.
struct Teacher {
  train::Checkpoint ck;
  std::unique_ptr<nn::Model> model;
  int outputs = 0;                  // 1 (a binary logit) or one per class
  data::Dataset rows;               // its feature columns of every CSV row, raw; labels = the CSV's classes
  std::vector<int> class_of_label;  // CSV class index -> teacher class index
  double test_split = 0.2;          // its run's data.test_split (the split seed is ck.seed)
  int64_t max_samples = 0;          // its run's data.max_samples (> 0: it saw a subset)
  std::string data_path;            // its run's data.path
};

// The network (before the data: a regression model is refused before its CSV is read as classes).
Teacher load_teacher(const Flags& f);

// Its feature columns of every row of --data, raw, with the CSV's labels mapped onto its classes.
void load_teacher_rows(const Flags& f, Teacher& t);

// One target per class (one for two classes: the second against the first): y_fit the teacher's score,
// probability or decision (--teacher-target) on the training rows, then on --teacher-samples inputs sampled
// around them (fit.x_sampled, fit.w_fit); y_train, y_test the CSV's true +-1 labels; teacher_* its scores.
void teacher_targets(const Flags& f, const SearchData& d, Teacher& teacher, Targets& fit);

// The "teacher: ..." line of the run's header (stderr).
std::string teacher_summary(const Flags& f, const Teacher& teacher, const std::vector<Target>& targets,
                            double test_split);

// "note: ..." lines for the cases where the test rows may hold rows the teacher trained on (its AUC then
// flatters it); empty when there are none.
std::string teacher_notes(const Flags& f, const Teacher& teacher, double test_split);

}  // namespace kiln::symreg
