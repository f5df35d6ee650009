# Chat template tests. engine_chat_test: hermetic (the committed golden files of
# tests/oracles/chat_template_oracle.py, ../shared's reference notes and stories260K,
# skipped when absent). engine_chat_model_test (label model): SmolLM2-135M-Instruct from
# the model cache, skipped when absent.
kvsafe_test(engine_chat_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/chat_template_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/chat_recognize_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/chat_tokenize_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/chat_double_bos_test.cpp
  DEPS kvsafe_text
  LABELS unit)
target_compile_definitions(engine_chat_test PRIVATE ${KVSAFE_TEST_DEFINES})

kvsafe_test(engine_chat_model_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat_smollm2_test.cpp
  DEPS kvsafe_text
  LABELS model)
target_compile_definitions(engine_chat_model_test PRIVATE ${KVSAFE_TEST_DEFINES})
