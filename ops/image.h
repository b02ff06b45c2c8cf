// The geometry of the image ops (ops/image.cpp), worked out once from a node's shapes and
// attributes so that the shape rules, the CPU kernels and the CUDA kernels agree on it.
//
// Tensors are NCHW, as in PyTorch. Attributes:
//   conv2d, conv_transpose2d, conv2d_filter_grad   i = {stride, padding, a, b}
//       conv_transpose2d: a, b = the extra rows and columns of the output (output_padding);
//       conv2d_filter_grad: a, b = the filter's height and width.
//   max_pool2d, max_unpool2d                       i = {stride, padding, kernel}
//   upsample_nearest2d, sum_pool2d                 i = {scale}
#pragma once
#include <cstdint>

#include "graph/tensor.h"
#include "ops/op.h"

namespace ag {

// A convolution seen from its "image" side (x: [n, c, h, w]) and its "map" side (y: [n, f, oh,
// ow]), with filters w [f, c, kh, kw]: y[n, f, i, j] = sum_{c, u, v} w[f, c, u, v] x[n, c, i s - p + u,
// j s - p + v], positions outside x counted as zero. conv2d computes y from x; its transpose
// (conv_transpose2d, with filters [c_in = f, c_out = c, kh, kw]) computes the adjoint, x-shaped, from
// a y-shaped input; conv2d_filter_grad computes the w-shaped product of x and y.
struct ConvGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // image side
  int64_t f = 0, oh = 0, ow = 0;       // map side
  int64_t kh = 0, kw = 0, stride = 1, pad = 0;

  int64_t image_plane() const { return h * w; }
  int64_t map_plane() const { return oh * ow; }
  int64_t patch() const { return c * kh * kw; }  // one column of the unfolded image
};

// A pooling window sliding over [n*c planes of h x w]: output [oh x ow], window k, stride s,
// padding p (padded positions are never chosen: they count as -inf).
struct PoolGeometry {
  int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0, kernel = 1, stride = 1, pad = 0;
};

// Whether the CPU runs a convolution of these channels and filters as Winograd F(2x2, 3x3)
// (stride 1, 3x3, input and output channels multiples of 16: backends/cpu/image_kernels.cpp).
inline bool winograd_shaped(int64_t c, int64_t f, int64_t kh, int64_t kw, int64_t stride, int64_t pad) {
  return stride == 1 && kh == 3 && kw == 3 && pad <= 2 && c % 16 == 0 && f % 16 == 0;
}

// The output length of a convolution or pooling window along one axis (0 or less: too small).
inline int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

// From the three shapes of any of the three convolution ops: the image x [n, c, h, w], the
// filters [f, c, kh, kw] and the map y [n, f, oh, ow] (which of them are inputs depends on the op).
inline ConvGeometry conv_geometry(const Shape& x, const Shape& filters, const Shape& y, const Attrs& a) {
  return ConvGeometry{x[0], x[1], x[2], x[3], y[1], y[2], y[3], filters[2], filters[3], a.i[0], a.i[1]};
}

// From a pooling op's larger side (the image) and its smaller side (the pooled map).
inline PoolGeometry pool_geometry(const Shape& image, const Shape& pooled, const Attrs& a) {
  return PoolGeometry{image[0] * image[1], image[2], image[3], pooled[2], pooled[3], a.i[2], a.i[0], a.i[1]};
}

}  // namespace ag
