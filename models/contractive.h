// The contractive penalty ||J_f(x)||_F^2, mean over the batch, where f(x) = h is the encoder
// (Rifai et al. 2011). Three ways to write it as graph nodes; autodiff gives each its exact
// gradient (the double-backward ones through second derivatives).
#pragma once
#include <cstdint>

#include "graph/aegraph.h"

namespace ag::models {

// Sigmoid encoder h = sigmoid(x W^T + b), W [H, D]: sum_j (h_j (1 - h_j))^2 sum_i W_ji^2.
Value contractive_closed_form(Value h, Value weight);

// Any encoder h(x): one gradient per code unit j, d h_j / d x (rows are examples, which are
// independent), summed squares. Exact; costs H backward passes, so for small codes.
Value contractive_exact(Value h, Value x);

// Any encoder: E_v ||J^T v||^2 with v ~ N(0, I), one backward pass per draw (unbiased).
Value contractive_projection(Value h, Value x, Value step, uint64_t seed, int draws);

}  // namespace ag::models
