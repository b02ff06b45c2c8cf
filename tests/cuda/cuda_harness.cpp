// The CUDA tests' shared pieces: skip rule, device buffers, data streams, normalised error.
#include "cuda_harness.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>

namespace ag::cudatest {

bool skip_without_device(int cases) {
  if (cuda_available()) return false;
  // On the GPU machine (the device check sets it) a missing device is a failure, not a skip:
  // a runtime that cannot start would otherwise look like a green run.
  if (const char* need = std::getenv("AEGRAPH_REQUIRE_CUDA"); need && std::string(need) == "1")
    FAIL("AEGRAPH_REQUIRE_CUDA=1, but " << cuda_unavailable_reason());
  WARN("no CUDA device: " << cases << " cases skipped (" << cuda_unavailable_reason() << ")");
  return true;
}

double nmse(const HostTensor& a, const HostTensor& b) {
  if (a.numel() != b.numel()) return INFINITY;
  double err = 0, ref = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = a.at(i) - b.at(i);
    err += d * d;
    ref += b.at(i) * b.at(i);
  }
  if (std::isnan(err)) return INFINITY;
  return err / std::max(ref, 1e-30);
}

double sample(int k, int64_t i, double lo, double hi) {
  const double u = std::fmod(0.25 + 0.6180339887498949 * double(i + 1) + 0.7548776662466927 * double(k + 1), 1.0);
  return lo + (hi - lo) * u;
}

DeviceBuffer::DeviceBuffer(Device device, Shape shape, DType dtype) : device_(device), shape_(shape), dtype_(dtype) {
  data_ = backend(device_).alloc(std::max<size_t>(size_t(shape.numel()) * dtype_size(dtype), 1));
}

DeviceBuffer::~DeviceBuffer() {
  backend(device_).synchronize();  // a run may still be writing it
  backend(device_).release(data_);
}

void DeviceBuffer::write(const HostTensor& values) {
  REQUIRE(values.shape() == shape_);
  REQUIRE(values.dtype() == dtype_);
  backend(device_).upload(data_, values.ptr<std::byte>(), tensor().bytes());
}

HostTensor DeviceBuffer::read() const {
  HostTensor h(shape_, dtype_);
  backend(device_).synchronize();
  backend(device_).download(h.ptr<std::byte>(), data_, tensor().bytes());
  return h;
}

Value DeviceGraph::input(Shape shape, double lo, double hi) {
  Value v = ag::input(g, shape, fmt::format("x{}", streams_++), dtype_);
  inputs_.push_back(InputData{v, lo, hi, false});
  return v;
}

Value DeviceGraph::scalar_input(double value) {
  Value v = ag::input(g, Shape{}, fmt::format("s{}", streams_++), dtype_);
  inputs_.push_back(InputData{v, value, value, true});
  return v;
}

Value DeviceGraph::external(Shape shape, double lo, double hi) {
  const int stream = streams_++;
  auto buffer = std::make_unique<DeviceBuffer>(device_, shape, dtype_);
  HostTensor values(shape, dtype_);
  for (int64_t i = 0; i < values.numel(); ++i) values.set(i, sample(stream, i, lo, hi));
  buffer->write(values);
  Value v = ag::external(g, buffer->tensor(), fmt::format("w{}", stream));
  externals_.push_back(std::move(buffer));
  return v;
}

void DeviceGraph::fill_inputs(Executor& ex, int round) const {
  for (size_t k = 0; k < inputs_.size(); ++k) {
    const InputData& in = inputs_[k];
    Tensor t = ex.input(in.value);
    for (int64_t i = 0; i < t.numel(); ++i) {
      // Each round shifts the stream, so a replayed step that kept old inputs shows.
      const double v = in.fixed ? in.lo : sample(int(k) + 101 * round, i, in.lo, in.hi);
      if (t.dtype == DType::f32) t.ptr<float>()[i] = float(v);
      else t.ptr<double>()[i] = v;
    }
  }
}

std::vector<HostTensor> DeviceGraph::read_externals() const {
  std::vector<HostTensor> out;
  for (const auto& b : externals_) out.push_back(b->read());
  return out;
}

std::vector<HostTensor> read_all(Executor& ex, const std::vector<Value>& outputs) {
  std::vector<HostTensor> out;
  for (const Value& v : outputs) out.push_back(ex.read(v));
  return out;
}

}  // namespace ag::cudatest
