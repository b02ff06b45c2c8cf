// Shape kernels on the CPU: the gathers of broadcast_to and permute, and the copies of slice,
// pad, concat and assign.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels.h"
#include "backends/cpu/loops.h"
#include "ops/broadcast.h"

namespace ag::cpu {

namespace {

// y[idx] = x[sum_k idx_k * in_stride[k]] (ops/broadcast.h): broadcast_to and permute. Rows whose
// source is contiguous are copied whole; otherwise (a transpose) the last two axes go in square
// tiles, so that the strided reads of a tile share their cache lines.
template <class T>
void gather(const KernelCall& c, const GatherStrides& g) {
  const int64_t* od = g.out_dim;
  const int64_t* st = g.in_stride;
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
  const bool big = c.out.numel() > cpu::parallel_grain;
  if (st[3] == 1 || od[3] == 1) {
#pragma omp parallel for collapse(3) schedule(static) if (big)
    for (int64_t a = 0; a < od[0]; ++a)
      for (int64_t b = 0; b < od[1]; ++b)
        for (int64_t cc = 0; cc < od[2]; ++cc) {
          T* yr = y + ((a * od[1] + b) * od[2] + cc) * od[3];
          const T* xr = x + a * st[0] + b * st[1] + cc * st[2];
          if (st[3] == 1)
            std::memcpy(yr, xr, size_t(od[3]) * sizeof(T));
          else
            yr[0] = xr[0];
        }
    return;
  }
  constexpr int64_t tile = 32;
  const int64_t ti = (od[2] + tile - 1) / tile, tj = (od[3] + tile - 1) / tile;
#pragma omp parallel for collapse(4) schedule(static) if (big)
  for (int64_t a = 0; a < od[0]; ++a)
    for (int64_t b = 0; b < od[1]; ++b)
      for (int64_t i0 = 0; i0 < ti; ++i0)
        for (int64_t j0 = 0; j0 < tj; ++j0) {
          T* yp = y + (a * od[1] + b) * od[2] * od[3];
          const T* xp = x + a * st[0] + b * st[1];
          const int64_t i_end = std::min(od[2], (i0 + 1) * tile), j_end = std::min(od[3], (j0 + 1) * tile);
          for (int64_t i = i0 * tile; i < i_end; ++i)
            for (int64_t j = j0 * tile; j < j_end; ++j) yp[i * od[3] + j] = xp[i * st[2] + j * st[3]];
        }
}
void gather(const KernelCall& c, const GatherStrides& g) {
  c.out.dtype == DType::f32 ? gather<float>(c, g) : gather<double>(c, g);
}
}  // namespace
void broadcast_kernel(const KernelCall& c) { gather(c, broadcast_strides(c.out.shape, c.in[0].shape)); }
void permute_kernel(const KernelCall& c) { gather(c, permute_strides(c.in[0].shape, c.node->attrs.i)); }

namespace {

// Shape copies see tensors as [outer, axis, inner], inner in bytes.
struct AxisView {
  int64_t outer = 1, inner_bytes = 1;
};
AxisView axis_view(const Shape& s, int axis, size_t elem) {
  const AxisSplit a = split_at_axis(s, axis);
  return AxisView{a.outer, a.inner * int64_t(elem)};
}

// Copies `src` (axis length len) into `dst` (axis length total) at offset `at`, or back.
void copy_along(char* dst, int64_t dst_len, int64_t dst_at, const char* src, int64_t src_len, int64_t src_at,
                int64_t len, const AxisView& v) {
  for (int64_t o = 0; o < v.outer; ++o)
    std::memcpy(dst + (o * dst_len + dst_at) * v.inner_bytes, src + (o * src_len + src_at) * v.inner_bytes,
                size_t(len * v.inner_bytes));
}

}  // namespace

void slice_kernel(const KernelCall& c) {
  const int axis = int(c.node->attrs.i[0]);
  AxisView v = axis_view(c.in[0].shape, axis, dtype_size(c.out.dtype));
  copy_along(c.out.ptr<char>(), c.out.shape[axis], 0, c.in[0].ptr<char>(), c.in[0].shape[axis], c.node->attrs.i[1],
             c.out.shape[axis], v);
}

void pad_kernel(const KernelCall& c) {
  const int axis = int(c.node->attrs.i[0]);
  std::memset(c.out.data, 0, c.out.bytes());
  AxisView v = axis_view(c.out.shape, axis, dtype_size(c.out.dtype));
  copy_along(c.out.ptr<char>(), c.out.shape[axis], c.node->attrs.i[1], c.in[0].ptr<char>(), c.in[0].shape[axis], 0,
             c.in[0].shape[axis], v);
}

void concat_kernel(const KernelCall& c) {
  const int axis = int(c.node->attrs.i[0]);
  AxisView v = axis_view(c.out.shape, axis, dtype_size(c.out.dtype));
  int64_t at = 0;
  for (int k = 0; k < c.nin; ++k) {
    copy_along(c.out.ptr<char>(), c.out.shape[axis], at, c.in[k].ptr<char>(), c.in[k].shape[axis], 0,
               c.in[k].shape[axis], v);
    at += c.in[k].shape[axis];
  }
}

void assign_kernel(const KernelCall& c) {
  if (c.out.data != c.in[1].data) std::memcpy(c.out.data, c.in[1].data, c.out.bytes());
}

}  // namespace ag::cpu
