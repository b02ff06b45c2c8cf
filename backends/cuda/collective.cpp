// allreduce_sum on the GPU: the inputs packed into the output by device-to-device copies on the
// context's stream, then the sum over the ranks enqueued on the same stream by the installed
// communicator (NCCL's, dist/nccl_communicator.cpp; capturable in a CUDA graph like any launch).
#include "backends/communicator.h"
#include "backends/cuda/kernels.h"

namespace ag::cuda {

namespace {

void allreduce(const KernelCall& c, const Context& ctx) {
  const size_t elem = dtype_size(c.out.dtype);
  char* out = c.out.ptr<char>();
  for (int k = 0; k < c.nin; ++k) {
    const size_t bytes = size_t(c.in[k].numel()) * elem;
    if (bytes && c.in[k].data != out)
      check(cudaMemcpyAsync(out, c.in[k].data, bytes, cudaMemcpyDeviceToDevice, ctx.stream), "allreduce_sum",
            "cudaMemcpyAsync");
    out += bytes;
  }
  communicator().allreduce_sum(c.out.data, c.out.numel(), c.out.dtype, Device::cuda, ctx.stream);
}

}  // namespace

void register_collective_kernels(Launcher* k) { k[int(OpCode::allreduce_sum)] = allreduce; }

}  // namespace ag::cuda
