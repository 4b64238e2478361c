// The hall of fame: the best expression found at every complexity, and its Pareto front (the entries
// whose loss is lower than that of every simpler entry), with model selection as in PySR:
//   accuracy   the lowest loss
//   score      the largest score = -d log(loss) / d complexity between neighbours on the front
//   best       the largest score among the entries with loss <= 1.5 x the lowest loss (the default)
//
//   HallOfFame hof;
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
  // Keeps c when it beats the entry of its complexity (ties: the earlier offer stays, for determinism).
  void offer(const Candidate& c);
  std::vector<Candidate> front() const;
  double best_loss() const;  // +inf when empty
  size_t size() const { return best_.size(); }

 private:
  std::map<int, Candidate> best_;
};

enum class Selection { kBest, kAccuracy, kScore };
Selection parse_selection(const std::string& s);  // InputError naming the value
// Index into the front (non-empty) of the selected expression.
size_t select(const std::vector<Candidate>& front, Selection s);

}  // namespace kiln::symreg
