#include "train/optimizer.hpp"

namespace rs {

bool update_parameter(const KernelSet& k, const OptimizerSettings& s, const ParamUpdate& p,
                      bool commit, int n_threads) {
  switch (s.kind) {
    case OptimizerKind::sgd: {
      const SgdArgs args{
          p.value,        p.grad,     s.momentum > 0.0f ? p.state->velocity : nullptr,
          p.size,         s.lr,       s.momentum,
          s.weight_decay, s.nesterov, p.column_stats};
      return k.sgd_update(args, commit, n_threads);
    }
    case OptimizerKind::adam: {
      AdamArgs args{p.value,
                    p.grad,
                    p.state->first_moment,
                    p.state->second_moment,
                    p.size,
                    s.lr,
                    s.beta1,
                    s.beta2,
                    s.eps,
                    s.weight_decay,
                    s.update_number,
                    p.column_stats};
      if (p.state->cohort && s.cohort_start) {
        args.cohort = p.state->cohort;
        args.cohort_start = s.cohort_start;
        args.n_cohorts = s.n_cohorts;
      }
      return k.adam_update(args, commit, n_threads);
    }
  }
  return false;
}

}  // namespace rs
