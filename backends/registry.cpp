// backend(device): the CPU backend always, the CUDA one when it was built and a device exists.
#include "backends/backend.h"

namespace ag {

Backend& cpu_backend();
#ifdef AEGRAPH_WITH_CUDA
Backend& cuda_backend();  // backends/cuda: throws when no device is present
bool cuda_device_present();
#endif

bool cuda_available() {
#ifdef AEGRAPH_WITH_CUDA
  return cuda_device_present();
#else
  return false;
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
