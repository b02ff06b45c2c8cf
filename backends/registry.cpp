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

BackendCounts BackendCounts::operator-(const BackendCounts& e) const {
  BackendCounts d;
  d.allocations = allocations - e.allocations;
  d.stream_syncs = stream_syncs - e.stream_syncs;
  d.upload_waits = upload_waits - e.upload_waits;
  d.eager_runs = eager_runs - e.eager_runs;
  d.captures = captures - e.captures;
  d.graph_launches = graph_launches - e.graph_launches;
  d.device_bytes_used = device_bytes_used < 0 || e.device_bytes_used < 0 ? -1 : device_bytes_used - e.device_bytes_used;
  return d;
}

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
