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

inline void pack_a_panel(const float* a, i64 row_stride, i64 col_stride, i64 rows, i64 kc,
                         float* dst) {
  if (col_stride == 1) {
    for (i64 i = 0; i < rows; ++i) {
      const float* src = a + i * row_stride;
      for (i64 p = 0; p < kc; ++p) dst[p * RS_MR + i] = src[p];
    }
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

// Packs one NR-wide micro-panel: rows [0, kc), columns [0, cols) of op(B).
inline void pack_b_panel(const float* b, i64 row_stride, i64 col_stride, i64 kc, i64 cols,
                         float* dst) {
  constexpr int NR = RS_NR;
  if (col_stride == 1) {
    for (i64 p = 0; p < kc; ++p) {
      const float* src = b + p * row_stride;
      i64 j = 0;
      for (; j < cols; ++j) dst[p * NR + j] = src[j];
      for (; j < NR; ++j) dst[p * NR + j] = 0.0f;
    }
  } else {
    for (i64 j = 0; j < cols; ++j) {
      const float* src = b + j * col_stride;
      for (i64 p = 0; p < kc; ++p) dst[p * NR + j] = src[p * row_stride];
    }
    for (i64 p = 0; p < kc; ++p)
      for (i64 j = cols; j < NR; ++j) dst[p * NR + j] = 0.0f;
  }
}
