// The column counts the PyTorch monitor reads (stats/column_counts.hpp) against a plain
// loop, on odd shapes and with NaN and signed zeros.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "stats/column_counts.hpp"

namespace rs::testing {
namespace {

std::vector<float> matrix(std::int64_t rows, std::int64_t cols) {
  std::vector<float> a(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = static_cast<float>(std::sin(0.7 * static_cast<double>(i)) * 3.0);
  return a;
}

TEST(ColumnCounts, CountPositiveAddsToTheCounts) {
  for (std::int64_t rows : {0, 1, 3, 17, 1000}) {
    for (std::int64_t cols : {1, 3, 17, 1025}) {
      std::vector<float> a = matrix(rows, cols);
      if (rows > 1) {
        a[0] = std::numeric_limits<float>::quiet_NaN();  // NaN is not > 0
        a[1 % a.size()] = -0.0f;
      }
      std::vector<std::int64_t> counts(static_cast<std::size_t>(cols), 5);
      count_positive_columns(a.data(), rows, cols, counts.data());
      for (std::int64_t c = 0; c < cols; ++c) {
        std::int64_t expected = 5;
        for (std::int64_t r = 0; r < rows; ++r)
          expected += a[static_cast<std::size_t>(r * cols + c)] > 0.0f;
        EXPECT_EQ(counts[static_cast<std::size_t>(c)], expected) << rows << " x " << cols;
      }
    }
  }
}

}  // namespace
}  // namespace rs::testing
