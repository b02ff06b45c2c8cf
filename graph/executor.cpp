// Executor: binds every node of a plan to memory and hands the backend one program per run.
#include "graph/executor.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace ag {

namespace {
std::atomic<uint64_t> next_program_id{1};
}

Executor::Executor(Plan plan, Device device)
    : plan_(std::move(plan)), device_(device), backend_(&backend(device)), id_(next_program_id++) {
  if (!backend_->runs_fused() && plan_.options.fuse) {
    CompileOptions options = plan_.options;
    options.fuse = false;
    plan_ = compile(plan_.output_values, options);
  }
  if (const char* v = std::getenv("AEGRAPH_PLAN"); v && *v && *v != '0')  // print every plan as it is bound
    fmt::print(stderr, "aegraph plan: program {} on {}, arena {} bytes\n{}", id_, to_string(device),
               plan_.arena_bytes, plan_.describe());
  const Graph& g = *plan_.graph;
  const int n = g.size();
  node_data_.assign(size_t(n), nullptr);
  input_host_.assign(size_t(n), nullptr);
  if (plan_.arena_bytes > 0) arena_ = backend_->alloc(size_t(plan_.arena_bytes));

  for (int id : plan_.inputs) {
    const Node& node = g.node(id);
    size_t bytes = std::max<size_t>(size_t(node.shape.numel()) * dtype_size(node.dtype), 1);
    void* host = backend_->alloc_host(bytes);
    std::memset(host, 0, bytes);
    host_buffers_.push_back(host);
    input_host_[size_t(id)] = host;
    if (device == Device::cpu) {
      node_data_[size_t(id)] = host;
    } else {
      void* dev = backend_->alloc(bytes);
      device_buffers_.push_back(dev);
      node_data_[size_t(id)] = dev;
      uploads_.push_back(Upload{dev, host, bytes});
    }
  }
  for (int id : plan_.constants) {
    const Node& node = g.node(id);
    HostTensor values(node.shape, node.dtype);
    for (int64_t i = 0; i < values.numel(); ++i)
      values.set(i, node.values.size() == 1 ? node.values[0] : node.values[size_t(i)]);
    size_t bytes = std::max<size_t>(size_t(values.numel()) * dtype_size(node.dtype), 1);
    void* dev = backend_->alloc(bytes);
    device_buffers_.push_back(dev);
    backend_->upload(dev, values.ptr<std::byte>(), size_t(values.numel()) * dtype_size(node.dtype));
    node_data_[size_t(id)] = dev;
  }
  for (int id = 0; id < n; ++id) {
    if (plan_.storage[size_t(id)] != Storage::external || g.node(id).op != OpCode::external) continue;
    const Tensor& t = g.node(id).external;
    if (t.device != device)
      throw Error(fmt::format("executor: '{}' lives on {} but the plan runs on {}", g.node(id).name,
                              to_string(t.device), to_string(device)));
    node_data_[size_t(id)] = t.data;
  }
  for (int id : plan_.steps) {
    int b = plan_.buffer[size_t(id)];
    if (plan_.storage[size_t(id)] == Storage::arena && plan_.alias_of[size_t(id)] < 0)
      node_data_[size_t(id)] = static_cast<char*>(arena_) + plan_.buffers[size_t(b)].offset;
  }
  for (int id = 0; id < n; ++id)  // aliases (reshape, assign, elided values) share their home's memory
    if (plan_.alias_of[size_t(id)] >= 0) node_data_[size_t(id)] = node_data_[size_t(plan_.home(id))];

  // Lay out every call once; run() only walks these arrays (reserved up front: calls point into them).
  size_t total_inputs = 0, total_fused = 0;
  for (int id : plan_.steps) {
    total_inputs += std::max(g.node(id).in.size(), plan_.operands[size_t(id)].size());
    if (plan_.fused_root(id)) total_fused += plan_.members(id).size();
  }
  call_inputs_.reserve(total_inputs);
  fused_ops_.reserve(total_fused);
  for (size_t k = 0; k < plan_.steps.size(); ++k) {
    const int id = plan_.steps[k];
    const Node& node = g.node(id);
    if (is_alias(node.op)) continue;                                  // an alias: nothing to do
    if (node.op == OpCode::assign && plan_.elided[size_t(id)]) continue;  // written in place already
    KernelCall call;
    call.node = &node;
    call.in = call_inputs_.data() + call_inputs_.size();
    call.out = tensor_of(id);
    call.with_next = plan_.runs_with_next[k];  // both are matmuls: neither is skipped below
    if (plan_.fused_root(id)) {
      const std::vector<int>& operands = plan_.operands[size_t(id)];
      const std::vector<int> members = plan_.members(id);
      auto ref = [&](int src) {
        for (size_t j = 0; j < members.size(); ++j)
          if (members[j] == src) return -int(j) - 1;
        return int(std::find(operands.begin(), operands.end(), src) - operands.begin());
      };
      call.fused = fused_ops_.data() + fused_ops_.size();
      call.nfused = int(members.size());
      for (int m : members) {
        const Node& mn = g.node(m);
        fused_ops_.push_back(FusedOp{&mn, ref(mn.in[0]), mn.in.size() > 1 ? ref(mn.in[1]) : 0});
      }
      call.nin = int(operands.size());
      for (int src : operands) call_inputs_.push_back(tensor_of(src));
    } else {
      call.nin = int(node.in.size());
      for (int src : node.in) call_inputs_.push_back(tensor_of(src));
    }
    calls_.push_back(call);
  }
  mark_sum_readers();
}

// A CPU sum over the ranks (allreduce_sum) is started by its call and finished by the first later
// call whose inputs or output touch its memory (the updates reading the bucket through its
// slices, or a value the plan puts in the same arena bytes), so the calls in between (the
// backward pass of earlier layers) run while it travels.
void Executor::mark_sum_readers() {
  auto touches = [](const Tensor& a, const Tensor& b) {
    const char *a0 = static_cast<const char*>(a.data), *b0 = static_cast<const char*>(b.data);
    return a.bytes() && b.bytes() && a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
  };
  std::vector<Tensor> in_flight;
  for (KernelCall& call : calls_) {
    bool touched = false;
    for (const Tensor& sum : in_flight) {
      touched = touched || touches(sum, call.out);
      for (int k = 0; k < call.nin; ++k) touched = touched || touches(sum, call.in[k]);
    }
    if (touched) {
      call.finishes_sums = true;
      in_flight.clear();
    }
    if (call.nfused == 0 && call.node->op == OpCode::allreduce_sum) in_flight.push_back(call.out);
  }
}

Executor::~Executor() {
  backend_->forget(id_);
  try {
    backend_->synchronize();  // a kernel fault would surface here; a destructor must not throw
  } catch (const std::exception& e) {
    fmt::print(stderr, "aegraph: error while releasing an executor: {}\n", e.what());
  }
  if (arena_) backend_->release(arena_);
  for (void* p : device_buffers_) backend_->release(p);
  for (void* p : host_buffers_) backend_->release_host(p);
}

Tensor Executor::tensor_of(int id) const {
  const Node& node = plan_.graph->node(id);
  return Tensor{node_data_[size_t(id)], node.shape, node.dtype, device_};
}

Tensor Executor::input(Value v) {
  if (v.graph != plan_.graph || v.id >= int(input_host_.size()) || !input_host_[size_t(v.id)])
    throw Error(fmt::format("executor: '{}' is not an input of this plan", v.valid() ? v.node().name : "?"));
  backend_->wait_uploads(id_);  // the previous run may still be copying from this buffer
  return Tensor{input_host_[size_t(v.id)], v.shape(), v.dtype(), Device::cpu};
}

void Executor::set_input(Value v, const float* data) {
  Tensor t = input(v);
  if (t.dtype != DType::f32) throw Error(fmt::format("executor: input '{}' is not f32", v.node().name));
  std::memcpy(t.data, data, t.bytes());
}

void Executor::run() {
  Program p;
  p.id = id_;
  p.uploads = uploads_.data();
  p.nuploads = int(uploads_.size());
  p.calls = calls_.data();
  p.ncalls = int(calls_.size());
  backend_->run(p);
}

Tensor Executor::output(Value v) const {
  if (v.graph != plan_.graph || plan_.storage[size_t(v.id)] == Storage::none)
    throw Error("executor: the value is not part of this plan");
  return tensor_of(v.id);
}

HostTensor Executor::read(Value v) {
  Tensor t = output(v);
  HostTensor h(t.shape, t.dtype);
  backend_->synchronize();
  backend_->download(h.ptr<std::byte>(), t.data, t.bytes());
  return h;
}

double Executor::read_scalar(Value v) { return read(v).at(0); }

}  // namespace ag
