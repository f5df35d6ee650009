# Forward-pass tests (engine/forward.cmake). engine_forward_test (unit): stories260K against
# its golden file, the KV path placements, capture, and the tiny random-weight models of
# every family against transformers (fixtures from tests/oracles/forward_tiny_models.py), the
# CPU attention kernel against its ATen reference, the packed linear kernels (float and
# quantized panels) and one-pass elementwise ops against ATen, and the engine's BLAS calls
# against ATen's.
# engine_forward_model_test (label model): SmolLM2-135M-Instruct against llama.cpp
# (tests/oracles/forward_smollm2_llamacpp.py), skipped when the model is absent.
kvsafe_test(engine_forward_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/forward_stories_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/forward_families_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/forward_kv_path_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/attention_core_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/cpu_gemm_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/packed_gemm_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/quantized_panels_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/greedy_tokens_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/elementwise_cpu_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/steering_test.cpp
  DEPS kvsafe_engine nlohmann_json::nlohmann_json
  LABELS unit)
target_compile_definitions(engine_forward_test PRIVATE ${KVSAFE_TEST_DEFINES})

kvsafe_test(engine_forward_model_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/forward_smollm2_test.cpp
  DEPS kvsafe_engine
  LABELS model)
target_compile_definitions(engine_forward_model_test PRIVATE ${KVSAFE_TEST_DEFINES})

# What a left-padding slot's attention gives (engine/padding_queries.h), on stories260K.
kvsafe_test(engine_padding_queries_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/padding_queries_test.cpp
  DEPS kvsafe_engine
  LABELS unit)
target_compile_definitions(engine_padding_queries_test PRIVATE ${KVSAFE_TEST_DEFINES})

# The kernels' quantizers behind the KV path (engine/quantized_kv_path.h), on stories260K.
kvsafe_test(engine_quantized_kv_path_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quantized_kv_path_test.cpp
  DEPS kvsafe_engine kvsafe_kernels
  LABELS unit)
target_compile_definitions(engine_quantized_kv_path_test PRIVATE ${KVSAFE_TEST_DEFINES})

# Greedy speculative decoding (engine/speculative_generator.h) and the KV cache's rollback, on
# stories260K and every CPU kernel copy; SmolLM2-135M drafting for itself (label model).
kvsafe_test(engine_speculative_generator_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/speculative_generator_test.cpp
  DEPS kvsafe_engine kvsafe_kernels
  LABELS unit)
target_compile_definitions(engine_speculative_generator_test PRIVATE ${KVSAFE_TEST_DEFINES})

kvsafe_test(engine_speculative_model_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/speculative_smollm2_test.cpp
  DEPS kvsafe_engine
  LABELS model)
target_compile_definitions(engine_speculative_model_test PRIVATE ${KVSAFE_TEST_DEFINES})
