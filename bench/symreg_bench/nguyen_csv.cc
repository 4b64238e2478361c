// The Nguyen problems as CSV files for `//tools:symreg`, and the judge of what it returns, so that the CLI
// is measured on exactly the data and criterion of the library bench (nguyen.h).
//
//   nguyen_csv data 7 20 SEED        CSV with header x0[,x1],y: 20 rows of N7 drawn with SEED
//   nguyen_csv r2 7 'EXPR'           R^2 of EXPR (variables x0, x1) on nguyen.h's 1000 fresh points
//   nguyen_csv complexity 'EXPR'     its complexity with the Nguyen function set
//   nguyen_csv logexp 'EXPR'         1 when EXPR applies log directly to exp (log(exp(u))), else 0
#include <cstdio>
#include <cstdlib>
#include <string>

#include "symreg/nguyen.h"

using namespace kiln::symreg;

namespace {

int usage() {
  std::fprintf(stderr, "usage: nguyen_csv data ID ROWS SEED | r2 ID EXPR | complexity EXPR | logexp EXPR\n");
  return 2;
}

int problem_id(const char* s) {
  int id = std::atoi(s);
  if (id < 1 || id > 12) {
    std::fprintf(stderr, "nguyen_csv: problem '%s' is not in 1..12\n", s);
    std::exit(2);
  }
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string cmd = argv[1];
  try {
    if (cmd == "data" && argc == 5) {
      const NguyenProblem& p = nguyen(problem_id(argv[2]));
      NguyenData d = make_nguyen_data(p, std::atoi(argv[3]), std::strtoull(argv[4], nullptr, 10));
      for (int v = 0; v < p.variables; ++v) std::printf("x%d,", v);
      std::printf("y\n");
      // %.9g: every float reads back exactly, so the CLI sees the library bench's data.
      for (size_t r = 0; r < d.y.size(); ++r) {
        for (int v = 0; v < p.variables; ++v) std::printf("%.9g,", d.x.col(v)[r]);
        std::printf("%.9g\n", d.y[r]);
      }
      return 0;
    }
    if (cmd == "r2" && argc == 4) {
      const NguyenProblem& p = nguyen(problem_id(argv[2]));
      NguyenData fresh = make_nguyen_data(p, 1000, 0xf7e54ull);  // recovered_index()'s points
      std::printf("%.9f\n", r_squared(parse_expr(argv[3], {}), fresh.x, fresh.y));
      return 0;
    }
    if (cmd == "logexp" && argc == 3) {
      std::printf("%d\n", has_log_of_exp(parse_expr(argv[2], {})) ? 1 : 0);
      return 0;
    }
    if (cmd == "complexity" && argc == 3) {
      std::printf("%d\n", complexity(parse_expr(argv[2], {}), OpSet::parse(nguyen_ops())));
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nguyen_csv: %s\n", e.what());
    return 1;
  }
  return usage();
}
