// Broadcast shape rule, the M x N split that the elementwise kernels use, and the strided
// gathers of broadcast_to and permute.
#include "ops/broadcast.h"

#include <algorithm>

namespace ag {

bool broadcast_shape(const Shape& a, const Shape& b, Shape* out) {
  int r = std::max(a.rank, b.rank);
  int64_t d[Shape::max_rank];
  for (int k = 0; k < r; ++k) {
    int ia = a.rank - r + k, ib = b.rank - r + k;
    int64_t da = ia >= 0 ? a.dim[ia] : 1, db = ib >= 0 ? b.dim[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    d[k] = da == 1 ? db : da;
  }
  *out = Shape::of(d, r);
  return true;
}

// The mode of `in` against `out` split after axis k, or -1 when it fits none.
static int mode_for_split(const Shape& in, const Shape& out, int k) {
  if (in.numel() == 1) return bc_scalar;
  if (in == out) return bc_full;
  int r = out.rank;
  auto dim = [&](int axis) {  // in's dimension aligned to out's axis
    int i = in.rank - r + axis;
    return i >= 0 ? in.dim[i] : int64_t(1);
  };
  bool lead_full = true, lead_one = true, tail_full = true, tail_one = true;
  for (int axis = 0; axis < r; ++axis) {
    bool full = dim(axis) == out.dim[axis], one = dim(axis) == 1;
    if (axis < k) { lead_full &= full; lead_one &= one; }
    else { tail_full &= full; tail_one &= one; }
  }
  if (in.rank > r) return -1;
  if (lead_one && tail_full) return bc_row;
  if (lead_full && tail_one) return bc_col;
  if (lead_full && tail_full) return bc_full;
  return -1;
}

bool broadcast_plan(const Shape& a, const Shape& b, const Shape& out, Broadcast2D* plan) {
  for (int k = out.rank; k >= 0; --k) {
    int ma = mode_for_split(a, out, k), mb = mode_for_split(b, out, k);
    if (ma < 0 || mb < 0) continue;
    int64_t M = 1, N = 1;
    for (int axis = 0; axis < out.rank; ++axis) (axis < k ? M : N) *= out.dim[axis];
    plan->M = M;
    plan->N = N;
    plan->mode_a = uint8_t(ma);
    plan->mode_b = uint8_t(mb);
    return true;
  }
  return false;
}

GatherStrides broadcast_strides(const Shape& out, const Shape& in) {
  GatherStrides g;
  const int r = out.rank;
  int64_t stride = 1;
  for (int k = r - 1; k >= 0; --k) {
    g.out_dim[4 - r + k] = out.dim[k];
    const int ik = in.rank - r + k;
    const int64_t d = ik >= 0 ? in.dim[ik] : 1;
    g.in_stride[4 - r + k] = d == 1 ? 0 : stride;
    stride *= d;
  }
  return g;
}

GatherStrides permute_strides(const Shape& in, const int64_t* perm) {
  const int r = in.rank;
  int64_t stride[Shape::max_rank], s = 1;
  for (int k = r - 1; k >= 0; --k) {
    stride[k] = s;
    s *= in.dim[k];
  }
  GatherStrides g;
  for (int k = 0; k < r; ++k) {
    g.out_dim[4 - r + k] = in.dim[perm[k]];
    g.in_stride[4 - r + k] = stride[perm[k]];
  }
  return g;
}

}  // namespace ag
