// Device-side building blocks the kernel files share: the grid-stride index range and a block
// sum in a fixed order (a shared-memory tree), which makes every reduction repeat bit for bit.
#pragma once
#include <cstdint>

#include "backends/cuda/kernels.h"

namespace ag::cuda {

// First index and stride of a grid-stride loop, in 64 bits (n may exceed 2^31).
__device__ __forceinline__ int64_t grid_start() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

// The sum of v over the block's block_threads threads, the same order at every run; every
// thread gets the total. `shared` holds block_threads doubles.
__device__ __forceinline__ double block_sum(double v, double* shared) {
  const int t = int(threadIdx.x);
  shared[t] = v;
  __syncthreads();
  for (int half = block_threads / 2; half > 0; half /= 2) {
    if (t < half) shared[t] += shared[t + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // the caller may reuse `shared` at once
  return total;
}

}  // namespace ag::cuda
