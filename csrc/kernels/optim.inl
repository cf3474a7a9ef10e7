// In-place optimizer updates (PyTorch's conventions: weight decay is added to
// the gradient, momentum without dampening, Adam with bias correction).
// Each runs either as a check (commit == false: write nothing, report whether
// every new value is finite) or as the update itself; the trainer checks all
// parameters before committing any, so a step that would overflow leaves the
// model exactly as it was.

inline int elementwise_threads(i64 size, int n_threads) {
  return threads_for_flops(50.0 * size, n_threads);
}

bool sgd_update(const SgdArgs& s, bool commit, int n_threads) {
  bool finite = true;
  const int nt = elementwise_threads(s.size, n_threads);
  const bool has_velocity = s.velocity != nullptr;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static) reduction(&& : finite)
  for (i64 i = 0; i < s.size; ++i) {
    const float w = s.param[i];
    float g = s.grad[i] + s.weight_decay * w;
    float v = 0.0f;
    if (has_velocity) {
      v = s.momentum * s.velocity[i] + g;
      g = s.nesterov ? g + s.momentum * v : v;
    }
    const float w_new = w - s.lr * g;
    finite = finite && __builtin_isfinite(w_new) && __builtin_isfinite(v);
    if (commit) {
      s.param[i] = w_new;
      if (has_velocity) s.velocity[i] = v;
    }
  }
  return finite;
}

bool adam_update(const AdamArgs& a, bool commit, int n_threads) {
  bool finite = true;
  const int nt = elementwise_threads(a.size, n_threads);
  const double t = static_cast<double>(a.step);
  const float correction1 = static_cast<float>(1.0 - __builtin_pow(a.beta1, t));
  const float correction2 = static_cast<float>(1.0 - __builtin_pow(a.beta2, t));
  const float step_size = a.lr / correction1;
  const float inv_sqrt_c2 = static_cast<float>(1.0 / __builtin_sqrt(correction2));
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static) reduction(&& : finite)
  for (i64 i = 0; i < a.size; ++i) {
    const float w = a.param[i];
    const float g = a.grad[i] + a.weight_decay * w;
    const float m = a.beta1 * a.first_moment[i] + (1.0f - a.beta1) * g;
    const float v = a.beta2 * a.second_moment[i] + (1.0f - a.beta2) * g * g;
    // w -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / c1, v_hat = v / c2
    const float w_new = w - step_size * m / (__builtin_sqrtf(v) * inv_sqrt_c2 + a.eps);
    finite = finite && __builtin_isfinite(w_new) && __builtin_isfinite(v);
    if (commit) {
      a.param[i] = w_new;
      a.first_moment[i] = m;
      a.second_moment[i] = v;
    }
  }
  return finite;
}
