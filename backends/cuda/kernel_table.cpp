// The CUDA kernel table: every op code starts at "no kernel" and each kernel file registers the
// ops it runs, as backends/cpu/cpu_backend.cpp does for the CPU.
#include <fmt/format.h>

#include "backends/cuda/kernels.h"

namespace ag::cuda {

namespace {

void no_kernel(const KernelCall& c, const Context&) {
  throw Error(fmt::format("cuda: {} has no kernel (it should not be a step)", op_name(c.node->op)));
}

struct KernelTable {
  Launcher k[op_count];
  KernelTable() {
    for (auto& f : k) f = no_kernel;
    register_elementwise_kernels(k);
    register_reduce_kernels(k);
    register_random_kernels(k);
    register_matmul_kernel(k);
    register_broadcast_kernel(k);
    register_copy_kernels(k);
    register_image_kernels(k);
    register_collective_kernels(k);
  }
};

const KernelTable& kernels() {
  static const KernelTable table;
  return table;
}

}  // namespace

void launch(const KernelCall& call, const Context& ctx) { kernels().k[int(call.node->op)](call, ctx); }

bool has_kernel(OpCode op) { return int(op) < op_count && kernels().k[int(op)] != no_kernel; }

}  // namespace ag::cuda
