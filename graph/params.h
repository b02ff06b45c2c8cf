// ParamStore: parameters, their gradients and optimiser state in flat buffers (one each), every
// parameter a view at the same offset in all of them. Parameters are declared first; the
// buffers are allocated and initialised on first use, on the store's device.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace ag {

struct Init {
  enum Kind : uint8_t { zeros, constant, uniform, normal } kind = zeros;
  float a = 0, b = 0;  // constant: a; uniform: [a, b); normal: mean a, std b
  static Init Zeros() { return {}; }
  static Init Constant(float v) { return {constant, v, 0}; }
  static Init Uniform(float lo, float hi) { return {uniform, lo, hi}; }
  static Init Normal(float mean, float stddev) { return {normal, mean, stddev}; }
};

class ParamStore {
 public:
  explicit ParamStore(Device device = Device::cpu, DType dtype = DType::f32, uint64_t seed = 0);
  ~ParamStore();
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  // Only before first use. A non-trainable entry is persistent state read and written by the
  // graph itself (batch norm's running statistics): checkpointed with the parameters, but no
  // model lists it for an optimiser.
  int add(std::string name, Shape shape, Init init, bool trainable = true);
  int add_state(std::string name, double fill = 0);   // a flat buffer parallel to the parameters
  int find(const std::string& name) const;            // -1 when absent

  int count() const { return int(entries_.size()); }
  const std::string& name(int i) const { return entries_.at(size_t(i)).name; }
  const Shape& shape(int i) const { return entries_.at(size_t(i)).shape; }
  bool trainable(int i) const { return entries_.at(size_t(i)).trainable; }
  int64_t size() const { return total_; }  // elements in each flat buffer (padding included)
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  Tensor param(int i);
  Tensor grad(int i);
  Tensor state(int slot, int i);
  Tensor flat_params();
  Tensor flat_grads();
  Tensor flat_state(int slot);
  Value value(Graph& g, int i);  // the parameter as an external leaf of g

  HostTensor read(int i);                     // a parameter's values, on the host
  void write(int i, const HostTensor& values);  // replace them (shape must match)
  HostTensor read_state(int slot, int i);
  void write_state(int slot, int i, const HostTensor& values);
  int state_count() const { return int(states_.size()); }
  const std::string& state_name(int slot) const { return states_.at(size_t(slot)).name; }

 private:
  struct Entry {
    std::string name;
    Shape shape;
    Init init;
    int64_t offset = 0;
    bool trainable = true;
  };
  struct State {
    std::string name;
    double fill = 0;
    void* data = nullptr;
  };
  void finalize();
  void* alloc_filled(double fill);
  Tensor view(void* base, int i);

  Device device_;
  DType dtype_;
  uint64_t seed_;
  std::vector<Entry> entries_;
  std::vector<State> states_;
  int64_t total_ = 0;
  void* params_ = nullptr;
  void* grads_ = nullptr;
  bool final_ = false;
};

}  // namespace ag
