// Unary maps and binary zips on the device, instantiated from the same scalar functors the CPU
// runs (ops/functors.h), one pair of kernels per functor and dtype, registered through the
// X-macro lists. Zips broadcast exactly as the CPU does: the output is an M x N matrix and each
// operand is full, a row, a column or a scalar (ops/broadcast.h), planned on the host.
#include "backends/cuda/device_loops.cuh"
#include "ops/broadcast.h"
#include "ops/functors.h"

namespace ag::cuda {

namespace {

template <class F, class T>
__global__ void map_kernel(const F f, const T* x, T* y, int64_t n) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) y[i] = f(x[i]);
}

// z (M x N) = F(a, b). In place is safe: an operand that shares z's memory is full (the plan
// only reuses a buffer of the output's shape), and element k reads only element k of it.
template <class F, class T>
__global__ void zip_kernel(const F f, const T* a, const T* b, T* z, int64_t M, int64_t N, uint8_t mode_a,
                           uint8_t mode_b) {
  const int64_t n = M * N;
  if (mode_a == bc_full && mode_b == bc_full) {
    for (int64_t k = grid_start(); k < n; k += grid_stride()) z[k] = f(a[k], b[k]);
    return;
  }
  for (int64_t k = grid_start(); k < n; k += grid_stride()) {
    const int64_t i = k / N, j = k - i * N;
    z[k] = f(a[broadcast_index(mode_a, i, j, N)], b[broadcast_index(mode_b, i, j, N)]);
  }
}

template <class F, class T>
void launch_map(const KernelCall& c, const Context& ctx) {
  const int64_t n = c.out.numel();
  if (n == 0) return;
  map_kernel<<<grid_for(n), block_threads, 0, ctx.stream>>>(fn::make<F>(c.node->attrs), c.in[0].ptr<T>(),
                                                             c.out.ptr<T>(), n);
  check_launch(op_name(c.node->op));
}

// The same split the CPU's cpu::zip takes: flat when both operands are full (or one is a
// scalar), else the M x N plan of broadcast_plan.
inline Broadcast2D zip_plan(const KernelCall& c) {
  const Shape &sa = c.in[0].shape, &sb = c.in[1].shape, &sz = c.out.shape;
  const int64_t n = sz.numel(), na = sa.numel(), nb = sb.numel();
  Broadcast2D bc;
  if ((na == n || na == 1) && (nb == n || nb == 1)) {
    bc.M = 1;
    bc.N = n;
    bc.mode_a = na == n ? bc_full : bc_scalar;
    bc.mode_b = nb == n ? bc_full : bc_scalar;
    return bc;
  }
  if (!broadcast_plan(sa, sb, sz, &bc))
    throw Error(std::string("cuda: ") + op_name(c.node->op) + ": cannot broadcast " + sa.str() + " and " + sb.str() +
                " to " + sz.str());
  return bc;
}

template <class F, class T>
void launch_zip(const KernelCall& c, const Context& ctx) {
  const Broadcast2D bc = zip_plan(c);
  const int64_t n = bc.M * bc.N;
  if (n == 0) return;
  zip_kernel<<<grid_for(n), block_threads, 0, ctx.stream>>>(fn::make<F>(c.node->attrs), c.in[0].ptr<T>(),
                                                            c.in[1].ptr<T>(), c.out.ptr<T>(), bc.M, bc.N, bc.mode_a,
                                                            bc.mode_b);
  check_launch(op_name(c.node->op));
}

template <class F>
void unary(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_map<F, float>(c, ctx) : launch_map<F, double>(c, ctx);
}

template <class F>
void binary(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? launch_zip<F, float>(c, ctx) : launch_zip<F, double>(c, ctx);
}

}  // namespace

void register_elementwise_kernels(Launcher* k) {
#define AG_CUDA_UNARY(name, F) k[int(OpCode::name)] = unary<fn::F>;
#define AG_CUDA_BINARY(name, F) k[int(OpCode::name)] = binary<fn::F>;
  AG_UNARY_OPS(AG_CUDA_UNARY)
  AG_BINARY_OPS(AG_CUDA_BINARY)
#undef AG_CUDA_UNARY
#undef AG_CUDA_BINARY
}

}  // namespace ag::cuda
