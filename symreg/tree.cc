#include "symreg/tree.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/check.h"

namespace kiln::symreg {

void update_lengths(Tree& t) {
  KILN_CHECK(!t.empty() && t.size() <= kMaxLength, "a tree has 1.." + std::to_string(kMaxLength) + " nodes");
  int stack_depth = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    Node& n = t[i];
    n.arity = static_cast<uint8_t>(arity(n.op));
    int len = 1, j = static_cast<int>(i) - 1;
    for (int k = 0; k < n.arity; ++k) {
      KILN_CHECK(j >= 0, "an operator lacks operands in the postfix array");
      len += t[j].length;
      j -= t[j].length;
    }
    n.length = static_cast<uint16_t>(len);
    stack_depth += 1 - n.arity;
  }
  KILN_CHECK(stack_depth == 1, "the postfix array holds " + std::to_string(stack_depth) + " trees, not one");
}

void children(const Tree& t, int i, int out[2]) {
  if (t[i].arity == 1) {
    out[0] = i - 1;
  } else if (t[i].arity == 2) {
    out[1] = i - 1;
    out[0] = i - 1 - t[i - 1].length;
  }
}

int depth(const Tree& t) {
  std::vector<int> d(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    int c[2], m = 0;
    children(t, static_cast<int>(i), c);
    for (int k = 0; k < t[i].arity; ++k) m = std::max(m, d[c[k]]);
    d[i] = m + 1;
  }
  return d.back();
}

int complexity(const Tree& t, const OpSet& ops) {
  int c = 0;
  for (const Node& n : t) c += ops.complexity(n.op);
  return c;
}

int num_constants(const Tree& t) {
  int k = 0;
  for (const Node& n : t) k += n.op == Op::kConst;
  return k;
}

bool violates_nesting(const Tree& t, const OpSet& ops) {
  for (int i = 0; i < static_cast<int>(t.size()); ++i) {
    if (t[i].arity == 0) continue;
    for (int j = subtree_begin(t, i); j < i; ++j)
      if (ops.nesting_forbidden(t[i].op, t[j].op)) return true;
  }
  return false;
}

// ---- printing ------------------------------------------------------------------------------------------
namespace {

// Binding strength for parentheses: + - 1, * / 2, unary minus 3, ^ 4, atoms and calls 5.
int prec(const Node& n) {
  switch (n.op) {
    case Op::kAdd:
    case Op::kSub:
      return 1;
    case Op::kMul:
    case Op::kDiv:
      return 2;
    case Op::kNeg:
      return 3;
    case Op::kPow:
      return 4;
    case Op::kConst:
      return n.value < 0 ? 3 : 5;
    default:
      return 5;
  }
}

std::string number(float v, int precision) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
  return buf;
}

std::string infix(const Tree& t, int i, const std::vector<std::string>& names, int precision) {
  const Node& n = t[i];
  if (n.op == Op::kConst) return number(n.value, precision);
  if (n.op == Op::kVar) return n.feature < names.size() ? names[n.feature] : "x" + std::to_string(n.feature);
  int c[2];
  children(t, i, c);
  auto sub = [&](int k, int min_prec) {
    std::string s = infix(t, c[k], names, precision);
    return prec(t[c[k]]) < min_prec ? "(" + s + ")" : s;
  };
  switch (n.op) {
    case Op::kAdd:
      return sub(0, 1) + " + " + sub(1, 1);
    case Op::kSub:
      return sub(0, 1) + " - " + sub(1, 2);
    case Op::kMul:
      return sub(0, 2) + " * " + sub(1, 3);
    case Op::kDiv:
      return sub(0, 2) + " / " + sub(1, 3);
    case Op::kPow:
      return sub(0, 5) + "^" + sub(1, 5);
    case Op::kNeg:
      return "-" + sub(0, 4);
    default:
      break;
  }
  std::string s = std::string(op_info(n.op).name) + "(" + infix(t, c[0], names, precision);
  if (n.arity == 2) s += ", " + infix(t, c[1], names, precision);
  return s + ")";
}

}  // namespace

std::string to_infix(const Tree& t, const std::vector<std::string>& names, int precision) {
  return t.empty() ? "" : infix(t, static_cast<int>(t.size()) - 1, names, precision);
}

// ---- parsing (recursive descent, emitting postfix directly) -------------------------------------------
namespace {

struct Parser {
  const std::string& s;
  const std::vector<std::string>& names;
  size_t p = 0;
  Tree out;

  [[noreturn]] void fail(const std::string& what) {
    throw InputError("expression '" + s + "', column " + std::to_string(p + 1) + ": " + what);
  }
  void skip() {
    while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
  }
  bool eat(char c) {
    skip();
    if (p < s.size() && s[p] == c) return ++p, true;
    return false;
  }
  void emit(Op op) { out.push_back(Node::function(op)); }

  void expr() {  // term (('+'|'-') term)*
    term();
    for (;;) {
      if (eat('+'))
        term(), emit(Op::kAdd);
      else if (eat('-'))
        term(), emit(Op::kSub);
      else
        return;
    }
  }
  void term() {  // unary (('*'|'/') unary)*
    unary();
    for (;;) {
      if (eat('*'))
        unary(), emit(Op::kMul);
      else if (eat('/'))
        unary(), emit(Op::kDiv);
      else
        return;
    }
  }
  void unary() {
    if (eat('-')) {
      unary();
      // "-3" is a constant, "-x" a negation.
      if (out.back().op == Op::kConst)
        out.back().value = -out.back().value;
      else
        emit(Op::kNeg);
      return;
    }
    power();
  }
  void power() {  // atom ('^' unary)?   (right-associative)
    atom();
    if (eat('^')) unary(), emit(Op::kPow);
  }
  void atom() {
    skip();
    if (p >= s.size()) fail("unexpected end");
    if (eat('(')) {
      expr();
      if (!eat(')')) fail("expected ')'");
      return;
    }
    char c = s[p];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      const char* b = s.c_str() + p;
      char* e = nullptr;
      double v = std::strtod(b, &e);
      if (e == b) fail("bad number");
      p += static_cast<size_t>(e - b);
      out.push_back(Node::constant(static_cast<float>(v)));
      return;
    }
    size_t b = p;
    while (p < s.size() && (std::isalnum(static_cast<unsigned char>(s[p])) || s[p] == '_' || s[p] == '.'))
      ++p;
    if (b == p) fail(std::string("unexpected '") + c + "'");
    std::string id = s.substr(b, p - b);
    if (eat('(')) {
      Op op = parse_op(id, "expression '" + s + "'");
      if (arity(op) == 0) fail("'" + id + "' is not a function");
      expr();
      if (arity(op) == 2) {
        if (!eat(',')) fail("'" + id + "' takes two arguments");
        expr();
      }
      if (!eat(')')) fail("expected ')' after the arguments of '" + id + "'");
      emit(op);
      return;
    }
    for (size_t k = 0; k < names.size(); ++k)
      if (names[k] == id) return out.push_back(Node::variable(static_cast<int>(k)));
    if (id.size() > 1 && id[0] == 'x' && std::strspn(id.c_str() + 1, "0123456789") == id.size() - 1)
      return out.push_back(Node::variable(std::atoi(id.c_str() + 1)));
    fail("unknown variable '" + id + "'");
  }
};

}  // namespace

Tree parse_expr(const std::string& text, const std::vector<std::string>& names) {
  Parser ps{text, names, 0, {}};
  ps.expr();
  ps.skip();
  if (ps.p != text.size()) ps.fail("unexpected '" + text.substr(ps.p, 1) + "'");
  if (ps.out.size() > kMaxLength) ps.fail("more than " + std::to_string(kMaxLength) + " nodes");
  update_lengths(ps.out);
  return ps.out;
}

namespace {
uint64_t hash_nodes(const Tree& t, bool with_constants) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  for (const Node& n : t) {
    mix(static_cast<uint64_t>(n.op));
    if (n.op == Op::kVar) mix(n.feature);
    if (n.op == Op::kConst && with_constants) {
      uint32_t bits;
      std::memcpy(&bits, &n.value, 4);
      mix(bits);
    }
  }
  return h;
}
}  // namespace

uint64_t hash_tree(const Tree& t) { return hash_nodes(t, true); }
uint64_t hash_shape(const Tree& t) { return hash_nodes(t, false); }

}  // namespace kiln::symreg
