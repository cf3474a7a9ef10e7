// Dense layer kernels: the fused forward (GEMM + bias + activation + firing
// statistics in the epilogue) and the backward.

// Epilogue of the dense forward, applied to each row of a finished tile:
// pre = value + bias, out = act(pre), and per-unit firing count and maximum of
// pre into this thread's partial arrays (combined after the GEMM in thread
// order; counts are integers and max is exact, so the order cannot matter).
template <Activation Act, bool Stats>
struct DenseEpilogue {
  const float* bias;
  float* out;
  i64 ldo;
  float slope;
  i64* count_partials;  // n_threads x n_units
  float* max_partials;  // n_threads x n_units
  i64 n_units;

  struct Local {
    i64* counts;
    float* maxima;
  };
  Local local(int tid) const {
    if (!Stats) return {nullptr, nullptr};
    return {count_partials + tid * n_units, max_partials + tid * n_units};
  }
  void store_final_row(i64 row, i64 col0, const float* values, i64 cols, float* pre_row,
                       Local& local) const {
    float* out_row = out + row * ldo + col0;
    const float* b = bias + col0;
    for (i64 j = 0; j < cols; ++j) {
      const float s = values[j] + b[j];
      pre_row[j] = s;
      out_row[j] = activation_forward(s, Act, slope);
      if (Stats) {
        local.counts[col0 + j] += s > 0.0f;
        local.maxima[col0 + j] = max_f(local.maxima[col0 + j], s);
      }
    }
  }
};

template <Activation Act, bool Stats>
void dense_forward_with(const DenseForwardArgs& d, int n_threads) {
  GemmArgs g{d.n_rows, d.fan_out, d.fan_in, d.x, d.fan_in, 1, d.weight, d.fan_out, 1,
             d.pre, d.fan_out};
  const int nt = gemm_threads(g, n_threads);
  const i64 partial_size = Stats ? static_cast<i64>(nt) * d.fan_out : 0;
  AlignedBuffer<i64> counts(partial_size);
  AlignedBuffer<float> maxima(partial_size);
  for (i64 i = 0; i < partial_size; ++i) {
    counts.get()[i] = 0;
    maxima.get()[i] = -__builtin_inff();
  }
  DenseEpilogue<Act, Stats> ep{d.bias,      d.out,        d.fan_out, d.negative_slope,
                               counts.get(), maxima.get(), d.fan_out};
  gemm_blocked(g, ep, nt);
  if (Stats) {
    for (int t = 0; t < nt; ++t) {
      const i64* c = counts.get() + static_cast<i64>(t) * d.fan_out;
      const float* mx = maxima.get() + static_cast<i64>(t) * d.fan_out;
      for (i64 j = 0; j < d.fan_out; ++j) {
        if (d.firing_counts) d.firing_counts[j] += c[j];
        if (d.max_pre) d.max_pre[j] = max_f(d.max_pre[j], mx[j]);
      }
    }
  }
}

template <Activation Act>
void dense_forward_act(const DenseForwardArgs& d, int n_threads) {
  if (d.firing_counts || d.max_pre)
    dense_forward_with<Act, true>(d, n_threads);
  else
    dense_forward_with<Act, false>(d, n_threads);
}

void dense_forward(const DenseForwardArgs& d, int n_threads) {
  switch (d.activation) {
    case Activation::identity: return dense_forward_act<Activation::identity>(d, n_threads);
    case Activation::relu: return dense_forward_act<Activation::relu>(d, n_threads);
    case Activation::leaky_relu: return dense_forward_act<Activation::leaky_relu>(d, n_threads);
  }
}

// grad_pre = grad_out * act'(pre) and the bias gradient, in one pass over the
// rows. Bias partials are per fixed row chunk, summed in chunk order.
template <Activation Act>
void mask_gradient_and_bias(const DenseBackwardArgs& d, int n_threads) {
  const i64 n = d.n_rows, units = d.fan_out;
  const i64 n_chunks = ceil_div(n, kReductionRows);
  AlignedBuffer<float> partials(n_chunks * units);
  const int nt = threads_for_flops(4.0 * n * units, n_threads);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
  for (i64 chunk = 0; chunk < n_chunks; ++chunk) {
    float* partial = partials.get() + chunk * units;
    for (i64 j = 0; j < units; ++j) partial[j] = 0.0f;
    const i64 row_end = min_i64(n, (chunk + 1) * kReductionRows);
    for (i64 r = chunk * kReductionRows; r < row_end; ++r) {
      const float* go = d.grad_out + r * units;
      const float* s = d.pre + r * units;
      float* gp = d.grad_pre + r * units;
      for (i64 j = 0; j < units; ++j) {
        const float g = go[j] * activation_derivative(s[j], Act, d.negative_slope);
        gp[j] = g;
        partial[j] += g;
      }
    }
  }
  for (i64 j = 0; j < units; ++j) d.grad_bias[j] = 0.0f;
  for (i64 chunk = 0; chunk < n_chunks; ++chunk) {
    const float* partial = partials.get() + chunk * units;
    for (i64 j = 0; j < units; ++j) d.grad_bias[j] += partial[j];
  }
}

void dense_backward(const DenseBackwardArgs& d, int n_threads) {
  switch (d.activation) {
    case Activation::identity: mask_gradient_and_bias<Activation::identity>(d, n_threads); break;
    case Activation::relu: mask_gradient_and_bias<Activation::relu>(d, n_threads); break;
    case Activation::leaky_relu:
      mask_gradient_and_bias<Activation::leaky_relu>(d, n_threads);
      break;
  }
  // grad_weight (fan_in x fan_out) = x.T @ grad_pre: x read with swapped strides.
  gemm(GemmArgs{d.fan_in, d.fan_out, d.n_rows, d.x, 1, d.fan_in, d.grad_pre, d.fan_out, 1,
                d.grad_weight, d.fan_out},
       n_threads);
  // grad_x (n_rows x fan_in) = grad_pre @ weight.T: weight read with swapped strides.
  if (d.grad_x) {
    gemm(GemmArgs{d.n_rows, d.fan_in, d.fan_out, d.grad_pre, d.fan_out, 1, d.weight, 1,
                  d.fan_out, d.grad_x, d.fan_in},
         n_threads);
  }
}
