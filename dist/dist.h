// Joining a data-parallel job: a program started by mpirun makes one Session first thing in
// main(). It initialises MPI and installs a communicator (backends/communicator.h) over every
// rank of the job: Open MPI's for CPU memory, then, once the device is known to be CUDA, NCCL's
// (one GPU per process, chosen by the rank on its host). Started alone, a Session is one rank
// and touches no MPI at all. The graph's allreduce_sum ops then sum over the ranks.
//
// A failing rank must not leave the others waiting in a collective: errors on the MPI side
// are returned (MPI_ERRORS_RETURN) and become ag::Error, and abort() ends the whole job
// (MPI_Abort), which is what a tool does when it fails on one rank. mpirun itself ends the job
// when a process dies.
#pragma once
#include <string>

#include "graph/tensor.h"

namespace ag::dist {

// Whether this build can join an MPI job (aegraph was configured with MPI found).
bool built_with_mpi();
// Whether the process was started by mpirun / srun as one of several ranks (from the
// environment the launcher sets); a build without MPI refuses such a start.
bool launched_as_ranks();

class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  // The device the model runs on: for CUDA with several ranks, selects this rank's GPU and
  // installs NCCL's communicator. Call before anything touches the GPU.
  void use_device(Device device);
  // Ends every rank of the job with `code` (after a failure on this one); alone: returns.
  void abort(int code);
  std::string describe() const;  // "1 process" or "4 ranks (mpi)"

 private:
  int rank_ = 0, size_ = 1;
  bool mpi_ = false;
};

}  // namespace ag::dist
