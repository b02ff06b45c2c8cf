// What the CUDA tests share: the skip rule for machines without a GPU (CI has none), device
// buffers for external leaves, deterministic data, the normalised error a CUDA result is held
// to against the CPU's, and DeviceGraph, a graph whose inputs and externals get the same data
// whatever device it is built for, so one builder run twice gives a CPU twin and a CUDA twin.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "graph/aegraph.h"

namespace ag::cudatest {

// When there is no CUDA device, says "no CUDA device: <cases> cases skipped" (a Catch2
// warning, which ctest turns into a skip) and returns true. Call it first in a test case.
bool skip_without_device(int cases);

// sum((a - b)^2) / sum(b^2), the denominator floored at 1e-30 (b may be all zeros).
double nmse(const HostTensor& a, const HostTensor& b);

// Value i of data stream k, in [lo, hi]: a fixed low-discrepancy sequence.
double sample(int k, int64_t i, double lo, double hi);

// Device (or host) memory for an external leaf, released with the object.
class DeviceBuffer {
 public:
  DeviceBuffer(Device device, Shape shape, DType dtype);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  Tensor tensor() const { return Tensor{data_, shape_, dtype_, device_}; }
  void write(const HostTensor& values);
  HostTensor read() const;

 private:
  Device device_;
  Shape shape_;
  DType dtype_;
  void* data_ = nullptr;
};

class DeviceGraph {
 public:
  DeviceGraph(Device device, DType dtype) : device_(device), dtype_(dtype) {}
  DeviceGraph(const DeviceGraph&) = delete;
  DeviceGraph& operator=(const DeviceGraph&) = delete;

  Graph g;
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  // An input fed with its own data stream in [lo, hi]; each round of fill_inputs shifts it.
  Value input(Shape shape, double lo = -1, double hi = 1);
  // A scalar input that always holds `value` (a step counter, say).
  Value scalar_input(double value);
  // An external leaf on this device, filled once with its own data stream in [lo, hi].
  Value external(Shape shape, double lo = -1, double hi = 1);
  Value constant(double value) { return ag::constant(g, value, {}, dtype_); }

  // Writes every input's data for round r into an executor's input buffers.
  void fill_inputs(Executor& ex, int round = 0) const;
  // The current contents of every external made here, in creation order.
  std::vector<HostTensor> read_externals() const;

 private:
  struct InputData {
    Value value;
    double lo, hi;
    bool fixed;  // a scalar that holds lo in every round
  };
  Device device_;
  DType dtype_;
  int streams_ = 0;
  std::vector<InputData> inputs_;
  std::vector<std::unique_ptr<DeviceBuffer>> externals_;
};

// Every output's current value, read back to the host, in order.
std::vector<HostTensor> read_all(Executor& ex, const std::vector<Value>& outputs);

}  // namespace ag::cudatest
