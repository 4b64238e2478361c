#include "symreg/front.h"

#include <cmath>
#include <limits>

#include "engine/check.h"

namespace kiln::symreg {

void HallOfFame::offer(const Candidate& c) {
  if (!std::isfinite(c.loss)) return;
  auto it = best_.find(c.complexity);
  if (it == best_.end())
    best_.emplace(c.complexity, c);
  else if (c.loss < it->second.loss)
    it->second = c;
}

std::vector<Candidate> HallOfFame::front() const {
  std::vector<Candidate> f;
  // An entry joins when its loss beats every simpler one's, floored: nothing follows the first entry at
  // or below the floor.
  auto floored = [&](double l) { return std::max(l, floor_); };
  for (const auto& kv : best_)
    if (f.empty() || floored(kv.second.loss) < floored(f.back().loss)) f.push_back(kv.second);
  // A loss of 0 would make log(loss) -inf: floor it at a tiny value for the score.
  auto lg = [&](double l) { return std::log(std::max(floored(l), 1e-300)); };
  for (size_t i = 0; i < f.size(); ++i)
    f[i].score = i == 0 ? 0 : -(lg(f[i].loss) - lg(f[i - 1].loss)) / (f[i].complexity - f[i - 1].complexity);
  return f;
}

const Candidate* HallOfFame::find(int complexity) const {
  auto it = best_.find(complexity);
  return it == best_.end() ? nullptr : &it->second;
}

double HallOfFame::best_loss() const {
  double b = std::numeric_limits<double>::infinity();
  for (const auto& kv : best_) b = std::min(b, kv.second.loss);
  return b;
}

Selection parse_selection(const std::string& s) {
  if (s == "best") return Selection::kBest;
  if (s == "accuracy") return Selection::kAccuracy;
  if (s == "score") return Selection::kScore;
  throw InputError("--select: unknown model selection '" + s + "' (known: best, accuracy, score)");
}

size_t select(const std::vector<Candidate>& front, Selection s, double loss_floor) {
  KILN_CHECK(!front.empty(), "select() needs a non-empty front");
  double min_loss = std::max(front.back().loss, loss_floor);  // the front's losses decrease
  size_t best = front.size() - 1;
  if (s == Selection::kAccuracy) return best;
  double top = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < front.size(); ++i) {
    if (s == Selection::kBest && front[i].loss > 1.5 * min_loss) continue;
    if (front[i].score > top) top = front[i].score, best = i;
  }
  return best;
}

}  // namespace kiln::symreg
