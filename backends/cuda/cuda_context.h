// The CUDA device context every part of the backend shares: one device, one stream, one
// cuBLAS handle with a workspace of its own, and the scratch the deterministic reductions write
// their per-block partial sums into. Made once, on first use, and kept for the process's life.
// Also the error checks: every CUDA and cuBLAS call goes through check() / check_blas(), so a
// failure becomes an ag::Error that names the op and the call ("cuda: matmul: cublasSgemm ...").
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ag::cuda {

// Partial sums of the two-pass reductions: at most this many blocks, so the scratch is fixed.
constexpr int max_reduce_blocks = 1024;
// cuBLAS workspace: NVIDIA recommends 32 MiB on Hopper (4 MiB is enough before it).
constexpr size_t blas_workspace_bytes = size_t(32) << 20;

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  void* blas_workspace = nullptr;
  double* reduce_partials = nullptr;  // max_reduce_blocks doubles
};

// The context, made on the first call (throws ag::Error when there is no device); its device is
// made current on the calling thread.
Context& context();
// The context if it has been made, else null: for calls that must not create it (destructors).
Context* context_if_made();

[[noreturn]] void fail(const char* op, const char* call, cudaError_t err);
[[noreturn]] void fail_blas(const char* op, const char* call, cublasStatus_t status);

// "cuda: <op>: <call> failed: <error name>: <description>"
inline void check(cudaError_t err, const char* op, const char* call) {
  if (err != cudaSuccess) fail(op, call, err);
}
inline void check_blas(cublasStatus_t status, const char* op, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) fail_blas(op, call, status);
}
// After a kernel launch: a bad configuration is reported here, a fault at the next synchronise.
inline void check_launch(const char* op) { check(cudaGetLastError(), op, "kernel launch"); }

// For destructors and release paths, which must not throw: prints the failure to stderr.
void report(cudaError_t err, const char* op, const char* call);

}  // namespace ag::cuda
