// Losses: each returns the mean loss and writes d loss / d outputs. Per-row
// losses are summed in double over fixed row chunks, combined in chunk order.

double softmax_cross_entropy(const float* logits, const i64* labels, i64 n, i64 c, float* grad,
                             int n_threads) {
  const i64 n_chunks = ceil_div(n, kReductionRows);
  double* const partials = scratch<double>(kReduction, n_chunks);
  const float inv_n = 1.0f / static_cast<float>(n);
  const int nt = threads_for_flops(20.0 * n * c, n_threads);
  for_each_index(n_chunks, nt, [&](i64 chunk) {
    double sum = 0.0;
    const i64 row_end = min_i64(n, (chunk + 1) * kReductionRows);
    for (i64 r = chunk * kReductionRows; r < row_end; ++r) {
      const float* z = logits + r * c;
      float* g = grad + r * c;
      // Shift by the row maximum so exp never overflows (log-sum-exp trick).
      float zmax = z[0];
      for (i64 j = 1; j < c; ++j) zmax = max_f(zmax, z[j]);
      float denom = 0.0f;
      for (i64 j = 0; j < c; ++j) {
        g[j] = __builtin_expf(z[j] - zmax);
        denom += g[j];
      }
      const float scale = inv_n / denom;
      for (i64 j = 0; j < c; ++j) g[j] *= scale;
      const i64 y = labels[r];
      g[y] -= inv_n;
      // loss_r = log(sum_j exp(z_j)) - z_y = log(denom) + zmax - z_y
      sum += static_cast<double>(__builtin_logf(denom)) + (static_cast<double>(zmax) - z[y]);
    }
    partials[chunk] = sum;
  });
  double total = 0.0;
  for (i64 chunk = 0; chunk < n_chunks; ++chunk) total += partials[chunk];
  return total / static_cast<double>(n);
}

double mean_squared_error(const float* out, const float* target, i64 n, i64 c, float* grad,
                          int n_threads) {
  const i64 n_chunks = ceil_div(n, kReductionRows);
  double* const partials = scratch<double>(kReduction, n_chunks);
  const double count = static_cast<double>(n) * static_cast<double>(c);
  const float scale = static_cast<float>(2.0 / count);
  const int nt = threads_for_flops(4.0 * n * c, n_threads);
  for_each_index(n_chunks, nt, [&](i64 chunk) {
    double sum = 0.0;
    const i64 begin = chunk * kReductionRows * c;
    const i64 end = min_i64(n, (chunk + 1) * kReductionRows) * c;
    for (i64 i = begin; i < end; ++i) {
      const float diff = out[i] - target[i];
      grad[i] = scale * diff;
      sum += static_cast<double>(diff) * diff;
    }
    partials[chunk] = sum;
  });
  double total = 0.0;
  for (i64 chunk = 0; chunk < n_chunks; ++chunk) total += partials[chunk];
  return total / count;
}
