// Death tracking: for every tracked hidden unit, the last step in which it
// fired and the update made right after it (UnitBuffers::last_firing). If the
// unit never fires again, that update is the one that killed it.
//
// The training step calls the hooks in this order at every step:
//   before_forward, after_forward, then before_update for every layer, the
//   committed updates, and after_update for every layer (each hook reads and
//   keeps only its own layer's state); flush when the caller wants every row current.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel_set.hpp"
#include "train/unit_buffers.hpp"

namespace rs {

struct TrackedLayerView {
  std::int64_t units;
  const float* bias;  // the layer's bias (read before and after each update)
  const std::int64_t* firing_counts;
  double* last_firing;  // null: the layer is not tracked
};

class DeathTracker {
 public:
  explicit DeathTracker(std::vector<TrackedLayerView> layers);

  bool active() const { return active_; }
  // Firing counts before this step's forward pass.
  void before_forward();
  // Which units fired in this step; writes the rows of units that stopped.
  void after_forward();
  // Before layer i's committed update: keeps its bias; returns the buffers for
  // the weight update's column statistics (null when the layer is not tracked).
  const ColumnUpdateStats* before_update(std::size_t i);
  // After layer i's committed update of step `step` at learning rate `lr`.
  void after_update(std::size_t i, std::int64_t step, float lr);
  // Writes the rows of the units that fired in the latest step and the layer
  // medians of every row written so far.
  void flush();

 private:
  // One unit's update: ||dw_j||, db_j, ||dw_j|| / ||w_j(before)||.
  struct UnitUpdate {
    float norm, bias, relative;
  };
  // The latest tracked step of a layer: which units fired, and the raw
  // statistics of the update that followed. bias_before holds the biases before
  // that update; the current biases are those after it until the next update,
  // and rows are only written before it (in the forward pass, or at a flush).
  struct PendingFiring {
    bool valid = false;
    std::int64_t step = 0;
    float lr = 0.0f;
    std::vector<float> delta_squared, old_squared, bias_before;
    std::vector<char> fired;
    UnitUpdate unit(std::size_t j, const float* bias) const;
  };
  // Per-unit statistics of one step (|bias update| for the bias), kept while
  // some last_firing row of that step still lacks its layer medians.
  struct Snapshot {
    std::vector<float> update, bias_update, relative;
    int references = 0;
    bool has_medians = false;
    float medians[3] = {0.0f, 0.0f, 0.0f};
  };
  struct Snapshots {
    std::vector<Snapshot> slots;
    std::vector<int> free;          // slots no row points at
    std::vector<int> row_snapshot;  // per unit: the slot its row points at, or -1
    int take(const PendingFiring& pending, const float* bias);
    void point(std::size_t unit, int id);
  };
  // Everything death tracking keeps for one layer.
  struct Layer {
    TrackedLayerView view;
    std::vector<std::int64_t> counts_before;
    std::vector<char> fired_now;
    // The update being committed: bias before it, per-column statistics.
    std::vector<float> bias_before, delta_squared, old_squared;
    ColumnUpdateStats stats{0, nullptr, nullptr};
    PendingFiring pending;
    Snapshots snapshots;
  };

  void write_rows(Layer& layer, bool only_stopped);
  void resolve_medians(Layer& layer);

  std::vector<Layer> layers_;
  bool active_ = false;
};

}  // namespace rs
