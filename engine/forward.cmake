# forward: the transformer (engine/model.h), the KV path and cache (kv_path.h, kv_cache.h),
# batched generation (generator.h) and activation capture. One file per model family on the
# shared blocks of transformer_blocks.cpp; only a few files include the full ATen header.
list(APPEND KVSAFE_ENGINE_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/model.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/transformer_blocks.cpp
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
)
list(APPEND KVSAFE_ENGINE_DEPS ${TORCH_LIBRARIES})
