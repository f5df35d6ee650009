# The runner's part of worker/ (issue 7): the MPI worker loop and run_grid, the composition
# behind `kvsafe run`. Included by worker/CMakeLists.txt.
target_sources(kvsafe_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/run_grid.cpp
  ${CMAKE_CURRENT_LIST_DIR}/worker_loop.cpp)
target_link_libraries(kvsafe_worker PUBLIC MPI::MPI_CXX)
