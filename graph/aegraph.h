// aegraph: everything model code needs, in one include.
#pragma once
#include "backends/backend.h"
#include "graph/autodiff.h"
#include "graph/executor.h"
#include "graph/graph.h"
#include "graph/params.h"
#include "graph/plan.h"
#include "graph/tensor.h"
#include "ops/ops.h"
