#include "train/train_step.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/dispatch.hpp"

namespace rs {

namespace {

// True when every value is finite; x - x is 0 exactly for finite x.
bool all_finite(const float* values, std::int64_t count) {
  int bad = 0;
  for (std::int64_t i = 0; i < count; ++i) bad |= !((values[i] - values[i]) == 0.0f);
  return bad == 0;
}

}  // namespace

TrainStep::TrainStep(std::vector<TrainLayer> layers, LossKind loss)
    : layers_(std::move(layers)), loss_(loss), n_outputs_(layers_.back().fan_out) {
  for (const TrainLayer& layer : layers_) {
    grad_weight_.emplace_back(static_cast<std::size_t>(layer.fan_in * layer.fan_out));
    grad_bias_.emplace_back(static_cast<std::size_t>(layer.fan_out));
  }
}

void TrainStep::reserve(std::int64_t n) {
  if (n <= capacity_) return;
  const std::size_t rows = static_cast<std::size_t>(n);
  std::int64_t widest = layers_.front().fan_in;
  pre_.clear();
  out_.clear();
  grad_pre_.clear();
  for (const TrainLayer& layer : layers_) {
    const std::size_t size = rows * static_cast<std::size_t>(layer.fan_out);
    pre_.emplace_back(size);
    // The linear output layer's output is its pre-activation.
    out_.emplace_back(layer.activation == Activation::identity ? 0 : size);
    grad_pre_.emplace_back(size);
    widest = std::max(widest, layer.fan_out);
  }
  x_rows_.resize(rows * static_cast<std::size_t>(layers_.front().fan_in));
  target_rows_.resize(loss_ == LossKind::mse ? rows * n_outputs_ : 0);
  label_rows_.resize(loss_ == LossKind::cross_entropy ? rows : 0);
  grad_a_.resize(rows * static_cast<std::size_t>(widest));
  grad_b_.resize(rows * static_cast<std::size_t>(widest));
  capacity_ = n;
}

void TrainStep::gather(const Batch& batch) {
  const std::int64_t fan_in = layers_.front().fan_in;
  for (std::int64_t i = 0; i < batch.n; ++i) {
    const std::int64_t r = batch.rows[i];
    std::memcpy(x_rows_.data() + i * fan_in, batch.x + r * fan_in, sizeof(float) * fan_in);
    if (loss_ == LossKind::cross_entropy) {
      label_rows_[i] = batch.labels[r];
    } else {
      std::memcpy(target_rows_.data() + i * n_outputs_, batch.targets + r * n_outputs_,
                  sizeof(float) * n_outputs_);
    }
  }
}

bool TrainStep::update(const OptimizerSettings& opt, bool commit, bool track_deaths,
                       int n_threads) {
  const KernelSet& k = kernels();
  bool finite = true;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const TrainLayer& layer = layers_[i];
    // Death tracking: the bias before, and per-unit statistics of the weight update.
    const bool tracked = commit && track_deaths && layer.last_firing && layer.firing_counts;
    ColumnUpdateStats stats{layer.fan_out, nullptr, nullptr};
    if (tracked) {
      const std::size_t units = static_cast<std::size_t>(layer.fan_out);
      bias_before_.resize(layers_.size());
      delta_squared_.resize(layers_.size());
      old_squared_.resize(layers_.size());
      bias_before_[i].assign(layer.bias, layer.bias + units);
      delta_squared_[i].resize(units);
      old_squared_[i].resize(units);
      stats.delta_squared = delta_squared_[i].data();
      stats.old_squared = old_squared_[i].data();
    }
    struct Param {
      float* value;
      const float* grad;
      std::int64_t size;
      float* state1;
      float* state2;
      const std::int32_t* cohort;
      const ColumnUpdateStats* stats;
    };
    const Param params[2] = {
        {layer.weight, grad_weight_[i].data(), layer.fan_in * layer.fan_out, layer.weight_state1,
         layer.weight_state2, layer.weight_cohort, tracked ? &stats : nullptr},
        {layer.bias, grad_bias_[i].data(), layer.fan_out, layer.bias_state1, layer.bias_state2,
         layer.bias_cohort, nullptr},
    };
    for (const Param& p : params) {
      if (opt.kind == OptimizerKind::sgd) {
        const SgdArgs args{p.value,  p.grad,          opt.momentum > 0.0f ? p.state1 : nullptr,
                           p.size,   opt.lr,          opt.momentum,
                           opt.weight_decay, opt.nesterov, p.stats};
        finite = k.sgd_update(args, commit, n_threads) && finite;
      } else {
        AdamArgs args{p.value,   p.grad,    p.state1,         p.state2,
                      p.size,    opt.lr,    opt.beta1,        opt.beta2,
                      opt.eps,   opt.weight_decay, opt.adam_step, p.stats};
        if (p.cohort && opt.cohort_start) {
          args.cohort = p.cohort;
          args.cohort_start = opt.cohort_start;
          args.n_cohorts = opt.n_cohorts;
        }
        finite = k.adam_update(args, commit, n_threads) && finite;
      }
      if (!commit && !finite) return false;
    }
    if (tracked) record_last_firing(i, opt);
  }
  return finite;
}

void TrainStep::accumulate_gradient_magnitude(std::size_t i) {
  const TrainLayer& layer = layers_[i];
  const std::int64_t fan_out = layer.fan_out;
  column_sums_.resize(static_cast<std::size_t>(fan_out));
  float* sums = column_sums_.data();
  const float* grad_bias = grad_bias_[i].data();
  for (std::int64_t j = 0; j < fan_out; ++j) sums[j] = std::fabs(grad_bias[j]);
  const float* grad_weight = grad_weight_[i].data();
  for (std::int64_t k = 0; k < layer.fan_in; ++k)
    for (std::int64_t j = 0; j < fan_out; ++j) sums[j] += std::fabs(grad_weight[k * fan_out + j]);
  for (std::int64_t j = 0; j < fan_out; ++j) layer.gradient_magnitude[j] += sums[j];
}

double TrainStep::clip_gradients(float clip_norm) {
  double sum = 0.0;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    for (const std::vector<float>* grads : {&grad_weight_[i], &grad_bias_[i]}) {
      for (float g : *grads) sum += static_cast<double>(g) * g;
    }
  }
  const double norm = std::sqrt(sum);
  if (norm > clip_norm) {
    const float scale = static_cast<float>(clip_norm / (norm + 1e-6));
    for (std::size_t i = 0; i < layers_.size(); ++i)
      for (std::vector<float>* grads : {&grad_weight_[i], &grad_bias_[i]})
        for (float& g : *grads) g *= scale;
  }
  return norm;
}

namespace {

float median_of(std::vector<float>& values) {
  if (values.empty()) return 0.0f;
  auto middle = values.begin() + values.size() / 2;
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

}  // namespace

// Death tracking. A unit's killing update is the one made right after the last
// step in which it fired. Rather than writing every firing unit's row at every
// step, the statistics of the latest step are kept pending, and a unit's row is
// written when it stops firing (fired in the pending step, silent in this one),
// or at a flush. The layer medians of a step are computed later still: a row
// points at a snapshot of its step's per-unit statistics, and the medians are
// computed at the flush, once per snapshot that some row still points at.
// Three medians per layer at every step with a stopped unit cost 5% of a
// deep-narrow step; a snapshot is a copy of three short arrays.

void TrainStep::note_firing(std::size_t i) {
  const TrainLayer& layer = layers_[i];
  PendingFiring& pending = pending_[i];
  const std::size_t units = static_cast<std::size_t>(layer.fan_out);
  std::vector<char>& fired_now = fired_now_[i];
  fired_now.resize(units);
  bool any_stopped = false;
  for (std::size_t j = 0; j < units; ++j) {
    fired_now[j] = layer.firing_counts[j] != counts_before_[i][j];
    any_stopped = any_stopped || (pending.valid && pending.fired[j] && !fired_now[j]);
  }
  if (any_stopped) write_rows(i, /*only_stopped=*/true);
}

void TrainStep::write_rows(std::size_t i, bool only_stopped) {
  const TrainLayer& layer = layers_[i];
  PendingFiring& pending = pending_[i];
  LayerSnapshots& store = snapshots_[i];
  const std::size_t units = static_cast<std::size_t>(layer.fan_out);
  store.row_snapshot.resize(units, -1);
  int id = -1;
  for (std::size_t j = 0; j < units; ++j) {
    if (!pending.fired[j] || (only_stopped && fired_now_[i][j])) continue;
    if (id < 0) id = store.take(pending, layer.bias);
    store.point(j, id);
    const UnitUpdate unit = pending.unit(j, layer.bias);
    double* row = layer.last_firing + j * kLastFiringFields;
    row[kStep] = static_cast<double>(pending.step);
    row[kLearningRate] = pending.lr;
    row[kUpdateNorm] = unit.norm;
    row[kBiasUpdate] = unit.bias;
    row[kRelativeUpdate] = unit.relative;
    row[kLayerMedianUpdateNorm] = NAN;  // filled in by resolve_medians
    row[kLayerMedianBiasUpdate] = NAN;
    row[kLayerMedianRelativeUpdate] = NAN;
  }
}

void TrainStep::resolve_medians(std::size_t i) {
  const TrainLayer& layer = layers_[i];
  LayerSnapshots& store = snapshots_[i];
  for (std::size_t j = 0; j < store.row_snapshot.size(); ++j) {
    const int id = store.row_snapshot[j];
    if (id < 0) continue;
    Snapshot& snapshot = store.slots[static_cast<std::size_t>(id)];
    if (!snapshot.has_medians) {
      snapshot.medians[0] = median_of(snapshot.update);
      snapshot.medians[1] = median_of(snapshot.bias_update);
      snapshot.medians[2] = median_of(snapshot.relative);
      snapshot.has_medians = true;
    }
    double* row = layer.last_firing + j * kLastFiringFields;
    row[kLayerMedianUpdateNorm] = snapshot.medians[0];
    row[kLayerMedianBiasUpdate] = snapshot.medians[1];
    row[kLayerMedianRelativeUpdate] = snapshot.medians[2];
    store.point(j, -1);
  }
}

TrainStep::UnitUpdate TrainStep::PendingFiring::unit(std::size_t j, const float* bias) const {
  const float norm = std::sqrt(delta_squared[j]);
  const float old = std::sqrt(old_squared[j]);
  return {norm, bias[j] - bias_before[j],
          old > 0.0f ? norm / old : (norm > 0.0f ? INFINITY : 0.0f)};
}

int TrainStep::LayerSnapshots::take(const PendingFiring& pending, const float* bias) {
  int id;
  if (!free.empty()) {
    id = free.back();
    free.pop_back();
  } else {
    id = static_cast<int>(slots.size());
    slots.emplace_back();
  }
  Snapshot& snapshot = slots[static_cast<std::size_t>(id)];
  const std::size_t units = pending.delta_squared.size();
  snapshot.update.resize(units);
  snapshot.bias_update.resize(units);
  snapshot.relative.resize(units);
  for (std::size_t j = 0; j < units; ++j) {
    const UnitUpdate unit = pending.unit(j, bias);
    snapshot.update[j] = unit.norm;
    snapshot.bias_update[j] = std::fabs(unit.bias);
    snapshot.relative[j] = unit.relative;
  }
  snapshot.references = 0;
  snapshot.has_medians = false;
  return id;
}

void TrainStep::LayerSnapshots::point(std::size_t unit, int id) {
  const int old = row_snapshot[unit];
  if (old == id) return;
  if (old >= 0 && --slots[static_cast<std::size_t>(old)].references == 0) free.push_back(old);
  if (id >= 0) ++slots[static_cast<std::size_t>(id)].references;
  row_snapshot[unit] = id;
}

void TrainStep::record_last_firing(std::size_t i, const OptimizerSettings& opt) {
  // Swaps, no arithmetic: the per-unit values are derived only for the rows
  // written (and the snapshots taken), which is rare.
  PendingFiring& pending = pending_[i];
  std::swap(pending.delta_squared, delta_squared_[i]);
  std::swap(pending.old_squared, old_squared_[i]);
  std::swap(pending.bias_before, bias_before_[i]);
  std::swap(pending.fired, fired_now_[i]);
  pending.step = opt.step_number;
  pending.lr = opt.lr;
  pending.valid = true;
}

void TrainStep::flush_last_firing() {
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].valid) write_rows(i, /*only_stopped=*/false);
    resolve_medians(i);
  }
}

StepResult TrainStep::run(const Batch& batch, const OptimizerSettings& opt, bool monitor,
                          bool track_gradients, bool track_deaths, int n_threads) {
  const KernelSet& k = kernels();
  const std::int64_t n = batch.n;
  reserve(n);
  const float* x = batch.x;
  const std::int64_t* labels = batch.labels;
  const float* targets = batch.targets;
  if (batch.rows) {
    gather(batch);
    x = x_rows_.data();
    labels = label_rows_.data();
    targets = target_rows_.data();
  }
  if (batch.check_values) {
    if (!all_finite(x, n * layers_.front().fan_in))
      return {0.0, 0, StepStatus::x_not_finite};
    if (loss_ == LossKind::mse && !all_finite(targets, n * n_outputs_))
      return {0.0, 0, StepStatus::targets_not_finite};
  }

  // Death tracking needs to know which units fire in this step.
  const bool deaths = monitor && track_deaths;
  if (deaths) {
    counts_before_.resize(layers_.size());
    for (std::size_t i = 0; i < layers_.size(); ++i)
      if (layers_[i].last_firing && layers_[i].firing_counts)
        counts_before_[i].assign(layers_[i].firing_counts,
                                 layers_[i].firing_counts + layers_[i].fan_out);
  }

  // Forward; hidden layers count firings in the epilogue when monitoring.
  const float* input = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const TrainLayer& layer = layers_[i];
    float* pre = pre_[i].data();
    float* out = layer.activation == Activation::identity ? pre : out_[i].data();
    const DenseForwardArgs args{n,   layer.fan_in, layer.fan_out,   input,
                                layer.weight, layer.bias, pre, out,
                                layer.activation, layer.negative_slope,
                                monitor ? layer.firing_counts : nullptr, nullptr};
    k.dense_forward(args, n_threads);
    input = out;
  }
  const float* outputs = input;
  if (deaths) {
    pending_.resize(layers_.size());
    snapshots_.resize(layers_.size());
    fired_now_.resize(layers_.size());
    for (std::size_t i = 0; i < layers_.size(); ++i)
      if (layers_[i].last_firing && layers_[i].firing_counts) note_firing(i);
  }

  StepResult result{0.0, 0, StepStatus::ok, NAN};
  float* grad = grad_a_.data();
  if (loss_ == LossKind::cross_entropy) {
    result.loss = k.softmax_cross_entropy(outputs, labels, n, n_outputs_, grad, n_threads);
    for (std::int64_t r = 0; r < n; ++r) {
      const float* row = outputs + r * n_outputs_;
      result.correct += (std::max_element(row, row + n_outputs_) - row) == labels[r];
    }
  } else {
    result.loss = k.mean_squared_error(outputs, targets, n, n_outputs_, grad, n_threads);
  }
  if (!std::isfinite(result.loss)) {
    result.status = StepStatus::loss_not_finite;
    return result;
  }

  // Backward, last layer first; grad ping-pongs between two buffers.
  float* spare = grad_b_.data();
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const TrainLayer& layer = layers_[i];
    const float* layer_input = i == 0 ? x : (layers_[i - 1].activation == Activation::identity
                                                 ? pre_[i - 1].data()
                                                 : out_[i - 1].data());
    const DenseBackwardArgs args{n,
                                 layer.fan_in,
                                 layer.fan_out,
                                 layer_input,
                                 layer.weight,
                                 pre_[i].data(),
                                 grad,
                                 grad_pre_[i].data(),
                                 grad_weight_[i].data(),
                                 grad_bias_[i].data(),
                                 i == 0 ? nullptr : spare,
                                 layer.activation,
                                 layer.negative_slope};
    k.dense_backward(args, n_threads);
    if (track_gradients && layer.gradient_magnitude) accumulate_gradient_magnitude(i);
    std::swap(grad, spare);
  }

  // Clipping sees the gradients after gradient tracking: gradient_magnitude
  // stays the chain rule's measurement, not the clipped step.
  if (opt.clip_norm > 0.0f) result.grad_norm = clip_gradients(opt.clip_norm);

  // All or nothing: check every new value, then write.
  if (!update(opt, false, false, n_threads)) {
    result.status = StepStatus::update_not_finite;
    return result;
  }
  update(opt, true, deaths, n_threads);
  return result;
}

}  // namespace rs
