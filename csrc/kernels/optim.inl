// In-place optimizer updates (PyTorch's conventions: weight decay is added to
// the gradient, momentum without dampening, Adam with bias correction).
// Each runs either as a check (commit == false: write nothing, report whether
// every new value is finite) or as the update itself; the trainer checks all
// parameters before committing any, so a step that would overflow leaves the
// model exactly as it was.
//
// The loops are templated on every switch so that they vectorize: a branchy
// loop with an early-exit flag ran at 0.8 ns per element (scalar); this form
// runs at memory speed. x - x == 0 holds exactly for finite x and fails for
// Inf and NaN, and accumulates as an integer flag without a branch.

inline bool not_finite(float x) { return !((x - x) == 0.0f); }

// Optimizer state (a velocity, Adam's moments) below the smallest normal float
// is stored as zero. Under round-to-nearest, beta * v of a subnormal v of k units
// in the last place rounds back to k whenever k is below about 1 / (2 (1 - beta)):
// k <= 4 for a momentum of 0.9, k <= 500 for Adam's float32(0.999). So the state of a
// parameter whose gradient has stopped (the weights into a dead unit) never
// decays to zero but stays subnormal for good, and on Intel cores every
// arithmetic operation on a subnormal takes a microcode assist: the tiny
// training step ran at 88 us instead of 25 after a few thousand steps (Intel
// family 6 model 167), with about a thousand stuck velocities. Only the stored
// state is flushed: each step's weights come from the unflushed values. A later
// velocity or first moment differs only where the gradient is below about 2^-100
// (mu * 0 + g and mu * v + g round alike for a subnormal v and any larger g); a
// later second moment where the gradient is below about 2^-50, which moves the
// weights only when eps is below about 1e-18 (a larger eps swamps the square
// root of any subnormal).
// A subnormal becomes a zero of its sign (what a CPU's flush-to-zero mode would
// give); zeros, normals, Inf and NaN are kept. Done on the bits, without a
// branch, so the loops stay vectorized (a compare-and-select on the float
// compiled to a branch in one of them: 0.45 ns per element, scalar).
inline float flush_subnormal(float x) {
  constexpr std::uint32_t kExponentBits = 0x7f800000u, kSignBit = 0x80000000u;
  const std::uint32_t bits = __builtin_bit_cast(std::uint32_t, x);
  const std::uint32_t keep = (bits & kExponentBits) != 0 ? ~0u : kSignBit;
  const std::uint32_t kept = bits & keep;
  return __builtin_bit_cast(float, kept);
}

inline int elementwise_threads(i64 size, int n_threads) {
  // A parallel region pays off only on arrays far larger than the L1 cache.
  return threads_for_flops(8.0 * size, n_threads);
}

// Runs body(begin, end, share) -> bool over [0, size) split into n_threads
// contiguous ranges, share numbering them in order; true when every range
// returned true. A plain call on the calling thread for one thread.
template <class Body>
bool all_ranges(i64 size, int n_threads, const Body& body) {
  if (n_threads <= 1) return body(i64{0}, size, 0);
  std::atomic<int> failures{0};
  run_shares(n_threads, [&](int share) {
    const IndexRange range = share_of(size, share, n_threads);
    if (!body(range.begin, range.end, share)) failures.fetch_add(1, std::memory_order_relaxed);
  });
  return failures.load(std::memory_order_relaxed) == 0;
}

// Track: also add (new - old)^2 and old^2 of element begin + c into
// delta_sq[c] and old_sq[c] (callers pass one row at a time).
template <bool Momentum, bool Nesterov, bool Commit, bool Track = false>
bool sgd_range(const SgdArgs& s, i64 begin, i64 end, float* __restrict delta_sq = nullptr,
               float* __restrict old_sq = nullptr) {
  const float lr = s.lr, mu = s.momentum, wd = s.weight_decay;
  float* __restrict param = s.param;
  const float* __restrict grad = s.grad;
  float* __restrict velocity = s.velocity;
  int bad = 0;
  for (i64 i = begin; i < end; ++i) {
    const float w = param[i];
    float g = grad[i] + wd * w;
    float v = 0.0f;
    if (Momentum) {
      v = mu * velocity[i] + g;
      g = Nesterov ? g + mu * v : v;
    }
    const float w_new = w - lr * g;
    bad |= not_finite(w_new) | not_finite(v);
    if (Commit) {
      param[i] = w_new;
      if (Momentum) velocity[i] = flush_subnormal(v);
    }
    if (Track) {
      delta_sq[i - begin] += (w_new - w) * (w_new - w);
      old_sq[i - begin] += w * w;
    }
  }
  return bad == 0;
}

// Commits an update row by row, collecting per-column statistics. The rows are
// cut into chunks of kReductionRows whatever the thread count; each chunk sums
// into partial arrays of its own, added in chunk order at the end, so the
// statistics are the same bit for bit on any number of threads (when the threads
// split the rows into one range each, 1 and 2 threads summed differently).
template <class RowUpdate>
bool commit_with_column_stats(i64 size, const ColumnUpdateStats& stats, int nt,
                              const RowUpdate& row_update) {
  const i64 cols = stats.n_columns;
  const i64 rows = size / cols;
  const i64 chunks = ceil_div(rows, kReductionRows);
  float* partials = scratch<float>(kColumnPartials, 2 * chunks * cols);
  for (i64 i = 0; i < 2 * chunks * cols; ++i) partials[i] = 0.0f;
  const int shares = static_cast<int>(min_i64(nt, chunks > 0 ? chunks : 1));
  const bool finite = all_ranges(chunks, shares, [&](i64 chunk_begin, i64 chunk_end, int) {
    bool ok = true;
    for (i64 chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      float* delta = partials + 2 * chunk * cols;
      const i64 row_end = min_i64(rows, (chunk + 1) * kReductionRows);
      for (i64 r = chunk * kReductionRows; r < row_end; ++r)
        ok = row_update(r * cols, (r + 1) * cols, delta, delta + cols) && ok;
    }
    return ok;
  });
  for (i64 c = 0; c < cols; ++c) {
    stats.delta_squared[c] = 0.0f;
    stats.old_squared[c] = 0.0f;
  }
  for (i64 chunk = 0; chunk < chunks; ++chunk)
    for (i64 c = 0; c < cols; ++c) {
      stats.delta_squared[c] += partials[2 * chunk * cols + c];
      stats.old_squared[c] += partials[2 * chunk * cols + cols + c];
    }
  return finite;
}

template <bool Momentum, bool Nesterov>
bool sgd_with(const SgdArgs& s, bool commit, int nt) {
  if (commit && s.column_stats)
    return commit_with_column_stats(
        s.size, *s.column_stats, nt, [&](i64 b, i64 e, float* delta, float* old) {
          return sgd_range<Momentum, Nesterov, true, true>(s, b, e, delta, old);
        });
  if (commit)
    return all_ranges(s.size, nt, [&](i64 b, i64 e, int) {
      return sgd_range<Momentum, Nesterov, true>(s, b, e);
    });
  return all_ranges(
      s.size, nt, [&](i64 b, i64 e, int) { return sgd_range<Momentum, Nesterov, false>(s, b, e); });
}

bool sgd_update(const SgdArgs& s, bool commit, int n_threads) {
  const int nt = elementwise_threads(s.size, n_threads);
  if (s.velocity == nullptr) return sgd_with<false, false>(s, commit, nt);
  if (s.nesterov) return sgd_with<true, true>(s, commit, nt);
  return sgd_with<true, false>(s, commit, nt);
}

// Bias corrections folded into two factors: the step size lr / c1 and
// 1 / sqrt(c2), with c = 1 - beta^t.
struct AdamScale {
  float step_size, inv_sqrt_c2;
};

inline AdamScale adam_scale(const AdamArgs& a, std::int64_t t) {
  const double correction1 = 1.0 - __builtin_pow(a.beta1, static_cast<double>(t));
  const double correction2 = 1.0 - __builtin_pow(a.beta2, static_cast<double>(t));
  return {static_cast<float>(a.lr / correction1),
          static_cast<float>(1.0 / __builtin_sqrt(correction2))};
}

// Cohorts: per-element scales looked up in a small table (one entry per cohort).
template <bool Commit, bool Track = false, bool Cohorts = false>
bool adam_range(const AdamArgs& a, AdamScale scale, const AdamScale* cohort_scales, i64 begin,
                i64 end, float* __restrict delta_sq = nullptr, float* __restrict old_sq = nullptr) {
  const float b1 = a.beta1, b2 = a.beta2, eps = a.eps, wd = a.weight_decay;
  float* __restrict param = a.param;
  const float* __restrict grad = a.grad;
  float* __restrict first = a.first_moment;
  float* __restrict second = a.second_moment;
  int bad = 0;
  for (i64 i = begin; i < end; ++i) {
    const float w = param[i];
    const float g = grad[i] + wd * w;
    const float m = b1 * first[i] + (1.0f - b1) * g;
    const float v = b2 * second[i] + (1.0f - b2) * g * g;
    const AdamScale s = Cohorts ? cohort_scales[a.cohort[i]] : scale;
    // w -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / c1, v_hat = v / c2
    const float w_new = w - s.step_size * m / (__builtin_sqrtf(v) * s.inv_sqrt_c2 + eps);
    bad |= not_finite(w_new) | not_finite(v);
    if (Commit) {
      param[i] = w_new;
      first[i] = flush_subnormal(m);
      second[i] = flush_subnormal(v);
    }
    if (Track) {
      delta_sq[i - begin] += (w_new - w) * (w_new - w);
      old_sq[i - begin] += w * w;
    }
  }
  return bad == 0;
}

template <bool Cohorts>
bool adam_with(const AdamArgs& a, AdamScale scale, const AdamScale* cohort_scales, bool commit,
               int nt) {
  if (commit && a.column_stats)
    return commit_with_column_stats(
        a.size, *a.column_stats, nt, [&](i64 b, i64 e, float* delta, float* old) {
          return adam_range<true, true, Cohorts>(a, scale, cohort_scales, b, e, delta, old);
        });
  if (commit)
    return all_ranges(a.size, nt, [&](i64 b, i64 e, int) {
      return adam_range<true, false, Cohorts>(a, scale, cohort_scales, b, e);
    });
  return all_ranges(a.size, nt, [&](i64 b, i64 e, int) {
    return adam_range<false, false, Cohorts>(a, scale, cohort_scales, b, e);
  });
}

bool adam_update(const AdamArgs& a, bool commit, int n_threads) {
  const int nt = elementwise_threads(a.size, n_threads);
  const AdamScale scale = adam_scale(a, a.step);
  if (a.cohort == nullptr) return adam_with<false>(a, scale, nullptr, commit, nt);
  AdamScale* cohort_scales = scratch<AdamScale>(kCohortScales, a.n_cohorts);
  for (i64 c = 0; c < a.n_cohorts; ++c)
    cohort_scales[c] = adam_scale(a, a.step - a.cohort_start[c]);
  return adam_with<true>(a, scale, cohort_scales, commit, nt);
}
