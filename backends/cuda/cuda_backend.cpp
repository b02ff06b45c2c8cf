// The CUDA backend: device and pinned host memory, synchronous copies, and running a program
// on the context's one stream. A program runs eagerly the first time its id is seen (which
// also loads every kernel and lets cuBLAS pick its algorithms outside any capture), is captured
// as a CUDA graph on its second run, and after that each run is one graph launch. Input uploads
// are enqueued before the graph, followed by an event the executor waits on before refilling. The program's
// pointers are fixed for its executor's life, so the captured graph stays valid until forget().
#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_context.h"
#include "backends/cuda/kernels.h"

namespace ag {

namespace {

using cuda::check;
using cuda::Context;

// What the backend remembers of one program id: enough of the program to notice that a
// different one arrived under the same id, how often it ran, and its captured graph.
struct CachedProgram {
  const Upload* uploads = nullptr;
  int nuploads = 0;
  const KernelCall* calls = nullptr;
  int ncalls = 0;
  int runs = 0;
  bool captured = false;
  cudaGraphExec_t graph = nullptr;  // null after capture when the program enqueued nothing
  cudaEvent_t uploaded = nullptr;   // recorded after each run's uploads: their host buffers are free

  bool describes(const Program& p) const {
    return uploads == p.uploads && nuploads == p.nuploads && calls == p.calls && ncalls == p.ncalls;
  }
};

class CudaBackend final : public Backend {
 public:
  Device device() const override { return Device::cuda; }

  void* alloc(size_t bytes) override {
    cuda::context();  // the device is set up before its first allocation
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw Error(fmt::format("cuda: alloc: cudaMalloc of {} bytes failed: {}: {}", bytes, cudaGetErrorName(err),
                              cudaGetErrorString(err)));
    }
    ++allocations_;
    return p;
  }
  void release(void* p) override {
    if (p) cuda::report(cudaFree(p), "release", "cudaFree");
  }

  void* alloc_host(size_t bytes) override {
    cuda::context();
    void* p = nullptr;
    cudaError_t err = cudaMallocHost(&p, std::max<size_t>(bytes, 1));
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw Error(fmt::format("cuda: alloc_host: cudaMallocHost of {} bytes failed: {}: {}", bytes,
                              cudaGetErrorName(err), cudaGetErrorString(err)));
    }
    ++allocations_;
    return p;
  }
  void release_host(void* p) override {
    if (p) cuda::report(cudaFreeHost(p), "release_host", "cudaFreeHost");
  }

  // Both copies go through our stream, so they come after every run enqueued before them.
  void upload(void* device, const void* host, size_t bytes) override {
    if (bytes == 0) return;
    const Context& ctx = cuda::context();
    std::lock_guard<std::mutex> lock(mutex_);
    check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, ctx.stream), "upload", "cudaMemcpyAsync");
    ++stream_syncs_;
    check(cudaStreamSynchronize(ctx.stream), "upload", "cudaStreamSynchronize");
  }
  void download(void* host, const void* device, size_t bytes) override {
    if (bytes == 0) return;
    const Context& ctx = cuda::context();
    std::lock_guard<std::mutex> lock(mutex_);
    check(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, ctx.stream), "download", "cudaMemcpyAsync");
    ++stream_syncs_;
    check(cudaStreamSynchronize(ctx.stream), "download", "cudaStreamSynchronize");
  }

  void run(const Program& p) override {
    if (p.nuploads == 0 && p.ncalls == 0) return;  // nothing to enqueue (and an empty graph to capture)
    const Context& ctx = cuda::context();
    // Held for the whole run: work that another thread enqueued on the stream while it is being
    // captured would end up inside this program's graph.
    std::lock_guard<std::mutex> lock(mutex_);
    CachedProgram& cached = programs_[p.id];
    if (cached.runs > 0 && !cached.describes(p)) {  // another program under a known id: start over
      destroy_graph(cached);
      cached = CachedProgram{};
    }
    // The uploads stay outside the graph, so the host learns (wait_uploads) when their pinned
    // buffers may be refilled without waiting for the whole step.
    if (!cached.uploaded)
      check(cudaEventCreateWithFlags(&cached.uploaded, cudaEventDisableTiming), "run", "cudaEventCreateWithFlags");
    enqueue_uploads(p, ctx);
    check(cudaEventRecord(cached.uploaded, ctx.stream), "run", "cudaEventRecord");
    if (cached.runs == 0) {
      cached.uploads = p.uploads;
      cached.nuploads = p.nuploads;
      cached.calls = p.calls;
      cached.ncalls = p.ncalls;
      enqueue_calls(p, ctx);
      cached.runs = 1;
      ++eager_runs_;
      return;
    }
    if (!cached.captured) {
      cached.graph = capture(p, ctx);
      cached.captured = true;
      ++captures_;
    }
    if (cached.graph) {
      check(cudaGraphLaunch(cached.graph, ctx.stream), "run", "cudaGraphLaunch");
      ++graph_launches_;
    }
    ++cached.runs;
  }

  void forget(uint64_t program_id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = programs_.find(program_id);
    if (it == programs_.end()) return;
    destroy_graph(it->second);
    programs_.erase(it);
  }

  void wait_uploads(uint64_t program_id) override {
    cudaEvent_t uploaded = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = programs_.find(program_id);
      if (it == programs_.end() || !it->second.uploaded) return;  // never ran: nothing in flight
      uploaded = it->second.uploaded;
    }
    ++upload_waits_;
    check(cudaEventSynchronize(uploaded), "wait_uploads", "cudaEventSynchronize");
  }

  void synchronize() override {
    Context* ctx = cuda::context_if_made();
    if (!ctx) return;  // nothing was ever enqueued
    std::lock_guard<std::mutex> lock(mutex_);
    ++stream_syncs_;
    check(cudaStreamSynchronize(ctx->stream), "synchronize", "cudaStreamSynchronize");
  }

  BackendCounts counts() const override {
    BackendCounts c;
    c.allocations = allocations_;
    c.stream_syncs = stream_syncs_;
    c.upload_waits = upload_waits_;
    c.eager_runs = eager_runs_;
    c.captures = captures_;
    c.graph_launches = graph_launches_;
    size_t free = 0, total = 0;
    if (cuda::context_if_made() && cudaMemGetInfo(&free, &total) == cudaSuccess)
      c.device_bytes_used = int64_t(total - free);
    else
      (void)cudaGetLastError();
    return c;
  }

 private:
  // The uploads (pinned host -> device), on the stream before the program's calls.
  static void enqueue_uploads(const Program& p, const Context& ctx) {
    for (int i = 0; i < p.nuploads; ++i) {
      const Upload& u = p.uploads[i];
      if (u.bytes == 0) continue;
      check(cudaMemcpyAsync(u.device, u.host, u.bytes, cudaMemcpyHostToDevice, ctx.stream), "run (input upload)",
            "cudaMemcpyAsync");
    }
  }
  // Every call in order, on the stream.
  static void enqueue_calls(const Program& p, const Context& ctx) {
    for (int i = 0; i < p.ncalls; ++i) cuda::launch(p.calls[i], ctx);
  }

  // Records the program into a graph instead of running it, and instantiates the graph.
  static cudaGraphExec_t capture(const Program& p, const Context& ctx) {
    // Thread-local mode: an unsafe call (cudaMalloc, a synchronous copy, ...) from this thread
    // fails the capture, while other threads stay free to allocate.
    check(cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeThreadLocal), "capture", "cudaStreamBeginCapture");
    try {
      enqueue_calls(p, ctx);
    } catch (const Error& e) {
      abandon_capture(ctx);
      throw Error(std::string(e.what()) + " (while capturing the program as a CUDA graph)");
    } catch (...) {
      abandon_capture(ctx);
      throw;
    }
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(ctx.stream, &graph), "capture", "cudaStreamEndCapture");
    // Every call of the program may have had nothing to do (empty tensors): no graph then.
    size_t nodes = 0;
    cudaError_t made = cudaGraphGetNodes(graph, nullptr, &nodes);
    cudaGraphExec_t exec = nullptr;
    if (made == cudaSuccess && nodes > 0) made = cudaGraphInstantiate(&exec, graph, 0);
    cuda::report(cudaGraphDestroy(graph), "capture", "cudaGraphDestroy");  // the instance keeps what it needs
    check(made, "capture", "cudaGraphGetNodes / cudaGraphInstantiate");
    return exec;
  }

  // Takes the stream out of capture mode after a failure, whatever state the capture is in.
  static void abandon_capture(const Context& ctx) {
    cudaGraph_t partial = nullptr;
    (void)cudaStreamEndCapture(ctx.stream, &partial);
    if (partial) (void)cudaGraphDestroy(partial);
    (void)cudaGetLastError();
  }

  // An instantiated graph still running is freed by the driver once it finishes.
  static void destroy_graph(CachedProgram& cached) {
    if (cached.graph) cuda::report(cudaGraphExecDestroy(cached.graph), "forget", "cudaGraphExecDestroy");
    cached.graph = nullptr;
    cached.captured = false;
    if (cached.uploaded) cuda::report(cudaEventDestroy(cached.uploaded), "forget", "cudaEventDestroy");
    cached.uploaded = nullptr;
  }

  std::mutex mutex_;
  std::unordered_map<uint64_t, CachedProgram> programs_;
  std::atomic<int64_t> allocations_{0}, stream_syncs_{0}, upload_waits_{0};
  std::atomic<int64_t> eager_runs_{0}, captures_{0}, graph_launches_{0};
};

}  // namespace

Backend& cuda_backend() {
  cuda::context();  // throws "cuda: no CUDA device ..." when there is none
  static CudaBackend backend;
  return backend;
}

}  // namespace ag
