// The CPU backend: host memory, the kernel table (generic loops instantiated per functor from
// the op list, plus the kernels of kernels.h), running a program, its profile, and threads.
#include <cblas.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backends/backend.h"
#include "backends/cpu/loops.h"
#include "backends/cpu/compiled_groups.h"
#include "backends/communicator.h"
#include "backends/cpu/kernels.h"

namespace ag {

namespace {

using namespace cpu;
using CpuKernel = void (*)(const KernelCall&);

template <class F>
void unary_kernel(const KernelCall& c) {
  const F f = fn::make<F>(c.node->attrs);
  if (c.out.dtype == DType::f32) cpu::map(f, c.in[0].ptr<float>(), c.out.ptr<float>(), c.out.numel());
  else cpu::map(f, c.in[0].ptr<double>(), c.out.ptr<double>(), c.out.numel());
}

template <class F>
void binary_kernel(const KernelCall& c) {
  const F f = fn::make<F>(c.node->attrs);
  const Shape &sa = c.in[0].shape, &sb = c.in[1].shape, &sz = c.out.shape;
  if (c.out.dtype == DType::f32) cpu::zip(f, c.in[0].ptr<float>(), c.in[1].ptr<float>(), c.out.ptr<float>(), sa, sb, sz);
  else cpu::zip(f, c.in[0].ptr<double>(), c.in[1].ptr<double>(), c.out.ptr<double>(), sa, sb, sz);
}

template <class F>
void loss_kernel(const KernelCall& c) {
  const F f;
  const double scale = c.node->attrs.f[0];
  const int64_t n = c.in[0].numel();
  if (c.out.dtype == DType::f32)
    *c.out.ptr<float>() = float(scale * cpu::zip_reduce(f, c.in[0].ptr<float>(), c.in[1].ptr<float>(), n));
  else *c.out.ptr<double>() = scale * cpu::zip_reduce(f, c.in[0].ptr<double>(), c.in[1].ptr<double>(), n);
}

template <class D>
void random_kernel(const KernelCall& c) {
  const D d(c.node->attrs);
  if (c.out.dtype == DType::f32) cpu::fill(d, c.out.ptr<float>(), c.out.numel(), uint32_t(*c.in[0].ptr<float>()));
  else cpu::fill(d, c.out.ptr<double>(), c.out.numel(), uint32_t(*c.in[0].ptr<double>()));
}

void run_call(const KernelCall& c);

void no_kernel(const KernelCall& c) {
  throw Error(fmt::format("cpu: {} has no kernel (it should not be a step)", op_name(c.node->op)));
}

struct KernelTable {
  CpuKernel k[op_count];
  KernelTable() {
    for (auto& f : k) f = no_kernel;
#define AG_CPU_UNARY(name, F) k[int(OpCode::name)] = unary_kernel<fn::F>;
#define AG_CPU_BINARY(name, F) k[int(OpCode::name)] = binary_kernel<fn::F>;
#define AG_CPU_LOSS(name, F) k[int(OpCode::name)] = loss_kernel<fn::F>;
#define AG_CPU_RANDOM(name, F) k[int(OpCode::name)] = random_kernel<fn::F>;
    AG_UNARY_OPS(AG_CPU_UNARY)
    AG_BINARY_OPS(AG_CPU_BINARY)
    AG_LOSS_OPS(AG_CPU_LOSS)
    AG_RANDOM_OPS(AG_CPU_RANDOM)
#undef AG_CPU_UNARY
#undef AG_CPU_BINARY
#undef AG_CPU_LOSS
#undef AG_CPU_RANDOM
    k[int(OpCode::matmul)] = matmul_kernel;
    k[int(OpCode::masked_matmul)] = masked_matmul_kernel;
    k[int(OpCode::sum)] = sum_kernel;
    k[int(OpCode::sum_axis)] = sum_axis_kernel;
    k[int(OpCode::logsumexp)] = logsumexp_kernel;
    k[int(OpCode::batch_topk_mask)] = batch_topk_kernel;
    k[int(OpCode::batch_norm)] = batch_norm_kernel;
    k[int(OpCode::batch_norm_dw)] = batch_norm_dw_kernel;
    k[int(OpCode::batch_norm_dx)] = batch_norm_dx_kernel;
    k[int(OpCode::batch_moments)] = batch_moments_kernel;
    k[int(OpCode::broadcast_to)] = broadcast_kernel;
    k[int(OpCode::permute)] = permute_kernel;
    k[int(OpCode::slice)] = slice_kernel;
    k[int(OpCode::pad)] = pad_kernel;
    k[int(OpCode::concat)] = concat_kernel;
    k[int(OpCode::assign)] = assign_kernel;
    k[int(OpCode::conv2d)] = conv2d_kernel;
    k[int(OpCode::conv_transpose2d)] = conv_transpose2d_kernel;
    k[int(OpCode::conv2d_filter_grad)] = conv2d_filter_grad_kernel;
    k[int(OpCode::max_pool2d_at)] = max_pool2d_kernel;
    k[int(OpCode::max_unpool2d)] = max_unpool2d_kernel;
    k[int(OpCode::upsample_nearest2d)] = upsample_nearest2d_kernel;
    k[int(OpCode::sum_pool2d)] = sum_pool2d_kernel;
    k[int(OpCode::allreduce_sum)] = allreduce_kernel;
  }
};
const KernelTable kernels;

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
  void* alloc(size_t bytes) override {
    void* p = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
    if (!p) throw Error(fmt::format("cpu: out of memory allocating {} bytes", bytes));
    ++allocations_;
    return p;
  }
  void release(void* p) override { std::free(p); }
  void* alloc_host(size_t bytes) override { return alloc(bytes); }
  void release_host(void* p) override { std::free(p); }
  void upload(void* d, const void* h, size_t n) override { if (n) std::memcpy(d, h, n); }
  void download(void* h, const void* d, size_t n) override { if (n) std::memcpy(h, d, n); }
  // Every run is eager and synchronous: nothing to capture, nothing to wait for.
  BackendCounts counts() const override {
    BackendCounts c;
    c.allocations = allocations_;
    c.eager_runs = runs_;
    return c;
  }
  void run(const Program& p) override {
    ++runs_;
    for (int i = 0; i < p.nuploads; ++i) upload(p.uploads[i].device, p.uploads[i].host, p.uploads[i].bytes);
    if (profile_) return run_profiled(p);
    Communicator& sums = communicator();
    for (int i = 0; i < p.ncalls; ++i) {
      if (p.calls[i].finishes_sums) sums.finish_sums();
      if (p.calls[i].with_next && i + 1 < p.ncalls && num_threads() > 1) {
        if (p.calls[i + 1].finishes_sums) sums.finish_sums();
        run_pair(p.calls[i], p.calls[i + 1]);
        ++i;
      } else {
        run_call(p.calls[i]);
      }
      if (sums.sums_pending()) sums.progress_sums();
    }
    sums.finish_sums();  // a run leaves nothing in flight: its outputs are read after it
  }
  ~CpuBackend() override {
    if (profile_) print_profile();
  }
  bool runs_fused() const override { return true; }

 private:
  std::atomic<int64_t> allocations_{0}, runs_{0};

  // AEGRAPH_PROFILE=1: time every call of every program and print where the time went at exit.
  struct CallTime {
    std::string what;
    double seconds = 0;
    int64_t runs = 0;
  };
  void run_profiled(const Program& p) {
    std::vector<CallTime>& times = profile_times_[p.id];
    if (times.size() != size_t(p.ncalls)) {
      times.assign(size_t(p.ncalls), {});
      for (int i = 0; i < p.ncalls; ++i) {
        const KernelCall& c = p.calls[i];
        times[size_t(i)].what = fmt::format("{} {}", op_name(c.node->op), c.out.shape.str());
        for (int j = 0; j + 1 < c.nfused; ++j) times[size_t(i)].what += fmt::format(" +{}", op_name(c.fused[j].node->op));
        if (c.nfused == 0) continue;
        if (const cpu::CompiledGroup g = cpu::compiled_group(c); g.run) times[size_t(i)].what += fmt::format(" (compiled: {})", g.name);
        else if (profile_ > 1) times[size_t(i)].what += fmt::format("\n             group {}", cpu::group_signature(c));
      }
    }
    Communicator& sums = communicator();
    for (int i = 0; i < p.ncalls; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      if (p.calls[i].finishes_sums) sums.finish_sums();  // counted with the call that waits
      run_call(p.calls[i]);
      times[size_t(i)].seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++times[size_t(i)].runs;
      if (sums.sums_pending()) sums.progress_sums();
    }
    sums.finish_sums();
  }
  void print_profile() const {
    for (const auto& [id, times] : profile_times_) {
      double total = 0;
      for (const CallTime& t : times) total += t.seconds;
      if (times.empty() || times[0].runs == 0) continue;
      fmt::print(stderr, "aegraph profile: program {} ({} runs, {:.3f} ms a run)\n", id, times[0].runs,
                 1e3 * total / double(times[0].runs));
      for (const CallTime& t : times)
        fmt::print(stderr, "  {:8.1f} us {:5.1f}%  {}\n", 1e6 * t.seconds / double(std::max<int64_t>(t.runs, 1)),
                   100 * t.seconds / std::max(total, 1e-12), t.what);
    }
    fmt::print(stderr, "aegraph profile: {} matrix products ran on the kernels for a mostly-zero operand\n",
               cpu_sparse_products());
  }
  const int profile_ = [] {  // 2: also the op list of every group that runs in the interpreter
    const char* v = std::getenv("AEGRAPH_PROFILE");
    return v && *v && *v != '0' ? std::max(1, std::atoi(v)) : 0;
  }();
  std::map<uint64_t, std::vector<CallTime>> profile_times_;
};

int g_threads = 0;

void run_call(const KernelCall& c) {
  if (c.nfused == 0) kernels.k[int(c.node->op)](c);
  else if (const cpu::CompiledGroup g = cpu::compiled_group(c); g.run) g.run(c);
  else fused_kernel(c);
}

}  // namespace

void cpu_run_call(const KernelCall& call) { run_call(call); }

Backend& cpu_backend() {
  static CpuBackend b;
  return b;
}

void set_num_threads(int n) {
  g_threads = n > 0 ? n : omp_get_num_procs();
  omp_set_num_threads(g_threads);
  openblas_set_num_threads(g_threads);
}

int num_threads() { return g_threads > 0 ? g_threads : omp_get_max_threads(); }


}  // namespace ag
