# chat templates: a model's own chat template rendered exactly (engine/chat_template.h),
# one hand-written renderer per template family, recognized from the template string.
list(APPEND KVSAFE_ENGINE_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_family.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_llama.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_mistral.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_chatml.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_role_tags.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_template.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_recognize.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/chat_load.cpp
)
