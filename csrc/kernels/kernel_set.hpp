// The table of layer kernels that one instruction-set target provides (the
// kernels of the experiments have a table of their own: experiment_kernel_set.hpp).
//
// Kernels know nothing of Python: plain pointers, sizes, row-major storage.
// Every pointer argument points at C-contiguous float32 (or int64) data whose
// size the caller has already checked; kernels never throw.
#pragma once

#include <cstdint>

#include "kernels/gemm_tuning.hpp"

namespace rs {

enum class Activation : int { identity = 0, relu = 1, leaky_relu = 2 };

// C (m x n, row stride ldc) = op(A) (m x k) @ op(B) (k x n).
// A is addressed as a[i * a_row_stride + p * a_col_stride], B likewise, so a
// transposed operand is just a swap of strides: no transpose is materialised.
struct GemmArgs {
  std::int64_t m, n, k;
  const float* a;
  std::int64_t a_row_stride, a_col_stride;
  const float* b;
  std::int64_t b_row_stride, b_col_stride;
  float* c;
  std::int64_t ldc;
};

// Fused dense forward: pre = x @ weight + bias, out = act(pre), and, when the
// pointers are non-null, firing_counts[j] += #{rows with pre > 0},
// max_pre[j] = max(max_pre[j], max over rows of pre) and
// nonfinite_counts[j] += #{rows with pre NaN or +-Inf}. out may equal pre.
struct DenseForwardArgs {
  std::int64_t n_rows, fan_in, fan_out;
  const float* x;       // (n_rows, fan_in)
  const float* weight;  // (fan_in, fan_out)
  const float* bias;    // (fan_out,)
  float* pre;           // (n_rows, fan_out)
  float* out;           // (n_rows, fan_out)
  Activation activation;
  float negative_slope;
  std::int64_t* firing_counts;               // (fan_out,) or null
  float* max_pre;                            // (fan_out,) or null
  std::int64_t* nonfinite_counts = nullptr;  // (fan_out,) or null
};

// Dense backward: grad_pre = grad_out * act'(pre); grad_weight = x.T @ grad_pre;
// grad_bias = grad_pre.sum(0); grad_x = grad_pre @ weight.T unless null.
// grad_pre may equal grad_out (computed in place).
struct DenseBackwardArgs {
  std::int64_t n_rows, fan_in, fan_out;
  const float* x;
  const float* weight;
  const float* pre;
  const float* grad_out;
  float* grad_pre;
  float* grad_weight;
  float* grad_bias;
  float* grad_x;  // (n_rows, fan_in) or null (first layer)
  Activation activation;
  float negative_slope;
};

// Per-column statistics of a committed update of a (size / n_columns, n_columns)
// row-major parameter: sum over rows of (new - old)^2 and of old^2, written
// (not accumulated) into the two arrays. Used to size each unit's update.
struct ColumnUpdateStats {
  std::int64_t n_columns;
  float* delta_squared;  // (n_columns,)
  float* old_squared;    // (n_columns,)
};

struct SgdArgs {
  float* param;
  const float* grad;
  float* velocity;  // null when momentum == 0
  std::int64_t size;
  float lr, momentum, weight_decay;
  bool nesterov;
  const ColumnUpdateStats* column_stats = nullptr;  // honoured when committing
};

struct AdamArgs {
  float* param;
  const float* grad;
  float* first_moment;
  float* second_moment;
  std::int64_t size;
  float lr, beta1, beta2, eps, weight_decay;
  std::int64_t step;                                // 1-based step count, for bias correction
  const ColumnUpdateStats* column_stats = nullptr;  // honoured when committing
  // Optional per-element moment ages, for moments reset part-way (ReDo): element
  // i belongs to cohort cohort[i], whose moments restarted after update number
  // cohort_start[cohort[i]] (0: never reset), so its bias correction uses
  // t = step - cohort_start[cohort[i]]. Null: every element uses `step`.
  const std::int32_t* cohort = nullptr;
  const std::int64_t* cohort_start = nullptr;
  std::int64_t n_cohorts = 0;
};

struct KernelSet {
  const char* name;
  void (*gemm)(const GemmArgs&, int n_threads);
  void (*dense_forward)(const DenseForwardArgs&, int n_threads);
  // The forward of a stack: layers[0] first, each as dense_forward, where
  // layers[i].x is layers[i - 1].out. The same results as those calls in turn;
  // on two threads the batch's rows may be split between them (dense.inl).
  void (*dense_forward_layers)(const DenseForwardArgs* layers, std::int64_t count, int n_threads);
  void (*dense_backward)(const DenseBackwardArgs&, int n_threads);
  // The backward of a stack: layers[count - 1] first, down to layers[0], each
  // as dense_backward, where layers[i].grad_out is layers[i + 1].grad_x
  // (written by the call before it). The same results as those calls in turn;
  // on two threads the layers are pipelined when their arrays allow (dense.inl).
  void (*dense_backward_layers)(const DenseBackwardArgs* layers, std::int64_t count, int n_threads);
  // Mean softmax cross-entropy of logits (n, c) against labels in [0, c);
  // writes d loss / d logits into grad. Returns the loss.
  double (*softmax_cross_entropy)(const float* logits, const std::int64_t* labels, std::int64_t n,
                                  std::int64_t c, float* grad, int n_threads);
  // Mean over all n*c elements of (out - target)^2; writes its gradient.
  double (*mean_squared_error)(const float* out, const float* target, std::int64_t n,
                               std::int64_t c, float* grad, int n_threads);
  // Optimizer updates. With commit == false nothing is written and the return
  // value says whether every updated value would be finite; with commit == true
  // the update is applied in place and the same flag is returned.
  bool (*sgd_update)(const SgdArgs&, bool commit, int n_threads);
  bool (*adam_update)(const AdamArgs&, bool commit, int n_threads);
  // The threads those two split an array of `size` elements among, of n_threads.
  int (*update_threads)(std::int64_t size, int n_threads);
  // Makes every later GEMM of this target (including those inside the dense
  // kernels) use `tuning`, which must outlive its use; nullptr restores the
  // target's defaults. A call already running keeps what it read at its start.
  void (*use_gemm_tuning)(const GemmTuning* tuning);
  // The tuning in use.
  const GemmTuning& (*gemm_tuning)();
};

const KernelSet* kernel_set_portable();
#if defined(RELUSCOPE_X86)
const KernelSet* kernel_set_avx2();
const KernelSet* kernel_set_avx512();
#endif

}  // namespace rs
