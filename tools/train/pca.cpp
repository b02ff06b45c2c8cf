// PCA by the covariance's eigendecomposition. The covariance is accumulated chunk by chunk
// with dsyrk (so memory stays at one chunk plus dim x dim), in double precision because
// MNIST's 60000-image sums lose digits in float; dsyevd does the eigen solve.
#include "tools/train/pca.h"

#include <algorithm>
#include <cstddef>

#include <cblas.h>
#include <fmt/format.h>

#include "ops/op.h"

// LAPACK's symmetric eigensolver, as exported by OpenBLAS. Debian's libopenblas-dev ships no
// LAPACK header (that is liblapacke-dev's lapacke.h), so the Fortran routine is declared here;
// the two trailing lengths are the hidden lengths of the character arguments.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info, size_t jobz_length,
                        size_t uplo_length);

namespace ag::tools {
namespace {

constexpr int64_t chunk_rows = 2048;

// rows of `images` starting at `first`, minus the mean, as doubles.
void centred_chunk(const Pca& pca, const float* images, int64_t first, int64_t rows, std::vector<double>& out) {
  out.resize(size_t(rows * pca.dim));
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < pca.dim; ++j)
      out[size_t(r * pca.dim + j)] = double(images[(first + r) * pca.dim + j]) - pca.mean[size_t(j)];
}

}  // namespace

Pca fit_pca(const float* images, int64_t n, int dim, int components) {
  if (n < 1 || dim < 1) throw Error(fmt::format("pca: needs at least one image (got {} of {} values)", n, dim));
  if (components < 1 || components > dim)
    throw Error(fmt::format("pca: {} components is outside 1..{} (the image size)", components, dim));
  Pca pca;
  pca.dim = dim;
  pca.components = components;
  pca.mean.assign(size_t(dim), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < dim; ++j) pca.mean[size_t(j)] += images[i * dim + j];
  for (double& m : pca.mean) m /= double(n);

  // covariance = sum over chunks of X_c^T X_c / n, upper triangle (row-major) from dsyrk.
  std::vector<double> cov(size_t(dim) * size_t(dim), 0.0), chunk;
  for (int64_t first = 0; first < n; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, n - first);
    centred_chunk(pca, images, first, rows, chunk);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, int(rows), 1.0 / double(n), chunk.data(), dim, 1.0,
                cov.data(), dim);
  }
  for (int i = 0; i < dim; ++i)  // mirror, so the matrix reads the same in either storage order
    for (int j = i + 1; j < dim; ++j) cov[size_t(j) * dim + i] = cov[size_t(i) * dim + j];

  std::vector<double> eigenvalues(static_cast<size_t>(dim));
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  const char jobz = 'V', uplo = 'U';
  dsyevd_(&jobz, &uplo, &dim, cov.data(), &dim, eigenvalues.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
  if (info != 0) throw Error(fmt::format("pca: LAPACK dsyevd workspace query failed (info {})", info));
  lwork = int(work_query);
  liwork = iwork_query;
  std::vector<double> work(size_t(std::max(lwork, 1)));
  std::vector<int> iwork(size_t(std::max(liwork, 1)));
  dsyevd_(&jobz, &uplo, &dim, cov.data(), &dim, eigenvalues.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  if (info != 0) throw Error(fmt::format("pca: LAPACK dsyevd did not converge (info {})", info));

  // Eigenvalues come in ascending order; eigenvector j is column j (column-major), which is
  // row j of our row-major buffer.
  pca.basis.resize(size_t(components) * size_t(dim));
  pca.variances.resize(size_t(components));
  for (int c = 0; c < components; ++c) {
    const int source = dim - 1 - c;
    pca.variances[size_t(c)] = eigenvalues[size_t(source)];
    std::copy_n(cov.begin() + ptrdiff_t(source) * dim, dim, pca.basis.begin() + ptrdiff_t(c) * dim);
  }
  return pca;
}

std::vector<float> pca_codes(const Pca& pca, const float* images, int64_t n) {
  std::vector<float> codes(size_t(n * pca.components));
  std::vector<double> chunk, block;
  for (int64_t first = 0; first < n; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, n - first);
    centred_chunk(pca, images, first, rows, chunk);
    block.assign(size_t(rows * pca.components), 0.0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), pca.components, pca.dim, 1.0, chunk.data(), pca.dim,
                pca.basis.data(), pca.dim, 0.0, block.data(), pca.components);
    std::copy(block.begin(), block.end(), codes.begin() + first * pca.components);
  }
  return codes;
}

double pca_squared_error(const Pca& pca, const float* images, int64_t n) {
  if (n < 1) return 0;
  double total = 0;
  std::vector<double> chunk, codes, recon;
  for (int64_t first = 0; first < n; first += chunk_rows) {
    const int64_t rows = std::min(chunk_rows, n - first);
    centred_chunk(pca, images, first, rows, chunk);
    codes.assign(size_t(rows * pca.components), 0.0);
    recon.assign(size_t(rows * pca.dim), 0.0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), pca.components, pca.dim, 1.0, chunk.data(), pca.dim,
                pca.basis.data(), pca.dim, 0.0, codes.data(), pca.components);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), pca.dim, pca.components, 1.0, codes.data(),
                pca.components, pca.basis.data(), pca.dim, 0.0, recon.data(), pca.dim);
    for (size_t i = 0; i < chunk.size(); ++i) total += (chunk[i] - recon[i]) * (chunk[i] - recon[i]);
  }
  return total / double(n);
}

}  // namespace ag::tools
