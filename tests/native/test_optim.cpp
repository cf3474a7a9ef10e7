// The optimizer updates (SGD plain, with momentum, Nesterov and weight decay;
// Adam with weight decay and moment cohorts) against the same formulas in
// double, PyTorch's conventions: weight decay added to the gradient, momentum
// without dampening, Adam with bias correction. Each runs as a dry run
// (nothing written, finiteness reported) and committed, on sizes from 0 to
// large enough for two threads (8 * size >= 4e6).

#include <cmath>
#include <limits>

#include "kernel_test.hpp"

namespace rs::testing {
namespace {

const std::int64_t kSizes[] = {0, 1, 3, 17, 1000, 600001};

bool close(float actual, double expected, double atol) {
  return std::fabs(actual - expected) <= 4e-7 * std::fabs(expected) + atol;
}

struct SgdCase {
  const char* label;
  float lr, momentum, weight_decay;
  bool nesterov;
};

const SgdCase kSgdCases[] = {{"plain", 0.1f, 0.0f, 0.0f, false},
                             {"weight decay", 0.1f, 0.0f, 0.01f, false},
                             {"momentum", 0.05f, 0.9f, 0.0f, false},
                             {"nesterov", 0.05f, 0.9f, 0.0f, true},
                             {"nesterov, weight decay", 0.05f, 0.9f, 0.01f, true}};

class OptimizerTest : public KernelTest {};

// The SGD update of element i in double: (new param, new velocity).
std::pair<double, double> sgd_reference(const SgdCase& c, float w, float grad, float velocity) {
  double g = grad + static_cast<double>(c.weight_decay) * w;
  double v = 0.0;
  if (c.momentum != 0.0f) {
    v = static_cast<double>(c.momentum) * velocity + g;
    g = c.nesterov ? g + static_cast<double>(c.momentum) * v : v;
  }
  return {w - static_cast<double>(c.lr) * g, v};
}

TEST_P(OptimizerTest, SgdMatchesDoubleReference) {
  for (const SgdCase& c : kSgdCases) {
    for (std::int64_t n : kSizes) {
      SCOPED_TRACE(::testing::Message() << "SGD " << c.label << ", size " << n);
      std::mt19937 rng(static_cast<unsigned>(n + 1));
      const std::vector<float> param0 = random_floats(static_cast<std::size_t>(n), rng);
      const std::vector<float> grad = random_floats(param0.size(), rng);
      const std::vector<float> velocity0 = random_floats(param0.size(), rng);
      std::vector<float> param = param0, velocity = velocity0;
      const bool momentum = c.momentum != 0.0f;
      const SgdArgs s{
          param.data(),   grad.data(), momentum ? velocity.data() : nullptr, n, c.lr, c.momentum,
          c.weight_decay, c.nesterov};
      EXPECT_TRUE(kernels().sgd_update(s, false, threads()));
      ASSERT_EQ(param, param0) << "a dry run wrote the parameter";
      ASSERT_EQ(velocity, velocity0) << "a dry run wrote the velocity";
      EXPECT_TRUE(kernels().sgd_update(s, true, threads()));
      int failures = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const auto [w, v] = sgd_reference(c, param0[i], grad[i], velocity0[i]);
        if ((!close(param[i], w, 1e-7) || (momentum && !close(velocity[i], v, 1e-7))) &&
            failures++ < 5)
          ADD_FAILURE() << "element " << i << ": param " << param[i] << " (expected " << w
                        << "), velocity " << velocity[i] << " (expected " << v << ")";
      }
      EXPECT_EQ(failures, 0);
      if (!momentum) {
        EXPECT_EQ(velocity, velocity0) << "velocity written without momentum";
      }
    }
  }
}

TEST_P(OptimizerTest, SgdDryRunReportsNonFiniteAndWritesNothing) {
  for (std::int64_t n : {1, 17, 600001}) {
    std::mt19937 rng(2);
    const std::vector<float> param0 = random_floats(static_cast<std::size_t>(n), rng);
    std::vector<float> grad = random_floats(param0.size(), rng), param = param0,
                       velocity(param0.size());
    grad[static_cast<std::size_t>(n - 1)] = std::numeric_limits<float>::infinity();
    const SgdArgs s{param.data(), grad.data(), velocity.data(), n, 0.1f, 0.9f, 0.0f, false};
    EXPECT_FALSE(kernels().sgd_update(s, false, threads())) << "size " << n;
    EXPECT_EQ(param, param0);
  }
}

// Per-column statistics of a committed update: (new - old)^2 and old^2 summed
// over the rows of a (rows, cols) parameter.
TEST_P(OptimizerTest, SgdColumnStatistics) {
  for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {17, 33}, {1000, 701}}) {
    SCOPED_TRACE(::testing::Message() << rows << " x " << cols);
    std::mt19937 rng(static_cast<unsigned>(rows));
    const std::vector<float> param0 = random_floats(static_cast<std::size_t>(rows * cols), rng);
    const std::vector<float> grad = random_floats(param0.size(), rng);
    std::vector<float> param = param0, velocity(param0.size()), delta(cols, -1.0f),
                       old(cols, -1.0f);
    const ColumnUpdateStats stats{cols, delta.data(), old.data()};
    SgdArgs s{param.data(), grad.data(), velocity.data(), rows * cols, 0.1f, 0.9f, 0.0f, false};
    s.column_stats = &stats;
    EXPECT_TRUE(kernels().sgd_update(s, true, threads()));
    for (std::int64_t c = 0; c < cols; ++c) {
      double expected_delta = 0.0, expected_old = 0.0;
      for (std::int64_t r = 0; r < rows; ++r) {
        const double d = static_cast<double>(param[r * cols + c]) - param0[r * cols + c];
        expected_delta += d * d;
        expected_old += static_cast<double>(param0[r * cols + c]) * param0[r * cols + c];
      }
      EXPECT_TRUE(close_to(delta[c], expected_delta, expected_delta, 1e-4)) << "column " << c;
      EXPECT_TRUE(close_to(old[c], expected_old, expected_old)) << "column " << c;
    }
  }
}

// The statistics do not depend on the thread count: computed on this test's
// threads and on one, they agree bit for bit (1000 x 701 is large enough for the
// kernel to use 2 threads).
TEST_P(OptimizerTest, SgdColumnStatisticsAreTheSameOnAnyThreadCount) {
  const std::int64_t rows = 1000, cols = 701;
  std::mt19937 rng(7);
  const std::vector<float> param0 = random_floats(static_cast<std::size_t>(rows * cols), rng);
  const std::vector<float> grad = random_floats(param0.size(), rng);
  std::vector<std::vector<float>> deltas, olds;
  for (int n_threads : {1, threads()}) {
    std::vector<float> param = param0, velocity(param0.size()), delta(cols), old(cols);
    const ColumnUpdateStats stats{cols, delta.data(), old.data()};
    SgdArgs s{param.data(), grad.data(), velocity.data(), rows * cols, 0.1f, 0.9f, 0.0f, false};
    s.column_stats = &stats;
    EXPECT_TRUE(kernels().sgd_update(s, true, n_threads));
    deltas.push_back(delta);
    olds.push_back(old);
  }
  EXPECT_EQ(deltas[0], deltas[1]);
  EXPECT_EQ(olds[0], olds[1]);
}

struct AdamCase {
  const char* label;
  float lr, beta1, beta2, eps, weight_decay;
  std::int64_t step;
};

const AdamCase kAdamCases[] = {{"first step", 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1},
                               {"step 10", 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 10},
                               {"weight decay", 1e-2f, 0.8f, 0.99f, 1e-6f, 0.01f, 3}};

struct AdamElement {
  double param, first, second;
};

AdamElement adam_reference(const AdamCase& c, std::int64_t t, float w, float grad, float first,
                           float second) {
  const double g = grad + static_cast<double>(c.weight_decay) * w;
  const double m = c.beta1 * static_cast<double>(first) + (1.0 - c.beta1) * g;
  const double v = c.beta2 * static_cast<double>(second) + (1.0 - c.beta2) * g * g;
  const double m_hat = m / (1.0 - std::pow(static_cast<double>(c.beta1), t));
  const double v_hat = v / (1.0 - std::pow(static_cast<double>(c.beta2), t));
  return {w - c.lr * m_hat / (std::sqrt(v_hat) + c.eps), m, v};
}

// Runs one Adam case; with cohorts, element i's moments restarted after
// update cohort_start[i % 3], so its bias correction counts from there.
void check_adam(const KernelSet& kernels, int threads, const AdamCase& c, std::int64_t n,
                bool cohorts) {
  SCOPED_TRACE(::testing::Message()
               << "Adam " << c.label << ", size " << n << (cohorts ? ", cohorts" : ""));
  std::mt19937 rng(static_cast<unsigned>(n + 7));
  const std::vector<float> param0 = random_floats(static_cast<std::size_t>(n), rng);
  const std::vector<float> grad = random_floats(param0.size(), rng);
  const std::vector<float> first0 = random_floats(param0.size(), rng, -0.1f, 0.1f);
  const std::vector<float> second0 = random_floats(param0.size(), rng, 0.0f, 0.01f);
  std::vector<float> param = param0, first = first0, second = second0;
  std::vector<std::int32_t> cohort(param0.size());
  for (std::size_t i = 0; i < cohort.size(); ++i) cohort[i] = static_cast<std::int32_t>(i % 3);
  const std::int64_t cohort_start[] = {0, c.step / 2, c.step - 1};
  AdamArgs a{param.data(), grad.data(), first.data(), second.data(),  n,     c.lr,
             c.beta1,      c.beta2,     c.eps,        c.weight_decay, c.step};
  if (cohorts) {
    a.cohort = cohort.data();
    a.cohort_start = cohort_start;
    a.n_cohorts = 3;
  }
  EXPECT_TRUE(kernels.adam_update(a, false, threads));
  ASSERT_EQ(param, param0) << "a dry run wrote the parameter";
  ASSERT_EQ(first, first0) << "a dry run wrote the first moment";
  EXPECT_TRUE(kernels.adam_update(a, true, threads));
  int failures = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t t = cohorts ? c.step - cohort_start[i % 3] : c.step;
    const AdamElement e = adam_reference(c, t, param0[i], grad[i], first0[i], second0[i]);
    // The update itself is about lr in size; its float32 error a few ulps of it.
    if ((!close(param[i], e.param, 1e-5 * c.lr) || !close(first[i], e.first, 1e-8) ||
         !close(second[i], e.second, 1e-10)) &&
        failures++ < 5)
      ADD_FAILURE() << "element " << i << ": param " << param[i] << " (expected " << e.param
                    << "), first " << first[i] << " (" << e.first << "), second " << second[i]
                    << " (" << e.second << ")";
  }
  EXPECT_EQ(failures, 0);
}

TEST_P(OptimizerTest, AdamMatchesDoubleReference) {
  for (const AdamCase& c : kAdamCases)
    for (std::int64_t n : kSizes) check_adam(kernels(), threads(), c, n, false);
}

TEST_P(OptimizerTest, AdamCohortsCountStepsFromTheirReset) {
  for (std::int64_t n : {3, 17, 600001}) check_adam(kernels(), threads(), kAdamCases[1], n, true);
}

TEST_P(OptimizerTest, AdamDryRunReportsNonFiniteAndWritesNothing) {
  const std::int64_t n = 600001;
  std::mt19937 rng(9);
  const std::vector<float> param0 = random_floats(static_cast<std::size_t>(n), rng);
  std::vector<float> grad = random_floats(param0.size(), rng), param = param0, first(param0.size()),
                     second(param0.size());
  grad[12345] = std::numeric_limits<float>::quiet_NaN();
  const AdamArgs a{param.data(), grad.data(), first.data(), second.data(), n, 1e-3f,
                   0.9f,         0.999f,      1e-8f,        0.0f,          1};
  EXPECT_FALSE(kernels().adam_update(a, false, threads()));
  EXPECT_EQ(param, param0);
}

RS_KERNEL_TEST_SUITE(OptimizerTest);

}  // namespace
}  // namespace rs::testing
