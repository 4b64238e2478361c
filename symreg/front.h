// The hall of fame: the best expression found at every complexity, and its Pareto front (the entries
// whose loss is lower than that of every simpler entry), with model selection as in PySR:
//   accuracy   the lowest loss
//   score      the largest score = -d log(loss) / d complexity between neighbours on the front
//   best       the largest score among the entries with loss <= 1.5 x the lowest loss (the default)
// A loss floor (loss.h's float noise floor; 0 = none, PySR's behaviour) makes every loss at or below it a
// tie: the front ends at the simplest entry that reaches the floor, and the scores use max(loss, floor).
// Without it an exact formula (loss 3e-15) loses `best` and `accuracy` to a longer one that fits the
// float rounding of the targets (loss 0), and the score of a loss of 0 is meaningless.
//
//   HallOfFame hof(noise_floor_loss(LossKind::kMse, y, nullptr, n));
//   hof.offer({tree, loss, complexity});
//   std::vector<Candidate> front = hof.front();   // increasing complexity, decreasing loss
//   const Candidate& c = front[select(front, Selection::kBest)];
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "symreg/tree.h"

namespace kiln::symreg {

struct Candidate {
  Tree tree;
  double loss = 0;
  int complexity = 0;
  double score = 0;  // filled by HallOfFame::front()
};

class HallOfFame {
 public:
  explicit HallOfFame(double loss_floor = 0) : floor_(loss_floor) {}
  // Keeps c when it beats the entry of its complexity (ties: the earlier offer stays, for determinism).
  void offer(const Candidate& c);
  std::vector<Candidate> front() const;
  const Candidate* find(int complexity) const;  // the entry of that complexity; nullptr if none
  double best_loss() const;                     // +inf when empty
  size_t size() const { return best_.size(); }
  double loss_floor() const { return floor_; }

 private:
  std::map<int, Candidate> best_;
  double floor_ = 0;
};

enum class Selection { kBest, kAccuracy, kScore };
Selection parse_selection(const std::string& s);  // InputError naming the value
// Index into the front (non-empty) of the selected expression; losses at or below loss_floor are ties
// (the front's own floor, HallOfFame::loss_floor()).
size_t select(const std::vector<Candidate>& front, Selection s, double loss_floor = 0);

}  // namespace kiln::symreg
