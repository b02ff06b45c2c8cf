// backend(device): the CPU backend always, the CUDA one when it was built and a device exists.
#include "backends/backend.h"

#include <string>

namespace ag {

Backend& cpu_backend();
#ifdef AEGRAPH_WITH_CUDA
Backend& cuda_backend();  // backends/cuda: throws when no device is present
bool cuda_device_present();
std::string cuda_probe_failure();
#endif

namespace {
// a + sign b, field by field; the device memory is unknown (-1) where either side's is.
BackendCounts combine(const BackendCounts& a, const BackendCounts& b, int64_t sign) {
  BackendCounts r;
  r.allocations = a.allocations + sign * b.allocations;
  r.stream_syncs = a.stream_syncs + sign * b.stream_syncs;
  r.upload_waits = a.upload_waits + sign * b.upload_waits;
  r.eager_runs = a.eager_runs + sign * b.eager_runs;
  r.captures = a.captures + sign * b.captures;
  r.graph_launches = a.graph_launches + sign * b.graph_launches;
  const bool known = a.device_bytes_used != -1 && b.device_bytes_used != -1;
  r.device_bytes_used = known ? a.device_bytes_used + sign * b.device_bytes_used : -1;
  return r;
}
}  // namespace

BackendCounts BackendCounts::operator-(const BackendCounts& earlier) const { return combine(*this, earlier, -1); }
BackendCounts& BackendCounts::operator+=(const BackendCounts& more) { return *this = combine(*this, more, 1); }

bool cuda_available() {
#ifdef AEGRAPH_WITH_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

std::string cuda_unavailable_reason() {
#ifdef AEGRAPH_WITH_CUDA
  return cuda_probe_failure();
#else
  return "this build of aegraph has no CUDA backend (configure with -DAEGRAPH_CUDA=ON)";
#endif
}

Backend& backend(Device device) {
  if (device == Device::cpu) return cpu_backend();
#ifdef AEGRAPH_WITH_CUDA
  return cuda_backend();
#else
  throw Error("cuda: this build of aegraph has no CUDA backend (configure with -DAEGRAPH_CUDA=ON)");
#endif
}

}  // namespace ag
