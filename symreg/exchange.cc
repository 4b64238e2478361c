#include "symreg/exchange.h"

#include <cstring>
#include <string>

#include "engine/check.h"

namespace kiln::symreg {

void WireWriter::f64(double v) { out_.append(reinterpret_cast<const char*>(&v), sizeof v); }
void WireWriter::i64(int64_t v) { out_.append(reinterpret_cast<const char*>(&v), sizeof v); }

// Per candidate: loss, score, complexity, node count, then per node value (float bits), feature, op.
void WireWriter::candidates(const std::vector<Candidate>& v) {
  i64(static_cast<int64_t>(v.size()));
  for (const Candidate& c : v) {
    f64(c.loss), f64(c.score), i64(c.complexity), i64(static_cast<int64_t>(c.tree.size()));
    for (const Node& n : c.tree) {
      out_.append(reinterpret_cast<const char*>(&n.value), sizeof n.value);
      out_.append(reinterpret_cast<const char*>(&n.feature), sizeof n.feature);
      out_.push_back(static_cast<char>(n.op));
    }
  }
}

void WireReader::take(void* dst, size_t n) {
  KILN_CHECK(pos_ + n <= in_.size(),
             "truncated symreg exchange message (" + std::to_string(in_.size()) + " bytes)");
  std::memcpy(dst, in_.data() + pos_, n);
  pos_ += n;
}

double WireReader::f64() {
  double v;
  take(&v, sizeof v);
  return v;
}

int64_t WireReader::i64() {
  int64_t v;
  take(&v, sizeof v);
  return v;
}

std::vector<Candidate> WireReader::candidates() {
  const int64_t count = i64();
  KILN_CHECK(count >= 0 && count <= static_cast<int64_t>(in_.size()),
             "bad candidate count " + std::to_string(count));
  std::vector<Candidate> v(static_cast<size_t>(count));
  for (Candidate& c : v) {
    c.loss = f64(), c.score = f64(), c.complexity = static_cast<int>(i64());
    const int64_t nodes = i64();
    KILN_CHECK(nodes >= 1 && nodes <= kMaxLength, "bad tree length " + std::to_string(nodes));
    c.tree.resize(static_cast<size_t>(nodes));
    for (Node& n : c.tree) {
      uint8_t op;
      take(&n.value, sizeof n.value), take(&n.feature, sizeof n.feature), take(&op, 1);
      KILN_CHECK(op < static_cast<uint8_t>(Op::kCount), "bad operator " + std::to_string(op));
      n.op = static_cast<Op>(op);
      n.arity = static_cast<uint8_t>(arity(n.op));
    }
    update_lengths(c.tree);
  }
  return v;
}

}  // namespace kiln::symreg
