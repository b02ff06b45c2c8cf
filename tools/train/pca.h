// PCA, the linear baseline an autoencoder is measured against: the top-k eigenvectors of the
// training set's covariance (LAPACK dsyevd from OpenBLAS), test images projected onto them and
// back, and the squared reconstruction error per image summed over pixels, the measure
// Hinton & Salakhutdinov (2006) use (3.00 for their deep autoencoder vs 13.87 for 30-D PCA).
#pragma once
#include <cstdint>
#include <vector>

namespace ag::tools {

struct Pca {
  int dim = 0, components = 0;
  std::vector<double> mean;       // dim
  std::vector<double> basis;      // components x dim, row i = the eigenvector of the i-th largest eigenvalue
  std::vector<double> variances;  // components: the eigenvalues, largest first
};

// Fits on n images of dim values (row-major). Throws ag::Error when components is outside
// 1..dim or n < 1, or when LAPACK reports a failure.
Pca fit_pca(const float* images, int64_t n, int dim, int components);

// The codes (x - mean) B^T, n x components.
std::vector<float> pca_codes(const Pca& pca, const float* images, int64_t n);

// Mean over the n images of sum over pixels (x - x_hat)^2, x_hat = mean + codes B.
double pca_squared_error(const Pca& pca, const float* images, int64_t n);

}  // namespace ag::tools
