// The device context (stream, cuBLAS handle and workspace, reduction scratch), the device probe
// the registry asks, and the error messages of every checked CUDA / cuBLAS call.
#include "backends/cuda/cuda_context.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "ops/op.h"

namespace ag {

namespace cuda {

namespace {

std::atomic<Context*> g_context{nullptr};

std::string no_device_message(cudaError_t err, int count) {
  if (err != cudaSuccess)
    return fmt::format("cuda: no CUDA device (cudaGetDeviceCount: {}: {}); use Device::cpu", cudaGetErrorName(err),
                       cudaGetErrorString(err));
  return fmt::format("cuda: no CUDA device (cudaGetDeviceCount found {}); use Device::cpu", count);
}

// Frees what a half-made context holds; errors are only reported, a first error is in flight.
void unmake(Context& c) {
  if (c.reduce_partials) report(cudaFree(c.reduce_partials), "context", "cudaFree");
  if (c.blas) cublasDestroy(c.blas);
  if (c.blas_workspace) report(cudaFree(c.blas_workspace), "context", "cudaFree");
  if (c.stream) report(cudaStreamDestroy(c.stream), "context", "cudaStreamDestroy");
}

Context* make_context() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    (void)cudaGetLastError();  // the probe's error is not the caller's
    throw Error(no_device_message(err, count));
  }
  auto c = std::make_unique<Context>();
  try {
    check(cudaGetDevice(&c->device), "context", "cudaGetDevice");
    check(cudaSetDevice(c->device), "context", "cudaSetDevice");  // makes the primary context current
    // Non-blocking: the legacy default stream, which other libraries may use, never orders ours.
    check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "context", "cudaStreamCreateWithFlags");
    check_blas(cublasCreate(&c->blas), "context", "cublasCreate");
    // The stream first: cublasSetStream resets the workspace to cuBLAS's own pool.
    check_blas(cublasSetStream(c->blas, c->stream), "context", "cublasSetStream");
    check(cudaMalloc(&c->blas_workspace, blas_workspace_bytes), "context", "cudaMalloc (cuBLAS workspace)");
    // Our own workspace: cuBLAS then never allocates inside a captured step.
    check_blas(cublasSetWorkspace(c->blas, c->blas_workspace, blas_workspace_bytes), "context", "cublasSetWorkspace");
    check_blas(cublasSetPointerMode(c->blas, CUBLAS_POINTER_MODE_HOST), "context", "cublasSetPointerMode");
    // Full fp32 (no TF32 tensor cores) and no atomics: results match the CPU and repeat exactly.
    check_blas(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH), "context", "cublasSetMathMode");
    check_blas(cublasSetAtomicsMode(c->blas, CUBLAS_ATOMICS_NOT_ALLOWED), "context", "cublasSetAtomicsMode");
    check(cudaMalloc(reinterpret_cast<void**>(&c->reduce_partials), sizeof(double) * max_reduce_blocks), "context",
          "cudaMalloc (reduction scratch)");
  } catch (...) {
    unmake(*c);
    throw;
  }
  return c.release();
}

}  // namespace

// Never destroyed: at exit the driver tears the device down itself, and destroying a stream
// or handle after that point fails.
Context& context() {
  static Context* made = [] {
    Context* c = make_context();
    g_context.store(c);
    return c;
  }();
  // The current device is a per-thread setting: another host thread (device 0 by default) is
  // pointed at the context's device once, before its first call.
  thread_local bool current = false;
  if (!current) {
    check(cudaSetDevice(made->device), "context", "cudaSetDevice");
    current = true;
  }
  return *made;
}

Context* context_if_made() { return g_context.load(); }

void fail(const char* op, const char* call, cudaError_t err) {
  (void)cudaGetLastError();  // reported here, so no later launch check reports it again
  throw Error(fmt::format("cuda: {}: {} failed: {}: {}", op, call, cudaGetErrorName(err), cudaGetErrorString(err)));
}

void fail_blas(const char* op, const char* call, cublasStatus_t status) {
  (void)cudaGetLastError();
  throw Error(fmt::format("cuda: {}: {} failed: {}: {}", op, call, cublasGetStatusName(status),
                          cublasGetStatusString(status)));
}

void report(cudaError_t err, const char* op, const char* call) {
  if (err == cudaSuccess) return;
  std::fprintf(stderr, "aegraph: cuda: %s: %s failed: %s: %s\n", op, call, cudaGetErrorName(err),
               cudaGetErrorString(err));
}

}  // namespace cuda

// Why there is no device ("" when there is one), probed once.
std::string cuda_probe_failure() {
  static const std::string why = [] {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) (void)cudaGetLastError();
    return err == cudaSuccess && count > 0 ? std::string() : cuda::no_device_message(err, count);
  }();
  return why;
}

bool cuda_device_present() { return cuda_probe_failure().empty(); }

}  // namespace ag
