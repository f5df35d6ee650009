# tokenizer: HF tokenizer.json and GGUF vocabularies -> Tokenizer (engine/tokenizer.h).
# PCRE2 (UTF + UCP, JIT) runs the pre-tokenization regexes; ICU's normalizer provides the
# Unicode normalization forms (NFC for Qwen2) and the added-token word-character test.
pkg_check_modules(ICU_UC REQUIRED IMPORTED_TARGET icu-uc)
set(KVSAFE_TOKENIZER_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/unicode_utf8.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_regex.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_normalizer.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/pretokenize.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/bpe.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_added_tokens.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_decoder.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_stream.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_json.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_gguf.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_load.cpp
)
list(APPEND KVSAFE_ENGINE_SOURCES ${KVSAFE_TOKENIZER_SOURCES})
list(APPEND KVSAFE_ENGINE_DEPS PkgConfig::PCRE2 PkgConfig::ICU_UC)
