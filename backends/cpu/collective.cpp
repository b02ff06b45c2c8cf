// allreduce_sum on the host: the inputs packed into the output, then summed in place over the
// ranks by the installed communicator. The sum is only started: the calls after it run while it
// is in flight, and the first call that touches its memory finishes it (KernelCall::finishes_sums,
// set by the executor; the CPU backend finishes every sum at the end of a run too).
#include <cstring>

#include "backends/communicator.h"
#include "backends/cpu/kernels.h"

namespace ag::cpu {

void allreduce_kernel(const KernelCall& c) {
  const size_t elem = dtype_size(c.out.dtype);
  char* out = c.out.ptr<char>();
  for (int k = 0; k < c.nin; ++k) {
    const size_t bytes = size_t(c.in[k].numel()) * elem;
    if (bytes && c.in[k].data != out) std::memmove(out, c.in[k].data, bytes);
    out += bytes;
  }
  communicator().start_allreduce_sum(c.out.data, c.out.numel(), c.out.dtype);
}

}  // namespace ag::cpu
