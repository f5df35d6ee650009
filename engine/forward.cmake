# forward: the transformer (engine/model.h), the KV path and cache (kv_path.h, kv_cache.h),
# batched generation (generator.h), activation capture, and the quantizers of kernels/ behind
# the KV path (quantized_kv_path.h). One file per model family on the
# shared blocks of transformer_blocks.cpp; only a few files include the full ATen header.
list(APPEND KVSAFE_ENGINE_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/model.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/transformer_blocks.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/attention_core_cpu.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/cpu_gemm.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/packed_gemm.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/quantized_panels.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/elementwise_cpu.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/family_llama.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/family_mistral.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/family_qwen2.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/family_phi3.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/family_gemma2.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/family_mixtral.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/family_olmo2.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/kv_cache.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/activation_capture.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/generator.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/sampling.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/greedy_cpu.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/quantized_kv_path.cpp
)
list(APPEND KVSAFE_ENGINE_DEPS kvsafe_kernels ${TORCH_LIBRARIES})
# NOTE: the reference expansion of quantized panels multiplies, then adds, as ggml's
# dequantizer does (gguf_dequantize.cpp has the same flag); see quantized_panels.h.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/quantized_panels.cpp PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
