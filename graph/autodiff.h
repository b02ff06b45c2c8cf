// Reverse-mode autodiff that builds graph nodes: grad(loss, wrt) appends the gradient of loss
// with respect to each wrt value, so gradients can themselves be differentiated again.
#pragma once
#include <vector>

#include "graph/graph.h"

namespace ag {

// d loss / d w for each w in wrt. `seed` is the incoming gradient (default 1; loss must then be
// a scalar). A w that loss does not depend on gets zeros.
std::vector<Value> grad(Value loss, const std::vector<Value>& wrt, Value seed = {});

}  // namespace ag
