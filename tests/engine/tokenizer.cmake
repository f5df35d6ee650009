# Tokenizer tests. engine_tokenizer_test: hermetic (stories260K from ../shared, the
# committed oracle fixtures, hand-written malformed inputs). engine_tokenizer_model_test
# (label model): SmolLM2-135M-Instruct from the model cache, skipped when absent.
kvsafe_test(engine_tokenizer_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_json_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_errors_test.cpp
  DEPS kvsafe_text
  LABELS unit)
target_compile_definitions(engine_tokenizer_test PRIVATE ${KVSAFE_TEST_DEFINES})

kvsafe_test(engine_tokenizer_model_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_smollm2_test.cpp
  DEPS kvsafe_text
  LABELS model)
target_compile_definitions(engine_tokenizer_model_test PRIVATE ${KVSAFE_TEST_DEFINES})
