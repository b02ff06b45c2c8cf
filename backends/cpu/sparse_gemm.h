// Matrix products with a mostly-zero operand (MNIST's pixels are 81% zeros, a masked or ReLU'd
// batch more), computed with the bits of OpenBLAS's dense product.
//
// OpenBLAS's sgemm kernel sums every element of C block by block over K: within a block one
// fused multiply-add per k, in order, into a register that starts at zero; then the block's sum
// is added to C (which holds the bias, zero, or the blocks before). An FMA whose product is
// 0 * w leaves its accumulator as it was, so skipping the zero terms gives the same bits, as
// long as K is cut into the same blocks and every other term is taken in order. The kernels
// here do that, vectorised across the other dimension of the product (the columns of C, or its
// rows for a sparse right operand), and are checked against OpenBLAS at run time before they
// are used (cpu_backend.cpp, find_sparse_rules). One difference, by design: where a skipped
// zero meets an infinite or NaN weight, OpenBLAS gives NaN and this gives the other terms' sum.
#pragma once

namespace ag::cpu {

struct Gemm {
  bool ta = false, tb = false;  // C = op(A) op(B): op(A) is M x K, op(B) is K x N
  int M = 0, N = 0, K = 0, lda = 0, ldb = 0;
  const float *A = nullptr, *B = nullptr;
  const float* bias = nullptr;  // null, or N values every row of C starts from
  float* C = nullptr;           // M x N, row-major
};

// How K is cut into blocks: q = 0, one block (K fits one of OpenBLAS's blocks); otherwise blocks
// of q with the last remainder between q and 2q halved, as OpenBLAS's threaded driver does
// (unroll = 0), or halved and rounded up to a multiple of `unroll`, as its single-threaded one.
struct KBlocks {
  int q = 0, unroll = 0;
  int next(int rest) const {
    if (q == 0 || rest <= q) return rest;
    if (rest >= 2 * q) return q;
    return unroll == 0 ? (rest + 1) / 2 : (rest / 2 + unroll - 1) / unroll * unroll;
  }
};

// The share of the work sparse_gemm skips for this sparse operand (rows x cols at x, leading
// dimension ld): it takes the operand's rows (of A) or columns (of B: groups_of_columns) four at
// a time and skips the places where all four are zero. Estimated from a sample: eight groups of
// rows, or 32 rows' groups of columns (whole rows either way, so it reads memory in order).
double group_zero_fraction(const float* x, int rows, int cols, int ld, bool groups_of_columns);

// C = op(A) op(B) (+ bias) on `threads` threads, skipping the zeros of A (sparse_a: needs
// !g.ta) or of B (otherwise: needs !g.tb), K cut as `blocks` says. Scratch memory is kept per
// calling thread and grows to the largest product seen, so a repeated step does not allocate.
void sparse_gemm(const Gemm& g, bool sparse_a, const KBlocks& blocks, int threads);

}  // namespace ag::cpu
