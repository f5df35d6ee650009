# Helpers that give every project target the same flags.
#
# kvsafe_warnings(target): warnings as errors for project code only. Third-party
# headers come in through imported targets, whose include directories CMake marks
# SYSTEM, so their warnings never fail our build.
function(kvsafe_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
      -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wnull-dereference
      -Wimplicit-fallthrough -Werror>)
  # NOTE: GCC 12 at -O3 (CMAKE_BUILD_TYPE=Release) reports -Wrestrict on std::string
  # concatenations inside libstdc++ (GCC bug 105329, fixed in 13): not our code, so only
  # that warning is relaxed, only there.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>)
  endif()
endfunction()

# kvsafe_library(name SOURCES a.cpp b.cpp DEPS x y): one library per folder, public
# headers at the folder root, included as "folder/header.h".
function(kvsafe_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  kvsafe_warnings(${name})
endfunction()
