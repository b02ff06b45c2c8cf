// slice, pad, concat and assign: pure data movement, done by the copy engine as strided
// (2D) device-to-device copies on the context's stream. A tensor is seen as [outer, axis, inner]
// in bytes, as in the CPU backend; each outer slice moves one contiguous run of bytes.
#include "backends/cuda/kernels.h"
#include "ops/broadcast.h"

namespace ag::cuda {

namespace {

struct AxisView {
  int64_t outer = 1, inner_bytes = 1;
};

AxisView axis_view(const Shape& s, int axis, size_t elem) {
  const AxisSplit a = split_at_axis(s, axis);  // the same split the reductions use
  return AxisView{a.outer, a.inner * int64_t(elem)};
}

// Copies `len` positions along the axis: src [outer, src_len, inner] from src_at into
// dst [outer, dst_len, inner] at dst_at.
void copy_along(char* dst, int64_t dst_len, int64_t dst_at, const char* src, int64_t src_len, int64_t src_at,
                int64_t len, const AxisView& v, const Context& ctx, const char* op) {
  const size_t width = size_t(len * v.inner_bytes);
  if (width == 0 || v.outer == 0) return;
  dst += dst_at * v.inner_bytes;
  src += src_at * v.inner_bytes;
  if (v.outer == 1) {
    check(cudaMemcpyAsync(dst, src, width, cudaMemcpyDeviceToDevice, ctx.stream), op, "cudaMemcpyAsync");
    return;
  }
  check(cudaMemcpy2DAsync(dst, size_t(dst_len * v.inner_bytes), src, size_t(src_len * v.inner_bytes), width,
                          size_t(v.outer), cudaMemcpyDeviceToDevice, ctx.stream),
        op, "cudaMemcpy2DAsync");
}

void slice(const KernelCall& c, const Context& ctx) {
  const int axis = int(c.node->attrs.i[0]);
  const AxisView v = axis_view(c.in[0].shape, axis, dtype_size(c.out.dtype));
  copy_along(c.out.ptr<char>(), c.out.shape[axis], 0, c.in[0].ptr<char>(), c.in[0].shape[axis], c.node->attrs.i[1],
             c.out.shape[axis], v, ctx, "slice");
}

void pad(const KernelCall& c, const Context& ctx) {
  const int axis = int(c.node->attrs.i[0]);
  if (c.out.bytes() == 0) return;
  check(cudaMemsetAsync(c.out.data, 0, c.out.bytes(), ctx.stream), "pad", "cudaMemsetAsync");
  const AxisView v = axis_view(c.out.shape, axis, dtype_size(c.out.dtype));
  copy_along(c.out.ptr<char>(), c.out.shape[axis], c.node->attrs.i[1], c.in[0].ptr<char>(), c.in[0].shape[axis], 0,
             c.in[0].shape[axis], v, ctx, "pad");
}

void concat(const KernelCall& c, const Context& ctx) {
  const int axis = int(c.node->attrs.i[0]);
  const AxisView v = axis_view(c.out.shape, axis, dtype_size(c.out.dtype));
  int64_t at = 0;
  for (int k = 0; k < c.nin; ++k) {
    copy_along(c.out.ptr<char>(), c.out.shape[axis], at, c.in[k].ptr<char>(), c.in[k].shape[axis], 0,
               c.in[k].shape[axis], v, ctx, "concat");
    at += c.in[k].shape[axis];
  }
}

// assign(target, value): the value is copied unless the plan computed it in the target already.
void assign(const KernelCall& c, const Context& ctx) {
  if (c.out.data == c.in[1].data || c.out.bytes() == 0) return;
  check(cudaMemcpyAsync(c.out.data, c.in[1].data, c.out.bytes(), cudaMemcpyDeviceToDevice, ctx.stream), "assign",
        "cudaMemcpyAsync");
}

}  // namespace

void register_copy_kernels(Launcher* k) {
  k[int(OpCode::slice)] = slice;
  k[int(OpCode::pad)] = pad;
  k[int(OpCode::concat)] = concat;
  k[int(OpCode::assign)] = assign;
}

}  // namespace ag::cuda
