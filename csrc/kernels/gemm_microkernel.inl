// The register-tile micro-kernel.
//
// Contract: `a` is one packed A micro-panel (depth groups of RS_MR floats), `b`
// one packed B micro-panel (depth groups of RS_NR floats, 64-byte aligned).
// The kernel adds the RS_MR x RS_NR product sum_p a[p] (x) b[p] to `tile`
// (row-major, RS_NR floats per row, 64-byte aligned), one summation block
// (KC iterations, GemmTuning::kc) at a time: each block is summed from zero in
// the registers and then added to the tile, the block's sum as the first
// operand, exactly as the driver adds a block's sum to the partial product in
// C. The first block's sum is written to the tile instead when `tile_holds_sum`
// is false. So a pass of several blocks gives the same bits as the same blocks
// one pass each: how many blocks a pass holds is a matter of speed only.
// It reads nothing else (a software prefetch may name addresses past the
// panels: a hint, never a load) and writes nothing else; edge trimming and the
// fused epilogue happen in store_tile (gemm_driver.inl).
//
// The tile is held in RS_MR x 2 vector registers (GCC vector extensions, so one
// source serves every instruction set; the target's flags decide the width).

constexpr int kVectorsPerRow = RS_NR / kVectorFloats;
static_assert(kVectorsPerRow == 2, "the micro-kernel holds two vectors per tile row");

// Software prefetch (Prefetch == true): each iteration p also asks for the A
// and B data of iteration p + prefetch_distance. Chosen per call by the driver
// from the CPU profile, so the loop without it carries no test. A prefetch
// never faults, so asking past the end of a panel is harmless.
constexpr int kCacheLineBytes = 64;

// Adds one block's sums (the registers acc0, acc1) to the tile, or writes them
// there when `write` (the first block, with no sum in the tile yet).
RS_ALWAYS_INLINE void add_block_sum(const VFloat* acc0, const VFloat* acc1, float* __restrict tile,
                                    bool write) {
#pragma GCC unroll 32
  for (int i = 0; i < RS_MR; ++i) {
    VFloat* t0 = reinterpret_cast<VFloat*>(tile + i * RS_NR);
    VFloat* t1 = reinterpret_cast<VFloat*>(tile + i * RS_NR + kVectorFloats);
    *t0 = write ? acc0[i] : acc0[i] + *t0;
    *t1 = write ? acc1[i] : acc1[i] + *t1;
  }
}

template <bool Prefetch>
RS_ALWAYS_INLINE void micro_kernel(i64 depth, i64 block, const float* __restrict a,
                                   const float* __restrict b, float* __restrict tile,
                                   bool tile_holds_sum, i64 prefetch_distance) {
  for (i64 p0 = 0; p0 < depth; p0 += block) {
    const i64 p1 = min_i64(depth, p0 + block);
    VFloat acc0[RS_MR];
    VFloat acc1[RS_MR];
#pragma GCC unroll 32
    for (int i = 0; i < RS_MR; ++i) {
      acc0[i] = VFloat{};
      acc1[i] = VFloat{};
    }
    // Four iterations per loop trip: one trip's loop counter, pointer updates and
    // branch serve 48 FMAs instead of 12. GEMM 1024^3 on one thread, Zen 3,
    // medians of 8 interleaved runs: 79.3 GFLOP/s unrolled twice, 83.2 four times,
    // 80.2 eight times; 73.9 not unrolled, before the row-wise packing as well.
#pragma GCC unroll 4
    for (i64 p = p0; p < p1; ++p) {
      const VFloat b0 = *reinterpret_cast<const VFloat*>(b + p * RS_NR);
      const VFloat b1 = *reinterpret_cast<const VFloat*>(b + p * RS_NR + kVectorFloats);
      const float* ap = a + p * RS_MR;
      if (Prefetch) {
        __builtin_prefetch(ap + prefetch_distance * RS_MR);
        const char* b_ahead = reinterpret_cast<const char*>(b + (p + prefetch_distance) * RS_NR);
#pragma GCC unroll 4
        for (int line = 0; line < RS_NR * 4; line += kCacheLineBytes)
          __builtin_prefetch(b_ahead + line);
      }
#pragma GCC unroll 32
      for (int i = 0; i < RS_MR; ++i) {
        const float ai = ap[i];
        acc0[i] += ai * b0;
        acc1[i] += ai * b1;
      }
    }
    add_block_sum(acc0, acc1, tile, p0 == 0 && !tile_holds_sum);
  }
}

// The same product with A read in place instead of packed, through a reader
// whose at(p, i) is element (i, p) of the panel (RowsOfA, ColumnsOfA below).
// Rows past `rows` re-read the last row (their results are discarded at the
// store), so no padding is needed and nothing past the panel's rows is read.
template <class ReadA>
RS_ALWAYS_INLINE void micro_kernel_in_place(i64 depth, i64 block, const ReadA& a,
                                            const float* __restrict b, float* __restrict tile,
                                            bool tile_holds_sum) {
  for (i64 p0 = 0; p0 < depth; p0 += block) {
    const i64 p1 = min_i64(depth, p0 + block);
    VFloat acc0[RS_MR];
    VFloat acc1[RS_MR];
#pragma GCC unroll 32
    for (int i = 0; i < RS_MR; ++i) {
      acc0[i] = VFloat{};
      acc1[i] = VFloat{};
    }
#pragma GCC unroll 4
    for (i64 p = p0; p < p1; ++p) {
      const VFloat b0 = *reinterpret_cast<const VFloat*>(b + p * RS_NR);
      const VFloat b1 = *reinterpret_cast<const VFloat*>(b + p * RS_NR + kVectorFloats);
#pragma GCC unroll 32
      for (int i = 0; i < RS_MR; ++i) {
        const float ai = a.at(p, i);
        acc0[i] += ai * b0;
        acc1[i] += ai * b1;
      }
    }
    add_block_sum(acc0, acc1, tile, p0 == 0 && !tile_holds_sum);
  }
}

// Row-major A: row i of the tile reads a[i * lda + p]. Used for small
// row-major A, where packing cost a third of the time (256 x 128 x 128:
// packing all of A on every thread, 26% of a deep-narrow training step).
struct RowsOfA {
  const float* row[RS_MR];
  RS_ALWAYS_INLINE RowsOfA(const float* a, i64 lda, i64 rows) {
#pragma GCC unroll 32
    for (int i = 0; i < RS_MR; ++i) row[i] = a + (i < rows ? i : rows - 1) * lda;
  }
  RS_ALWAYS_INLINE float at(i64 p, int i) const { return row[i][p]; }
};

// Column-major A: element (i, p) at a[p * lda + i], as in x.T of a weight
// gradient x.T @ grad, whose rows of x hold MR neighbouring elements of each
// column of the panel.
struct ColumnsOfA {
  const float* a;
  i64 lda;
  i64 offset[RS_MR];
  RS_ALWAYS_INLINE ColumnsOfA(const float* a_, i64 lda_, i64 rows) : a(a_), lda(lda_) {
#pragma GCC unroll 32
    for (int i = 0; i < RS_MR; ++i) offset[i] = i < rows ? i : rows - 1;
  }
  RS_ALWAYS_INLINE float at(i64 p, int i) const { return a[p * lda + offset[i]]; }
};
