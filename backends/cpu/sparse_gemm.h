// Matrix products with a mostly-zero operand (MNIST's pixels are 81% zeros, a masked or ReLU'd
// batch more), or with only a few of their entries wanted (a batch top-k's mask): a dense GEMM
// multiplies all those zeros, or computes all those entries; these kernels skip them.
//
// Each element of C is its bias (or zero) plus one float accumulator that takes one fused
// multiply-add per nonzero of the sparse operand, in k order: the error bound of any float dot
// product of length K, the same for every thread count (docs/architecture.md, "Numbers"). The
// kernels are vectorised across the other dimension of the product (the columns of C, or its
// rows for a sparse right operand). One difference from a dense GEMM, by design: where a skipped
// zero meets an infinite or NaN value of the dense operand, a dense GEMM gives NaN and this gives
// the other terms' sum (a NaN in the sparse operand is not skipped and reaches C).
#pragma once

namespace ag::cpu {

struct Gemm {
  bool ta = false, tb = false;  // C = op(A) op(B): op(A) is M x K, op(B) is K x N
  int M = 0, N = 0, K = 0, lda = 0, ldb = 0;
  const float *A = nullptr, *B = nullptr;
  const float* bias = nullptr;  // null, or N values every row of C starts from
  float* C = nullptr;           // M x N, row-major
};

// The share of the work sparse_gemm skips for this sparse operand (rows x cols at x, leading
// dimension ld): it takes the operand's rows (of A) or columns (of B: groups_of_columns) four at
// a time and skips the places where all four are zero. Estimated from a sample: eight groups of
// rows, or 32 rows' groups of columns (whole rows either way, so it reads memory in order).
double group_zero_fraction(const float* x, int rows, int cols, int ld, bool groups_of_columns);

// C = op(A) op(B) (+ bias) on `threads` threads, skipping the zeros of A (sparse_a: needs
// !g.ta) or of B (otherwise: needs !g.tb). Scratch memory is kept per
// calling thread and grows to the largest product seen, so a repeated step does not allocate.
void sparse_gemm(const Gemm& g, bool sparse_a, int threads);

// C = op(A) op(B) where mask (M x N, row-major) > 0, zero elsewhere, computing only those
// entries: each one dot product of length K (one float accumulator per vector lane, the lanes
// summed in a fixed order), the same bits for every thread count. Returns false, touching
// nothing, when more than max_kept of the mask's entries are kept (a dense GEMM is faster then).
// g.bias must be null.
bool masked_gemm(const Gemm& g, const float* mask, double max_kept, int threads);

}  // namespace ag::cpu
