// Packing for the blocked GEMM (gemm_driver.inl).
//
// Packed A: a block of mc rows x kc columns of op(A) is stored as ceil(mc/MR)
// micro-panels; micro-panel r holds, for each p in [0, kc), the MR values
// op(A)[r*MR + i, p] for i in [0, MR) contiguously. Rows past mc are zero.
//
// Packed B: a block of kc rows x nc columns of op(B) is stored as ceil(nc/NR)
// micro-panels; micro-panel q holds, for each p, the NR values op(B)[p, q*NR + j]
// contiguously. Columns past nc are zero.
//
// The zero padding lets the micro-kernel always compute a full MR x NR tile;
// edge tiles are trimmed once, at the store.

#if defined(__AVX2__) && (RS_MR == 6 || RS_MR == 8) && RS_NR % 8 == 0
// Eight floats, whatever the target's vector width (the avx512 target's MR is 8).
typedef float Float8 __attribute__((vector_size(32)));
typedef int Int8 __attribute__((vector_size(32)));

// Transposes the 8 x 8 block in place (r[i][p] becomes r[p][i]): three
// rounds of two-input shuffles (unpack, then pairs, then 128-bit halves).
RS_ALWAYS_INLINE void transpose_8x8(Float8 r[8]) {
  Float8 t[8], u[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shuffle(r[i], r[i + 1], Int8{0, 8, 1, 9, 4, 12, 5, 13});
    t[i + 1] = __builtin_shuffle(r[i], r[i + 1], Int8{2, 10, 3, 11, 6, 14, 7, 15});
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i += 4)
#pragma GCC unroll 8
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = __builtin_shuffle(t[i + h], t[i + h + 2], Int8{0, 1, 8, 9, 4, 5, 12, 13});
      u[i + 2 * h + 1] =
          __builtin_shuffle(t[i + h], t[i + h + 2], Int8{2, 3, 10, 11, 6, 7, 14, 15});
    }
#pragma GCC unroll 8
  for (int p = 0; p < 4; ++p) {
    r[p] = __builtin_shuffle(u[p], u[p + 4], Int8{0, 1, 2, 3, 8, 9, 10, 11});
    r[p + 4] = __builtin_shuffle(u[p], u[p + 4], Int8{4, 5, 6, 7, 12, 13, 14, 15});
  }
}

// Copies an 8 x 8 block transposed: reads eight rows of eight floats, row i at
// src + min(i, last_row) * src_stride, and stores column q of them as eight
// floats at dst + q * dst_stride, in increasing q (pack_a_panel_by_blocks relies
// on that order). Eight loads, one transpose and eight stores instead of 64
// scalar copies.
RS_ALWAYS_INLINE void copy_transposed_8x8(const float* src, i64 src_stride, int last_row,
                                          float* dst, i64 dst_stride) {
  Float8 r[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
    __builtin_memcpy(&r[i], src + (i < last_row ? i : last_row) * src_stride, sizeof(Float8));
  transpose_8x8(r);
#pragma GCC unroll 8
  for (int q = 0; q < 8; ++q) __builtin_memcpy(dst + q * dst_stride, &r[q], sizeof(Float8));
}

// A full panel of row-major A, eight columns at a time (the scalar copies were
// most of the packing time of a 1024^3 product once B was packed row-wise, Zen 3).
// With MR = 6 the two spare rows repeat row 5 and each 8-float store runs two
// floats into the next column's slot, rewritten by the store after it; so the
// last block of columns, whose overrun would leave the panel, is left to the
// caller. Returns the number of columns packed.
RS_ALWAYS_INLINE i64 pack_a_panel_by_blocks(const float* a, i64 row_stride, i64 kc, float* dst) {
  constexpr i64 overrun = 8 - RS_MR;
  i64 p = 0;
  for (; p + 8 + (overrun > 0 ? 1 : 0) <= kc; p += 8)
    copy_transposed_8x8(a + p, row_stride, RS_MR - 1, dst + p * RS_MR, RS_MR);
  return p;
}

// A full B panel whose columns are contiguous (B read transposed, as the
// weights in the backward's grad_x = grad_pre @ weight.T), eight rows and eight
// columns at a time (the scalar copies, NR floats apart, were 6% of a medium
// training step, Zen 3). Returns the number of rows packed.
RS_ALWAYS_INLINE i64 pack_b_panel_by_blocks(const float* b, i64 col_stride, i64 kc, float* dst) {
  i64 p = 0;
  for (; p + 8 <= kc; p += 8)
#pragma GCC unroll 4
    for (int j0 = 0; j0 < RS_NR; j0 += 8)
      copy_transposed_8x8(b + j0 * col_stride + p, col_stride, 7, dst + p * RS_NR + j0, RS_NR);
  return p;
}
#else
inline i64 pack_a_panel_by_blocks(const float*, i64, i64, float*) { return 0; }
inline i64 pack_b_panel_by_blocks(const float*, i64, i64, float*) { return 0; }
#endif

inline void pack_a_panel(const float* a, i64 row_stride, i64 col_stride, i64 rows, i64 kc,
                         float* dst) {
  if (col_stride == 1) {
    const i64 packed = rows == RS_MR ? pack_a_panel_by_blocks(a, row_stride, kc, dst) : 0;
    for (i64 i = 0; i < rows; ++i) {
      const float* src = a + i * row_stride;
      for (i64 p = packed; p < kc; ++p) dst[p * RS_MR + i] = src[p];
    }
  } else if (row_stride == 1 && rows == RS_MR) {
    // Column-major A (x.T in the backward's grad_weight = x.T @ grad_pre):
    // MR contiguous floats per column, copied whole.
    for (i64 p = 0; p < kc; ++p)
      __builtin_memcpy(dst + p * RS_MR, a + p * col_stride, RS_MR * sizeof(float));
  } else {
    for (i64 p = 0; p < kc; ++p) {
      const float* src = a + p * col_stride;
      for (i64 i = 0; i < rows; ++i) dst[p * RS_MR + i] = src[i * row_stride];
    }
  }
  for (i64 p = 0; p < kc; ++p)
    for (i64 i = rows; i < RS_MR; ++i) dst[p * RS_MR + i] = 0.0f;
}

// Packs rows [0, mc) x columns [0, kc) of the operand that starts at a.
inline void pack_a_block(const float* a, i64 row_stride, i64 col_stride, i64 mc, i64 kc,
                         float* dst) {
  for (i64 r = 0; r < mc; r += RS_MR) {
    pack_a_panel(a + r * row_stride, row_stride, col_stride, min_i64(RS_MR, mc - r), kc, dst);
    dst += RS_MR * kc;
  }
}

// Packs rows [0, kc) x columns [0, cols) of op(B) into ceil(cols / NR)
// micro-panels, panel_stride floats apart.
//
// Row-major B is packed row by row across all the panels, so each row is read
// front to back. Panel by panel, each row of the operand gave NR floats and the
// next row lay ldb floats further (4 KiB at n = 1024): a stride the hardware
// prefetcher does not follow, so every line was a miss, and packing took 10% of
// a 1024^3 product on one thread (Zen 3).
inline void pack_b_panels(const float* b, i64 row_stride, i64 col_stride, i64 kc, i64 cols,
                          float* dst, i64 panel_stride) {
  constexpr int NR = RS_NR;
  const i64 full_panels = cols / NR, rest = cols % NR;
  if (col_stride == 1) {
    for (i64 p = 0; p < kc; ++p) {
      const float* src = b + p * row_stride;
      float* d = dst + p * NR;
      for (i64 q = 0; q < full_panels; ++q)
        for (int j = 0; j < NR; j += kVectorFloats)
          store_vector(d + q * panel_stride + j, load_vector(src + q * NR + j));
      if (rest > 0) {
        float* edge = d + full_panels * panel_stride;
        const float* edge_src = src + full_panels * NR;
        for (i64 j = 0; j < NR; ++j) edge[j] = j < rest ? edge_src[j] : 0.0f;
      }
    }
    return;
  }
  // Column-major B: each column is read front to back, panel by panel.
  for (i64 q = 0; q * NR < cols; ++q) {
    const i64 panel_cols = min_i64(NR, cols - q * NR);
    float* d = dst + q * panel_stride;
    const float* panel = b + q * NR * col_stride;
    const i64 packed =
        panel_cols == NR && row_stride == 1 ? pack_b_panel_by_blocks(panel, col_stride, kc, d) : 0;
    for (i64 j = 0; j < panel_cols; ++j) {
      const float* src = panel + j * col_stride;
      for (i64 p = packed; p < kc; ++p) d[p * NR + j] = src[p * row_stride];
    }
    for (i64 p = 0; p < kc; ++p)
      for (i64 j = panel_cols; j < NR; ++j) d[p * NR + j] = 0.0f;
  }
}
