// Per-column statistics of a float32 matrix, for watching a training
// loop that runs outside reluscope (the PyTorch monitor reads its tensors' memory):
// memory-bound passes, single-threaded, so they can run inside another library's
// step without competing for its threads.
#pragma once

#include <cstdint>

namespace rs {

// counts[c] += the number of rows r with a[r * cols + c] > 0 (NaN is not > 0).
void count_positive_columns(const float* a, std::int64_t rows, std::int64_t cols,
                            std::int64_t* counts);

}  // namespace rs
