#include "train/train_step.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <utility>

#include "runtime/dispatch.hpp"
#include "runtime/memory_spans.hpp"
#include "runtime/worker_pool.hpp"

namespace rs {

namespace {

// True when every value is finite; x - x is 0 exactly for finite x.
bool all_finite(const float* values, std::int64_t count) {
  int bad = 0;
  for (std::int64_t i = 0; i < count; ++i) bad |= !((values[i] - values[i]) == 0.0f);
  return bad == 0;
}

}  // namespace

namespace {

std::vector<TrackedLayerView> tracked_views(const std::vector<TrainLayer>& layers) {
  std::vector<TrackedLayerView> views;
  for (const TrainLayer& layer : layers)
    views.push_back({layer.fan_out, layer.bias, layer.units.firing_counts,
                     layer.units.firing_counts ? layer.units.last_firing : nullptr});
  return views;
}

// Whether no two of the layers' parameters and optimizer buffers share memory.
// A model may tie two layers to one array; updated in turn, the array takes
// both updates one after the other, and side by side they would race.
bool parameters_apart(const std::vector<TrainLayer>& layers) {
  std::vector<MemorySpan> spans;
  auto add = [&spans](const void* data, std::int64_t count, std::size_t element_size) {
    if (data != nullptr && count > 0)
      spans.push_back(memory_span(data, static_cast<std::size_t>(count) * element_size));
  };
  for (const TrainLayer& layer : layers) {
    const std::int64_t sizes[2] = {layer.fan_in * layer.fan_out, layer.fan_out};
    const float* values[2] = {layer.weight, layer.bias};
    const ParamState* states[2] = {&layer.weight_state, &layer.bias_state};
    for (int i = 0; i < 2; ++i) {
      add(values[i], sizes[i], sizeof(float));
      add(states[i]->velocity, sizes[i], sizeof(float));
      add(states[i]->first_moment, sizes[i], sizeof(float));
      add(states[i]->second_moment, sizes[i], sizeof(float));
      add(states[i]->cohort, sizes[i], sizeof(std::int32_t));
    }
  }
  return !any_two_overlap(std::move(spans));
}

}  // namespace

TrainStep::TrainStep(std::vector<TrainLayer> layers, LossKind loss)
    : layers_(std::move(layers)),
      loss_(loss),
      deaths_(tracked_views(layers_)),
      n_outputs_(layers_.back().fan_out),
      parameters_apart_(parameters_apart(layers_)) {
  for (const TrainLayer& layer : layers_) {
    grad_weight_.emplace_back(static_cast<std::size_t>(layer.fan_in * layer.fan_out));
    grad_bias_.emplace_back(static_cast<std::size_t>(layer.fan_out));
  }
}

void TrainStep::release() {
  // swap with empty vectors: clear() alone keeps the memory.
  std::vector<std::vector<float>>().swap(pre_);
  std::vector<std::vector<float>>().swap(out_);
  std::vector<std::vector<float>>().swap(grad_pre_);
  std::vector<float>().swap(x_rows_);
  std::vector<float>().swap(target_rows_);
  std::vector<std::int64_t>().swap(label_rows_);
  std::vector<float>().swap(grad_a_);
  std::vector<float>().swap(grad_b_);
  capacity_ = 0;
}

void TrainStep::reserve(std::int64_t n) {
  if (n <= capacity_) return;
  // The old workspaces go first, and the capacity says 0 until every
  // allocation succeeded: after a MemoryError for a huge batch the next,
  // smaller step allocates afresh instead of using half-built workspaces.
  release();
  const std::size_t rows = static_cast<std::size_t>(n);
  std::int64_t widest = layers_.front().fan_in;
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

const std::vector<ParamUpdate>& TrainStep::parameter_updates(bool commit) {
  // Death tracking's hooks stay on this thread, before and after all of the
  // updates: each reads and keeps only its own layer's bias and statistics.
  updates_.clear();
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const TrainLayer& layer = layers_[i];
    const ColumnUpdateStats* stats = commit ? deaths_.before_update(i) : nullptr;
    updates_.push_back({layer.weight, grad_weight_[i].data(), layer.fan_in * layer.fan_out,
                        &layer.weight_state, stats});
    updates_.push_back(
        {layer.bias, grad_bias_[i].data(), layer.fan_out, &layer.bias_state, nullptr});
  }
  return updates_;
}

namespace {

// Each thread of a shared-out update gets at least this many elements: below
// it the handing out and the waiting cost more than the thread saves.
constexpr std::int64_t kMinUpdateElementsPerThread = 16384;
// Each thread's part holds at least this many times the largest parameter's
// elements, so that parts of whole parameters come out about equal.
constexpr std::int64_t kLargestParametersPerThread = 4;

// Elements of all the parameters together, and of the largest.
struct ParameterSizes {
  std::int64_t total = 0, largest = 0;
};

// How many threads update whole parameters side by side (1: none, each
// parameter is split among the threads by the optimizer's kernel instead).
//
// The optimizer's kernels split an array among threads only when it is large
// (about half a million elements): a model of many small parameters was
// updated on the calling thread alone, twice (check, then commit), while the
// other threads waited: 0.15-0.2 ms of a 3 ms deep-narrow step (256, 100-128x10-10)
// on 2 threads, Zen 3. A parameter the kernels would split keeps that split.
int side_by_side_update_threads(const KernelSet& k, const ParameterSizes& sizes, int n_threads) {
  const std::int64_t total = sizes.total, largest = sizes.largest;
  if (k.update_threads(largest, n_threads) > 1) return 1;
  const std::int64_t threads =
      std::min({std::int64_t{n_threads}, total / kMinUpdateElementsPerThread,
                total / std::max<std::int64_t>(1, largest * kLargestParametersPerThread)});
  return threads < 2 ? 1 : static_cast<int>(threads);
}

}  // namespace

bool TrainStep::update_side_by_side(const OptimizerSettings& opt,
                                    const std::vector<ParamUpdate>& params, std::int64_t total,
                                    bool commit, int threads) {
  const KernelSet& k = kernels();
  // Share t takes the parameters that start in [t, t + 1) * total / threads:
  // runs of consecutive parameters of about equal element counts.
  std::vector<std::size_t> first(static_cast<std::size_t>(threads) + 1, params.size());
  std::size_t next = 0;
  std::int64_t start = 0;  // elements before parameter `next`
  for (int t = 0; t < threads; ++t) {
    const std::int64_t bound = total * t / threads;
    for (; next < params.size() && start < bound; ++next) start += params[next].size;
    first[static_cast<std::size_t>(t)] = next;
  }
  std::vector<char> finite(static_cast<std::size_t>(threads), 1);
  // A share may not let an exception out (worker_pool.hpp); the kernels'
  // scratch memory may throw bad_alloc on a worker's first use.
  std::vector<std::exception_ptr> failures(static_cast<std::size_t>(threads));
  run_shares(threads, [&](int share) {
    const std::size_t t = static_cast<std::size_t>(share);
    try {
      for (std::size_t i = first[t]; i < first[t + 1]; ++i)
        finite[t] = update_parameter(k, opt, params[i], commit, 1) && finite[t];
    } catch (...) {
      failures[t] = std::current_exception();
    }
  });
  for (const std::exception_ptr& failure : failures)
    if (failure) std::rethrow_exception(failure);
  return std::all_of(finite.begin(), finite.end(), [](char f) { return f != 0; });
}

bool TrainStep::update(const StepSettings& settings, bool commit, int n_threads) {
  const KernelSet& k = kernels();
  const OptimizerSettings& opt = settings.optimizer;
  const std::vector<ParamUpdate>& params = parameter_updates(commit);
  ParameterSizes sizes;
  for (const ParamUpdate& p : params) {
    sizes.total += p.size;
    sizes.largest = std::max(sizes.largest, p.size);
  }
  bool finite = true;
  const int threads = parameters_apart_ ? side_by_side_update_threads(k, sizes, n_threads) : 1;
  if (threads > 1) {
    finite = update_side_by_side(opt, params, sizes.total, commit, threads);
  } else {
    // The commit takes the parameters last first when they lie apart: the
    // check has just read them all in layer order, so the last ones are those
    // most likely still in the cache. The medium net's check reads 35 MB
    // (weight, gradient, velocity), more than a 32 MB L3; in layer order each
    // parameter may have been evicted by those after it. Zen 3, medium step on
    // 2 threads: the commit took 1.35 -> 1.15 ms. Apart, the order changes no
    // value; parameters that share memory take their updates in layer order.
    const bool last_first = commit && parameters_apart_;
    for (std::size_t n = 0; n < params.size(); ++n) {
      const ParamUpdate& p = params[last_first ? params.size() - 1 - n : n];
      finite = update_parameter(k, opt, p, commit, n_threads) && finite;
      if (!commit && !finite) return false;
    }
  }
  if (commit)
    for (std::size_t i = 0; i < layers_.size(); ++i)
      deaths_.after_update(i, settings.step_number, opt.lr);
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
  for (std::int64_t j = 0; j < fan_out; ++j) layer.units.gradient_magnitude[j] += sums[j];
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

const float* TrainStep::forward(const float* x, std::int64_t n, int n_threads) {
  // Hidden layers count firings in the epilogue when their counts are tracked.
  // The kernel runs the whole stack (its rows split between two threads when
  // that pays, dense.inl), so the layers' arguments are listed first.
  const float* input = x;
  forward_layers_.resize(layers_.size());
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const TrainLayer& layer = layers_[i];
    float* pre = pre_[i].data();
    float* out = layer.activation == Activation::identity ? pre : out_[i].data();
    forward_layers_[i] = DenseForwardArgs{n,
                                          layer.fan_in,
                                          layer.fan_out,
                                          input,
                                          layer.weight,
                                          layer.bias,
                                          pre,
                                          out,
                                          layer.activation,
                                          layer.negative_slope,
                                          layer.units.firing_counts,
                                          nullptr};
    input = out;
  }
  kernels().dense_forward_layers(forward_layers_.data(),
                                 static_cast<std::int64_t>(forward_layers_.size()), n_threads);
  return input;
}

void TrainStep::backward(const float* x, std::int64_t n, int n_threads) {
  // Last layer first; grad ping-pongs between two buffers. grad_a_ holds
  // d loss / d outputs. The kernel runs the whole stack (pipelined on two
  // threads, dense.inl), so the layers' arguments are listed first.
  float* grad = grad_a_.data();
  float* spare = grad_b_.data();
  backward_layers_.resize(layers_.size());
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const TrainLayer& layer = layers_[i];
    const float* layer_input =
        i == 0 ? x
               : (layers_[i - 1].activation == Activation::identity ? pre_[i - 1].data()
                                                                    : out_[i - 1].data());
    backward_layers_[i] = DenseBackwardArgs{n,
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
    std::swap(grad, spare);
  }
  kernels().dense_backward_layers(backward_layers_.data(),
                                  static_cast<std::int64_t>(backward_layers_.size()), n_threads);
  for (std::size_t i = 0; i < layers_.size(); ++i)
    if (layers_[i].units.gradient_magnitude) accumulate_gradient_magnitude(i);
}

StepResult TrainStep::run(const Batch& batch, const StepSettings& settings, int n_threads) {
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
    if (!all_finite(x, n * layers_.front().fan_in)) return {0.0, 0, StepStatus::x_not_finite, NAN};
    if (loss_ == LossKind::mse && !all_finite(targets, n * n_outputs_))
      return {0.0, 0, StepStatus::targets_not_finite, NAN};
  }

  // Death tracking needs to know which units fire in this step.
  if (deaths_.active()) deaths_.before_forward();
  const float* outputs = forward(x, n, n_threads);
  if (deaths_.active()) deaths_.after_forward();

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
  backward(x, n, n_threads);

  // Clipping sees the gradients after gradient tracking: gradient_magnitude
  // stays the chain rule's measurement, not the clipped step.
  const float clip_norm = settings.optimizer.clip_norm;
  if (clip_norm > 0.0f) result.grad_norm = clip_gradients(clip_norm);

  // All or nothing: check every new value, then write.
  if (!update(settings, false, n_threads)) {
    result.status = StepStatus::update_not_finite;
    return result;
  }
  update(settings, true, n_threads);
  return result;
}

}  // namespace rs
