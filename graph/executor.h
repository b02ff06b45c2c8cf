// Runs a compiled plan on a backend. Construction allocates everything (arena, input and
// constant buffers) and lays out every kernel call; run() allocates nothing.
#pragma once
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "graph/plan.h"

namespace ag {

class Executor {
 public:
  explicit Executor(Plan plan, Device device = Device::cpu);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // The host buffer to write input v into before run() (on CUDA, pinned; uploaded at the run).
  // Asking for it waits until the previous run has finished reading it.
  Tensor input(Value v);
  void set_input(Value v, const float* data);  // copies numel floats (f32 inputs)

  void run();                     // one pass of the plan (asynchronous on CUDA)
  Tensor output(Value v) const;   // where v lives on the device, valid until the next run
  HostTensor read(Value v);       // copies v to the host (synchronises)
  double read_scalar(Value v);    // element 0 of v

  const Plan& plan() const { return plan_; }
  Device device() const { return device_; }

 private:
  Tensor tensor_of(int id) const;
  void mark_sum_readers();

  Plan plan_;
  Device device_;
  Backend* backend_;
  void* arena_ = nullptr;
  std::vector<void*> device_buffers_;  // inputs and constants, one each
  std::vector<void*> host_buffers_;    // input staging (CUDA) or the inputs themselves (CPU)
  std::vector<void*> node_data_;       // per node: its device pointer
  std::vector<void*> input_host_;      // per node: host buffer of an input, else null
  std::vector<Tensor> call_inputs_;
  std::vector<KernelCall> calls_;
  std::vector<FusedOp> fused_ops_;
  std::vector<Upload> uploads_;
  uint64_t id_;
};

}  // namespace ag
