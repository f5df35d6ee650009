# weights: model files (GGUF, safetensors, HF config.json) -> ModelConfig + float tensors.
set(KVSAFE_WEIGHTS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/model_file_error.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/mapped_file.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/model_json.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/gguf_dequantize.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/gguf_reader.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/safetensors_reader.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/model_config.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/hf_config.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/gguf_model_config.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/weights_loader.cpp
)
list(APPEND KVSAFE_ENGINE_SOURCES ${KVSAFE_WEIGHTS_SOURCES})
# NOTE: bit-exact dequantization (tests compare with the `gguf` package bit for bit) needs
# the same rounding as ggml's reference code: no fused multiply-add contraction.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/gguf_dequantize.cpp
  PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
