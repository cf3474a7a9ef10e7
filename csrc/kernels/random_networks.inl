// Born-dead Monte Carlo: many tiny random ReLU networks on the same points
// (see RandomNetworksArgs). Activations are stored unit-major, h[k * P + p],
// so that the inner loop runs over the P points with one weight in a register:
// it vectorizes whatever the (small) width is.

// out[j][p] = relu(b_j + sum_k w[k][j] * in[k][p]); returns what the layer
// looks like: fires somewhere, is the same at every point, fires at `point`,
// and whether some pre-activation is negative (anywhere; at `point`), which
// layer_verdict() turns into a verdict.
struct LayerShape {
  bool fires_anywhere, constant, fires_at_point, negative_anywhere, negative_at_point;
};

inline LayerShape relu_layer(const float* in, i64 fan_in, const float* weight, const float* bias,
                             i64 width, i64 n_points, i64 point, float* out) {
  LayerShape shape{false, true, false, false, false};
  for (i64 j = 0; j < width; ++j) {
    float* __restrict row = out + j * n_points;
    const float b = bias[j];
    for (i64 p = 0; p < n_points; ++p) row[p] = b;
    for (i64 k = 0; k < fan_in; ++k) {
      const float w = weight[k * width + j];
      const float* __restrict source = in + k * n_points;
      for (i64 p = 0; p < n_points; ++p) row[p] += w * source[p];
    }
    int fires = 0, differs = 0, negative = 0;
    shape.negative_at_point = shape.negative_at_point || row[point] < 0.0f;
    for (i64 p = 0; p < n_points; ++p) {
      const float value = row[p] > 0.0f ? row[p] : 0.0f;
      fires |= value > 0.0f;
      negative |= row[p] < 0.0f;
      row[p] = value;
    }
    const float first = row[0];
    for (i64 p = 1; p < n_points; ++p) differs |= row[p] != first;
    shape.fires_anywhere = shape.fires_anywhere || fires;
    shape.negative_anywhere = shape.negative_anywhere || negative;
    shape.constant = shape.constant && !differs;
    shape.fires_at_point = shape.fires_at_point || row[point] > 0.0f;
  }
  return shape;
}

void random_networks(const RandomNetworksArgs& a, int n_threads) {
  const i64 width = a.width, points = a.n_points, depth = a.depth;
  const double flops = 2.0 * static_cast<double>(a.n_networks) * depth * width * width * points;
  const int nt = static_cast<int>(
      std::min<i64>(threads_for_flops(flops, n_threads), a.n_networks > 0 ? a.n_networks : 1));
  // Per thread: the input transposed to unit-major, and two layer buffers.
  const i64 per_thread = points * (a.n_inputs + 2 * width);
  float* buffers = scratch<float>(kNetworkActivations, nt * per_thread);
  auto run_one = [&](i64 r, float* buffer) {
    float* input = buffer;
    float* current = input + points * a.n_inputs;
    float* next = current + points * width;
    for (i64 p = 0; p < points; ++p)
      for (i64 k = 0; k < a.n_inputs; ++k) input[k * points + p] = a.x[p * a.n_inputs + k];
    const std::int32_t never = static_cast<std::int32_t>(depth + 1);
    std::int32_t dead = never, constant = never, dead_point = never;
    for (i64 layer = 1; layer <= depth && dead == never; ++layer) {
      const bool first = layer == 1;
      const float* weight = first ? a.first_weight + r * a.n_inputs * width
                                  : a.weights + (r * (depth - 1) + (layer - 2)) * width * width;
      const float* bias = a.biases + (r * depth + (layer - 1)) * width;
      const LayerShape shape = relu_layer(first ? input : current, first ? a.n_inputs : width,
                                          weight, bias, width, points, a.reference_point, next);
      const auto here = static_cast<std::int32_t>(layer);
      if (layer_verdict(shape.fires_anywhere, shape.negative_anywhere) ==
              LayerVerdict::dead_by_sign &&
          dead == never)
        dead = here;
      if (shape.constant && constant == never) constant = here;
      if (layer_verdict(shape.fires_at_point, shape.negative_at_point) ==
              LayerVerdict::dead_by_sign &&
          dead_point == never)
        dead_point = here;
      float* swap = current;
      current = next;
      next = swap;
    }
    a.dead_at[r] = dead;
    a.constant_at[r] = constant;
    a.dead_at_point[r] = dead_point;
  };
  if (nt <= 1) {
    for (i64 r = 0; r < a.n_networks; ++r) run_one(r, buffers);
    return;
  }
  // Networks die at different depths, so the threads take batches of 16 as
  // they go instead of fixed ranges; each network's verdict is its own.
  constexpr i64 kBatch = 16;
  std::atomic<i64> next_batch{0};
  run_shares(nt, [&](int share) {
    float* buffer = buffers + share * per_thread;
    for (i64 first;
         (first = next_batch.fetch_add(kBatch, std::memory_order_relaxed)) < a.n_networks;) {
      const i64 last = min_i64(first + kBatch, a.n_networks);
      for (i64 r = first; r < last; ++r) run_one(r, buffer);
    }
  });
}
