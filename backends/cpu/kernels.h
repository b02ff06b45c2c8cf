// The CPU backend's kernels that are not generic loops over a functor, by concern:
//   products.cpp      matmul, masked_matmul (OpenBLAS, our bands, the sparse kernels), pairs
//   reductions.cpp    sum, sum over an axis, logsumexp, batch top-k's mask, batch norm
//   shape_kernels.cpp broadcast, slice, pad, concat, assign
//   image_kernels.cpp convolutions (unfold + OpenBLAS), pooling, upsampling
//   fused.cpp         the block interpreter for fused elementwise groups
// cpu_backend.cpp puts them in the kernel table beside the functor loops, and runs programs.
#pragma once

#include "backends/backend.h"

namespace ag::cpu {

void matmul_kernel(const KernelCall& c);
void masked_matmul_kernel(const KernelCall& c);
// Two independent products side by side, one per thread (CompileOptions::pair_matmuls).
void run_pair(const KernelCall& a, const KernelCall& b);

void sum_kernel(const KernelCall& c);
void sum_axis_kernel(const KernelCall& c);
void logsumexp_kernel(const KernelCall& c);
void batch_topk_kernel(const KernelCall& c);
void batch_norm_kernel(const KernelCall& c);
void batch_norm_dw_kernel(const KernelCall& c);
void batch_norm_dx_kernel(const KernelCall& c);
void batch_moments_kernel(const KernelCall& c);

void broadcast_kernel(const KernelCall& c);
void permute_kernel(const KernelCall& c);
void slice_kernel(const KernelCall& c);
void pad_kernel(const KernelCall& c);
void concat_kernel(const KernelCall& c);
void assign_kernel(const KernelCall& c);

void conv2d_kernel(const KernelCall& c);
void conv_transpose2d_kernel(const KernelCall& c);
void conv2d_filter_grad_kernel(const KernelCall& c);
void max_pool2d_kernel(const KernelCall& c);
void max_unpool2d_kernel(const KernelCall& c);
void upsample_nearest2d_kernel(const KernelCall& c);
void sum_pool2d_kernel(const KernelCall& c);

void allreduce_kernel(const KernelCall& c);  // collective.cpp

// A fused group through the interpreter: each op in turn over one 512-element block at a time.
void fused_kernel(const KernelCall& c);

}  // namespace ag::cpu
