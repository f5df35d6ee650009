// libFuzzer target: safetensors header parsing and F32/F16/BF16 conversion.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "modelfile/model_file_error.h"
#include "modelfile/safetensors_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(size);
  if (size > 0) std::memcpy(bytes.data(), data, size);
  try {
    const auto file = kvsafe::engine::SafetensorsFile::from_bytes(std::move(bytes), "fuzz.safetensors");
    for (const auto& info : file->tensors()) {
      if (info.n_elements > (1U << 22)) continue;
      try {
        (void)file->to_float(info);
      } catch (const kvsafe::InputError&) {
      }
    }
  } catch (const kvsafe::InputError&) {
  }
  return 0;
}
