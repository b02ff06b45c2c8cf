# The imported target `aegraph_openblas`: OpenBLAS built on OpenMP, found with pkg-config.
# Shared by aegraph's own build and by its installed package (aegraphConfig.cmake), so a project
# that links the installed libraries gets the same OpenBLAS the libraries were built against.
# OpenBLAS on OpenMP: GEMM then runs on the same thread team as our elementwise loops.
# (Two pools of spinning threads, OpenBLAS's pthreads and OpenMP's, fight over two cores.)
if(TARGET aegraph_openblas)
  return()
endif()
find_package(PkgConfig REQUIRED)
set(AEGRAPH_OPENBLAS_OPENMP_PC "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp/pkgconfig")
# pkg_check_modules caches what it found under its prefix, so each variant gets its own prefix:
# a build tree configured before libopenblas-openmp-dev was installed switches over on its own.
if(EXISTS "${AEGRAPH_OPENBLAS_OPENMP_PC}/openblas.pc")
  set(ENV{PKG_CONFIG_PATH} "${AEGRAPH_OPENBLAS_OPENMP_PC}:$ENV{PKG_CONFIG_PATH}")
  pkg_check_modules(OPENBLAS_OMP REQUIRED IMPORTED_TARGET openblas)
  add_library(aegraph_openblas INTERFACE IMPORTED)
  target_link_libraries(aegraph_openblas INTERFACE PkgConfig::OPENBLAS_OMP)
  if(NOT OPENBLAS_OMP_LIBDIR MATCHES "openblas-openmp")
    message(FATAL_ERROR "aegraph: asked pkg-config for OpenBLAS's OpenMP build, got ${OPENBLAS_OMP_LIBDIR}")
  endif()
else()
  message(WARNING "aegraph: OpenBLAS's OpenMP build (libopenblas-openmp-dev) not found; using the default one")
  pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
  add_library(aegraph_openblas INTERFACE IMPORTED)
  target_link_libraries(aegraph_openblas INTERFACE PkgConfig::OPENBLAS)
endif()
