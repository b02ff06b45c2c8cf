// Batch top-k's order, shared by the shape rule's users and both backends: within one column of
// a [B, N] tensor, element (a, row ia) ranks above (b, row ib) when its key is larger, a NaN
// above every number, and equal keys by row, the lower row first. A strict total order, so the
// k kept elements of a column are one set on every backend and thread count.
#pragma once
#include <cstdint>

#include "ops/functors.h"

namespace ag {

template <class T>
AG_HD bool topk_ranks_above(T a, int64_t ia, T b, int64_t ib) {
  const bool na = a != a, nb = b != b;
  if (na != nb) return na;
  if (!na && a != b) return a > b;
  return ia < ib;
}

}  // namespace ag
