#include "symreg/exchange.h"

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/vector.hpp>
#include <sstream>
#include <string>

#include "engine/check.h"

namespace kiln::symreg {

// A node on the wire: its constant (float bits), feature and operator; length and arity are derived.
template <class Archive>
void save(Archive& ar, const Node& n) {
  ar(n.value, n.feature, static_cast<uint8_t>(n.op));
}
template <class Archive>
void load(Archive& ar, Node& n) {
  uint8_t op = 0;
  ar(n.value, n.feature, op);
  KILN_CHECK(op < static_cast<uint8_t>(Op::kCount),
             "bad operator " + std::to_string(op) + " in an exchange message");
  n.op = static_cast<Op>(op);
  n.arity = static_cast<uint8_t>(arity(n.op));
}
template <class Archive>
void serialize(Archive& ar, Candidate& c) {
  ar(c.loss, c.score, c.complexity, c.tree);
}

struct WireWriter::Impl {
  std::ostringstream os;
  cereal::PortableBinaryOutputArchive ar{os};
};

WireWriter::WireWriter() : impl_(std::make_unique<Impl>()) {}
WireWriter::~WireWriter() = default;
void WireWriter::f64(double v) { impl_->ar(v); }
void WireWriter::i64(int64_t v) { impl_->ar(v); }
void WireWriter::candidates(const std::vector<Candidate>& v) { impl_->ar(v); }
std::string WireWriter::bytes() const { return impl_->os.str(); }

struct WireReader::Impl {
  explicit Impl(const std::string& b) : is(b), size(b.size()) {}
  std::istringstream is;
  cereal::PortableBinaryInputArchive ar{is};
  size_t size;
  template <class T>
  void read(T& v) {
    try {
      ar(v);
    } catch (const cereal::Exception& e) {
      KILN_CHECK(false, "truncated or malformed symreg exchange message (" + std::to_string(size) +
                            " bytes): " + e.what());
    }
  }
};

WireReader::WireReader(const std::string& bytes) : impl_(std::make_unique<Impl>(bytes)) {}
WireReader::~WireReader() = default;

double WireReader::f64() {
  double v = 0;
  impl_->read(v);
  return v;
}

int64_t WireReader::i64() {
  int64_t v = 0;
  impl_->read(v);
  return v;
}

std::vector<Candidate> WireReader::candidates() {
  std::vector<Candidate> v;
  impl_->read(v);
  for (Candidate& c : v) {
    KILN_CHECK(!c.tree.empty() && c.tree.size() <= static_cast<size_t>(kMaxLength),
               "bad tree length " + std::to_string(c.tree.size()) + " in an exchange message");
    update_lengths(c.tree);
  }
  return v;
}

bool WireReader::done() const { return impl_->is.peek() == std::char_traits<char>::eof(); }

}  // namespace kiln::symreg
