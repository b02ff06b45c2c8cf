// Compiling a set of outputs into a plan: dead nodes dropped, each value's lifetime computed,
// every intermediate placed in one arena by liveness (first fit), elementwise ops run in place
// when a source dies there, reshape made an alias, and an assign's value written straight
// into its target when nothing reads the old contents later.
#pragma once
#include <cstdint>
#include <vector>

#include "graph/graph.h"

namespace ag {

enum class Storage : uint8_t {
  none,      // not in the plan
  arena,     // an arena block (PlanBuffer)
  input,     // fed by the caller each run
  constant,  // filled once when an executor is made
  external,  // persistent memory owned elsewhere (parameters, optimiser state)
};

struct PlanBuffer {
  int64_t offset = 0;  // bytes into the arena
  int64_t bytes = 0;
  int first = 0;       // position of the step that writes it first
  int last = 0;        // position of the last step that reads it (outputs: the end)
};

struct Plan {
  Graph* graph = nullptr;
  std::vector<int> steps;         // node ids in execution order (leaves are not steps)
  std::vector<Storage> storage;   // per node
  std::vector<int> buffer;        // per node: arena buffer id, or -1
  std::vector<int> alias_of;      // per node: the node whose memory it shares (reshape, elided assign), or -1
  std::vector<char> in_place;     // per node: writes over a dying input's buffer
  std::vector<char> elided;       // per assign node: the value was written into the target directly
  std::vector<PlanBuffer> buffers;
  int64_t arena_bytes = 0;
  std::vector<int> inputs, constants, outputs;

  // The node whose memory holds node id (follows aliases to the end).
  int home(int id) const {
    while (alias_of[size_t(id)] >= 0) id = alias_of[size_t(id)];
    return id;
  }
  std::string describe() const;  // one line a step: op, shape, where it lives
};

struct CompileOptions {
  bool in_place = true;      // reuse a dying input's buffer for elementwise ops
  bool elide_assign = true;  // compute an assign's value straight into its target
};

Plan compile(const std::vector<Value>& outputs, const CompileOptions& options = {});

}  // namespace ag
