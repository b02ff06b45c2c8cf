# `cmake --install <build> --prefix P`: the public headers under P/include/aegraph (with their
# in-tree relative paths, so `#include "graph/aegraph.h"` works as it does in the tree), the
# static libraries, and the CMake package aegraph (docs/library.md).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(AEGRAPH_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/aegraph)
set(AEGRAPH_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/aegraph)

foreach(dir graph ops models tools/io)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${AEGRAPH_INSTALL_INCLUDEDIR}/${dir}
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/backends/backend.h DESTINATION ${AEGRAPH_INSTALL_INCLUDEDIR}/backends)

set_target_properties(aegraph_models PROPERTIES EXPORT_NAME models)
set_target_properties(aegraph_io PROPERTIES EXPORT_NAME io)
install(TARGETS aegraph aegraph_models aegraph_io EXPORT aegraphTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${AEGRAPH_INSTALL_INCLUDEDIR})
install(EXPORT aegraphTargets NAMESPACE aegraph:: DESTINATION ${AEGRAPH_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/aegraphConfig.cmake.in
  ${PROJECT_BINARY_DIR}/aegraphConfig.cmake INSTALL_DESTINATION ${AEGRAPH_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/aegraphConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/aegraphConfig.cmake ${PROJECT_BINARY_DIR}/aegraphConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/aegraph_openblas.cmake
        DESTINATION ${AEGRAPH_INSTALL_CMAKEDIR})
