#include "stats/row_stats.hpp"

namespace rs {

void row_sum_squares(const float* a, std::int64_t rows, std::int64_t cols, double* out) {
  // Four independent sums per row: the additions of one do not wait on the others,
  // so the loop keeps up with memory without reassociating any one sum.
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = a + r * cols;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    std::int64_t c = 0;
    for (; c + 4 <= cols; c += 4) {
      const double v0 = row[c], v1 = row[c + 1], v2 = row[c + 2], v3 = row[c + 3];
      s0 += v0 * v0;
      s1 += v1 * v1;
      s2 += v2 * v2;
      s3 += v3 * v3;
    }
    for (; c < cols; ++c) {
      const double v = row[c];
      s0 += v * v;
    }
    out[r] = (s0 + s1) + (s2 + s3);
  }
}

void count_positive_columns(const float* a, std::int64_t rows, std::int64_t cols,
                            std::int64_t* counts) {
  // Rows in blocks of 32-bit counters (vectorizable compares and adds), added to the
  // 64-bit totals once per block: a block never holds 2^31 rows.
  constexpr std::int64_t kBlockRows = 1 << 20;
  constexpr std::int64_t kBlockCols = 1024;
  std::int32_t partial[kBlockCols];
  for (std::int64_t c0 = 0; c0 < cols; c0 += kBlockCols) {
    const std::int64_t width = cols - c0 < kBlockCols ? cols - c0 : kBlockCols;
    for (std::int64_t r0 = 0; r0 < rows; r0 += kBlockRows) {
      const std::int64_t r1 = rows - r0 < kBlockRows ? rows : r0 + kBlockRows;
      for (std::int64_t c = 0; c < width; ++c) partial[c] = 0;
      for (std::int64_t r = r0; r < r1; ++r) {
        const float* row = a + r * cols + c0;
        for (std::int64_t c = 0; c < width; ++c) partial[c] += row[c] > 0.0f;
      }
      for (std::int64_t c = 0; c < width; ++c) counts[c0 + c] += partial[c];
    }
  }
}

}  // namespace rs
