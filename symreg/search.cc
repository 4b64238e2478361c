#include "symreg/search.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "engine/check.h"
#include "symreg/simplify.h"

namespace kiln::symreg {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr uint64_t kInitGeneration = ~0ull;  // the Rng stream id of the initial population

struct Individual {
  Candidate c;
  uint64_t shape = 0;  // hash_shape of the tree: survival keeps one individual per shape
  int rank = 0;
  double crowding = 0;
  double node_evals = 0;
};

bool dominates(const Individual& a, const Individual& b) {
  return a.c.loss <= b.c.loss && a.c.complexity <= b.c.complexity &&
         (a.c.loss < b.c.loss || a.c.complexity < b.c.complexity);
}

// Better under NSGA-II's crowded comparison; loss, complexity and then position break ties.
bool better(const Individual& a, const Individual& b) {
  if (a.rank != b.rank) return a.rank < b.rank;
  if (a.crowding != b.crowding) return a.crowding > b.crowding;
  if (a.c.loss != b.c.loss) return a.c.loss < b.c.loss;
  return a.c.complexity < b.c.complexity;
}

// Non-dominated sorting (O(n^2), n is a few hundred) and crowding distance over (loss, complexity).
void rank_and_crowd(std::vector<Individual>& v) {
  const size_t n = v.size();
  std::vector<int> dominated_by(n, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j && dominates(v[j], v[i])) ++dominated_by[i];
  // Peel fronts: rank r = individuals dominated only by ranks < r.
  std::vector<int> rank(n, -1);
  size_t assigned = 0;
  for (int r = 0; assigned < n; ++r) {
    std::vector<size_t> now;
    for (size_t i = 0; i < n; ++i)
      if (rank[i] < 0 && dominated_by[i] == 0) now.push_back(i);
    for (size_t i : now) rank[i] = r, ++assigned;
    for (size_t i : now)
      for (size_t j = 0; j < n; ++j)
        if (rank[j] < 0 && dominates(v[i], v[j])) --dominated_by[j];
  }
  for (size_t i = 0; i < n; ++i) v[i].rank = rank[i], v[i].crowding = 0;
  // Crowding within each rank, on both objectives (loss on a log scale: it spans decades).
  int max_rank = n ? *std::max_element(rank.begin(), rank.end()) : -1;
  for (int r = 0; r <= max_rank; ++r) {
    std::vector<size_t> f;
    for (size_t i = 0; i < n; ++i)
      if (rank[i] == r) f.push_back(i);
    for (int obj = 0; obj < 2; ++obj) {
      auto key = [&](size_t i) {
        return obj == 0 ? std::log(std::max(v[i].c.loss, 1e-300)) : static_cast<double>(v[i].c.complexity);
      };
      std::sort(f.begin(), f.end(),
                [&](size_t a, size_t b) { return key(a) < key(b) || (key(a) == key(b) && a < b); });
      double range = key(f.back()) - key(f.front());
      v[f.front()].crowding = v[f.back()].crowding = kInf;
      if (!(range > 0) || !std::isfinite(range)) continue;
      for (size_t k = 1; k + 1 < f.size(); ++k) v[f[k]].crowding += (key(f[k + 1]) - key(f[k - 1])) / range;
    }
  }
}

// Keeps the `keep` best of v. Duplicates go first: of the individuals with one shape (the same tree but
// for its constants, which fitting makes one candidate: keeping several would fill the population with
// copies of one structure and crowd out the others) or one (complexity, loss), only the lowest loss stays.
std::vector<Individual> survive(std::vector<Individual> v, size_t keep) {
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a].c.loss < v[b].c.loss; });
  std::set<uint64_t> seen;
  std::set<std::pair<int, double>> seen_fit;
  std::vector<Individual> u;
  for (size_t i : order)
    if (seen.insert(v[i].shape).second && seen_fit.insert({v[i].c.complexity, v[i].c.loss}).second)
      u.push_back(std::move(v[i]));
  rank_and_crowd(u);
  std::vector<size_t> idx(u.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(),
            [&](size_t a, size_t b) { return better(u[a], u[b]) || (!better(u[b], u[a]) && a < b); });
  std::vector<Individual> out;
  for (size_t k = 0; k < idx.size() && out.size() < keep; ++k) out.push_back(std::move(u[idx[k]]));
  return out;
}

const Individual& tournament(Rng& rng, const std::vector<Individual>& pop, int k) {
  const Individual* best = &pop[static_cast<size_t>(rng.below(static_cast<int>(pop.size())))];
  for (int i = 1; i < k; ++i) {
    const Individual& c = pop[static_cast<size_t>(rng.below(static_cast<int>(pop.size())))];
    if (better(c, *best)) best = &c;
  }
  return *best;
}

// Has the front made progress: some complexity's loss at most half what it was, or a complexity new to
// the front? Losses below 1e-10 of the simplest entry's (a constant: the targets' variance) count as
// exact, so that float noise at the bottom is no progress.
class FrontProgress {
 public:
  bool update(const std::vector<Candidate>& front) {
    bool better = false;
    double floor = front.empty() ? 0 : 1e-10 * front.front().loss;
    for (const Candidate& c : front) {
      auto it = last_.find(c.complexity);
      if (it == last_.end() || (c.loss <= 0.5 * it->second && it->second > floor)) better = true;
    }
    last_.clear();
    for (const Candidate& c : front) last_[c.complexity] = c.loss;
    return better;
  }

 private:
  std::map<int, double> last_;
};

struct Context {
  const Problem& pb;
  const SearchOptions& opt;
  const Problem* lm;                                   // the rows LM sees (a subset of pb on large data)
  double loss_floor;                                   // the front's (SearchResult::loss_floor)
  std::vector<std::unique_ptr<Evaluator>> evaluators;  // one per thread
};

// Fits and scores a tree; a fitted tree over the limits (the scaling adds nodes) is refitted unscaled.
Individual evaluate(Context& cx, const Tree& t, Rng& rng) {
  Evaluator& ev = *cx.evaluators[static_cast<size_t>(omp_get_thread_num())];
  FitOptions fo = cx.opt.fit;
  fo.loss_floor = cx.loss_floor;
  if (!rng.chance(cx.opt.p_optimize)) fo.iterations = 0;
  Fitted f = fit(t, cx.pb, fo, ev, cx.lm);
  double evals = f.node_evals;
  if (!within_limits(f.tree, cx.opt.ops, cx.opt.limits)) {
    fo.linear_scaling = false;
    f = fit(t, cx.pb, fo, ev, cx.lm);
    evals += f.node_evals;
    if (!within_limits(f.tree, cx.opt.ops, cx.opt.limits)) f.tree = t, f.loss = kInf;
  }
  Individual ind;
  ind.c.tree = std::move(f.tree);
  ind.c.loss = std::isfinite(f.loss) ? f.loss : kInf;
  ind.c.complexity = complexity(ind.c.tree, cx.opt.ops);
  ind.shape = hash_shape(ind.c.tree);
  ind.node_evals = evals;
  return ind;
}

Tree make_child(Context& cx, Rng& rng, const std::vector<Individual>& pop) {
  const SearchOptions& o = cx.opt;
  const int features = cx.pb.x->features();
  const Tree& parent = tournament(rng, pop, o.tournament).c.tree;
  for (int attempt = 0; attempt < 8; ++attempt) {
    Tree child;
    if (rng.chance(o.p_crossover)) {
      const Tree& other = tournament(rng, pop, o.tournament).c.tree;
      child = rng.chance(o.p_graft) ? graft(rng, parent, other, o.ops) : crossover(rng, parent, other);
    } else {
      child = mutate(rng, parent, o.ops, features);
    }
    if (within_limits(child, o.ops, o.limits)) return child;
  }
  return parent;
}

Tree initial_tree(Context& cx, Rng& rng) {
  const SearchOptions& o = cx.opt;
  for (int attempt = 0; attempt < 16; ++attempt) {
    Tree t = random_tree(rng, o.ops, cx.pb.x->features(), 1 + rng.below(std::min(8, o.limits.max_length)));
    if (within_limits(t, o.ops, o.limits)) return t;
  }
  return Tree{random_leaf(rng, cx.pb.x->features())};
}

}  // namespace

void check_options(const SearchOptions& o, const Problem& pb) {
  auto bad = [](const std::string& flag, const std::string& v, const std::string& why) {
    throw InputError(flag + ": " + v + " " + why);
  };
  if (!pb.x || pb.rows() < 2)
    bad("--data", std::to_string(pb.rows()) + " rows:", "at least 2 rows are needed");
  if (pb.x->features() < 1) bad("--features", "0 features:", "at least one feature is needed");
  if (static_cast<int64_t>(pb.y.size()) != pb.rows()) bad("targets", std::to_string(pb.y.size()), "!= rows");
  int leaf = std::min(o.ops.complexity(Op::kVar), o.ops.complexity(Op::kConst));
  if (o.limits.max_complexity < leaf)
    bad("--max-complexity", std::to_string(o.limits.max_complexity),
        "is below the complexity of a single leaf (" + std::to_string(leaf) + ")");
  if (o.limits.max_depth < 1) bad("--max-depth", std::to_string(o.limits.max_depth), "must be >= 1");
  if (o.limits.max_length < 1 || o.limits.max_length > kMaxLength)
    bad("--max-length", std::to_string(o.limits.max_length),
        "must be in [1, " + std::to_string(kMaxLength) + "]");
  if (o.islands < 1) bad("--islands", std::to_string(o.islands), "must be >= 1");
  if (o.exchange && o.islands % o.exchange->size() != 0)
    bad("--islands", std::to_string(o.islands),
        "cannot be shared by " + std::to_string(o.exchange->size()) + " ranks (give a multiple)");
  if (o.population < 2) bad("--population", std::to_string(o.population), "must be >= 2");
  if (o.generations < 0) bad("--generations", std::to_string(o.generations), "must be >= 0");
  if (o.time_limit < 0) bad("--time-limit", std::to_string(o.time_limit), "must be >= 0");
  if (o.generations == 0 && o.time_limit <= 0 && o.target_loss < 0)
    bad("--generations", "0", "with no --time-limit: the search would never stop");
  if (!std::isfinite(o.loss_floor)) bad("--loss-floor", std::to_string(o.loss_floor), "is not finite");
  if (o.tournament < 1) bad("--tournament", std::to_string(o.tournament), "must be >= 1");
  if (o.ops.unary().empty() && o.ops.binary().empty()) bad("--ops", "(none)", "no operator allowed");
  for (size_t r = 0; r < pb.y.size(); ++r)
    if (!std::isfinite(pb.y[r])) bad("targets", "row " + std::to_string(r + 1), "is not finite");
}

SearchResult search(const Problem& pb, const SearchOptions& opt,
                    const std::function<void(const GenerationStats&)>& on_generation) {
  check_options(opt, pb);
  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const int threads = opt.threads > 0 ? opt.threads : omp_get_num_procs();
  Columns lm_storage;
  Problem lm = row_subset(pb, std::max<int64_t>(opt.fit_rows, 2), opt.seed, &lm_storage);

  // This rank evolves islands first .. first + K - 1 of the I in all (exchange.h).
  SingleRank alone;
  Exchange& ex = opt.exchange ? *opt.exchange : alone;
  const int I = opt.islands, P = opt.population, K = I / ex.size(), first = ex.rank() * K;
  std::vector<std::vector<Individual>> pop(static_cast<size_t>(K));
  std::vector<Individual> slots(static_cast<size_t>(K) * P);
  SearchResult res;
  res.loss_floor = opt.loss_floor >= 0 ? opt.loss_floor
                                       : noise_floor_loss(pb.loss, pb.y.data(),
                                                          pb.w.empty() ? nullptr : pb.w.data(), pb.rows());
  Context cx{pb, opt, &lm, res.loss_floor, {}};
  for (int i = 0; i < threads; ++i) cx.evaluators.push_back(std::make_unique<Evaluator>());
  HallOfFame hof(res.loss_floor);
  HallOfFame epoch(res.loss_floor);  // what the islands found since the last restart: migration hands it out

  // Runs make(island, rng) for every slot of this rank in parallel (island: the global index).
  auto run_slots = [&](uint64_t gen, const std::function<Individual(int, Rng&)>& make) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 2)
    for (int k = 0; k < K * P; ++k) {
      const int island = first + k / P;
      Rng rng = Rng::derive(opt.seed, {gen, static_cast<uint64_t>(island), static_cast<uint64_t>(k % P)});
      slots[static_cast<size_t>(k)] = make(island, rng);
    }
  };
  // Collective: offers every rank's slots to the hall of fame as one process offering all of them in island
  // order would. A rank sends, per complexity, its first slot of lowest loss if that beats the epoch's entry
  // (the hall of fame's is as low or lower): the only offers that can be kept. Also adds up the node
  // evaluations and hands every rank's `migrants` to every rank ([rank] -> its migrants).
  auto share = [&](const std::vector<Candidate>& migrants) {
    std::map<int, const Candidate*> fresh;
    double evals = 0;
    for (const Individual& ind : slots) {
      evals += ind.node_evals;
      const Candidate& c = ind.c;
      const Candidate* e = epoch.find(c.complexity);
      if (!std::isfinite(c.loss) || (e && !(c.loss < e->loss))) continue;
      auto [it, added] = fresh.emplace(c.complexity, &c);
      if (!added && c.loss < it->second->loss) it->second = &c;
    }
    std::vector<Candidate> mine;
    for (const auto& kv : fresh) mine.push_back(*kv.second);
    WireWriter w;
    w.f64(evals);
    w.candidates(mine);
    w.candidates(migrants);
    std::vector<std::vector<Candidate>> received;
    for (const std::string& bytes : ex.allgather(w.bytes())) {
      WireReader r(bytes);
      res.node_evals += r.f64();
      for (const Candidate& c : r.candidates()) hof.offer(c), epoch.offer(c);
      received.push_back(r.candidates());
      KILN_CHECK(r.done(), "a symreg exchange message longer than its contents");
    }
    res.candidates += static_cast<int64_t>(I) * P;
    return received;
  };
  auto survive_slots = [&] {
    for (int i = 0; i < K; ++i)
      pop[static_cast<size_t>(i)] =
          survive(std::vector<Individual>(slots.begin() + i * P, slots.begin() + (i + 1) * P),
                  static_cast<size_t>(P));
  };

  run_slots(kInitGeneration, [&](int, Rng& rng) { return evaluate(cx, initial_tree(cx, rng), rng); });
  share({});
  survive_slots();

  res.stop_reason = "generations";
  FrontProgress progress;
  progress.update(hof.front());
  int last_improvement = 0;
  double last_t = elapsed(), last_evals = res.node_evals;
  for (int g = 1; opt.generations == 0 || g <= opt.generations; ++g) {
    run_slots(static_cast<uint64_t>(g), [&](int island, Rng& rng) {
      Tree child = make_child(cx, rng, pop[static_cast<size_t>(island - first)]);
      return evaluate(cx, child, rng);
    });
    for (int i = 0; i < K; ++i) {
      std::vector<Individual> pool = std::move(pop[static_cast<size_t>(i)]);
      pool.insert(pool.end(), slots.begin() + i * P, slots.begin() + (i + 1) * P);
      pop[static_cast<size_t>(i)] = survive(std::move(pool), static_cast<size_t>(P));
    }
    // Migration around the ring of islands: the last island of a rank receives from the next rank's first,
    // whose best `migrants` every rank sends along with its hall-of-fame entries.
    const bool migrate = opt.migration_interval > 0 && g % opt.migration_interval == 0;
    std::vector<Candidate> outgoing;
    for (size_t k = 0; migrate && ex.size() > 1 && k < pop[0].size() && k < size_t(opt.migrants); ++k)
      outgoing.push_back(pop[0][k].c);
    std::vector<std::vector<Candidate>> incoming = share(outgoing);
    if (migrate) {
      std::vector<std::vector<Individual>> snapshot = pop;
      std::vector<Candidate> front = epoch.front();
      for (int li = 0; li < K; ++li) {
        const int i = first + li, next = (i + 1) % I;
        auto& dst = pop[static_cast<size_t>(li)];
        std::vector<Individual> src;  // the neighbour's best, in order
        if (I > 1 && next / K == ex.rank()) {
          const auto& s = snapshot[static_cast<size_t>(next - first)];
          src.assign(s.begin(), s.begin() + std::min<int>(opt.migrants, static_cast<int>(s.size())));
        } else if (I > 1) {
          for (const Candidate& c : incoming[static_cast<size_t>(next / K)]) {
            src.emplace_back();
            src.back().c = c, src.back().shape = hash_shape(c.tree);
          }
        }
        int m = std::min<int>({opt.migrants, static_cast<int>(src.size()), static_cast<int>(dst.size())});
        for (int k = 0; k < m; ++k)
          dst[dst.size() - 1 - static_cast<size_t>(k)] = src[static_cast<size_t>(k)];
        // Hall-of-fame entries, a different window of the front for each island and migration.
        for (int k = 0; k < opt.migrants && !front.empty(); ++k) {
          Individual h;
          h.c = front[static_cast<size_t>(k + i + g / opt.migration_interval) % front.size()];
          h.shape = hash_shape(h.c.tree);
          dst.push_back(std::move(h));
        }
        dst = survive(std::move(dst), static_cast<size_t>(P));
      }
    }
    // Restart on stagnation: every island starts again from fresh random expressions, and migration
    // hands out only what they find from now on, so that they do not fall back into the basin the
    // search was stuck in; the hall of fame keeps everything for the result.
    if (progress.update(hof.front())) last_improvement = g;
    if (opt.stagnation > 0 && g - last_improvement >= opt.stagnation) {
      last_improvement = g;
      ++res.restarts;
      epoch = HallOfFame(res.loss_floor);
      run_slots(static_cast<uint64_t>(g) | (1ull << 62),
                [&](int, Rng& rng) { return evaluate(cx, initial_tree(cx, rng), rng); });
      share({});
      survive_slots();
    }
    res.generations = g;
    const double now = ex.max(elapsed());  // the slowest rank's: every rank stops at the same generation
    if (on_generation) {
      GenerationStats st;
      st.generation = g, st.best_loss = hof.best_loss(), st.front_size = hof.front().size();
      st.node_evals_per_second = now > last_t ? (res.node_evals - last_evals) / (now - last_t) : 0;
      st.seconds = now, st.candidates = res.candidates, st.restarts = res.restarts;
      on_generation(st);
    }
    last_t = now, last_evals = res.node_evals;
    if (opt.target_loss >= 0 && hof.best_loss() <= opt.target_loss) {
      res.stop_reason = "target loss";
      break;
    }
    if (opt.stop_when && opt.stop_when(hof.front())) {
      res.stop_reason = "stop condition";
      break;
    }
    if (opt.time_limit > 0 && now >= opt.time_limit) {
      res.stop_reason = "time limit";
      break;
    }
  }
  res.front = hof.front();
  res.seconds = ex.max(elapsed());
  return res;
}

}  // namespace kiln::symreg
