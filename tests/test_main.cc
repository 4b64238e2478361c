// doctest's main, with the engine on one thread: tests are deterministic, and OpenMP's spinning barriers
// cannot thrash when another process holds a core (CI machines are shared).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <omp.h>

#include <Eigen/Core>
#include <cstring>
#include <iostream>

namespace {

int cases_run = 0;

// Counts the test cases that run: a target split by --test-case filters (tests/BUILD) whose filter selects
// nothing, e.g. after a case was renamed, must fail rather than pass having tested nothing.
struct CaseCounter : doctest::IReporter {
  explicit CaseCounter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { ++cases_run; }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("case_counter", 1, CaseCounter);

}  // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(1);
  Eigen::setNbThreads(1);
  const int status = doctest::Context(argc, argv).run();
  bool filtered = false;
  for (int i = 1; i < argc; ++i) filtered = filtered || std::strncmp(argv[i], "--test-case=", 12) == 0;
  if (status == 0 && filtered && cases_run == 0) {
    std::cerr << "no test case matches the --test-case filter: fix the filter in tests/BUILD\n";
    return 1;
  }
  return status;
}
