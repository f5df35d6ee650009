// libFuzzer target: HF config.json -> ModelConfig.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "modelfile/hf_config.h"
#include "modelfile/model_file_error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)kvsafe::engine::parse_hf_config(text, "fuzz/config.json");
  } catch (const kvsafe::InputError&) {
  }
  return 0;
}
