// libFuzzer target: the data reading of //tools:symreg: its CSV (data::load_csv with the options its
// flags give: --target by name, by index with --no-header or by default, --features, --classes) and
// what it does with the rows before the search: the seeded test split (data::split) and the aligned,
// padded feature columns the evaluator reads (symreg::Columns).
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "engine/data/loaders.h"
#include "symreg/columns.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace kiln;

struct SymregFlags {
  bool no_header = false;
  std::string target;
  std::vector<std::string> features;
  bool classes = false;
};

const SymregFlags kFlags[] = {
    {false, "y", {}, false},           // --target y
    {false, "", {}, true},             // the last column, --classes
    {true, "0", {}, false},            // --no-header --target 0
    {false, "y", {"x0", "w"}, false},  // --features x0 --weights w (the weight column comes in as a feature)
};

void run(const std::string& path, const SymregFlags& f) {
  data::CsvOptions co;
  co.path = path;
  co.header = !f.no_header;
  co.label = f.target;
  co.features = f.features;
  co.regression = !f.classes;
  data::Dataset d = data::load_csv(co);
  fuzz::check_dataset(d);
  const int F = static_cast<int>(d.feature_names.size());
  if (F < 1 || d.x.ndim() != 2 || d.x.dim(1) != F) fuzz::violated("x is not [N, features]");
  symreg::Columns all = symreg::Columns::from_rows(d.x.data(), d.size(), F);
  for (int c = 0; c < F; ++c)
    for (int64_t r = all.rows(); r < all.padded(); ++r)
      if (all.col(c)[r] != 0.f) fuzz::violated("column padding is not zero");
  data::Split sp = data::split(d, 0, 0.2, 1);
  std::vector<int64_t> idx(static_cast<size_t>(sp.train.size()));
  std::iota(idx.begin(), idx.end(), 0);
  symreg::Columns train = symreg::Columns::from_rows(sp.train.x.data(), sp.train.size(), F);
  symreg::Columns again = train.rows_subset(idx);
  for (int c = 0; c < F; ++c)
    for (int64_t r = 0; r < train.rows(); ++r)
      if (again.col(c)[r] != train.col(c)[r]) fuzz::violated("rows_subset changed a value");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_temp("symreg.csv", {reinterpret_cast<const char*>(data), size});
  for (const SymregFlags& f : kFlags) fuzz::expect_rejection([&] { run(path, f); }, path.size());
  return 0;
}
