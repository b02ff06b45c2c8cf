// Shape kernels on the CPU: broadcasts and the copies of slice, pad, concat and assign.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels.h"
#include "backends/cpu/loops.h"

namespace ag::cpu {

namespace {

// y[idx] = x[idx with broadcast axes pinned to 0], up to rank 4.
template <class T>
void broadcast(const KernelCall& c) {
  const Shape &so = c.out.shape, &si = c.in[0].shape;
  int64_t od[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
  const int r = so.rank;
  int64_t stride = 1;
  for (int k = r - 1; k >= 0; --k) {
    od[4 - r + k] = so.dim[k];
    int ik = si.rank - r + k;
    int64_t d = ik >= 0 ? si.dim[ik] : 1;
    st[4 - r + k] = d == 1 ? 0 : stride;
    stride *= d;
  }
  const T* x = c.in[0].ptr<T>();
  T* y = c.out.ptr<T>();
#pragma omp parallel for collapse(2) schedule(static) if (c.out.numel() > cpu::parallel_grain)
  for (int64_t a = 0; a < od[0]; ++a)
    for (int64_t b = 0; b < od[1]; ++b)
      for (int64_t cc = 0; cc < od[2]; ++cc) {
        T* yr = y + ((a * od[1] + b) * od[2] + cc) * od[3];
        const T* xr = x + a * st[0] + b * st[1] + cc * st[2];
        for (int64_t d = 0; d < od[3]; ++d) yr[d] = xr[d * st[3]];
      }
}
}  // namespace
void broadcast_kernel(const KernelCall& c) { c.out.dtype == DType::f32 ? broadcast<float>(c) : broadcast<double>(c); }

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
