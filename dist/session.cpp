// dist::Session: see dist/dist.h. Open MPI's communicator for host memory, NCCL's for GPUs.
#include "dist/dist.h"

#include <climits>
#include <cstdlib>
#include <memory>
#include <vector>
#include <string>

#include <fmt/format.h>

#include "backends/communicator.h"
#include "ops/op.h"

#ifdef AEGRAPH_WITH_MPI
#include <mpi.h>
#endif
#ifdef AEGRAPH_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace ag::dist {

bool built_with_mpi() {
#ifdef AEGRAPH_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool launched_as_ranks() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"})
    if (const char* v = std::getenv(var); v && std::atoi(v) > 1) return true;
  return false;
}

#ifdef AEGRAPH_WITH_MPI
namespace {

void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(fmt::format("mpi: {} failed: {} (another rank has probably failed)", call, std::string(text, size_t(len))));
}

// Whether a sum is left in flight while the step goes on (MPI_Iallreduce) or run at once
// (MPI_Allreduce): AEGRAPH_OVERLAP_SUMS=1 or 0, else in flight when the ranks span several hosts.
// On one host the sum is memory traffic and additions on the same busy cores, and Open MPI's
// blocking shared-memory algorithm measured faster (docs/scale-out.md); across hosts the
// transfer can travel while the backward pass computes.
bool overlap_sums(int size) {
  if (const char* v = std::getenv("AEGRAPH_OVERLAP_SUMS"); v && *v) return std::string(v) != "0";
  MPI_Comm host;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host), "MPI_Comm_split_type");
  int local = 0;
  MPI_Comm_size(host, &local);
  MPI_Comm_free(&host);
  return local < size;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int rank, int size) : rank_(rank), size_(size), overlap_(overlap_sums(size)) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* name() const override { return overlap_ ? "mpi, sums overlapped" : "mpi"; }
  void allreduce_sum(void* data, int64_t count, DType dtype, Device device, void*) override {
    if (device != Device::cpu) throw Error("mpi: allreduce_sum on GPU memory needs NCCL (this rank has no NCCL communicator)");
    each_chunk(data, count, dtype, [](void* p, int n, MPI_Datatype type) {
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, p, n, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    });
  }
  // In flight: Open MPI advances an MPI_Iallreduce inside MPI calls, so progress_sums() tests the
  // requests (the CPU backend calls it between kernels) and finish_sums() waits for them.
  void start_allreduce_sum(void* data, int64_t count, DType dtype) override {
    if (!overlap_) return allreduce_sum(data, count, dtype, Device::cpu, nullptr);
    each_chunk(data, count, dtype, [this](void* p, int n, MPI_Datatype type) {
      pending_.push_back(MPI_REQUEST_NULL);
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, p, n, type, MPI_SUM, MPI_COMM_WORLD, &pending_.back()), "MPI_Iallreduce");
    });
  }
  bool sums_pending() const override { return !pending_.empty(); }
  void progress_sums() override {
    int done = 0;
    check_mpi(MPI_Testall(int(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
    if (done) pending_.clear();
  }
  void finish_sums() override {
    if (pending_.empty()) return;
    std::vector<MPI_Request> requests;
    requests.swap(pending_);  // an error leaves nothing pending behind it
    check_mpi(MPI_Waitall(int(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  }

 private:
  template <class F>
  static void each_chunk(void* data, int64_t count, DType dtype, F f) {
    const MPI_Datatype type = dtype == DType::f32 ? MPI_FLOAT : MPI_DOUBLE;
    char* p = static_cast<char*>(data);
    for (int64_t at = 0; at < count;) {  // MPI counts are ints
      const int n = int(std::min<int64_t>(count - at, INT_MAX / 8));
      f(p + at * int64_t(dtype_size(dtype)), n, type);
      at += n;
    }
  }
  int rank_, size_;
  bool overlap_;
  std::vector<MPI_Request> pending_;  // the sums in flight, in the order they started
};

#ifdef AEGRAPH_WITH_NCCL
void check_nccl(ncclResult_t rc, const char* call) {
  if (rc != ncclSuccess && rc != ncclInProgress)
    throw Error(fmt::format("nccl: {} failed: {}", call, ncclGetErrorString(rc)));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int rank, int size) : rank_(rank), size_(size) {
    // This rank's GPU: its index among the ranks of its host, modulo the GPUs there.
    MPI_Comm host;
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host), "MPI_Comm_split_type");
    int local = 0, devices = 0;
    MPI_Comm_rank(host, &local);
    MPI_Comm_free(&host);
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) throw Error("nccl: this rank sees no CUDA device");
    if (cudaSetDevice(local % devices) != cudaSuccess) throw Error(fmt::format("nccl: cudaSetDevice({}) failed", local % devices));
    ncclUniqueId id;
    if (rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    check_nccl(ncclCommInitRank(&comm_, size, id, rank), "ncclCommInitRank");
  }
  ~NcclCommunicator() override { ncclCommDestroy(comm_); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* name() const override { return "nccl"; }
  void allreduce_sum(void* data, int64_t count, DType dtype, Device device, void* stream) override {
    if (device != Device::cuda) throw Error("nccl: allreduce_sum on host memory (this rank's communicator is NCCL's)");
    check_nccl(ncclAllReduce(data, data, size_t(count), dtype == DType::f32 ? ncclFloat : ncclDouble, ncclSum, comm_,
                             static_cast<cudaStream_t>(stream)),
               "ncclAllReduce");
  }

 private:
  int rank_, size_;
  ncclComm_t comm_ = nullptr;
};
#endif

}  // namespace
#endif

Session::Session(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  if (!launched_as_ranks()) return;  // alone: one rank, no MPI
#ifdef AEGRAPH_WITH_MPI
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  mpi_ = true;
  // Failures come back as return codes (ag::Error), so a tool prints them and aborts the job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  set_communicator(std::make_unique<MpiCommunicator>(rank_, size_));
#else
  throw Error("started as one of several ranks (mpirun), but this build has no MPI: install libopenmpi-dev and "
              "reconfigure");
#endif
}

Session::~Session() {
#ifdef AEGRAPH_WITH_MPI
  if (!mpi_) return;
  set_communicator(nullptr);  // NCCL's, if any, goes before MPI does
  MPI_Finalize();
#endif
}

void Session::use_device(Device device) {
  if (device != Device::cuda || size_ == 1) return;
#ifdef AEGRAPH_WITH_NCCL
  set_communicator(std::make_unique<NcclCommunicator>(rank_, size_));
#else
  throw Error("--device cuda with several ranks needs NCCL, and this build has none (a CUDA build finds it)");
#endif
}

void Session::abort(int code) {
#ifdef AEGRAPH_WITH_MPI
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  (void)code;
}

std::string Session::describe() const {
  return size_ == 1 ? std::string("1 process") : fmt::format("{} ranks ({})", size_, communicator().name());
}

}  // namespace ag::dist
