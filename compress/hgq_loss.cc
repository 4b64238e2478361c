// HGQ's loss term: beta (scheduled, PID-scaled towards a target) times the model's EBOPs, plus gamma times
// the sum of bits; freezing the bit widths at an epoch or an EBOPs level.
#include <algorithm>
#include <cmath>

#include "compress/hgq.h"

namespace kiln::compress {

double scheduled_beta(const HgqOptions& o, int epoch) {
  const BetaSchedule& s = o.schedule;
  if (s.type == "constant" || epoch <= s.start_epoch) return o.beta;
  if (epoch >= s.end_epoch) return s.final_beta;
  double t = (epoch - s.start_epoch) / (s.end_epoch - s.start_epoch);
  if (s.type == "linear") return o.beta + t * (s.final_beta - o.beta);
  return o.beta * std::pow(s.final_beta / o.beta, t);  // log: geometric
}

HgqLoss::HgqLoss(std::shared_ptr<QuantizedModel> qm, HgqOptions o)
    : qm_(std::move(qm)), o_(std::move(o)), beta_(o_.beta) {}

void HgqLoss::start_epoch(int epoch) { beta_ = scheduled_beta(o_, epoch) * pid_scale_; }

Var HgqLoss::loss() {
  Var l = mul_scalar(qm_->total_ebops(), static_cast<float>(beta_));
  if (o_.gamma > 0) l = add(l, mul_scalar(qm_->sum_bits(), static_cast<float>(o_.gamma)));
  return l;
}

std::vector<std::pair<std::string, double>> HgqLoss::stats() {
  std::vector<std::pair<std::string, double>> s = {{"ebops", qm_->ebops_value()},
                                                   {"beta", beta_},
                                                   {"mean_weight_bits", qm_->mean_bits(false)},
                                                   {"mean_input_bits", qm_->mean_bits(true)}};
  if (o_.freeze.epoch > 0 || o_.freeze.ebops > 0) s.emplace_back("bits_frozen", frozen_ ? 1.0 : 0.0);
  return s;
}

// PID on the log-ratio of EBOPs to the target: beta is scaled by exp(p e + i sum(e) + d (e - e_prev)).
void HgqLoss::resume(const std::vector<train::EpochRecord>& history) {
  pid_integral_ = 0, pid_prev_ = 0, pid_scale_ = 1;
  bool freeze_now = false;
  for (const auto& r : history)
    for (const auto& [key, value] : r.extra)
      if (key == "ebops") update_pid(value), freeze_now = freeze_now || freezes_at(r.epoch, value);
  // The checkpoint holds the bits as they were frozen (restored after every step).
  if (freeze_now) freeze();
}

void HgqLoss::end_epoch(const train::EpochRecord& r) {
  const bool may_freeze = !frozen_ && (o_.freeze.epoch > 0 || o_.freeze.ebops > 0);
  if (o_.pid.target_ebops <= 0 && !may_freeze) return;
  const double ebops = qm_->ebops_value();
  if (o_.pid.target_ebops > 0) update_pid(ebops);
  if (may_freeze && freezes_at(r.epoch, ebops)) freeze();
}

bool HgqLoss::freezes_at(int epoch, double ebops) const {
  return (o_.freeze.epoch > 0 && epoch >= o_.freeze.epoch) ||
         (o_.freeze.ebops > 0 && ebops <= o_.freeze.ebops);
}

void HgqLoss::freeze() {
  frozen_ = true;
  for (FixedQuantizer* q : qm_->quantizers()) q->freeze_bits();
}

void HgqLoss::after_step() {
  if (frozen_)
    for (FixedQuantizer* q : qm_->quantizers()) q->restore_frozen_bits();
}

void HgqLoss::update_pid(double ebops) {
  if (o_.pid.target_ebops <= 0) return;
  double e = std::log(std::max(ebops, 1e-9) / o_.pid.target_ebops);
  pid_integral_ += e;
  pid_scale_ = std::exp(o_.pid.p * e + o_.pid.i * pid_integral_ + o_.pid.d * (e - pid_prev_));
  pid_prev_ = e;
}

}  // namespace kiln::compress
