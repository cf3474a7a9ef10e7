// Blocked GEMM driver: five loops around micro_kernel (gemm_microkernel.inl).
//
//   for jc over columns of C, NC at a time          (B block: depth x NC, shared)
//     for pc over the inner dimension, a pass of KC x blocks_per_pass at a time
//       pack the B block                            (threads split its panels)
//       for each task (ic row block of MC rows, group of NR panels)
//         pack the A block                          (per thread, reused across tasks;
//                                                    small A is read in place instead)
//         for jr over NR panels of the group
//           for ir over MR rows of the block
//             micro_kernel -> tile -> store_tile
//
// The inner dimension is summed in blocks of KC, each block's sum added to the
// partial product in turn, however many blocks a pass holds (the micro-kernel
// adds them to its tile; gemm_microkernel.inl).
//
// Threads split output tiles only: every element of C is computed by one
// thread with the inner dimension in a fixed order, so results do not depend
// on the number of threads. The epilogue (an Epilogue class, chosen at compile
// time so the store has no per-element branch on it) runs on each tile at its
// final store, after the last pass: bias, activation and per-unit
// statistics need no second pass over C.

// Epilogues receive a finished tile (rows x cols of `tile`, RS_NR floats per
// row, already summed over the whole inner dimension) and store it to C. A
// full-width tile (cols == RS_NR, all but the right edge) is handled in whole
// vectors; the edge, element by element.

inline void copy_tile(const float* tile, i64 rows, i64 cols, float* c, i64 ldc) {
  for (i64 i = 0; i < rows; ++i) {
    const float* t = tile + i * RS_NR;
    float* c_row = c + i * ldc;
    if (cols == RS_NR) {
      for (int v = 0; v < RS_NR; v += kVectorFloats) store_vector(c_row + v, load_vector(t + v));
    } else {
      for (i64 j = 0; j < cols; ++j) c_row[j] = t[j];
    }
  }
}

// C = the product.
struct PlainEpilogue {
  struct Local {};
  Local local(int) const { return {}; }
  void store_final_tile(const float* tile, i64 rows, i64 cols, float* c, i64 ldc, i64, i64,
                        Local&) const {
    copy_tile(tile, rows, cols, c, ldc);
  }
};

// Adds the partial product already in C (earlier passes) to the tile; then
// either stores it (more passes to come) or hands it to the epilogue.
template <class Epilogue>
inline void store_tile(float* tile, i64 rows, i64 cols, float* c, i64 ldc, bool accumulate,
                       bool last, const Epilogue& ep, typename Epilogue::Local& local, i64 row0,
                       i64 col0) {
  if (accumulate) {
    for (i64 i = 0; i < rows; ++i) {
      float* t = tile + i * RS_NR;
      const float* c_row = c + i * ldc;
      if (cols == RS_NR) {
        for (int v = 0; v < RS_NR; v += kVectorFloats)
          store_vector(t + v, load_vector(t + v) + load_vector(c_row + v));
      } else {
        for (i64 j = 0; j < cols; ++j) t[j] += c_row[j];
      }
    }
  }
  if (last)
    ep.store_final_tile(tile, rows, cols, c, ldc, row0, col0, local);
  else
    copy_tile(tile, rows, cols, c, ldc);
}

// Asks for the rows of one C tile ahead of its store. The product is accumulated
// into C once per pass, and C's rows lie ldc floats apart, a stride the
// hardware prefetcher does not follow: without this the load and store of each
// tile waited on memory (10% of a 1024^3 product on one thread, in the
// accumulate loop above). Issued before the micro-kernel, whose kc iterations
// cover the latency. A prefetch never faults, so the edge needs no care.
//
// Every line of a tile row is asked for, not only its first and last: numpy
// puts large arrays 16 bytes past a 64-byte boundary, so a row of 32 floats
// (avx512's NR) spans three lines, and its middle one was missed (the C load
// took 4% of a 1024^3 product on one thread, Intel family 6 model 167).
inline void prefetch_c_tile(const float* c, i64 ldc, i64 rows, i64 cols) {
  const i64 row_bytes = cols * static_cast<i64>(sizeof(float));
  for (i64 i = 0; i < rows; ++i) {
    const char* row = reinterpret_cast<const char*>(c + i * ldc);
    for (i64 offset = 0; offset < row_bytes; offset += kCacheLineBytes)
      __builtin_prefetch(row + offset, 1);
    __builtin_prefetch(row + row_bytes - 1, 1);  // the last line, when the row is misaligned
  }
}

// Cache blocking (gemm_tuning.hpp): KC x NR floats of B stay in L1 across a
// micro-panel of A; the MC x KC block of A stays in L2. These defaults were
// tuned on a Zen 5; a CPU profile may set others for this target at run time.
#ifndef RS_KC
#define RS_KC 256
#endif
constexpr GemmTuning kDefaultGemmTuning = {RS_KC, RS_MC_PANELS, 4096, 0, 1};
static_assert(kDefaultGemmTuning.nc % RS_NR == 0, "a column block holds whole B panels");

// The tuning in use. Each GEMM reads it once, at its start, so a switch made
// from another thread never mixes two tunings within one product.
std::atomic<const GemmTuning*> g_gemm_tuning{&kDefaultGemmTuning};

void use_gemm_tuning(const GemmTuning* tuning) {
  g_gemm_tuning.store(tuning ? tuning : &kDefaultGemmTuning, std::memory_order_release);
}
const GemmTuning& gemm_tuning() { return *g_gemm_tuning.load(std::memory_order_acquire); }

// Products of fewer rows than this split the columns between threads (see
// gemm_blocked_in): twelve row blocks of the target's default MC, fixed per
// target so that a profile's MC does not move it.
constexpr i64 kColumnSplitRows = 12 * RS_MR * RS_MC_PANELS;

// Largest A (in floats) read in place rather than packed.
constexpr i64 kSmallA = 256 * 1024;
// Column-major A (x.T in a weight gradient) is read in place only this narrow:
// each k step of a micro-panel then reads a cache line of its own, 2.7 times
// the lines of a packed panel. With 2 threads each packing all of A (the column
// split), reading 128 rows in place took 9% less time than packing (Zen 3,
// 128 x 128 x 256); at 256 rows as long, at 512 and 784 rows 10-11% longer.
constexpr i64 kNarrowColumnMajorA = 128;

inline int gemm_threads(const GemmArgs& g, int n_threads) {
  return threads_for_flops(2.0 * g.m * g.n * g.k, n_threads);
}

// One pass of the inner dimension, as the driver runs it.
struct Pass {
  i64 begin;  // its first index of the inner dimension
  i64 depth;  // how many indices it covers
  i64 block;  // the summation block (GemmTuning::kc)
};

// Packs B micro-panels straight from op(B) in memory.
struct StridedB {
  const float* b;
  i64 row_stride, col_stride;
  void pack(const Pass& pass, i64 col0, i64 cols, float* dst, i64 panel_stride) const {
    pack_b_panels(b + pass.begin * row_stride + col0 * col_stride, row_stride, col_stride,
                  pass.depth, cols, dst, panel_stride);
  }
};

// Where the micro-kernel finds A: a packed block, or op(A) itself (small A,
// see a_reading_for below).
enum class AReading { packed, rows_in_place, columns_in_place };
struct ABlock {
  const float* a;  // the packed block, or op(A) at row ic, column pc
  AReading reading;
  i64 stride;  // in place: floats from one row (rows_in_place) or column to the next
};

// Copies the partial product in C into the tile (zeros where the edge tile has
// no element), for a pass of several blocks: the tile then adds each block's
// sum to it in the order one pass per block would add them to C.
inline void load_tile(const float* c, i64 ldc, i64 rows, i64 cols, float* tile) {
  for (i64 i = 0; i < RS_MR; ++i) {
    float* t = tile + i * RS_NR;
    if (i < rows && cols == RS_NR) {
      for (int v = 0; v < RS_NR; v += kVectorFloats)
        store_vector(t + v, load_vector(c + i * ldc + v));
    } else {
      for (i64 j = 0; j < RS_NR; ++j) t[j] = i < rows && j < cols ? c[i * ldc + j] : 0.0f;
    }
  }
}

// The two inner loops: B panels [q_begin, q_end) of column block jc against
// rows [ic, ic + mc) of A, over one pass of the inner dimension. `b_panels`
// points at packed panel q_begin, the others following panel_stride apart.
template <class Epilogue>
inline void multiply_block(const GemmArgs& g, const Epilogue& ep, typename Epilogue::Local& local,
                           const ABlock& a_block, const float* b_panels, i64 panel_stride, i64 ic,
                           i64 mc, i64 jc, i64 q_begin, i64 q_end, const Pass& pass,
                           i64 prefetch_distance) {
  alignas(64) float tile[RS_MR * RS_NR];
  const i64 depth = pass.depth, block = pass.block;
  // C holds the sum of the earlier passes. A pass of one block adds it after
  // the block (store_tile); a pass of several starts its tile from it.
  const bool sum_in_c = pass.begin > 0;
  const bool tile_starts_from_c = sum_in_c && depth > block;
  const bool last = pass.begin + depth == g.k;
  // Asks for the rows of the tile at panel q, row ir of the block.
  auto prefetch_tile = [&](i64 q, i64 ir) {
    const i64 j0 = jc + q * RS_NR;
    prefetch_c_tile(g.c + (ic + ir) * g.ldc + j0, g.ldc, min_i64(RS_MR, mc - ir),
                    min_i64(RS_NR, g.n - j0));
  };
  // A tile that starts from C reads it before its micro-kernel, so its rows are
  // asked for one tile ahead, during the micro-kernel before.
  if (tile_starts_from_c && q_begin < q_end) prefetch_tile(q_begin, 0);
  for (i64 q = q_begin; q < q_end; ++q) {
    const i64 j0 = jc + q * RS_NR;
    const i64 cols = min_i64(RS_NR, g.n - j0);
    const float* bp = b_panels + (q - q_begin) * panel_stride;
    for (i64 ir = 0; ir < mc; ir += RS_MR) {
      const i64 rows = min_i64(RS_MR, mc - ir);
      const i64 row0 = ic + ir;
      float* const c_tile = g.c + row0 * g.ldc + j0;
      if (tile_starts_from_c) {
        load_tile(c_tile, g.ldc, rows, cols, tile);
        if (ir + RS_MR < mc)
          prefetch_tile(q, ir + RS_MR);
        else if (q + 1 < q_end)
          prefetch_tile(q + 1, 0);
      } else {
        prefetch_c_tile(c_tile, g.ldc, rows, cols);
      }
      const float* a = a_block.a;
      const i64 stride = a_block.stride;
      switch (a_block.reading) {
        case AReading::rows_in_place:
          micro_kernel_in_place(depth, block, RowsOfA(a + ir * stride, stride, rows), bp, tile,
                                tile_starts_from_c);
          break;
        case AReading::columns_in_place:
          micro_kernel_in_place(depth, block, ColumnsOfA(a + ir, stride, rows), bp, tile,
                                tile_starts_from_c);
          break;
        case AReading::packed:
          if (prefetch_distance > 0)
            micro_kernel<true>(depth, block, a + ir * depth, bp, tile, tile_starts_from_c,
                               prefetch_distance);
          else
            micro_kernel<false>(depth, block, a + ir * depth, bp, tile, tile_starts_from_c, 0);
          break;
      }
      store_tile(tile, rows, cols, c_tile, g.ldc, sum_in_c && !tile_starts_from_c, last, ep, local,
                 row0, j0);
    }
  }
}

// How the micro-kernel reads A: small row-major A, and small column-major A of
// at most kNarrowColumnMajorA rows, in place; any other packed. Rows (or
// columns, column-major) a multiple of 4 KiB apart would all fall in the same
// L1 sets, so those are packed whatever their size. `a` is left to the caller.
inline ABlock a_reading_for(const GemmArgs& g) {
  const bool small = g.m * g.k <= kSmallA;
  if (small && g.a_col_stride == 1 && (g.a_row_stride * 4) % 4096 != 0)
    return {nullptr, AReading::rows_in_place, g.a_row_stride};
  if (small && g.m <= kNarrowColumnMajorA && g.a_row_stride == 1 &&
      (g.a_col_stride * 4) % 4096 != 0)
    return {nullptr, AReading::columns_in_place, g.a_col_stride};
  return {nullptr, AReading::packed, 0};
}

// The packing buffers of one product: the packed A blocks (one per thread)
// and the packed B panels. Sizes in floats, from gemm_workspace_size.
struct GemmWorkspace {
  float* a_pack;
  float* b_pack;
};
struct GemmWorkspaceSize {
  i64 a_floats, b_floats;
};

// The blocking of one product: its passes of the inner dimension and the
// blocks of A and B they use.
struct Blocking {
  i64 pass_depth;  // indices of the inner dimension in a pass: KC x blocks_per_pass
  i64 depth_max;   // depth of the deepest pass (the last may be shallower)
  i64 mc_panels;   // MR-row micro-panels in a block of A
  i64 nc;          // columns in a block of B
};

// The blocking for an inner dimension of k. Passes deeper than KC keep the
// blocks of A and B to the sizes that KC-deep ones have under the tuning (fewer
// rows of A, fewer columns of B): the A block stays in L2, and the B block in
// L3 (GEMM 2048^3 on Zen 3, one thread, passes of 1024: 0.95 of the speed of
// one block per pass with NC = 4096 kept, 1.05 with NC = 1024).
inline Blocking blocking_for(i64 k, const GemmTuning& tuning) {
  const i64 pass_depth = tuning.kc * tuning.blocks_per_pass;
  const i64 depth_max = min_i64(pass_depth, k > 0 ? k : 1);
  if (depth_max <= tuning.kc) return {pass_depth, depth_max, tuning.mc_panels, tuning.nc};
  const i64 panels = tuning.mc_panels * tuning.kc / depth_max;
  const i64 nc = tuning.nc * tuning.kc / depth_max / 32 * 32;  // whole panels of every target
  return {pass_depth, depth_max, panels > 1 ? panels : 1, nc > 32 ? nc : 32};
}

// What gemm_blocked_in needs for a product of n columns and inner dimension k
// on n_threads under `tuning`: an A
// block per thread, and room for every B panel of a column block and for each
// thread's own share of them (columns_share below; the second is at least the
// first). Panels sit depth_max apart whatever their pass's depth: threads that
// split the columns run unsynchronised and may be on passes of different depth.
inline GemmWorkspaceSize gemm_workspace_size(i64 n, i64 k, const GemmTuning& tuning,
                                             int n_threads) {
  const Blocking blocking = blocking_for(k, tuning);
  const i64 depth_max = blocking.depth_max;
  const i64 block_panels = ceil_div(min_i64(blocking.nc, n > 0 ? n : 0), RS_NR);
  const i64 panels_per_thread = ceil_div(block_panels, n_threads);
  return {static_cast<i64>(n_threads) * RS_MR * blocking.mc_panels * depth_max,
          n_threads * panels_per_thread * RS_NR * depth_max};
}

// BPacker::pack(pass, col0, cols, dst, panel_stride) fills the B micro-panels
// of rows [pass.begin, pass.begin + pass.depth) x columns [col0, col0 + cols),
// one every panel_stride floats from dst; it may compute the operand as it
// packs (see MaskedGradientB in dense.inl).
//
// The product under a tuning read once by the caller, in buffers the caller
// holds (gemm_workspace_size): nothing here allocates, so it may run inside a
// share of a parallel loop (dense.inl runs two products side by side).
template <class Epilogue, class BPacker>
void gemm_blocked_in(const GemmArgs& g, const Epilogue& ep, int n_threads, const BPacker& b_packer,
                     const GemmTuning& tuning, const GemmWorkspace& workspace) {
  const i64 m = g.m, n = g.n, k = g.k;
  if (m <= 0 || n <= 0) return;
  const Blocking blocking = blocking_for(k, tuning);
  const i64 pass_block = blocking.pass_depth, depth_max = blocking.depth_max;
  const i64 mc_block = RS_MR * blocking.mc_panels, nc_block = blocking.nc;
  const i64 prefetch = tuning.prefetch_distance;
  const i64 nc_max = min_i64(nc_block, n);
  const i64 panel_stride = RS_NR * depth_max;
  const i64 block_panels = ceil_div(nc_max, RS_NR);
  const i64 panels_per_thread = ceil_div(block_panels, n_threads);
  float* const b_pack = workspace.b_pack;
  float* const a_pack = workspace.a_pack;
  if (k <= 0) {  // empty inner dimension: C = 0, still through the epilogue
    alignas(64) float zeros[RS_MR * RS_NR] = {};
    auto local = ep.local(0);
    for (i64 i = 0; i < m; i += RS_MR)
      for (i64 j = 0; j < n; j += RS_NR)
        ep.store_final_tile(zeros, min_i64(RS_MR, m - i), min_i64(RS_NR, n - j),
                            g.c + i * g.ldc + j, g.ldc, i, j, local);
    return;
  }

  const ABlock a_reading = a_reading_for(g);

  // Columns of C in B panels [panels.begin, panels.end) of the column block at jc
  // (the last panel of the product may be narrower than NR).
  auto columns_of = [n](i64 jc, IndexRange panels) {
    return min_i64(n, jc + panels.end * RS_NR) - (jc + panels.begin * RS_NR);
  };

  // Share `tid` of `team` computes every row of its part of the columns,
  // packing its own B panels, into slots of its own, and all of A (unless it
  // is read in place). With one thread this is the whole product, called
  // directly (handing work to the workers and waiting for them costs about
  // 1 us, as much as a 32 x 64 x 64 product).
  //
  // Slots of its own: the threads run unsynchronised across column blocks, and a
  // ragged last block splits its panels at other places than a full one. In
  // shared slots (panel q at slot q) a thread packing the last block overwrote
  // panels that another, still on the block before, was reading (wrong products
  // with n > NC, seen with NC = 96).
  auto columns_share = [&](int tid, int team) {
    float* my_a = a_pack + static_cast<i64>(tid) * mc_block * depth_max;
    float* my_b = b_pack + static_cast<i64>(tid) * panels_per_thread * panel_stride;
    auto local = ep.local(tid);
    for (i64 jc = 0; jc < n; jc += nc_block) {
      const i64 n_panels = ceil_div(min_i64(nc_block, n - jc), RS_NR);
      const IndexRange panels = share_of(n_panels, tid, team);
      const i64 q_begin = panels.begin, q_end = panels.end;
      for (i64 pc = 0; pc < k; pc += pass_block) {
        const Pass pass{pc, min_i64(pass_block, k - pc), tuning.kc};
        if (q_end > q_begin)
          b_packer.pack(pass, jc + q_begin * RS_NR, columns_of(jc, panels), my_b, panel_stride);
        for (i64 ic = 0; ic < m; ic += mc_block) {
          const i64 mc = min_i64(mc_block, m - ic);
          const float* a_at = g.a + ic * g.a_row_stride + pc * g.a_col_stride;
          ABlock a_block = a_reading;
          a_block.a = a_at;
          if (a_block.reading == AReading::packed) {
            pack_a_block(a_at, g.a_row_stride, g.a_col_stride, mc, pass.depth, my_a);
            a_block.a = my_a;
          }
          multiply_block(g, ep, local, a_block, my_b, panel_stride, ic, mc, jc, q_begin, q_end,
                         pass, prefetch);
        }
      }
    }
  };
  if (n_threads <= 1) {
    columns_share(0, 1);
    return;
  }

  // Up to a thousand rows or so (a training batch, a square of 1024): split the
  // columns. Each thread's B panels stay in its own L2 and no panel is shared,
  // so no barrier; every thread packs all of A (unless it is read in place),
  // which costs little at this size.
  // Sharing one packed B between threads that split the rows cost 15-25% at
  // m = 256 (330 vs 430 GFLOP/s on 2 threads, Zen 5). At m = 1024 (Zen 3, 2
  // threads) the two splits ran alike on a quiet machine, and the columns split
  // 9-17% faster while other work shared the cores: it has no barrier at which a
  // descheduled thread holds the other up. At 1536 and 4096 rows they ran alike.
  const i64 total_panels = ceil_div(min_i64(nc_block, n), RS_NR);
  if (m < kColumnSplitRows && total_panels >= 2 * n_threads) {
    run_shares(n_threads, [&](int share) { columns_share(share, n_threads); });
    return;
  }

  // Otherwise split the rows. Row blocks of equal size (a multiple of MR, at
  // most MC), their count a multiple of the thread count when there are enough
  // rows: a ragged last block would leave one thread idle for its share
  // (m = 1024 with MC = 144 split 576/448 rows; balanced: 80% -> 86% of peak).
  i64 m_blocks = ceil_div(m, mc_block);
  if (m_blocks >= n_threads) m_blocks = ceil_div(m_blocks, n_threads) * n_threads;
  const i64 mc_step = ceil_div(ceil_div(m, m_blocks), RS_MR) * RS_MR;
  m_blocks = ceil_div(m, mc_step);

  // Per block of B: the threads pack it together, then compute row blocks x
  // panel groups against it, two rounds of shares. Enough panel groups to feed
  // every thread when the rows alone are too few.
  for (i64 jc = 0; jc < n; jc += nc_block) {
    const i64 nc = min_i64(nc_block, n - jc);
    const i64 n_panels = ceil_div(nc, RS_NR);
    i64 groups = ceil_div(n_threads, m_blocks);
    if (groups > n_panels) groups = n_panels;
    const i64 n_tasks = m_blocks * groups;
    const int pack_shares = static_cast<int>(min_i64(n_threads, n_panels));
    const int task_shares = static_cast<int>(min_i64(n_threads, n_tasks));
    for (i64 pc = 0; pc < k; pc += pass_block) {
      const Pass pass{pc, min_i64(pass_block, k - pc), tuning.kc};
      run_shares(pack_shares, [&](int share) {
        const IndexRange panels = share_of(n_panels, share, pack_shares);
        if (panels.end > panels.begin)
          b_packer.pack(pass, jc + panels.begin * RS_NR, columns_of(jc, panels),
                        b_pack + panels.begin * panel_stride, panel_stride);
      });
      // Consecutive tasks share a row block, packed once per share.
      run_shares(task_shares, [&](int share) {
        float* my_a = a_pack + static_cast<i64>(share) * mc_block * depth_max;
        auto local = ep.local(share);
        i64 packed_block = -1;
        const IndexRange tasks = share_of(n_tasks, share, task_shares);
        for (i64 t = tasks.begin; t < tasks.end; ++t) {
          const i64 ib = t / groups, grp = t % groups;
          const i64 ic = ib * mc_step;
          const i64 mc = min_i64(mc_step, m - ic);
          if (ib != packed_block) {
            pack_a_block(g.a + ic * g.a_row_stride + pc * g.a_col_stride, g.a_row_stride,
                         g.a_col_stride, mc, pass.depth, my_a);
            packed_block = ib;
          }
          const IndexRange group_panels =
              share_of(n_panels, static_cast<int>(grp), static_cast<int>(groups));
          multiply_block(g, ep, local, ABlock{my_a, AReading::packed, 0},
                         b_pack + group_panels.begin * panel_stride, panel_stride, ic, mc, jc,
                         group_panels.begin, group_panels.end, pass, prefetch);
        }
      });
    }
  }
}

// The product under the tuning in use, in this thread's scratch buffers.
template <class Epilogue, class BPacker>
void gemm_blocked(const GemmArgs& g, const Epilogue& ep, int n_threads, const BPacker& b_packer) {
  if (g.m <= 0 || g.n <= 0) return;
  const GemmTuning tuning = gemm_tuning();
  const GemmWorkspaceSize size = gemm_workspace_size(g.n, g.k, tuning, n_threads);
  float* const b_pack = scratch<float>(kPackB, size.b_floats);
  float* const a_pack = scratch<float>(kPackA, size.a_floats);
  gemm_blocked_in(g, ep, n_threads, b_packer, tuning, GemmWorkspace{a_pack, b_pack});
}

template <class Epilogue>
void gemm_blocked(const GemmArgs& g, const Epilogue& ep, int n_threads) {
  gemm_blocked(g, ep, n_threads, StridedB{g.b, g.b_row_stride, g.b_col_stride});
}

void gemm(const GemmArgs& g, int n_threads) {
  gemm_blocked(g, PlainEpilogue{}, gemm_threads(g, n_threads));
}
