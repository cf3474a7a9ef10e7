#include "stats/column_counts.hpp"

namespace rs {

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
