// GEMM, C = op(A) @ op(B), against a double-precision triple loop, for every
// combination of transposes, on shapes that are empty, tiny, odd, just past
// the KC block (256), large enough for two threads (2mnk >= 4e6 flops) and
// large enough that A is packed rather than read in place (> 256K floats).

#include <cmath>
#include <limits>
#include <tuple>

#include "kernel_test.hpp"

namespace rs::testing {
namespace {

struct Shape {
  std::int64_t m, n, k;
};

const Shape kShapes[] = {{0, 5, 3},     {4, 0, 3},    {3, 5, 0},       {1, 1, 1},
                         {3, 3, 3},     {17, 17, 17}, {1, 100, 3},     {100, 1, 17},
                         {17, 3, 100},  {3, 17, 257}, {101, 103, 259}, {130, 120, 140},
                         {601, 33, 520}};

class GemmTest : public KernelTest {
 protected:
  // Runs one product with C's row stride ldc >= n and checks every element of
  // C and that the padding past column n is left alone.
  void check(const Shape& s, bool transpose_a, bool transpose_b, std::int64_t ldc) {
    SCOPED_TRACE(::testing::Message()
                 << "m=" << s.m << " n=" << s.n << " k=" << s.k << " transpose_a=" << transpose_a
                 << " transpose_b=" << transpose_b << " ldc=" << ldc);
    std::mt19937 rng(static_cast<unsigned>(s.m * 7919 + s.n * 131 + s.k));
    // A is stored (m, k), or (k, m) when transposed; B (k, n), or (n, k).
    const std::vector<float> a = random_floats(static_cast<std::size_t>(s.m * s.k), rng);
    const std::vector<float> b = random_floats(static_cast<std::size_t>(s.k * s.n), rng);
    const float kPadding = 12345.0f;
    // NaN everywhere C is to be written: an element the kernel skips fails.
    std::vector<float> c(static_cast<std::size_t>(s.m * ldc + 1),
                         std::numeric_limits<float>::quiet_NaN());
    for (std::int64_t i = 0; i < s.m; ++i)
      for (std::int64_t j = s.n; j < ldc; ++j) c[i * ldc + j] = kPadding;
    // Strides as the binding sets them: a transposed operand is a swap of strides.
    const GemmArgs g{s.m,
                     s.n,
                     s.k,
                     a.data(),
                     transpose_a ? 1 : s.k,
                     transpose_a ? s.m : 1,
                     b.data(),
                     transpose_b ? 1 : s.n,
                     transpose_b ? s.k : 1,
                     c.data(),
                     ldc};
    kernels().gemm(g, threads());
    int failures = 0;
    for (std::int64_t i = 0; i < s.m; ++i) {
      for (std::int64_t j = 0; j < s.n; ++j) {
        double sum = 0.0, magnitude = 0.0;
        for (std::int64_t p = 0; p < s.k; ++p) {
          const double term = static_cast<double>(a[i * g.a_row_stride + p * g.a_col_stride]) *
                              b[p * g.b_row_stride + j * g.b_col_stride];
          sum += term;
          magnitude += std::fabs(term);
        }
        if (!close_to(c[i * ldc + j], sum, magnitude) && failures++ < 5)
          ADD_FAILURE() << "C[" << i << ", " << j << "] = " << c[i * ldc + j] << ", expected "
                        << sum;
      }
      for (std::int64_t j = s.n; j < ldc; ++j)
        if (c[i * ldc + j] != kPadding && failures++ < 5)
          ADD_FAILURE() << "padding C[" << i << ", " << j << "] was written";
    }
    EXPECT_EQ(failures, 0);
  }
};

TEST_P(GemmTest, MatchesDoubleReferenceForEveryTranspose) {
  for (const Shape& s : kShapes)
    for (bool transpose_a : {false, true})
      for (bool transpose_b : {false, true}) check(s, transpose_a, transpose_b, s.n);
}

TEST_P(GemmTest, WritesOnlyTheFirstNColumnsOfEachRow) {
  for (const Shape& s : {Shape{3, 5, 7}, Shape{17, 33, 19}, Shape{130, 120, 140}})
    for (bool transpose_a : {false, true}) check(s, transpose_a, false, s.n + 3);
}

TEST_P(GemmTest, SameBitsOnOneAndTwoThreads) {
  const Shape s{130, 120, 140};
  std::mt19937 rng(5);
  const std::vector<float> a = random_floats(static_cast<std::size_t>(s.m * s.k), rng);
  const std::vector<float> b = random_floats(static_cast<std::size_t>(s.k * s.n), rng);
  std::vector<float> one(static_cast<std::size_t>(s.m * s.n)), many(one.size());
  GemmArgs g{s.m, s.n, s.k, a.data(), s.k, 1, b.data(), s.n, 1, one.data(), s.n};
  kernels().gemm(g, 1);
  g.c = many.data();
  kernels().gemm(g, threads());
  EXPECT_EQ(one, many);
}

RS_KERNEL_TEST_SUITE(GemmTest);

}  // namespace
}  // namespace rs::testing
