// The block interpreter for fused elementwise groups (graph/plan.h): each op of a group runs
// over one cache-sized block at a time, its intermediates in a scratch on the stack. The
// optimisers' groups also have loops compiled ahead of time (compiled_groups.h).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels.h"
#include "backends/cpu/loops.h"

namespace ag::cpu {

namespace {

template <class T>
using BlockFn = void (*)(const Attrs& attrs, const T* a, const T* b, T* y, int64_t n);
enum BlockMode { both_full = 0, a_scalar = 1, b_scalar = 2 };

template <class F, class T>
void block_unary(const Attrs& at, const T* a, const T*, T* y, int64_t n) {
  const F f = fn::make<F>(at);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f(a[i]);
}

template <class F, class T, int mode>
void block_binary(const Attrs& at, const T* a, const T* b, T* y, int64_t n) {
  const F f = fn::make<F>(at);
  if constexpr (mode == a_scalar) {
    const T av = a[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = f(av, b[i]);
  } else if constexpr (mode == b_scalar) {
    const T bv = b[0];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], bv);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  }
}

template <class T>
struct BlockTable {
  BlockFn<T> fn[op_count][3] = {};
  BlockTable() {
#define AG_BLOCK_UNARY(name, F) fn[int(OpCode::name)][both_full] = block_unary<fn::F, T>;
#define AG_BLOCK_BINARY(name, F)                                                   \
  fn[int(OpCode::name)][both_full] = block_binary<fn::F, T, both_full>;           \
  fn[int(OpCode::name)][a_scalar] = block_binary<fn::F, T, a_scalar>;             \
  fn[int(OpCode::name)][b_scalar] = block_binary<fn::F, T, b_scalar>;
    AG_UNARY_OPS(AG_BLOCK_UNARY)
    AG_BINARY_OPS(AG_BLOCK_BINARY)
#undef AG_BLOCK_UNARY
#undef AG_BLOCK_BINARY
  }
};

template <class T>
void run_fused(const KernelCall& c) {
  static const BlockTable<T> table;
  constexpr int64_t block = 512;
  const int64_t n = c.out.numel(), blocks = (n + block - 1) / block;
#pragma omp parallel for schedule(static) if (n > cpu::parallel_grain)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    alignas(64) T scratch[max_fused_ops][block];
    const T* result[max_fused_ops];  // where each op's block is
    const int64_t lo = blk * block, len = std::min(block, n - lo);
    // Where operand k of this block is, and whether it is one value for all elements.
    auto operand = [&](int k, bool* scalar) -> const T* {
      if (k < 0) {
        *scalar = false;
        return result[-k - 1];
      }
      *scalar = c.in[k].numel() == 1;
      return *scalar ? c.in[k].ptr<T>() : c.in[k].ptr<T>() + lo;
    };
    for (int j = 0; j < c.nfused; ++j) {
      const FusedOp& op = c.fused[j];
      if (op.node->op == OpCode::assign) {  // store the value's block into the target (input a)
        T* target = static_cast<T*>(c.in[op.a].data) + lo;
        std::memcpy(target, result[-op.b - 1], sizeof(T) * size_t(len));
        result[j] = target;
        continue;
      }
      T* y = j == c.nfused - 1 ? c.out.ptr<T>() + lo : scratch[j];
      result[j] = y;
      if (op.node->op == OpCode::broadcast_to) {  // input a: a column [M, 1] or a row [N] of [M, N]
        const Tensor& in = c.in[op.a];
        const T* x = in.ptr<T>();
        const bool column = in.shape.rank == 2 && in.shape[1] == 1;
        const int64_t N = op.node->shape[1];
        int64_t row = lo / N, col = lo % N;
        for (int64_t i = 0; i < len; ++row, col = 0) {  // the block, one stretch of a row at a time
          const int64_t run = std::min(len - i, N - col);
          if (column) std::fill(y + i, y + i + run, x[row]);
          else std::memcpy(y + i, x + col, sizeof(T) * size_t(run));
          i += run;
        }
        continue;
      }
      bool sa = false, sb = false;
      const T* a = operand(op.a, &sa);
      const T* b = op.node->in.size() > 1 ? operand(op.b, &sb) : nullptr;
      const int mode = sa ? a_scalar : sb ? b_scalar : both_full;
      table.fn[int(op.node->op)][mode](op.node->attrs, a, b, y, len);
    }
  }
}

}  // namespace

void fused_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? run_fused<float>(c) : run_fused<double>(c); }

}  // namespace ag::cpu
