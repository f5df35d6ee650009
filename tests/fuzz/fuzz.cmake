# libFuzzer targets for the model-file parsers (GGUF, safetensors header, config.json).
#
# The project builds with g++, and libFuzzer needs clang, so the fuzzers are NOT CMake
# targets of the main toolchain: custom commands call clang++ directly on the parser sources
# (engine/ files listed below; they need only fmt and nlohmann_json) with
# -fsanitize=fuzzer,address,undefined. Built when KVSAFE_FUZZ is ON; its default is ON when a
# clang++ that links libFuzzer is found (Debian: clang-14 + libclang-rt-14-dev).
# ctest label `fuzz`: each target runs 60 s from the seed corpus in tests/fuzz/fixtures/.
# Included from tests/engine/weights.cmake.

find_program(KVSAFE_FUZZ_CXX NAMES clang++-14 clang++ DOC "clang++ used for the libFuzzer targets")
set(_kvsafe_fuzz_default OFF)
if(KVSAFE_FUZZ_CXX)
  # NOTE: clang without the compiler-rt fuzzer runtime fails only at link time; probe it.
  set(_probe_dir ${CMAKE_BINARY_DIR}/fuzz_probe)
  file(WRITE ${_probe_dir}/probe.cpp
    "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
  execute_process(
    COMMAND ${KVSAFE_FUZZ_CXX} -fsanitize=fuzzer ${_probe_dir}/probe.cpp -o ${_probe_dir}/probe
    RESULT_VARIABLE _probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(_probe_rc EQUAL 0)
    set(_kvsafe_fuzz_default ON)
  endif()
endif()
option(KVSAFE_FUZZ "Build the libFuzzer targets (tests/fuzz) with clang and run them under ctest label fuzz"
       ${_kvsafe_fuzz_default})

if(KVSAFE_FUZZ)
  if(NOT KVSAFE_FUZZ_CXX)
    message(FATAL_ERROR "KVSAFE_FUZZ is ON but no clang++ was found (install clang-14 libclang-rt-14-dev)")
  endif()
  message(STATUS "kvsafe: fuzz targets with ${KVSAFE_FUZZ_CXX}")
  set(_fuzz_dir ${CMAKE_BINARY_DIR}/fuzz)
  set(_fuzz_flags -std=c++20 -O1 -g -fno-omit-frame-pointer
      -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
      -I${PROJECT_SOURCE_DIR})
  set(_fuzz_parser_sources
    modelfile/model_file_error.cpp modelfile/mapped_file.cpp modelfile/model_json.cpp
    modelfile/gguf_dequantize.cpp modelfile/gguf_reader.cpp modelfile/safetensors_reader.cpp
    modelfile/model_config.cpp modelfile/hf_config.cpp)
  set(_fuzz_objects "")
  foreach(_src ${_fuzz_parser_sources})
    get_filename_component(_stem ${_src} NAME_WE)
    set(_obj ${_fuzz_dir}/obj/${_stem}.o)
    add_custom_command(OUTPUT ${_obj}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${_fuzz_dir}/obj
      COMMAND ${KVSAFE_FUZZ_CXX} ${_fuzz_flags} -MD -MF ${_obj}.d -c ${PROJECT_SOURCE_DIR}/${_src} -o ${_obj}
      DEPENDS ${PROJECT_SOURCE_DIR}/${_src}
      DEPFILE ${_obj}.d
      COMMENT "clang++ (fuzz) ${_src}" VERBATIM)
    list(APPEND _fuzz_objects ${_obj})
  endforeach()
  set(_fuzz_binaries "")
  foreach(_target gguf safetensors hf_config)
    set(_src ${PROJECT_SOURCE_DIR}/tests/fuzz/${_target}_fuzz.cpp)
    set(_bin ${_fuzz_dir}/fuzz_${_target})
    add_custom_command(OUTPUT ${_bin}
      COMMAND ${KVSAFE_FUZZ_CXX} ${_fuzz_flags} -fsanitize=fuzzer -MD -MF ${_bin}.d ${_src} ${_fuzz_objects} -lfmt -o ${_bin}
      DEPENDS ${_src} ${_fuzz_objects}
      DEPFILE ${_bin}.d
      COMMENT "clang++ (fuzz) link fuzz_${_target}" VERBATIM)
    list(APPEND _fuzz_binaries ${_bin})
    # NOTE: new inputs go to a scratch corpus in the build tree; the committed seeds are
    # only read. 60 s each keeps the label under 3 minutes.
    file(MAKE_DIRECTORY ${_fuzz_dir}/corpus_${_target})
    add_test(NAME fuzz_${_target}
      COMMAND ${_bin} -max_total_time=60 -timeout=10 -rss_limit_mb=2048 -max_len=65536
              -print_final_stats=1 -artifact_prefix=${_fuzz_dir}/ ${_fuzz_dir}/corpus_${_target}
              ${PROJECT_SOURCE_DIR}/tests/fuzz/fixtures/${_target})
    set_tests_properties(fuzz_${_target} PROPERTIES LABELS fuzz TIMEOUT 150)
  endforeach()
  add_custom_target(kvsafe_fuzzers ALL DEPENDS ${_fuzz_binaries})
endif()
