// Everything aegraph's I/O library offers, for tools that want it all in one include.
#pragma once
#include "tools/io/atomic_file.h"
#include "tools/io/idx.h"
#include "tools/io/images.h"
#include "tools/io/io_error.h"
#include "tools/io/mnist_fetch.h"
#include "tools/io/report.h"
#include "tools/io/safetensors.h"
#include "tools/io/sha256.h"
