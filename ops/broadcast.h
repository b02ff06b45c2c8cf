// Broadcasting as both backends run it: the output is seen as an M x N matrix and each
// operand as the full matrix, a row (length N), a column (length M) or a scalar.
#pragma once
#include <cstdint>

#include "graph/tensor.h"
#include "ops/functors.h"

namespace ag {

enum BroadcastMode : uint8_t { bc_full = 0, bc_row = 1, bc_col = 2, bc_scalar = 3 };

struct Broadcast2D {
  int64_t M = 1, N = 1;
  uint8_t mode_a = bc_full, mode_b = bc_full;
};

AG_HD int64_t broadcast_index(uint8_t mode, int64_t i, int64_t j, int64_t N) {
  return mode == bc_full ? i * N + j : mode == bc_row ? j : mode == bc_col ? i : 0;
}

// A tensor seen as [outer, n, inner] around one axis: how reductions and shape copies walk it.
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
inline AxisSplit split_at_axis(const Shape& s, int axis) {
  AxisSplit a;
  a.n = s.dim[axis];
  for (int k = 0; k < axis; ++k) a.outer *= s.dim[k];
  for (int k = axis + 1; k < s.rank; ++k) a.inner *= s.dim[k];
  return a;
}

// A strided gather, y[idx] = x[sum_k idx_k * in_stride[k]], as both backends run broadcast_to
// and permute: the output's axes right-aligned into 4, the input's stride on each (0 where an
// axis is stretched; the moved axis's stride where axes are permuted).
struct GatherStrides {
  int64_t out_dim[4] = {1, 1, 1, 1};
  int64_t in_stride[4] = {0, 0, 0, 0};
};
GatherStrides broadcast_strides(const Shape& out, const Shape& in);
// Output axis k is input axis perm[k] (perm has out.rank entries).
GatherStrides permute_strides(const Shape& in, const int64_t* perm);

// numpy's rule (right-aligned, 1 stretches); false when the shapes do not broadcast.
bool broadcast_shape(const Shape& a, const Shape& b, Shape* out);
// The M x N split and each operand's mode; false when no split describes both operands.
bool broadcast_plan(const Shape& a, const Shape& b, const Shape& out, Broadcast2D* plan);

}  // namespace ag
