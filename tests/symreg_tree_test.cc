// Expressions as postfix arrays: lengths, children, depth, complexity, nesting rules, printing and
// parsing, and the operator-set errors users see.
#include <doctest/doctest.h>

#include <set>

#include "symreg/generate.h"
#include "symreg/mutate.h"
#include "symreg/tree.h"
#include "tests/test_files.h"

using namespace kiln::symreg;

TEST_CASE("postfix layout: subtree lengths and operand indices") {
  Tree t = parse_expr("x0 * (x1 + 2)", {});
  REQUIRE(t.size() == 5);
  CHECK(t[0].op == Op::kVar);
  CHECK(t[2].op == Op::kConst);
  CHECK(t[3].op == Op::kAdd);
  CHECK(t[4].op == Op::kMul);
  std::vector<int> lengths;
  for (const Node& n : t) lengths.push_back(n.length);
  CHECK(lengths == std::vector<int>{1, 1, 1, 3, 5});
  int c[2];
  children(t, 4, c);
  CHECK(c[0] == 0);
  CHECK(c[1] == 3);
  CHECK(subtree_begin(t, 3) == 1);
  CHECK(depth(t) == 3);
}

TEST_CASE("printing and parsing round-trip, with minimal parentheses") {
  std::vector<std::string> names{"a", "b"};
  for (const char* s : {"a * (b + 2)", "a - (b - 1)", "a / (b * a)", "sin(a) + cos(b * 2)", "-a * b", "a^b",
                        "a^2 + aq(a, b)", "lut_sin(a) - exp(-b)", "a - -2", "(a + b) * (a - b)"}) {
    Tree t = parse_expr(s, names);
    CHECK(to_infix(t, names) == s);
    CHECK(parse_expr(to_infix(t, names, 9), names) == t);
  }
}

TEST_CASE("complexity counts per-operator costs; limits and nesting rules") {
  OpSet ops = OpSet::parse("+,*,sin,exp", "sin=3,var=2");
  Tree t = parse_expr("sin(x0) * 2 + x1", {});
  CHECK(complexity(t, ops) == 2 + 3 + 1 + 1 + 2 + 1);
  Limits lim;
  lim.max_complexity = 10;
  CHECK(within_limits(t, ops, lim));
  lim.max_complexity = 9;
  CHECK_FALSE(within_limits(t, ops, lim));
  lim.max_complexity = 100, lim.max_depth = 3;
  CHECK_FALSE(within_limits(t, ops, lim));  // depth 4
  // Default rules: a transcendental function inside itself.
  CHECK(violates_nesting(parse_expr("sin(x0 + sin(x1))", {}), ops));
  CHECK_FALSE(violates_nesting(parse_expr("sin(x0) + sin(x1)", {}), ops));
  ops.parse_forbidden("exp>sin");
  CHECK(violates_nesting(parse_expr("exp(2 * sin(x1))", {}), ops));
  CHECK_FALSE(violates_nesting(parse_expr("sin(exp(x1))", {}), ops));
  // Operators outside the set are over the limits.
  lim.max_depth = 10;
  CHECK_FALSE(within_limits(parse_expr("cos(x0)", {}), ops, lim));
}

TEST_CASE("operator-set and expression errors name the offending text") {
  CHECK_INPUT_ERROR(OpSet::parse("+,-,sinus"), "--ops", "sinus", "known:");
  CHECK_INPUT_ERROR(OpSet::parse(""), "--ops", "no operator");
  CHECK_INPUT_ERROR(OpSet::parse("+", "sin2"), "--complexity", "sin2", "NAME=VALUE");
  CHECK_INPUT_ERROR(OpSet::parse("+", "sin=0"), "--complexity", "sin=0");
  CHECK_INPUT_ERROR(OpSet::parse("+", "frob=2"), "--complexity", "frob");
  OpSet ops;
  CHECK_INPUT_ERROR(ops.parse_forbidden("sin-sin"), "--forbid", "sin-sin");
  CHECK_INPUT_ERROR(parse_expr("x0 + (x1", {}), "x0 + (x1", "column");
  CHECK_INPUT_ERROR(parse_expr("x0 + y", {}), "unknown variable 'y'");
}

TEST_CASE("random trees and every mutation keep the postfix array well formed") {
  OpSet ops = OpSet::parse("+,-,*,/,sin,exp,log,lut_cos,pow");
  Rng rng(3);
  for (int i = 0; i < 500; ++i) {
    Tree t = random_tree(rng, ops, 3, 1 + rng.below(40));
    CHECK(static_cast<int>(t.size()) <= 40);
    Tree u = t;
    update_lengths(u);  // KILN_CHECKs a single well-formed tree
    CHECK(u == t);
    for (int m = 0; m < static_cast<int>(Mutation::kCount); ++m) {
      Tree v = mutate_with(static_cast<Mutation>(m), rng, t, ops, 3);
      update_lengths(v);
      if (static_cast<Mutation>(m) == Mutation::kHoist || static_cast<Mutation>(m) == Mutation::kDelete)
        CHECK(v.size() <= t.size());
    }
    Tree w = crossover(rng, t, random_tree(rng, ops, 3, 10));
    update_lengths(w);
    Tree b = random_tree(rng, ops, 3, 10);
    Tree g = graft(rng, t, b, ops);
    update_lengths(g);
    CHECK(g.size() > t.size());  // grafting keeps all of t and adds an operator and part of b
    CHECK(g.size() <= t.size() + b.size() + 1);
  }
  // Without unary operators, trees use their whole (odd) budget.
  OpSet arith = OpSet::parse("+,-,*,/");
  CHECK(random_tree(rng, arith, 2, 31).size() == 31);
  CHECK(random_tree(rng, arith, 2, 32).size() == 31);
}

TEST_CASE("graft joins a subtree of one parent to a subtree of the other") {
  OpSet ops = OpSet::parse("*");
  Tree a = parse_expr("log(x + 1)", {"x"}), b = parse_expr("x * x + 1", {"x"});
  std::set<std::string> seen;
  Rng rng(5);
  for (int i = 0; i < 400; ++i) seen.insert(to_infix(graft(rng, a, b, ops), {"x"}));
  CHECK(seen.count("log((x + 1) * (x * x + 1))") == 1);
  CHECK(seen.count("log(x + 1) * (x * x + 1)") == 1);
  CHECK(seen.count("log((x * x + 1) * (x + 1))") == 1);
  for (const std::string& s : seen) CHECK(s.find("log") != std::string::npos);  // a is never cut
}

TEST_CASE("the same Rng seed and task ids give the same stream; different ids differ") {
  Rng a = Rng::derive(1, {2, 3, 4}), b = Rng::derive(1, {2, 3, 4}), c = Rng::derive(1, {2, 3, 5});
  for (int i = 0; i < 10; ++i) {
    uint64_t x = a.next();
    CHECK(x == b.next());
    CHECK(x != c.next());
  }
}
