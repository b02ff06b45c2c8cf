// Compiling a set of outputs into a plan: dead nodes dropped, each value's lifetime computed,
// every intermediate placed in one arena by liveness (first fit), elementwise ops run in place
// when a source dies there, reshape made an alias, and an assign's value written straight
// into its target when nothing reads the old contents later. Chains of elementwise ops whose
// intermediates are used once become fusion groups: a group runs as one loop over cache-sized
// blocks, and its intermediates never touch memory; a group may store an assign's value into
// its target on the way (an optimiser's state and parameter update in one pass). Steps that
// write persistent memory run as early as their inputs allow. Two adjacent matrix products that
// do not read each other (a backward pass's dW and dx) may be paired: run side by side.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace ag {

enum class Storage : uint8_t {
  none,      // not in the plan
  arena,     // an arena block (PlanBuffer)
  input,     // fed by the caller each run
  constant,  // filled once when an executor is made
  external,  // persistent memory owned elsewhere (parameters, optimiser state)
  fused,     // computed inside its fusion group's loop, never stored
};

struct PlanBuffer {
  int64_t offset = 0;  // bytes into the arena
  int64_t bytes = 0;
  int first = 0;       // position of the step that writes it first
  int last = 0;        // position of the last step that reads it (outputs: the end)
};

struct CompileOptions {
  bool in_place = true;      // reuse a dying input's buffer for elementwise ops
  bool elide_assign = true;  // compute an assign's value straight into its target
  bool fuse = true;          // run chains of elementwise ops as one blocked loop
  bool schedule_updates = true;  // run each update as soon as its inputs are ready, not at the end
  // Let two adjacent independent matrix products run side by side, one per thread (faster on 2
  // cores). The CPU backend runs each on one thread with the bits it has alone (it cuts K as
  // OpenBLAS's threaded driver would), or runs the two one after the other where it cannot.
  bool pair_matmuls = true;
};

struct Plan {
  Graph* graph = nullptr;
  CompileOptions options;
  std::vector<Value> output_values;  // as given to compile (an executor may recompile without fusion)
  std::vector<int> steps;         // node ids in execution order (leaves and group members are not steps)
  std::vector<Storage> storage;   // per node
  std::vector<int> buffer;        // per node: arena buffer id, or -1
  std::vector<int> alias_of;      // per node: the node whose memory it shares (reshape, elided assign), or -1
  std::vector<char> in_place;     // per node: writes over a dying input's buffer
  std::vector<char> elided;       // per assign node: the value was written into the target directly
  std::vector<int> group;         // per node: the root of its fusion group (a root names itself), or -1
  std::vector<std::vector<int>> operands;  // per node that is a step: what it reads (a group: from outside)
  std::vector<char> runs_with_next;  // per step position: may run at the same time as the next step
  std::vector<PlanBuffer> buffers;
  int64_t arena_bytes = 0;
  std::vector<int> inputs, constants, outputs;

  // The node whose memory holds node id (follows aliases to the end).
  int home(int id) const {
    while (alias_of[size_t(id)] >= 0) id = alias_of[size_t(id)];
    return id;
  }
  bool fused_root(int id) const { return group[size_t(id)] == id; }
  std::vector<int> members(int root) const;  // a group's nodes in execution order, the root last
  std::string describe() const;              // one line a step: op, shape, where it lives
};

Plan compile(const std::vector<Value>& outputs, const CompileOptions& options = {});

}  // namespace ag
