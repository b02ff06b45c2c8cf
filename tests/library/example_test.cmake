# ctest "library: the example builds against the installed package": installs this build into a
# fresh prefix, configures and builds examples/ against it with the same generator and compiler,
# and runs it on the real MNIST when AEGRAPH_DATA names it (2000 training images), else on a small
# generated IDX set. Run with cmake -P and -D BUILD_DIR, SOURCE_DIR, WORK_DIR, GENERATOR,
# MAKE_PROGRAM, CXX_COMPILER, PYTHON.
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGV " " command)
    message(FATAL_ERROR "failed (${rc}): ${command}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${WORK_DIR}/build -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)

if(DEFINED ENV{AEGRAPH_DATA} AND EXISTS "$ENV{AEGRAPH_DATA}")
  set(data $ENV{AEGRAPH_DATA})
  set(limit 2000)
else()
  set(data ${WORK_DIR}/data)
  set(limit 600)
  run(${PYTHON} ${CMAKE_CURRENT_LIST_DIR}/make_idx.py ${data} 600 200)
endif()
run(${WORK_DIR}/build/energy_ae ${data} ${WORK_DIR}/energy.safetensors 3 ${limit})
if(NOT EXISTS ${WORK_DIR}/energy.safetensors)
  message(FATAL_ERROR "energy_ae wrote no checkpoint")
endif()
