// The backend interface: memory, copies, and running a program (the kernel calls of one plan
// step after step). The CPU backend loops over the calls; the CUDA backend captures the program
// as a CUDA graph on its second run and replays it after that. Nothing here knows about models.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace ag {

// One elementwise op inside a fused group. Operand k >= 0 is the call's input k; k < 0 is the
// result of the group's op -(k+1), computed earlier in the same block. An assign member stores
// its value's block (b) into its target (input a), which later ops then read as its result.
struct FusedOp {
  const Node* node = nullptr;
  int a = 0, b = 0;
};

// One kernel launch: the node (op and attributes), its input tensors and its output. A fused
// group is one call: `node` is its root, `fused` its ops in order (the root last), `in` the
// tensors it reads from outside; each input is as large as the output or a scalar.
struct KernelCall {
  const Node* node = nullptr;
  const Tensor* in = nullptr;
  int nin = 0;
  Tensor out;
  const FusedOp* fused = nullptr;
  int nfused = 0;
  bool with_next = false;  // independent of the next call: the two may run at the same time
  // CPU: this call reads or writes memory that a sum started earlier (allreduce_sum) still
  // owns, so the sums in flight must finish first (Communicator::finish_sums).
  bool finishes_sums = false;
};

// Host-to-device copies done at the start of a run (input batches), then the calls in order.
struct Upload {
  void* device = nullptr;
  const void* host = nullptr;
  size_t bytes = 0;
};

struct Program {
  uint64_t id = 0;  // unique per executor: the key a backend caches its capture under
  const Upload* uploads = nullptr;
  int nuploads = 0;
  const KernelCall* calls = nullptr;
  int ncalls = 0;
};

// What a backend has done since the program started. Read before and after some work, the
// difference shows what the work cost: a captured training step allocates nothing, makes the
// host wait for nothing and is one graph launch (tests/cuda/test_capture.cpp, aebench's JSON).
struct BackendCounts {
  int64_t allocations = 0;   // alloc and alloc_host calls
  int64_t stream_syncs = 0;  // the host waited for all the device's work: synchronize, upload, download
  int64_t upload_waits = 0;  // wait_uploads calls that had a program's uploads to wait for
  int64_t eager_runs = 0;    // programs enqueued call by call (CUDA: a program's first run)
  int64_t captures = 0;      // programs captured as a CUDA graph (their second run)
  int64_t graph_launches = 0;
  int64_t device_bytes_used = -1;  // CUDA: the device's memory in use (cudaMemGetInfo), any allocator's; else -1
  BackendCounts operator-(const BackendCounts& earlier) const;  // field by field; memory -1 if either is
  BackendCounts& operator+=(const BackendCounts& more);         // (sums of such differences)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual void* alloc(size_t bytes) = 0;       // device memory
  virtual void release(void* p) = 0;
  virtual void* alloc_host(size_t bytes) = 0;  // host memory the device copies from fast (pinned on CUDA)
  virtual void release_host(void* p) = 0;
  virtual void upload(void* device, const void* host, size_t bytes) = 0;    // synchronous
  virtual void download(void* host, const void* device, size_t bytes) = 0;  // synchronous
  virtual void run(const Program& program) = 0;  // asynchronous on CUDA
  virtual void forget(uint64_t program_id) { (void)program_id; }  // drop a cached capture
  // Blocks until the uploads of the program's last run have read their host buffers, so the
  // caller may refill them (CUDA: an event recorded after the uploads; CPU: nothing to wait for).
  virtual void wait_uploads(uint64_t program_id) { (void)program_id; }
  virtual void synchronize() {}
  virtual BackendCounts counts() const = 0;
  virtual bool runs_fused() const { return false; }  // can run fused groups (else plans are compiled without)
};

// The backend for a device: the CPU one always; CUDA when built and a device is present
// (otherwise throws an Error that says which).
Backend& backend(Device device);
bool cuda_available();  // built with CUDA and a device is present
std::string cuda_unavailable_reason();  // why not ("" when it is), e.g. the runtime's error

// Threads for CPU loops and OpenBLAS (0: the default, all cores).
void set_num_threads(int n);
int num_threads();

// How many matrix products the CPU backend has run on its kernels for a mostly-zero operand
// (backends/cpu/sparse_gemm.h) since the program started.
int64_t cpu_sparse_products();
// How many masked products (masked_matmul) computed only their kept entries.
int64_t cpu_masked_products();
// How many ran side by side with another, one per thread (CompileOptions::pair_matmuls).
int64_t cpu_paired_products();
// How many fused groups ran as a loop compiled ahead of time (backends/cpu/compiled_groups.h)
// rather than through the interpreter; tests switch those loops off to compare the two.
int64_t cpu_compiled_group_runs();
void set_cpu_compiled_groups(bool on);
// Whether stride-1 convolutions may run on the direct loops (backends/cpu/image_kernels.cpp);
// off, every convolution is unfolded + OpenBLAS. For benchmarks and tests that compare the two.
void set_cpu_direct_convolutions(bool on);

// Implemented by backends/cpu: run one call on the host.
void cpu_run_call(const KernelCall& call);

}  // namespace ag
