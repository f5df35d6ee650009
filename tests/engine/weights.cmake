# Weights tests (modelfile/): GGUF, dequantization, safetensors, HF config.json,
# corrupt files, and the stories260K twin. The SmolLM2 checks need scripts/fetch-model
# and carry the `model` label in their own binary.
kvsafe_test(engine_weights_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/weights_gguf_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/weights_corrupt_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/weights_twin_test.cpp
  DEPS kvsafe_modelfile
  LABELS unit)
target_compile_definitions(engine_weights_test PRIVATE ${KVSAFE_TEST_DEFINES})
target_sources(engine_weights_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/weights_hf_test.cpp)

kvsafe_test(engine_weights_model_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/weights_smollm2_test.cpp
  DEPS kvsafe_modelfile
  LABELS model)
target_compile_definitions(engine_weights_model_test PRIVATE ${KVSAFE_TEST_DEFINES})

# libFuzzer targets for the parsers (clang, label `fuzz`).
include(${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz.cmake)
