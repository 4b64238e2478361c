// NSGA-II (Deb et al. 2002) over finished trials: non-dominated sorting, crowding distance, and the
// offspring of one generation. Also the scan's combined Pareto front.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "symreg/rng.h"
#include "tools/scan_space.h"

namespace kiln::scan {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

bool dominates(const std::vector<double>& a, const std::vector<double>& b) {
  bool better = false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] > b[k]) return false;
    better |= a[k] < b[k];
  }
  return better;
}

using symreg::Rng;

size_t pick(Rng& r, size_t n) { return static_cast<size_t>(r.below(static_cast<int>(n))); }  // in [0, n)

// Simulated binary crossover (eta 15) of two unit genes.
void sbx(Rng& r, double* a, double* b) {
  constexpr double eta = 15;
  const double u = r.uniform();
  const double beta = u <= 0.5 ? std::pow(2 * u, 1 / (eta + 1)) : std::pow(1 / (2 * (1 - u)), 1 / (eta + 1));
  const double x = *a, y = *b;
  *a = 0.5 * ((1 + beta) * x + (1 - beta) * y);
  *b = 0.5 * ((1 - beta) * x + (1 + beta) * y);
}

// Polynomial mutation (eta 20) of a unit gene.
double poly_mutate(Rng& r, double x) {
  constexpr double eta = 20;
  const double u = r.uniform();
  const double d = u < 0.5 ? std::pow(2 * u, 1 / (eta + 1)) - 1 : 1 - std::pow(2 * (1 - u), 1 / (eta + 1));
  return x + d;
}

}  // namespace

bool objective_vector(const ScanSpec& s, const Result& r, std::vector<double>* out) {
  out->clear();
  for (const auto& o : s.objectives) {
    auto it = r.metrics.find(o.metric);
    if (it == r.metrics.end() || !std::isfinite(it->second)) return false;
    out->push_back(o.maximize ? -it->second : it->second);
  }
  return true;
}

void nondominated_sort(const std::vector<std::vector<double>>& f, std::vector<int>* rank,
                       std::vector<double>* crowding) {
  const size_t n = f.size();
  rank->assign(n, -1);
  crowding->assign(n, 0);
  std::vector<std::vector<size_t>> dominated(n);
  std::vector<int> count(n, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j && dominates(f[i], f[j]))
        dominated[i].push_back(j);
      else if (i != j && dominates(f[j], f[i]))
        ++count[i];
  std::vector<size_t> cur;
  for (size_t i = 0; i < n; ++i)
    if (count[i] == 0) cur.push_back(i);
  for (int r = 0; !cur.empty(); ++r) {
    for (size_t i : cur) (*rank)[i] = r;
    // Crowding within this rank: the sum over objectives of the neighbours' normalised gap.
    for (size_t k = 0; !f.empty() && k < f[0].size(); ++k) {
      std::vector<size_t> o = cur;
      std::stable_sort(o.begin(), o.end(), [&](size_t a, size_t b) { return f[a][k] < f[b][k]; });
      const double span = f[o.back()][k] - f[o.front()][k];
      (*crowding)[o.front()] = (*crowding)[o.back()] = kInf;
      for (size_t m = 1; m + 1 < o.size(); ++m)
        if (span > 0) (*crowding)[o[m]] += (f[o[m + 1]][k] - f[o[m - 1]][k]) / span;
    }
    std::vector<size_t> next;
    for (size_t i : cur)
      for (size_t j : dominated[i])
        if (--count[j] == 0) next.push_back(j);
    std::sort(next.begin(), next.end());
    cur = next;
  }
}

std::vector<size_t> pareto_front(const ScanSpec& s, const std::vector<Result>& results) {
  std::vector<size_t> idx;
  std::vector<std::vector<double>> f;
  for (size_t i = 0; i < results.size(); ++i) {
    std::vector<double> v;
    if (results[i].ok && objective_vector(s, results[i], &v)) idx.push_back(i), f.push_back(v);
  }
  std::vector<int> rank;
  std::vector<double> crowd;
  nondominated_sort(f, &rank, &crowd);
  std::vector<size_t> front;
  for (size_t k = 0; k < idx.size(); ++k)
    if (rank[k] == 0) front.push_back(k);
  std::stable_sort(front.begin(), front.end(), [&](size_t a, size_t b) { return f[a][0] < f[b][0]; });
  for (size_t& k : front) k = idx[k];
  return front;
}

std::vector<Trial> nsga2_generation(const ScanSpec& s, int g, const std::vector<Result>& finished) {
  // The pool: every ok trial of earlier generations, in id order (a rerun sees the same pool).
  std::vector<const Result*> pool;
  for (const Result& r : finished)
    if (r.trial.generation < g && r.ok) pool.push_back(&r);
  std::sort(pool.begin(), pool.end(),
            [](const Result* a, const Result* b) { return a->trial.id < b->trial.id; });
  std::vector<std::vector<double>> f;
  std::vector<const Result*> usable;
  for (const Result* r : pool) {
    std::vector<double> v;
    if (objective_vector(s, *r, &v)) f.push_back(v), usable.push_back(r);
  }
  Rng rng = Rng::derive(s.seed, {kStreamNsga2, static_cast<uint64_t>(g)});  // one stream per generation
  const size_t P = static_cast<size_t>(s.population);
  std::vector<Trial> out;
  const int first_id = g * s.population;
  if (usable.size() < 2) {  // nothing to breed from (every trial failed): fresh random points
    ScanSpec r = s;
    r.type = "random", r.trials = s.population, r.seed = s.seed + static_cast<uint64_t>(g) * 7919;
    out = initial_trials(r);
    for (auto& t : out) t.id += first_id, t.generation = g;
    return out;
  }
  std::vector<int> rank;
  std::vector<double> crowd;
  nondominated_sort(f, &rank, &crowd);
  // Survivors: the best P by (rank, -crowding, id).
  std::vector<size_t> order(usable.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (rank[a] != rank[b]) return rank[a] < rank[b];
    return crowd[a] > crowd[b];
  });
  if (order.size() > P) order.resize(P);
  auto tournament = [&]() {
    const size_t a = order[pick(rng, order.size())], b = order[pick(rng, order.size())];
    if (rank[a] != rank[b]) return rank[a] < rank[b] ? a : b;
    return crowd[a] >= crowd[b] ? a : b;
  };
  const size_t np = s.params.size();
  const double pm = 1.0 / static_cast<double>(np);
  // Children equal to a trial already run (or bred now) are mutated again: a repeat teaches nothing.
  std::set<std::vector<std::string>> seen;
  for (const Result& r : finished) seen.insert(r.trial.values);
  auto force_mutation = [&](Trial* c) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      set_values(s, c);
      if (!seen.count(c->values)) return;
      const size_t k = pick(rng, np);
      const Param& p = s.params[k];
      c->genes[k] = p.is_range() ? from_unit(p, poly_mutate(rng, to_unit(p, c->genes[k])))
                                 : static_cast<double>(pick(rng, p.values.size()));
    }
  };
  while (out.size() < P) {
    const Trial& pa = usable[tournament()]->trial;
    const Trial& pb = usable[tournament()]->trial;
    Trial c1, c2;
    c1.genes = pa.genes, c2.genes = pb.genes;
    const bool cross = rng.uniform() < 0.9;
    for (size_t k = 0; k < np; ++k) {
      const Param& p = s.params[k];
      if (p.is_range()) {
        double a = to_unit(p, c1.genes[k]), b = to_unit(p, c2.genes[k]);
        if (cross && rng.uniform() < 0.5) sbx(rng, &a, &b);
        if (rng.uniform() < pm) a = poly_mutate(rng, a);
        if (rng.uniform() < pm) b = poly_mutate(rng, b);
        c1.genes[k] = from_unit(p, a), c2.genes[k] = from_unit(p, b);
      } else {
        if (cross && rng.uniform() < 0.5) std::swap(c1.genes[k], c2.genes[k]);
        if (rng.uniform() < pm) c1.genes[k] = static_cast<double>(pick(rng, p.values.size()));
        if (rng.uniform() < pm) c2.genes[k] = static_cast<double>(pick(rng, p.values.size()));
      }
    }
    for (Trial* c : {&c1, &c2})
      if (out.size() < P) {
        c->id = first_id + static_cast<int>(out.size()), c->generation = g;
        force_mutation(c);
        seen.insert(c->values);
        out.push_back(*c);
      }
  }
  return out;
}

}  // namespace kiln::scan
