// The search over several ranks (symreg/exchange.h), ranks simulated by threads: R ranks x K islands give
// exactly the front of one process with R * K islands (migration across ranks, restarts on stagnation, the
// time limit decided alike on every rank), and the candidates' wire form is bit-exact.
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "symreg/nguyen.h"
#include "symreg/search.h"
#include "tests/test_files.h"

using namespace kiln::symreg;

namespace {

// R threads as R ranks: allgather waits until every rank has given its bytes to the same collective.
class ThreadHub {
 public:
  explicit ThreadHub(int ranks) : ranks_(ranks) {}
  std::vector<std::string> allgather(int rank, uint64_t round, const std::string& bytes) {
    std::unique_lock<std::mutex> lock(mu_);
    Round& r = rounds_[round];
    r.bytes.resize(static_cast<size_t>(ranks_));
    r.bytes[static_cast<size_t>(rank)] = bytes;
    if (++r.arrived == ranks_) cv_.notify_all();
    cv_.wait(lock, [&] { return r.arrived == ranks_; });
    std::vector<std::string> out = r.bytes;
    if (++r.taken == ranks_) rounds_.erase(round);
    return out;
  }
  int ranks() const { return ranks_; }

 private:
  struct Round {
    std::vector<std::string> bytes;
    int arrived = 0, taken = 0;
  };
  int ranks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Round> rounds_;
};

class ThreadExchange : public Exchange {
 public:
  ThreadExchange(ThreadHub& hub, int rank) : hub_(hub), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return hub_.ranks(); }
  std::vector<std::string> allgather(const std::string& bytes) override {
    return hub_.allgather(rank_, round_++, bytes);
  }
  double max(double v) override {
    double m = v;
    for (const std::string& b : allgather(std::string(reinterpret_cast<const char*>(&v), sizeof v))) {
      double x;
      std::memcpy(&x, b.data(), sizeof x);
      m = std::max(m, x);
    }
    return m;
  }

 private:
  ThreadHub& hub_;
  int rank_;
  uint64_t round_ = 0;
};

// Every rank's result of one search over `ranks` threads.
std::vector<SearchResult> run_ranks(const Problem& pb, SearchOptions opt, int ranks) {
  ThreadHub hub(ranks);
  std::vector<SearchResult> out(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      ThreadExchange ex(hub, r);
      SearchOptions o = opt;
      o.exchange = &ex;
      out[static_cast<size_t>(r)] = search(pb, o);
    });
  for (std::thread& t : threads) t.join();
  return out;
}

void check_same_front(const SearchResult& a, const SearchResult& b) {
  REQUIRE(a.front.size() == b.front.size());
  for (size_t i = 0; i < a.front.size(); ++i) {
    INFO("entry ", i, ": ", to_infix(a.front[i].tree, {"x"}), " vs ", to_infix(b.front[i].tree, {"x"}));
    CHECK(a.front[i].tree == b.front[i].tree);
    CHECK(std::memcmp(&a.front[i].loss, &b.front[i].loss, sizeof(double)) == 0);
    CHECK(a.front[i].complexity == b.front[i].complexity);
  }
  CHECK(a.generations == b.generations);
  CHECK(a.restarts == b.restarts);
  CHECK(a.candidates == b.candidates);
  CHECK(a.node_evals == doctest::Approx(b.node_evals).epsilon(1e-12));
}

SearchOptions small_options() {
  SearchOptions opt;
  opt.ops = OpSet::parse("+,-,*,sin");  // x^3 + x^2 + x with sin: progress, then stagnation
  opt.islands = 4;
  opt.population = 24;
  opt.generations = 30;
  opt.migration_interval = 3;
  opt.migrants = 4;
  opt.stagnation = 6;
  opt.seed = 7;
  return opt;
}

}  // namespace

TEST_CASE("2 ranks x 2 islands and 4 ranks x 1 island: the front of one process with 4 islands") {
  NguyenData d = make_nguyen_data(nguyen(1), 20, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  SearchOptions opt = small_options();
  SearchResult one = search(pb, opt);
  CHECK(one.restarts >= 1);  // the restart path is exercised
  for (int ranks : {2, 4}) {
    INFO(ranks, " ranks");
    std::vector<SearchResult> rs = run_ranks(pb, opt, ranks);
    for (const SearchResult& r : rs) check_same_front(one, r);  // every rank holds the same hall of fame
  }
  // Migration off, and with 2 threads per rank: still the same.
  opt.migration_interval = 0, opt.threads = 2;
  SearchResult solo = search(pb, opt);
  check_same_front(solo, run_ranks(pb, opt, 2)[1]);
}

TEST_CASE("ranks stop together on a time limit, target loss or stop condition") {
  NguyenData d = make_nguyen_data(nguyen(1), 20, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  SearchOptions opt = small_options();
  opt.generations = 0, opt.time_limit = 0.3;
  std::vector<SearchResult> rs = run_ranks(pb, opt, 2);
  CHECK(rs[0].stop_reason == "time limit");
  CHECK(rs[1].stop_reason == "time limit");
  check_same_front(rs[0], rs[1]);
  opt.time_limit = 0, opt.generations = 200, opt.ops = OpSet::parse("+,*");
  opt.stop_when = [](const std::vector<Candidate>& front) { return front.back().loss < 1e-3; };
  rs = run_ranks(pb, opt, 2);
  CHECK(rs[0].stop_reason == "stop condition");
  check_same_front(rs[0], rs[1]);
  check_same_front(rs[0], search(pb, opt));
}

TEST_CASE("islands that the ranks cannot share are an input error") {
  NguyenData d = make_nguyen_data(nguyen(1), 20, 1);
  Problem pb{&d.x, d.y, {}, LossKind::kMse};
  ThreadHub hub(3);
  ThreadExchange ex(hub, 0);
  SearchOptions opt = small_options();
  opt.exchange = &ex;
  CHECK_INPUT_ERROR(search(pb, opt), "--islands", "3 ranks");
}

TEST_CASE("candidates cross the wire bit-exactly") {
  Candidate c;
  c.tree = parse_expr("sin(x0 * 0.1) + 3.3333333 / x1", {"x0", "x1"});
  c.tree[1].value = std::nextafter(0.1f, 1.0f);
  c.loss = 1.0 / 3.0, c.complexity = 9, c.score = -0.25;
  Candidate inf = c;
  inf.loss = std::numeric_limits<double>::infinity();
  WireWriter w;
  w.f64(2.5);
  w.candidates({c, inf});
  w.candidates({});
  WireReader r(w.bytes());
  CHECK(r.f64() == 2.5);
  std::vector<Candidate> v = r.candidates();
  REQUIRE(v.size() == 2);
  CHECK(v[0].tree == c.tree);
  CHECK(v[0].tree[1].value == c.tree[1].value);
  CHECK(v[0].loss == c.loss);
  CHECK(v[0].complexity == 9);
  CHECK(v[0].score == -0.25);
  CHECK(hash_tree(v[0].tree) == hash_tree(c.tree));
  CHECK(v[1].loss == inf.loss);
  CHECK(r.candidates().empty());
  CHECK(r.done());
  // A message cut short, or with an operator that does not exist, is refused, not misread.
  const std::string b = w.bytes();
  WireReader cut(b.substr(0, b.size() - 12));
  CHECK(cut.f64() == 2.5);
  CHECK_THROWS(cut.candidates());
  Candidate odd = c;
  odd.tree[0].op = static_cast<Op>(250);
  WireWriter w2;
  w2.candidates({odd});
  WireReader r2(w2.bytes());
  CHECK_THROWS(r2.candidates());
}
