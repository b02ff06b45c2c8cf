// The processes a data-parallel run spans, as the graph's collective ops see them: this rank,
// how many there are, and a sum over all of them of a buffer every rank holds (an allreduce, in
// place). The default is one process, where the sum is the buffer itself; dist/ installs Open MPI's
// (CPU memory) or NCCL's (GPU memory) when a program is started by mpirun. Every rank must run
// the same collectives in the same order, as the same compiled step does.
#pragma once
#include <cstdint>
#include <memory>

#include "graph/tensor.h"

namespace ag {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // data (count elements of dtype on device) := the sum of every rank's data. `stream` is the
  // CUDA stream to order it on (device cuda), else null. CPU: returns when done; CUDA: enqueued.
  virtual void allreduce_sum(void* data, int64_t count, DType dtype, Device device, void* stream) = 0;
  // The same sum of host memory, started and left in flight, so that the kernels after it run
  // while it travels: nothing may read or write `data` until finish_sums(), which waits for
  // every sum started. progress_sums() lets the sums in flight advance (the CPU backend calls it
  // between kernels while sums_pending()). By default a sum runs to its end when started.
  virtual void start_allreduce_sum(void* data, int64_t count, DType dtype) {
    allreduce_sum(data, count, dtype, Device::cpu, nullptr);
  }
  virtual bool sums_pending() const { return false; }
  virtual void progress_sums() {}
  virtual void finish_sums() {}
  // For reporting: "mpi", "nccl", "single".
  virtual const char* name() const = 0;
};

// The installed communicator (a single-process one until set_communicator).
Communicator& communicator();
// Installs c for the whole process (null: back to a single process); returns the previous one.
std::unique_ptr<Communicator> set_communicator(std::unique_ptr<Communicator> c);

}  // namespace ag
