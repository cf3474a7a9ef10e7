// Dense layer kernels: the fused forward (GEMM + bias + activation + firing
// statistics in the epilogue) and the backward.

// Epilogue of the dense forward, applied to each finished tile:
// pre = value + bias, out = act(pre), and per-unit firing count, maximum of
// pre and count of non-finite pre (NaN or +-Inf) into this thread's partial
// arrays (combined after the GEMM in thread order; counts are integers and max
// is exact, so the order cannot matter). The non-finite count is what lets the
// callers refuse an overflowed forward: the ReLU maps NaN to 0, so a NaN
// pre-activation would otherwise look like a unit that does not fire.
// NaN passes through both activations (NaN <= 0 is false; slope * NaN is
// NaN), so in the training step a NaN pre-activation reaches the loss and the
// step reports divergence instead of training on a unit silenced by overflow.
template <Activation Act>
inline VFloat activation_vector(VFloat s, float slope) {
  if (Act == Activation::identity) return s;
  const VFloat zero{};
  if (Act == Activation::relu) return s <= zero ? zero : s;
  return s > zero ? s : slope * s;
}

// act'(s) in each lane, as activation_derivative: 1 where s > 0, else 0 (ReLU)
// or the slope (leaky ReLU); 1 everywhere for the identity. A multiplier, not a
// mask, so that grad_out * act'(s) keeps its sign of zero and its NaN.
template <Activation Act>
inline VFloat activation_derivative_vector(VFloat s, float slope) {
  const VFloat one = VFloat{} + 1.0f;
  if (Act == Activation::identity) return one;
  const VFloat below = VFloat{} + (Act == Activation::relu ? 0.0f : slope);
  return s > VFloat{} ? one : below;
}

template <Activation Act, bool Stats>
struct DenseEpilogue {
  const float* bias;
  float* out;
  i64 ldo;
  float slope;
  i64* count_partials;      // n_threads x n_units
  float* max_partials;      // n_threads x n_units
  i64* nonfinite_partials;  // n_threads x n_units
  i64 n_units;

  struct Local {
    i64* counts;
    float* maxima;
    i64* nonfinite;
  };
  Local local(int tid) const {
    if (!Stats) return {nullptr, nullptr, nullptr};
    return {count_partials + tid * n_units, max_partials + tid * n_units,
            nonfinite_partials + tid * n_units};
  }

  void store_final_tile(const float* tile, i64 rows, i64 cols, float* pre, i64 ldc, i64 row0,
                        i64 col0, Local& local) const {
    float* out_tile = out + row0 * ldo + col0;
    if (cols == RS_NR) {
      store_full_width(tile, rows, pre, ldc, out_tile, col0, local);
      return;
    }
    for (i64 i = 0; i < rows; ++i) {
      for (i64 j = 0; j < cols; ++j) {
        const float s = tile[i * RS_NR + j] + bias[col0 + j];
        pre[i * ldc + j] = s;
        out_tile[i * ldo + j] = activation_forward(s, Act, slope);
        if (Stats) {
          local.counts[col0 + j] += s > 0.0f;
          // As in whole vectors below: a NaN never becomes the maximum (it is
          // counted as non-finite), so the result does not depend on row order.
          local.maxima[col0 + j] = s > local.maxima[col0 + j] ? s : local.maxima[col0 + j];
          const float d = s - s;  // 0 when s is finite, NaN for NaN and +-Inf
          local.nonfinite[col0 + j] += d != d;
        }
      }
    }
  }

  void store_full_width(const float* tile, i64 rows, float* pre, i64 ldc, float* out_tile, i64 col0,
                        Local& local) const {
    constexpr int kVectors = RS_NR / kVectorFloats;
    VFloat b[kVectors], highest[kVectors];
    VInt fired[kVectors], nonfinite[kVectors];
    for (int v = 0; v < kVectors; ++v) {
      b[v] = load_vector(bias + col0 + v * kVectorFloats);
      highest[v] = VFloat{} - __builtin_inff();
      fired[v] = VInt{};
      nonfinite[v] = VInt{};
    }
    for (i64 i = 0; i < rows; ++i) {
      for (int v = 0; v < kVectors; ++v) {
        const VFloat s = load_vector(tile + i * RS_NR + v * kVectorFloats) + b[v];
        store_vector(pre + i * ldc + v * kVectorFloats, s);
        store_vector(out_tile + i * ldo + v * kVectorFloats, activation_vector<Act>(s, slope));
        if (Stats) {
          fired[v] -= s > VFloat{};  // a true lane is -1
          highest[v] = s > highest[v] ? s : highest[v];
          const VFloat d = s - s;  // 0 when s is finite, NaN for NaN and +-Inf
          nonfinite[v] -= d != d;
        }
      }
    }
    if (Stats) {
      for (int v = 0; v < kVectors; ++v) {
        for (int j = 0; j < kVectorFloats; ++j) {
          const i64 unit = col0 + v * kVectorFloats + j;
          local.counts[unit] += fired[v][j];
          local.maxima[unit] = max_f(local.maxima[unit], highest[v][j]);
          local.nonfinite[unit] += nonfinite[v][j];
        }
      }
    }
  }
};

// The products of a dense layer, over its own arrays (a transposed operand is
// a swap of strides). The forward's pre = x @ weight.
inline GemmArgs forward_product(const DenseForwardArgs& d) {
  return {d.n_rows, d.fan_out, d.fan_in, d.x,   d.fan_in, 1,
          d.weight, d.fan_out, 1,        d.pre, d.fan_out};
}
// grad_weight (fan_in x fan_out) = x.T @ grad_pre. No B: grad_pre is packed by
// MaskedGradientB, which may form it as it packs.
inline GemmArgs weight_gradient_product(const DenseBackwardArgs& d) {
  return {d.fan_in, d.fan_out, d.n_rows, d.x,           1,        d.fan_in,
          nullptr,  d.fan_out, 1,        d.grad_weight, d.fan_out};
}
// grad_x (n_rows x fan_in) = grad_pre @ weight.T.
inline GemmArgs input_gradient_product(const DenseBackwardArgs& d) {
  return {d.n_rows, d.fan_in, d.fan_out, d.grad_pre, d.fan_out, 1,
          d.weight, 1,        d.fan_out, d.grad_x,   d.fan_in};
}

template <Activation Act, bool Stats>
void dense_forward_with(const DenseForwardArgs& d, int n_threads) {
  const GemmArgs g = forward_product(d);
  const int nt = gemm_threads(g, n_threads);
  const i64 partial_size = Stats ? static_cast<i64>(nt) * d.fan_out : 0;
  i64* const counts = Stats ? scratch<i64>(kCountPartials, partial_size) : nullptr;
  float* const maxima = Stats ? scratch<float>(kMaxPartials, partial_size) : nullptr;
  i64* const nonfinite = Stats ? scratch<i64>(kNonfinitePartials, partial_size) : nullptr;
  for (i64 i = 0; i < partial_size; ++i) {
    counts[i] = 0;
    maxima[i] = -__builtin_inff();
    nonfinite[i] = 0;
  }
  DenseEpilogue<Act, Stats> ep{d.bias, d.out,  d.fan_out, d.negative_slope,
                               counts, maxima, nonfinite, d.fan_out};
  gemm_blocked(g, ep, nt);
  if (Stats) {
    for (int t = 0; t < nt; ++t) {
      const i64* c = counts + static_cast<i64>(t) * d.fan_out;
      const float* mx = maxima + static_cast<i64>(t) * d.fan_out;
      const i64* bad = nonfinite + static_cast<i64>(t) * d.fan_out;
      for (i64 j = 0; j < d.fan_out; ++j) {
        if (d.firing_counts) d.firing_counts[j] += c[j];
        if (d.max_pre) d.max_pre[j] = max_f(d.max_pre[j], mx[j]);
        if (d.nonfinite_counts) d.nonfinite_counts[j] += bad[j];
      }
    }
  }
}

template <Activation Act>
void dense_forward_act(const DenseForwardArgs& d, int n_threads) {
  if (d.firing_counts || d.max_pre || d.nonfinite_counts)
    dense_forward_with<Act, true>(d, n_threads);
  else
    dense_forward_with<Act, false>(d, n_threads);
}

void dense_forward(const DenseForwardArgs& d, int n_threads) {
  switch (d.activation) {
    case Activation::identity:
      return dense_forward_act<Activation::identity>(d, n_threads);
    case Activation::relu:
      return dense_forward_act<Activation::relu>(d, n_threads);
    case Activation::leaky_relu:
      return dense_forward_act<Activation::leaky_relu>(d, n_threads);
  }
}

// A run of floats in memory.
struct FloatSpan {
  const float* data;
  i64 count;
  MemorySpan bytes() const {
    return memory_span(data, sizeof(float) * static_cast<std::size_t>(count > 0 ? count : 0));
  }
};
template <std::size_t W, std::size_t R>
bool any_overlap(const FloatSpan (&written)[W], const FloatSpan (&read)[R]) {
  for (const FloatSpan& w : written)
    for (const FloatSpan& r : read)
      if (overlap(w.bytes(), r.bytes())) return true;
  return false;
}

// ---- The forward of a stack, the batch's rows split between two threads ---
//
// dense_forward_layers runs layers[0], ..., layers[count - 1], each as
// dense_forward would, where layers[i].x is layers[i - 1].out. Layer by layer,
// each product is split among the threads by columns, and the threads meet
// at the end of every layer, since the next layer reads every column. A row
// of the batch needs only the same row of the layer below, so with the rows
// split instead, each thread takes its rows through every layer and the
// threads meet once (Zen 3, deep-narrow forward on 2 threads: 0.71 ms layer by
// layer, against 0.58 ms for one thread taking half the rows through it).
// The price is that each thread packs every weight matrix, where a column
// split packs half of each: worth it while a layer has no more outputs than
// the batch has rows (then its weights are no larger than its inputs, which
// a column split has every thread read whole).
//
// Same bits: every element of a product is summed in the same order however
// the rows are split, and the firing statistics (integer counts, maxima) are
// combined after the threads meet, in share order, as the per-thread partials
// of a column split are.

// One share's firing statistics of one layer (null when not tracked).
struct FiringPartials {
  i64* counts;
  float* maxima;
  i64* nonfinite;
};

// Rows [rows.begin, rows.end) of one layer's forward on the calling thread,
// its statistics into `partials` (counts and non-finite counts added, maxima
// raised).
template <Activation Act, bool Stats>
void forward_rows_with(const DenseForwardArgs& d, IndexRange rows, const FiringPartials& partials,
                       const GemmTuning& tuning, const GemmWorkspace& workspace) {
  const i64 n = rows.end - rows.begin;
  if (n <= 0) return;
  GemmArgs g = forward_product(d);
  g.m = n;
  g.a += rows.begin * d.fan_in;
  g.c += rows.begin * d.fan_out;
  const DenseEpilogue<Act, Stats> ep{d.bias,
                                     d.out + rows.begin * d.fan_out,
                                     d.fan_out,
                                     d.negative_slope,
                                     partials.counts,
                                     partials.maxima,
                                     partials.nonfinite,
                                     d.fan_out};
  gemm_blocked_in(g, ep, 1, StridedB{g.b, g.b_row_stride, g.b_col_stride}, tuning, workspace);
}

inline bool tracks_firing(const DenseForwardArgs& d) {
  return d.firing_counts || d.max_pre || d.nonfinite_counts;
}

template <Activation Act>
void forward_rows_act(const DenseForwardArgs& d, IndexRange rows, const FiringPartials& partials,
                      const GemmTuning& tuning, const GemmWorkspace& workspace) {
  if (tracks_firing(d))
    forward_rows_with<Act, true>(d, rows, partials, tuning, workspace);
  else
    forward_rows_with<Act, false>(d, rows, partials, tuning, workspace);
}

inline void forward_rows(const DenseForwardArgs& d, IndexRange rows, const FiringPartials& partials,
                         const GemmTuning& tuning, const GemmWorkspace& workspace) {
  switch (d.activation) {
    case Activation::identity:
      return forward_rows_act<Activation::identity>(d, rows, partials, tuning, workspace);
    case Activation::relu:
      return forward_rows_act<Activation::relu>(d, rows, partials, tuning, workspace);
    case Activation::leaky_relu:
      return forward_rows_act<Activation::leaky_relu>(d, rows, partials, tuning, workspace);
  }
}

// Whether the stack's rows may be split: each layer reads the one before it
// (the same array, as wide as that layer's outputs); what the threads write
// (pre and out of every layer; out may be pre) lies apart from what they read
// whole (the input, weights and biases) and from the statistics, and the
// layers' outputs from each other; the statistics, written after the threads
// meet where in turn each layer's are written before the next layer reads,
// lie apart from what is read.
inline bool stack_apart_for_rows(const DenseForwardArgs* layers, i64 count) {
  std::vector<MemorySpan> written, read, counted;
  read.push_back(FloatSpan{layers[0].x, layers[0].n_rows * layers[0].fan_in}.bytes());
  for (i64 i = 0; i < count; ++i) {
    const DenseForwardArgs& d = layers[i];
    if (i > 0 && (d.x != layers[i - 1].out || d.fan_in != layers[i - 1].fan_out)) return false;
    const i64 outputs = d.n_rows * d.fan_out;
    const MemorySpan pre = FloatSpan{d.pre, outputs}.bytes(),
                     out = FloatSpan{d.out, outputs}.bytes();
    if (d.out != d.pre && overlap(pre, out)) return false;
    written.push_back(pre);
    if (d.out != d.pre) written.push_back(out);
    read.push_back(FloatSpan{d.weight, d.fan_in * d.fan_out}.bytes());
    read.push_back(FloatSpan{d.bias, d.fan_out}.bytes());
    const std::size_t stat_bytes = sizeof(i64) * static_cast<std::size_t>(d.fan_out);
    if (d.firing_counts) counted.push_back(memory_span(d.firing_counts, stat_bytes));
    if (d.nonfinite_counts) counted.push_back(memory_span(d.nonfinite_counts, stat_bytes));
    if (d.max_pre) counted.push_back(FloatSpan{d.max_pre, d.fan_out}.bytes());
  }
  return !any_two_overlap(written) && !any_overlap_between(written, read) &&
         !any_overlap_between(written, counted) && !any_overlap_between(counted, read);
}

// On 2 threads or more, when no layer's product would get more than 2 (larger
// layers on more threads split each product among all of them) and some
// layer's would get 2, every layer has no more outputs than rows (see above)
// and the arrays allow it.
inline bool rows_split_pays(const DenseForwardArgs* layers, i64 count, int n_threads) {
  if (n_threads < 2 || count < 2) return false;
  bool some_on_two = false;
  for (i64 i = 0; i < count; ++i) {
    const DenseForwardArgs& d = layers[i];
    if (d.n_rows != layers[0].n_rows || d.fan_in <= 0 || d.fan_out <= 0 || d.n_rows < 2 ||
        d.fan_out > d.n_rows)
      return false;
    const int threads = gemm_threads(forward_product(d), n_threads);
    if (threads > 2) return false;
    some_on_two = some_on_two || threads == 2;
  }
  return some_on_two && stack_apart_for_rows(layers, count);
}

void dense_forward_layers(const DenseForwardArgs* layers, std::int64_t count, int n_threads) {
  if (!rows_split_pays(layers, count, n_threads)) {
    for (i64 i = 0; i < count; ++i) dense_forward(layers[i], n_threads);
    return;
  }
  const i64 n_rows = layers[0].n_rows;
  // Whole micro-panels of rows for the first share.
  const i64 first_rows = min_i64(n_rows, ceil_div(ceil_div(n_rows, 2), RS_MR) * RS_MR);
  const IndexRange share_rows[2] = {{0, first_rows}, {first_rows, n_rows}};

  // Everything taken here, on the calling thread: the workspaces (each
  // share's largest product) and each share's statistics of every layer.
  const GemmTuning tuning = gemm_tuning();
  GemmWorkspaceSize size{0, 0};
  i64 units = 0;
  for (i64 i = 0; i < count; ++i) {
    const GemmWorkspaceSize w = gemm_workspace_size(layers[i].fan_out, layers[i].fan_in, tuning, 1);
    size = {std::max(size.a_floats, w.a_floats), std::max(size.b_floats, w.b_floats)};
    units += layers[i].fan_out;
  }
  auto lines = [](i64 floats) { return ceil_div(floats, 16) * 16; };
  const i64 a_share = lines(size.a_floats), b_share = lines(size.b_floats);
  float* const a_pack = scratch<float>(kPackA, 2 * a_share);
  float* const b_pack = scratch<float>(kPackB, 2 * b_share);
  i64* const counts = scratch<i64>(kCountPartials, 2 * units);
  float* const maxima = scratch<float>(kMaxPartials, 2 * units);
  i64* const nonfinite = scratch<i64>(kNonfinitePartials, 2 * units);
  for (i64 u = 0; u < 2 * units; ++u) {
    counts[u] = 0;
    maxima[u] = -__builtin_inff();
    nonfinite[u] = 0;
  }
  // Share s's statistics of the layer whose first unit is unit `first`.
  auto partials = [&](int share, i64 first) {
    const i64 at = share * units + first;
    return FiringPartials{counts + at, maxima + at, nonfinite + at};
  };

  run_shares(2, [&](int share) {
    const GemmWorkspace workspace{a_pack + share * a_share, b_pack + share * b_share};
    i64 first = 0;
    for (i64 i = 0; i < count; ++i) {
      forward_rows(layers[i], share_rows[share], partials(share, first), tuning, workspace);
      first += layers[i].fan_out;
    }
  });

  i64 first = 0;
  for (i64 i = 0; i < count; ++i) {
    const DenseForwardArgs& d = layers[i];
    for (int share = 0; share < 2; ++share) {
      const FiringPartials p = partials(share, first);
      for (i64 j = 0; j < d.fan_out; ++j) {
        if (d.firing_counts) d.firing_counts[j] += p.counts[j];
        if (d.max_pre) d.max_pre[j] = max_f(d.max_pre[j], p.maxima[j]);
        if (d.nonfinite_counts) d.nonfinite_counts[j] += p.nonfinite[j];
      }
    }
    first += d.fan_out;
  }
}

// grad_pre = grad_out * act'(pre), element by element: one product, so the
// vector and the scalar forms give the same bits.
template <Activation Act>
RS_ALWAYS_INLINE VFloat masked_gradient_vector(const float* grad_out, const float* pre,
                                               float slope) {
  return load_vector(grad_out) * activation_derivative_vector<Act>(load_vector(pre), slope);
}

// grad_pre over `count` consecutive elements.
template <Activation Act>
void form_grad_pre(const float* grad_out, const float* pre, float* grad_pre, i64 count,
                   float slope) {
  i64 i = 0;
  for (; i + kVectorFloats <= count; i += kVectorFloats)
    store_vector(grad_pre + i, masked_gradient_vector<Act>(grad_out + i, pre + i, slope));
  for (; i < count; ++i) grad_pre[i] = grad_out[i] * activation_derivative(pre[i], Act, slope);
}

// Packs the B operand of grad_weight = x.T @ grad_pre while computing it:
// each element of grad_pre = grad_out * act'(pre) is formed here and written
// into the packed panel, into the bias gradient and (unless grad_pre is null)
// into grad_pre, the A operand of grad_x = grad_pre @ weight.T. Each panel of
// a pass of rows is packed by one thread and the passes run in order, so the
// bias sums are the same whatever the thread count. No separate masking pass.
template <Activation Act>
struct MaskedGradientB {
  const float* grad_out;
  const float* pre;
  float* grad_pre;   // or null: formed elsewhere (backward_products_side_by_side)
  float* grad_bias;  // zeroed before the GEMM
  i64 units;
  float slope;
  // Row by row across up to kChunkPanels panels at a time, so each row of
  // grad_out and pre is read front to back (see pack_b_panels); the bias sums
  // of a chunk stay on the stack. Each column's sum runs over the rows of a
  // summation block (KC rows) in order, from zero, then joins grad_bias: the
  // order it had when the panels were packed one at a time and one block per
  // pass, so passes of several blocks give the same bias gradient.
  static constexpr i64 kChunkPanels = 8;
  void pack(const Pass& pass, i64 col0, i64 cols, float* dst, i64 panel_stride) const {
    for (i64 chunk = 0; chunk < cols; chunk += kChunkPanels * RS_NR) {
      const i64 chunk_cols = min_i64(kChunkPanels * RS_NR, cols - chunk);
      for (i64 block0 = 0; block0 < pass.depth; block0 += pass.block)
        pack_block(pass.begin, block0, min_i64(pass.block, pass.depth - block0), col0 + chunk,
                   chunk_cols, dst + chunk / RS_NR * panel_stride, panel_stride);
    }
  }
  // Rows [row0 + block0, row0 + block0 + rows) of the pass starting at row0.
  void pack_block(i64 row0, i64 block0, i64 rows, i64 col0, i64 cols, float* dst,
                  i64 panel_stride) const {
    alignas(64) float column_sums[kChunkPanels * RS_NR] = {};
    for (i64 p = block0; p < block0 + rows; ++p) {
      const i64 offset = (row0 + p) * units + col0;
      const float* go = grad_out + offset;
      const float* s = pre + offset;
      float* gp = grad_pre ? grad_pre + offset : nullptr;
      for (i64 q = 0; q * RS_NR < cols; ++q) {
        const i64 panel_cols = min_i64(RS_NR, cols - q * RS_NR);
        float* d = dst + q * panel_stride + p * RS_NR;
        float* sums = column_sums + q * RS_NR;
        const i64 at = q * RS_NR;
        if (panel_cols == RS_NR) {
          // Whole vectors: the scalar loop's branch on the sign of pre was
          // mispredicted about as often as units fire (7% of a medium step).
          for (int v = 0; v < RS_NR; v += kVectorFloats) {
            const VFloat g = masked_gradient_vector<Act>(go + at + v, s + at + v, slope);
            store_vector(d + v, g);
            if (grad_pre) store_vector(gp + at + v, g);
            store_vector(sums + v, load_vector(sums + v) + g);
          }
          continue;
        }
        i64 j = 0;
        for (; j < panel_cols; ++j) {
          const float g = go[at + j] * activation_derivative(s[at + j], Act, slope);
          d[j] = g;
          if (grad_pre) gp[at + j] = g;
          sums[j] += g;
        }
        for (; j < RS_NR; ++j) d[j] = 0.0f;
      }
    }
    for (i64 j = 0; j < cols; ++j) grad_bias[col0 + j] += column_sums[j];
  }
};

// grad_x = grad_pre @ weight.T on the calling thread, in the caller's buffers.
inline void input_gradient(const DenseBackwardArgs& d, const GemmTuning& tuning,
                           const GemmWorkspace& workspace) {
  const GemmArgs gx = input_gradient_product(d);
  gemm_blocked_in(gx, PlainEpilogue{}, 1, StridedB{gx.b, gx.b_row_stride, gx.b_col_stride}, tuning,
                  workspace);
}

// grad_weight and grad_x of one layer at once, on two threads: one computes
// grad_weight (forming the masked gradient while packing, as MaskedGradientB
// does, without storing it), the other computes grad_x from grad_pre, which
// the two threads first form and store half each. One parallel call per layer instead of two, and
// neither thread packs an operand the other also packs. The two products have
// the same flops (n_rows * fan_in * fan_out each). Each is a one-thread product
// of its own, and a product's elements do not depend on how it is split, so
// the results are those of the two products in turn, bit for bit.
//
// Zen 3, 2 threads, in-process A/B against the products in turn (medians of
// paired rounds): the backward of a 256 x 128 -> 128 layer took 0.94 of the
// time, a deep-narrow step (256, 100-128x10-10) 0.96-0.97; a 256 x 1024 ->
// 1024 layer the same time (1.01).
//
// Used by dense_backward, one layer at a time (the training step hands its
// layers over as a stack, see dense_backward_layers below, and comes here only
// when the stack cannot be pipelined), when the grad_weight product alone would
// get 2 threads (gemm_threads): on 2 threads, or on more for a layer too small
// to use them. For larger
// layers on more threads, each product would need a team of its own, and
// splitting grad_x among a team by rows packs all of weight.T once per thread
// (4 MiB for a 1024 x 1024 layer), so there the products run in turn, each
// split among all the threads. Not measured: no machine here had more than 2 cores.
//
// Both workspaces are taken here, on the calling thread, before either
// product runs: a share must not allocate (an exception cannot leave it).
template <Activation Act>
void backward_products_side_by_side(const DenseBackwardArgs& d, const GemmArgs& gw) {
  const GemmTuning tuning = gemm_tuning();
  const GemmArgs gx = input_gradient_product(d);
  // Rounded to whole cache lines, so the second product's buffers start 64-byte aligned.
  auto lines = [](i64 floats) { return ceil_div(floats, 16) * 16; };
  const GemmWorkspaceSize weight_size = gemm_workspace_size(gw.n, gw.k, tuning, 1);
  const GemmWorkspaceSize input_size = gemm_workspace_size(gx.n, gx.k, tuning, 1);
  const i64 a_offset = lines(weight_size.a_floats), b_offset = lines(weight_size.b_floats);
  float* const b_pack = scratch<float>(kPackB, b_offset + input_size.b_floats);
  float* const a_pack = scratch<float>(kPackA, a_offset + input_size.a_floats);

  // grad_pre is formed half by each thread (whole cache lines) before its
  // product; the grad_x thread then waits for the other half. Formed by the
  // grad_x thread alone, it made that thread the later one by about its own
  // time (Zen 3, deep-narrow step on 2 threads: 13-20 us per layer, the
  // difference between the two threads' times per layer about the same).
  const i64 count = d.n_rows * d.fan_out;
  const i64 first_part = count / 2 / 16 * 16;
  std::atomic<bool> first_part_formed{false};
  run_shares(2, [&](int share) {
    if (share == 0) {
      form_grad_pre<Act>(d.grad_out, d.pre, d.grad_pre, first_part, d.negative_slope);
      first_part_formed.store(true, std::memory_order_release);
      const MaskedGradientB<Act> masked{d.grad_out,  d.pre,     nullptr,
                                        d.grad_bias, d.fan_out, d.negative_slope};
      gemm_blocked_in(gw, PlainEpilogue{}, 1, masked, tuning, GemmWorkspace{a_pack, b_pack});
      return;
    }
    form_grad_pre<Act>(d.grad_out + first_part, d.pre + first_part, d.grad_pre + first_part,
                       count - first_part, d.negative_slope);
    wait_for_earlier_share(first_part_formed);
    input_gradient(d, tuning, GemmWorkspace{a_pack + a_offset, b_pack + b_offset});
  });
}

// Whether the two products of backward_products_side_by_side may run at once:
// neither writes anything the other reads or writes. The binding lets callers
// pass grad_pre in place of grad_out, and grad_x in place of grad_out (when
// fan_in == fan_out) or of x; in turn, such calls have a defined answer, side
// by side a race. They run in turn. Native callers may pass any overlap; the
// training step's buffers are all apart.
inline bool products_independent(const DenseBackwardArgs& d) {
  const i64 activations = d.n_rows * d.fan_out, inputs = d.n_rows * d.fan_in,
            weights = d.fan_in * d.fan_out;
  const FloatSpan grad_out{d.grad_out, activations}, pre{d.pre, activations};
  const FloatSpan grad_pre{d.grad_pre, activations}, grad_x{d.grad_x, inputs};
  const FloatSpan grad_weight{d.grad_weight, weights}, grad_bias{d.grad_bias, d.fan_out};
  const FloatSpan grad_weight_side_writes[] = {grad_weight, grad_bias};
  const FloatSpan grad_weight_side_touches[] = {
      {d.x, inputs}, grad_out, pre, grad_weight, grad_bias};
  const FloatSpan grad_x_side_writes[] = {grad_pre, grad_x};
  const FloatSpan grad_x_side_touches[] = {{d.weight, weights}, grad_out, pre, grad_pre, grad_x};
  // The grad_weight side also writes the first part of grad_pre, so grad_pre
  // must not overlap the grad_x side's other arrays either (the weights, grad_x).
  const FloatSpan formed_by_both[] = {grad_pre};
  const FloatSpan grad_x_side_others[] = {{d.weight, weights}, grad_x};
  return !any_overlap(grad_x_side_writes, grad_weight_side_touches) &&
         !any_overlap(grad_weight_side_writes, grad_x_side_touches) &&
         !any_overlap(formed_by_both, grad_x_side_others);
}

template <Activation Act>
void dense_backward_act(const DenseBackwardArgs& d, int n_threads) {
  for (i64 j = 0; j < d.fan_out; ++j) d.grad_bias[j] = 0.0f;
  if (d.fan_in == 0) {
    // No weight rows: the GEMM below has no output and never packs, so
    // grad_pre and the bias gradient are formed here (no grad_x either).
    for (i64 i = 0; i < d.n_rows; ++i)
      for (i64 j = 0; j < d.fan_out; ++j) {
        const i64 at = i * d.fan_out + j;
        d.grad_pre[at] = d.grad_out[at] * activation_derivative(d.pre[at], Act, d.negative_slope);
        d.grad_bias[j] += d.grad_pre[at];
      }
    return;
  }
  // grad_weight, grad_pre formed while packing.
  const GemmArgs gw = weight_gradient_product(d);
  const int threads = gemm_threads(gw, n_threads);
  if (d.grad_x && threads == 2 && products_independent(d)) {
    backward_products_side_by_side<Act>(d, gw);
    return;
  }
  const MaskedGradientB<Act> masked{d.grad_out,  d.pre,     d.grad_pre,
                                    d.grad_bias, d.fan_out, d.negative_slope};
  gemm_blocked(gw, PlainEpilogue{}, threads, masked);
  if (d.grad_x) gemm(input_gradient_product(d), n_threads);
}

void dense_backward(const DenseBackwardArgs& d, int n_threads) {
  switch (d.activation) {
    case Activation::identity:
      return dense_backward_act<Activation::identity>(d, n_threads);
    case Activation::relu:
      return dense_backward_act<Activation::relu>(d, n_threads);
    case Activation::leaky_relu:
      return dense_backward_act<Activation::leaky_relu>(d, n_threads);
  }
}

// ---- The backward of a stack of layers, pipelined on two threads ----------
//
// dense_backward_layers runs layers[count - 1], ..., layers[0], each as
// dense_backward would, where layers[i].grad_out is what layers[i + 1] wrote
// into its grad_x. Layer by layer on two threads (backward_products_side_by_side),
// both threads meet at the end of every layer, and the later one waits: in a
// deep-narrow step on Zen 3 the 11 layers' backward took 1.8 ms on 2 threads
// against 3.0 ms on one, where the products alone would take 1.5.
//
// Pipelined, one thread runs the chain that each layer needs from the one
// above it (form grad_pre, then grad_x = grad_pre @ weight.T), and the other
// the weight gradients (grad_weight = x.T @ grad_pre and grad_bias), each
// starting as soon as the chain has formed that layer's grad_pre. Nobody waits
// for the weight gradients until the end, so the threads meet once. The first
// layer has no grad_x: its weight gradient's columns are shared out, a part
// for each thread and middle pieces for whichever is free first.
//
// Same bits as in turn: every product is a one-thread product of its own (a
// product's elements do not depend on how its columns are split), and the
// weight thread packs grad_pre as formed (times 1, exact) with the bias sums
// in the same order as MaskedGradientB packing grad_out.

// grad_pre of a whole layer.
inline void form_layer_grad_pre(const DenseBackwardArgs& d) {
  const i64 count = d.n_rows * d.fan_out;
  switch (d.activation) {
    case Activation::identity:
      return form_grad_pre<Activation::identity>(d.grad_out, d.pre, d.grad_pre, count,
                                                 d.negative_slope);
    case Activation::relu:
      return form_grad_pre<Activation::relu>(d.grad_out, d.pre, d.grad_pre, count,
                                             d.negative_slope);
    case Activation::leaky_relu:
      return form_grad_pre<Activation::leaky_relu>(d.grad_out, d.pre, d.grad_pre, count,
                                                   d.negative_slope);
  }
}

// Columns [columns.begin, columns.end) of grad_weight and grad_bias from the
// formed grad_pre, on the calling thread.
inline void weight_gradient_columns(const DenseBackwardArgs& d, IndexRange columns,
                                    const GemmTuning& tuning, const GemmWorkspace& workspace) {
  const i64 col0 = columns.begin, cols = columns.end - columns.begin;
  if (cols <= 0) return;
  for (i64 j = col0; j < columns.end; ++j) d.grad_bias[j] = 0.0f;
  GemmArgs gw = weight_gradient_product(d);
  gw.n = cols;
  gw.c += col0;
  // grad_pre is already masked: packed through the identity's act' (exactly 1).
  const MaskedGradientB<Activation::identity> formed{d.grad_pre + col0,  d.grad_pre + col0, nullptr,
                                                     d.grad_bias + col0, d.fan_out,         0.0f};
  gemm_blocked_in(gw, PlainEpilogue{}, 1, formed, tuning, workspace);
}

// Whether the two threads of the pipeline touch memory apart: the weight
// thread writes grad_weight and grad_bias, which nothing else touches, and
// reads the inputs x, which the chain must not write; grad_pre, handed from
// the chain to the weight thread, must lie apart from everything else and
// from each other. (In turn, callers may alias more: those calls run in turn.)
inline bool layers_apart_for_pipeline(const DenseBackwardArgs* layers, i64 count) {
  std::vector<MemorySpan> weight_writes, weight_reads, chain_touches, chain_writes, handed;
  for (i64 i = 0; i < count; ++i) {
    const DenseBackwardArgs& d = layers[i];
    const i64 activations = d.n_rows * d.fan_out, inputs = d.n_rows * d.fan_in;
    weight_writes.push_back(FloatSpan{d.grad_weight, d.fan_in * d.fan_out}.bytes());
    weight_writes.push_back(FloatSpan{d.grad_bias, d.fan_out}.bytes());
    weight_reads.push_back(FloatSpan{d.x, inputs}.bytes());
    handed.push_back(FloatSpan{d.grad_pre, activations}.bytes());
    const MemorySpan grad_x = FloatSpan{d.grad_x, d.grad_x ? inputs : 0}.bytes();
    chain_writes.push_back(grad_x);
    for (MemorySpan s :
         {grad_x, FloatSpan{d.grad_out, activations}.bytes(), FloatSpan{d.pre, activations}.bytes(),
          FloatSpan{d.weight, d.fan_in * d.fan_out}.bytes()})
      chain_touches.push_back(s);
  }
  std::vector<MemorySpan> all_but_handed = chain_touches;
  all_but_handed.insert(all_but_handed.end(), weight_writes.begin(), weight_writes.end());
  all_but_handed.insert(all_but_handed.end(), weight_reads.begin(), weight_reads.end());
  // Both threads write parts of the first layer's weight gradient and read its
  // x: so the weight gradients must also lie apart from each other and from
  // every x (in turn, a later layer's write would win; at once, they race).
  return !any_overlap_between(weight_writes, chain_touches) &&
         !any_overlap_between(chain_writes, weight_reads) && !any_two_overlap(weight_writes) &&
         !any_overlap_between(weight_writes, weight_reads) && !any_two_overlap(handed) &&
         !any_overlap_between(handed, all_but_handed);
}

// Whether the stack goes through the pipeline: on 2 threads or more, when no
// layer's weight gradient would get more than 2 (larger layers on more
// threads split each product among all of them, layer by layer) and some
// layer's would get 2 (a stack too small for two threads runs on one), every
// layer but the first has a grad_x and the first has none (the chain computes
// no grad_x there), and none is empty.
inline bool pipeline_pays(const DenseBackwardArgs* layers, i64 count, int n_threads) {
  if (n_threads < 2 || count < 2) return false;
  bool some_on_two = false;
  for (i64 i = 0; i < count; ++i) {
    const DenseBackwardArgs& d = layers[i];
    if (d.fan_in <= 0 || d.fan_out <= 0 || d.n_rows <= 0 || (i > 0) != (d.grad_x != nullptr))
      return false;
    const int threads = gemm_threads(weight_gradient_product(d), n_threads);
    if (threads > 2) return false;
    some_on_two = some_on_two || threads == 2;
  }
  return some_on_two && layers_apart_for_pipeline(layers, count);
}

// Pieces of the first layer's middle third (dense_backward_layers).
constexpr int kMiddlePieces = 4;

void dense_backward_layers(const DenseBackwardArgs* layers, std::int64_t count, int n_threads) {
  if (!pipeline_pays(layers, count, n_threads)) {
    for (i64 i = count; i-- > 0;) dense_backward(layers[i], n_threads);
    return;
  }
  const GemmTuning tuning = gemm_tuning();
  const DenseBackwardArgs& first = layers[0];
  // The first layer's weight gradient, in whole panels: a third for the chain,
  // a third for the weight thread, and the third between them in pieces, each
  // to whichever thread is free, until none is left. Each thread's products
  // run at their own rate (Zen 3, medium step: the weight thread's were the
  // slower, 21-23 ms against 20 with halves) and the host's load moves it.
  // With the middle third in one piece the threads ended 0.2-3 ms apart (mean
  // per step, medium step on 2 threads, Zen 3); in 4 pieces the backward took
  // 0.984 of the time (median of 15 paired rounds of 20 steps). More pieces
  // cost more: each packs the layer's x again (0.8 MB in the medium net).
  const i64 panels = ceil_div(first.fan_out, RS_NR);
  const i64 chain_end = min_i64(first.fan_out, panels / 3 * RS_NR);
  const i64 weights_begin = min_i64(first.fan_out, 2 * panels / 3 * RS_NR);
  const i64 middle_panels = ceil_div(weights_begin - chain_end, RS_NR);
  std::atomic<int> next_piece{0};
  auto take_middle = [&](const GemmWorkspace& workspace) {
    for (int piece; (piece = next_piece.fetch_add(1, std::memory_order_relaxed)) < kMiddlePieces;) {
      const IndexRange piece_panels = share_of(middle_panels, piece, kMiddlePieces);
      weight_gradient_columns(first,
                              {chain_end + piece_panels.begin * RS_NR,
                               min_i64(weights_begin, chain_end + piece_panels.end * RS_NR)},
                              tuning, workspace);
    }
  };

  // Workspaces, taken here on the calling thread (a share must not allocate):
  // each thread's largest product.
  GemmWorkspaceSize chain_size = gemm_workspace_size(first.fan_out, first.n_rows, tuning, 1);
  GemmWorkspaceSize weight_size{0, 0};
  for (i64 i = 0; i < count; ++i) {
    const DenseBackwardArgs& d = layers[i];
    const GemmWorkspaceSize w = gemm_workspace_size(d.fan_out, d.n_rows, tuning, 1);
    weight_size = {std::max(weight_size.a_floats, w.a_floats),
                   std::max(weight_size.b_floats, w.b_floats)};
    if (i == 0) continue;
    const GemmWorkspaceSize x = gemm_workspace_size(d.fan_in, d.fan_out, tuning, 1);
    chain_size = {std::max(chain_size.a_floats, x.a_floats),
                  std::max(chain_size.b_floats, x.b_floats)};
  }
  auto lines = [](i64 floats) { return ceil_div(floats, 16) * 16; };
  const i64 a_offset = lines(chain_size.a_floats), b_offset = lines(chain_size.b_floats);
  float* const a_pack = scratch<float>(kPackA, a_offset + weight_size.a_floats);
  float* const b_pack = scratch<float>(kPackB, b_offset + weight_size.b_floats);
  const GemmWorkspace chain_workspace{a_pack, b_pack};
  const GemmWorkspace weight_workspace{a_pack + a_offset, b_pack + b_offset};
  std::atomic<bool>* const formed = scratch<std::atomic<bool>>(kLayerFlags, count);
  for (i64 i = 0; i < count; ++i) new (formed + i) std::atomic<bool>(false);

  // Share 0 is the chain, claimed first: the weight thread's waits for its
  // flags always end (wait_for_earlier_share).
  run_shares(2, [&](int share) {
    if (share == 0) {
      for (i64 i = count; i-- > 0;) {
        form_layer_grad_pre(layers[i]);
        formed[i].store(true, std::memory_order_release);
        if (i > 0) input_gradient(layers[i], tuning, chain_workspace);
      }
      weight_gradient_columns(first, {0, chain_end}, tuning, chain_workspace);
      take_middle(chain_workspace);
      return;
    }
    for (i64 i = count; i-- > 1;) {
      wait_for_earlier_share(formed[i]);
      weight_gradient_columns(layers[i], {0, layers[i].fan_out}, tuning, weight_workspace);
    }
    wait_for_earlier_share(formed[0]);
    weight_gradient_columns(first, {weights_begin, first.fan_out}, tuning, weight_workspace);
    take_middle(weight_workspace);
  });
}
