// The CUDA kernel table: one launcher per op code, filled by one registration function per
// kind of kernel (each in its own source file), the elementwise, loss and random kinds straight
// from the X-macro lists of ops/op.h, so a new op of those kinds needs no edit here.
// A launcher only enqueues work on the context's stream: it never allocates, never waits.
#pragma once
#include <cstdint>

#include "backends/backend.h"
#include "backends/cuda/cuda_context.h"

namespace ag::cuda {

using Launcher = void (*)(const KernelCall& call, const Context& ctx);

void register_elementwise_kernels(Launcher* table);  // elementwise.cu: unary maps, binary zips
void register_reduce_kernels(Launcher* table);       // reduce.cu: losses, sum, sum_axis
void register_random_kernels(Launcher* table);       // random.cu: uniform, normal, bernoulli
void register_matmul_kernel(Launcher* table);        // matmul.cu: cuBLAS GEMM and the bias row
void register_broadcast_kernel(Launcher* table);     // broadcast.cu: broadcast_to, permute
void register_copy_kernels(Launcher* table);         // copies.cpp: slice, pad, concat, assign
void register_image_kernels(Launcher* table);        // image.cu: convolutions, pooling, upsampling
void register_collective_kernels(Launcher* table);   // collective.cpp: allreduce_sum (NCCL through the communicator)

// Enqueues one call on ctx.stream (throws an Error naming the op when it cannot).
void launch(const KernelCall& call, const Context& ctx);
// Whether op has a CUDA kernel (leaves and aliases have none: they are never steps).
bool has_kernel(OpCode op);

// Grid for a grid-stride loop over n elements: enough blocks to fill any current GPU, and a
// count that depends on n alone.
constexpr int block_threads = 256;
constexpr int64_t max_grid_blocks = 8192;
inline unsigned grid_for(int64_t n) {
  int64_t blocks = (n + block_threads - 1) / block_threads;
  return unsigned(blocks < 1 ? 1 : blocks > max_grid_blocks ? max_grid_blocks : blocks);
}

}  // namespace ag::cuda
