// Helpers shared by every kernel of one target. Included inside the target's
// anonymous namespace (see target_body.inl), so each target gets its own copy
// compiled with its own flags and no symbol is shared between targets.

using i64 = std::int64_t;

constexpr int kVectorFloats = RS_VECTOR_BYTES / 4;
typedef float VFloat __attribute__((vector_size(RS_VECTOR_BYTES)));
typedef int VInt __attribute__((vector_size(RS_VECTOR_BYTES)));  // lane masks: -1 true, 0 false

// Unaligned vector load and store (the compiler emits plain unaligned moves).
inline VFloat load_vector(const float* p) {
  VFloat v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline void store_vector(float* p, VFloat v) { __builtin_memcpy(p, &v, sizeof(v)); }

// For the hottest loops, whose inlining GCC's size heuristics would otherwise
// decide by what else the translation unit contains: the micro-kernel called
// out of line (a call per tile) ran a 1024^3 product 11% slower on Zen 3.
#define RS_ALWAYS_INLINE inline __attribute__((always_inline))

inline i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
inline i64 min_i64(i64 a, i64 b) { return a < b ? a : b; }
inline float max_f(float a, float b) { return a > b ? a : b; }

// Threads worth using for `work` flops: below about kMinFlopsPerThread per
// thread the fork/join of a parallel region costs more than it saves.
constexpr double kMinFlopsPerThread = 2.0e6;
inline int threads_for_flops(double flops, int n_threads) {
  double useful = flops / kMinFlopsPerThread;
  if (useful < 1.0) return 1;
  return useful < n_threads ? static_cast<int>(useful) : n_threads;
}

// Scratch memory for the kernels, per calling thread and per use, that only
// grows: a training step calling the same kernels again allocates nothing
// after its first call. Separate slots keep nested users apart (the dense
// forward's partial counts live across its GEMM, which uses the pack slots).
// Allocation happens before any work is shared out (it may throw bad_alloc);
// the workers use the calling thread's buffers through plain pointers. The one
// exception is a kernel called with one thread from inside a share (the
// training step's update_side_by_side): it takes its share's thread's own
// buffers, and that share catches what the allocation may throw.
enum ScratchSlot {
  kPackA,
  kPackB,
  kCountPartials,
  kMaxPartials,
  kNonfinitePartials,
  kReduction,
  kColumnPartials,
  kCohortScales,
  kNetworkActivations,
  kLayerFlags,
  kScratchSlots
};

class ScratchPool {
 public:
  ScratchPool() = default;
  ScratchPool(const ScratchPool&) = delete;
  ScratchPool& operator=(const ScratchPool&) = delete;
  ~ScratchPool() {
    for (Block& b : blocks_)
      if (b.data) ::operator delete(b.data, std::align_val_t(64));
  }
  void* get(ScratchSlot slot, std::size_t bytes) {
    Block& b = blocks_[slot];
    if (bytes > b.bytes) {
      void* fresh = ::operator new(bytes, std::align_val_t(64));
      if (b.data) ::operator delete(b.data, std::align_val_t(64));
      b.data = fresh;
      b.bytes = bytes;
    }
    return b.data;
  }

 private:
  struct Block {
    void* data = nullptr;
    std::size_t bytes = 0;
  };
  Block blocks_[kScratchSlots];
};

template <class T>
T* scratch(ScratchSlot slot, i64 count) {
  thread_local ScratchPool pool;
  return static_cast<T*>(
      pool.get(slot, sizeof(T) * static_cast<std::size_t>(count > 0 ? count : 1)));
}

// Share `share` of [0, count) cut into `shares` runs of consecutive indices,
// their sizes differing by at most one.
struct IndexRange {
  i64 begin, end;
};
inline IndexRange share_of(i64 count, int share, int shares) {
  return {count * share / shares, count * (share + 1) / shares};
}

// Runs body(i) for i in [0, count): on one thread in a plain loop, on more in
// n_threads shares of consecutive indices (runtime/worker_pool.hpp).
template <class Body>
inline void for_each_index(i64 count, int n_threads, const Body& body) {
  const int shares = static_cast<int>(min_i64(n_threads, count));
  if (shares <= 1) {
    for (i64 i = 0; i < count; ++i) body(i);
    return;
  }
  run_shares(shares, [&](int share) {
    const IndexRange range = share_of(count, share, shares);
    for (i64 i = range.begin; i < range.end; ++i) body(i);
  });
}

// Row chunk for batch reductions (bias gradient, loss): partial sums over
// fixed chunks of rows are combined in chunk order, so the result is the same
// bit for bit whatever the thread count or timing.
constexpr i64 kReductionRows = 256;

// NaN stays NaN (see activation_vector in dense.inl).
inline float activation_forward(float s, Activation act, float slope) {
  if (act == Activation::identity) return s;
  if (act == Activation::relu) return s <= 0.0f ? 0.0f : s;
  return s > 0.0f ? s : slope * s;
}

// Derivative at s; at s == 0 a unit does not fire, so ReLU's derivative there is 0.
inline float activation_derivative(float s, Activation act, float slope) {
  if (act == Activation::identity) return 1.0f;
  if (s > 0.0f) return 1.0f;
  return act == Activation::relu ? 0.0f : slope;
}
