// The one exception type of aegraph's I/O library. It derives from ag::Error so a tool can
// catch every aegraph failure in one place; its message always names the file (or URL, or
// folder) involved and what is wrong with it.
#pragma once
#include "ops/op.h"

namespace ag::io {

class IoError : public ag::Error {
 public:
  using ag::Error::Error;
};

}  // namespace ag::io
