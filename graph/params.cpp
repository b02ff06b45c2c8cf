// ParamStore: layout, deterministic initialisation (the Philox draws, on the host) and views.
#include "graph/params.h"

#include <fmt/format.h>

#include "backends/backend.h"
#include "ops/functors.h"
#include "ops/ops.h"

namespace ag {

namespace {
constexpr int64_t view_alignment = 64;  // elements: every view starts on a 256-byte boundary
}

ParamStore::ParamStore(Device device, DType dtype, uint64_t seed) : device_(device), dtype_(dtype), seed_(seed) {}

ParamStore::~ParamStore() {
  bool any = params_ || grads_;
  for (State& s : states_) any |= s.data != nullptr;
  if (!any) return;  // nothing was allocated (asking for the backend could throw: no device)
  Backend& b = backend(device_);
  if (params_) b.release(params_);
  if (grads_) b.release(grads_);
  for (State& s : states_)
    if (s.data) b.release(s.data);
}

int ParamStore::add(std::string name, Shape shape, Init init, bool trainable) {
  if (final_) throw Error(fmt::format("ParamStore: cannot add '{}' after the store is in use", name));
  if (find(name) >= 0) throw Error(fmt::format("ParamStore: a parameter named '{}' exists already", name));
  Entry e{std::move(name), shape, init, total_, trainable};
  total_ += (shape.numel() + view_alignment - 1) / view_alignment * view_alignment;
  entries_.push_back(std::move(e));
  return count() - 1;
}

int ParamStore::find(const std::string& name) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].name == name) return int(i);
  return -1;
}

void* ParamStore::alloc_filled(double fill) {
  HostTensor h(Shape{std::max<int64_t>(total_, 1)}, dtype_);
  for (int64_t i = 0; i < h.numel(); ++i) h.set(i, fill);
  Backend& b = backend(device_);
  void* p = b.alloc(h.numel() * dtype_size(dtype_));
  b.upload(p, h.ptr<std::byte>(), h.numel() * dtype_size(dtype_));
  return p;
}

void ParamStore::finalize() {
  if (final_) return;
  final_ = true;
  HostTensor h(Shape{std::max<int64_t>(total_, 1)}, dtype_);
  for (int64_t i = 0; i < h.numel(); ++i) h.set(i, 0);
  for (size_t k = 0; k < entries_.size(); ++k) {
    const Entry& e = entries_[k];
    Attrs a;  // the same Philox draws the random ops use, keyed by (seed, parameter index)
    a.i[0] = int64_t(seed_);
    a.i[1] = int64_t(k) + (int64_t(1) << 30);
    a.f[0] = e.init.a;
    a.f[1] = e.init.b;
    for (int64_t i = 0; i < e.shape.numel(); ++i) {
      double v = 0;
      switch (e.init.kind) {
        case Init::zeros: v = 0; break;
        case Init::constant: v = e.init.a; break;
        case Init::uniform: v = fn::UniformDraw(a).draw<double>(uint64_t(i), 0); break;
        case Init::normal: v = fn::NormalDraw(a).draw<double>(uint64_t(i), 0); break;
      }
      h.set(e.offset + i, v);
    }
  }
  Backend& b = backend(device_);
  params_ = b.alloc(h.numel() * dtype_size(dtype_));
  b.upload(params_, h.ptr<std::byte>(), h.numel() * dtype_size(dtype_));
  grads_ = alloc_filled(0);
  for (State& s : states_) s.data = alloc_filled(s.fill);
}

int ParamStore::add_state(std::string name, double fill) {
  for (const State& s : states_)
    if (s.name == name) throw Error(fmt::format("ParamStore: state '{}' exists already", name));
  states_.push_back(State{std::move(name), fill, final_ ? alloc_filled(fill) : nullptr});
  return int(states_.size()) - 1;
}

Tensor ParamStore::view(void* base, int i) {
  const Entry& e = entries_.at(size_t(i));
  return Tensor{static_cast<char*>(base) + e.offset * int64_t(dtype_size(dtype_)), e.shape, dtype_, device_};
}

Tensor ParamStore::param(int i) { finalize(); return view(params_, i); }
Tensor ParamStore::grad(int i) { finalize(); return view(grads_, i); }
Tensor ParamStore::state(int slot, int i) { finalize(); return view(states_.at(size_t(slot)).data, i); }
Tensor ParamStore::flat_params() { finalize(); return Tensor{params_, Shape{total_}, dtype_, device_}; }
Tensor ParamStore::flat_grads() { finalize(); return Tensor{grads_, Shape{total_}, dtype_, device_}; }
Tensor ParamStore::flat_state(int slot) {
  finalize();
  return Tensor{states_.at(size_t(slot)).data, Shape{total_}, dtype_, device_};
}

Value ParamStore::value(Graph& g, int i) { return external(g, param(i), name(i)); }

static HostTensor read_view(const Tensor& t) {
  HostTensor h(t.shape, t.dtype);
  backend(t.device).synchronize();
  backend(t.device).download(h.ptr<std::byte>(), t.data, t.bytes());
  return h;
}
static void write_view(const Tensor& t, const HostTensor& v, const std::string& what) {
  if (v.shape() != t.shape || v.dtype() != t.dtype)
    throw Error(fmt::format("ParamStore: '{}' is {} {} but the values are {} {}", what, to_string(t.dtype), t.shape.str(),
                            to_string(v.dtype()), v.shape().str()));
  backend(t.device).upload(t.data, v.ptr<std::byte>(), t.bytes());
}

HostTensor ParamStore::read(int i) { return read_view(param(i)); }
void ParamStore::write(int i, const HostTensor& v) { write_view(param(i), v, name(i)); }
HostTensor ParamStore::read_state(int slot, int i) { return read_view(state(slot, i)); }
void ParamStore::write_state(int slot, int i, const HostTensor& v) { write_view(state(slot, i), v, name(i)); }

}  // namespace ag
