#include "train/death_tracker.hpp"

#include <algorithm>
#include <cmath>

namespace rs {

// Rather than writing every firing unit's row at every step, the statistics of
// the latest step are kept pending, and a unit's row is written when it stops
// firing (fired in the pending step, silent in this one), or at a flush. The
// layer medians of a step are computed later still: a row points at a snapshot
// of its step's per-unit statistics, and the medians are computed at the
// flush, once per snapshot that some row still points at. Three medians per
// layer at every step with a stopped unit cost 5% of a deep-narrow step; a
// snapshot is a copy of three short arrays.

namespace {

float median_of(std::vector<float>& values) {
  if (values.empty()) return 0.0f;
  auto middle = values.begin() + values.size() / 2;
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

}  // namespace

DeathTracker::DeathTracker(std::vector<TrackedLayerView> views) {
  for (const TrackedLayerView& view : views) {
    Layer layer;
    layer.view = view;
    active_ = active_ || view.last_firing != nullptr;
    layers_.push_back(std::move(layer));
  }
}

void DeathTracker::before_forward() {
  for (Layer& layer : layers_)
    if (layer.view.last_firing)
      layer.counts_before.assign(layer.view.firing_counts,
                                 layer.view.firing_counts + layer.view.units);
}

void DeathTracker::after_forward() {
  for (Layer& layer : layers_) {
    if (!layer.view.last_firing) continue;
    const std::size_t units = static_cast<std::size_t>(layer.view.units);
    const PendingFiring& pending = layer.pending;
    layer.fired_now.resize(units);
    bool any_stopped = false;
    for (std::size_t j = 0; j < units; ++j) {
      layer.fired_now[j] = layer.view.firing_counts[j] != layer.counts_before[j];
      any_stopped = any_stopped || (pending.valid && pending.fired[j] && !layer.fired_now[j]);
    }
    if (any_stopped) write_rows(layer, /*only_stopped=*/true);
  }
}

const ColumnUpdateStats* DeathTracker::before_update(std::size_t i) {
  Layer& layer = layers_[i];
  if (!layer.view.last_firing) return nullptr;
  const std::size_t units = static_cast<std::size_t>(layer.view.units);
  layer.bias_before.assign(layer.view.bias, layer.view.bias + units);
  layer.delta_squared.resize(units);
  layer.old_squared.resize(units);
  layer.stats = {layer.view.units, layer.delta_squared.data(), layer.old_squared.data()};
  return &layer.stats;
}

void DeathTracker::after_update(std::size_t i, std::int64_t step, float lr) {
  Layer& layer = layers_[i];
  if (!layer.view.last_firing) return;
  // Swaps, no arithmetic: the per-unit values are derived only for the rows
  // written (and the snapshots taken), which is rare.
  PendingFiring& pending = layer.pending;
  std::swap(pending.delta_squared, layer.delta_squared);
  std::swap(pending.old_squared, layer.old_squared);
  std::swap(pending.bias_before, layer.bias_before);
  std::swap(pending.fired, layer.fired_now);
  pending.step = step;
  pending.lr = lr;
  pending.valid = true;
}

void DeathTracker::flush() {
  for (Layer& layer : layers_) {
    if (!layer.view.last_firing) continue;
    if (layer.pending.valid) write_rows(layer, /*only_stopped=*/false);
    resolve_medians(layer);
  }
}

void DeathTracker::write_rows(Layer& layer, bool only_stopped) {
  const PendingFiring& pending = layer.pending;
  Snapshots& store = layer.snapshots;
  const float* bias = layer.view.bias;
  const std::size_t units = static_cast<std::size_t>(layer.view.units);
  store.row_snapshot.resize(units, -1);
  int id = -1;
  for (std::size_t j = 0; j < units; ++j) {
    if (!pending.fired[j] || (only_stopped && layer.fired_now[j])) continue;
    if (id < 0) id = store.take(pending, bias);
    store.point(j, id);
    const UnitUpdate unit = pending.unit(j, bias);
    double* row = layer.view.last_firing + j * last_firing::kFields;
    row[last_firing::step] = static_cast<double>(pending.step);
    row[last_firing::lr] = pending.lr;
    row[last_firing::update_norm] = unit.norm;
    row[last_firing::bias_update] = unit.bias;
    row[last_firing::relative_update] = unit.relative;
    row[last_firing::layer_median_update_norm] = NAN;  // filled in by resolve_medians
    row[last_firing::layer_median_bias_update] = NAN;
    row[last_firing::layer_median_relative_update] = NAN;
  }
}

void DeathTracker::resolve_medians(Layer& layer) {
  Snapshots& store = layer.snapshots;
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
    double* row = layer.view.last_firing + j * last_firing::kFields;
    row[last_firing::layer_median_update_norm] = snapshot.medians[0];
    row[last_firing::layer_median_bias_update] = snapshot.medians[1];
    row[last_firing::layer_median_relative_update] = snapshot.medians[2];
    store.point(j, -1);
  }
}

DeathTracker::UnitUpdate DeathTracker::PendingFiring::unit(std::size_t j, const float* bias) const {
  const float norm = std::sqrt(delta_squared[j]);
  const float old = std::sqrt(old_squared[j]);
  return {norm, bias[j] - bias_before[j],
          old > 0.0f ? norm / old : (norm > 0.0f ? INFINITY : 0.0f)};
}

int DeathTracker::Snapshots::take(const PendingFiring& pending, const float* bias) {
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

void DeathTracker::Snapshots::point(std::size_t unit, int id) {
  const int old = row_snapshot[unit];
  if (old == id) return;
  if (old >= 0 && --slots[static_cast<std::size_t>(old)].references == 0) free.push_back(old);
  if (id >= 0) ++slots[static_cast<std::size_t>(id)].references;
  row_snapshot[unit] = id;
}

}  // namespace rs
