# aegraph — the two commands of the quick start, and the rest of the developer loop.
#   make train     install what is missing, build, train the tutorial's autoencoder, write its report
#   make test      install what is missing, build everything (Release, Ninja), run every test
#   make sanitize  the tests again under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make test-cores  the core suite under each OpenBLAS core type this CPU runs (docs/architecture.md)
#   make browser-deps  chromium (headless), so that make test also checks report.html in a real browser
#   make bench     aebench against PyTorch, our convolutions against oneDNN (installs python3-torch, libdnnl-dev)
#   make gpu-bundle  the CUDA device check packed for a GPU machine in gpu-bundle/ (docs/cuda.md, installs patchelf);
#                    make gpu-bundle-check proves the bundle here (no GPU needed)

DEPS := cmake ninja-build g++ pkg-config python3 libfmt-dev libbenchmark-dev catch2 \
        libopenblas-dev libopenblas-openmp-dev zlib1g-dev libcurl4-openssl-dev libssl-dev libcli11-dev \
        nlohmann-json3-dev libstb-dev clang dataset-fashion-mnist python3-numpy libopenmpi-dev openmpi-bin
BENCH_DEPS := python3-torch libdnnl-dev
# Not in DEPS (large): make test checks report.html in it when it is there.
BROWSER_DEPS := chromium
BUNDLE_DEPS := patchelf
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps bench-deps browser-deps build test test-cores sanitize train bench gpu-bundle gpu-bundle-check clean

deps:
	@missing=$$(for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

bench-deps: deps
	@dpkg -s $(BENCH_DEPS) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BENCH_DEPS); }

browser-deps:
	@dpkg -s $(BROWSER_DEPS) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BROWSER_DEPS); }

build: deps
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)

test: build
	cd build && ctest --output-on-failure -j $(JOBS)

# The numerical contract holds whatever kernels OpenBLAS picks: the core suite once more with
# OPENBLAS_CORETYPE unset (OpenBLAS's own choice) and set to each core type this CPU can run.
CORETYPES := $(if $(shell grep -qw avx2 /proc/cpuinfo && echo y),Haswell Zen) \
             $(if $(shell grep -qw avx512f /proc/cpuinfo && echo y),SkylakeX)
test-cores: build
	@for core in unset $(CORETYPES); do \
	  echo "aegraph_core_tests with OPENBLAS_CORETYPE=$$core"; \
	  if [ $$core = unset ]; then env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bin/aegraph_core_tests || exit 1; \
	  else OPENBLAS_CORETYPE=$$core ./build/bin/aegraph_core_tests || exit 1; fi; \
	done

sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAEGRAPH_SANITIZE=ON -DAEGRAPH_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -LE slow

# The real MNIST when this workplace has a copy beside the checkout; otherwise ae-train looks in
# $$AEGRAPH_DATA and ./data/mnist, downloads it, or falls back to Debian's Fashion-MNIST.
SHARED_MNIST := $(wildcard ../shared/data/mnist/train-images-idx3-ubyte.gz)
export AEGRAPH_DATA ?= $(if $(SHARED_MNIST),$(abspath ../shared/data/mnist))

train: build
	./build/bin/ae-train --model ae --out runs/tutorial   # prints where its report.html is

bench: bench-deps build
	./build/bin/aebench --model ae,dae,cae,sae,deep,vae,conv,upconv,convdae --batch 150 --threads 2 --peer torch
	./build/bin/aegraph_bench_conv

# Its own CUDA build (sm_90, no -march=native), so not part of `make test`: docs/cuda.md.
gpu-bundle: deps
	@dpkg -s $(BUNDLE_DEPS) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BUNDLE_DEPS); }
	JOBS=$(JOBS) .ci/gpu-bundle

gpu-bundle-check: gpu-bundle
	.ci/gpu-bundle --check

clean:
	rm -rf build build-asan build-bundle gpu-bundle
