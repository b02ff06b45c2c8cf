// matmul through cuBLAS. Our tensors are row-major and cuBLAS is column-major; a row-major
// R x C buffer read column-major is its C x R transpose. So C = op(A) op(B) (row-major, M x N)
// is computed as C^T = op(B)^T op(A)^T (column-major, N x M): B goes first, the transpose flags
// are kept as they are, and each leading dimension is the row length of its buffer.
// A bias row is first broadcast into every row of C by a kernel, then the GEMM adds with beta 1.
// A masked product is the whole product, then the mask (cuBLAS has no sampled product).
#include <climits>
#include <string>

#include "backends/cuda/device_loops.cuh"

namespace ag::cuda {

namespace {

template <class T>
__global__ void fill_rows(const T* row, T* C, int64_t M, int64_t N) {
  for (int64_t k = grid_start(); k < M * N; k += grid_stride()) C[k] = row[k % N];
}

int blas_dim(int64_t d, const KernelCall& c) {
  if (d > INT_MAX)
    throw Error("cuda: matmul: dimension " + std::to_string(d) + " exceeds cuBLAS's 32-bit sizes (output " +
                c.out.shape.str() + ")");
  return int(d);
}

template <class T>
void gemm(const KernelCall& c, const Context& ctx) {
  const bool ta = c.node->attrs.i[0], tb = c.node->attrs.i[1];
  const Tensor &A = c.in[0], &B = c.in[1];
  const int64_t M = c.out.shape[0], N = c.out.shape[1];
  const int64_t K = ta ? A.shape[0] : A.shape[1];
  T* C = c.out.ptr<T>();
  if (M * N == 0) return;
  T beta = 0;
  if (c.nin == 3) {
    fill_rows<<<grid_for(M * N), block_threads, 0, ctx.stream>>>(c.in[2].ptr<T>(), C, M, N);
    check_launch("matmul");
    beta = 1;
  }
  if (K == 0) {  // an empty sum: C is the bias, or zeros
    if (c.nin != 3) check(cudaMemsetAsync(C, 0, c.out.bytes(), ctx.stream), "matmul", "cudaMemsetAsync");
    return;
  }
  const T alpha = 1;
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = blas_dim(N, c), n = blas_dim(M, c), k = blas_dim(K, c);
  const int ldb = blas_dim(B.shape[1], c), lda = blas_dim(A.shape[1], c);
  if constexpr (sizeof(T) == 4)
    check_blas(cublasSgemm(ctx.blas, opb, opa, m, n, k, &alpha, B.ptr<T>(), ldb, A.ptr<T>(), lda, &beta, C, m), "matmul",
               "cublasSgemm");
  else
    check_blas(cublasDgemm(ctx.blas, opb, opa, m, n, k, &alpha, B.ptr<T>(), ldb, A.ptr<T>(), lda, &beta, C, m), "matmul",
               "cublasDgemm");
}

void matmul(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? gemm<float>(c, ctx) : gemm<double>(c, ctx);
}

// masked_matmul: the whole product by cuBLAS, then the mask (where mask > 0, as relu_grad keeps).
template <class T>
__global__ void keep_where(const T* mask, T* C, int64_t n) {
  for (int64_t e = grid_start(); e < n; e += grid_stride()) C[e] = mask[e] > T(0) ? C[e] : T(0);
}
template <class T>
void masked_gemm(const KernelCall& c, const Context& ctx) {
  KernelCall product = c;
  product.nin = 2;  // the third input is the mask, not a bias
  gemm<T>(product, ctx);
  const int64_t n = c.out.numel();
  if (n == 0) return;
  keep_where<<<grid_for(n), block_threads, 0, ctx.stream>>>(c.in[2].ptr<T>(), c.out.ptr<T>(), n);
  check_launch("masked_matmul");
}
void masked_matmul(const KernelCall& c, const Context& ctx) {
  c.out.dtype == DType::f32 ? masked_gemm<float>(c, ctx) : masked_gemm<double>(c, ctx);
}

}  // namespace

void register_matmul_kernel(Launcher* k) {
  k[int(OpCode::matmul)] = matmul;
  k[int(OpCode::masked_matmul)] = masked_matmul;
}

}  // namespace ag::cuda
