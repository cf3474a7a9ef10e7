// The run-time parameters of the blocked GEMM (gemm_driver.inl): cache blocking
// and software prefetch. Each instruction-set target has defaults; a CPU
// profile (runtime/cpu_profile.hpp) may replace them for its own target.
//
// Only kc changes results: it splits the inner dimension into blocks whose
// partial sums are added to C in turn, so a different kc is a different
// summation order. blocks_per_pass, mc_panels, nc and the prefetch distance
// change speed only.
#pragma once

#include <cstdint>

namespace rs {

struct GemmTuning {
  // Depth of one summation block of the inner dimension: the micro-kernel sums
  // KC products in its registers, then adds them to the partial product.
  std::int64_t kc;
  // Rows of one block of A, in micro-panels of MR rows (MR is the target's):
  // the MC x KC block of A stays in L2.
  std::int64_t mc_panels;
  // Columns of one block of B (KC x NC, packed once, shared by the row blocks).
  // A multiple of every target's NR (32 covers them all).
  std::int64_t nc;
  // How many iterations of the micro-kernel's inner loop ahead to prefetch
  // the packed A and B panels; 0: no software prefetch. Small A read in place
  // (micro_kernel_in_place) has no prefetch: not measured.
  std::int64_t prefetch_distance;
  // Summation blocks packed and multiplied in one pass (a pass is
  // kc * blocks_per_pass deep): the micro-kernel adds each block's sum to its
  // tile in L1 and the tile reaches C once per pass, where one block per pass
  // reads and writes C once per block. With one block, its KC x NR micro-panel
  // of B stays in L1 while the A block's micro-panels pass it; deeper passes
  // stream both panels from L2.
  std::int64_t blocks_per_pass;
};

}  // namespace rs
