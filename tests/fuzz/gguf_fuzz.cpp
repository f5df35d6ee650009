// libFuzzer target: GGUF parsing, every metadata getter, and dequantization of every tensor.
// Any exception other than kvsafe::InputError (ModelFileError derives from it), any
// sanitizer report, crash, hang or oversized allocation is a finding.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "modelfile/gguf_reader.h"
#include "modelfile/model_file_error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(size);
  if (size > 0) std::memcpy(bytes.data(), data, size);
  try {
    const auto file = kvsafe::engine::GgufFile::from_bytes(std::move(bytes), "fuzz.gguf");
    for (const auto& key : file->keys()) {
      try {
        (void)file->get_string(key);
      } catch (const kvsafe::InputError&) {
      }
      try {
        (void)file->get_int(key);
      } catch (const kvsafe::InputError&) {
      }
      try {
        (void)file->get_float(key);
      } catch (const kvsafe::InputError&) {
      }
      try {
        (void)file->get_bool(key);
      } catch (const kvsafe::InputError&) {
      }
      try {
        (void)file->get_string_array(key);
      } catch (const kvsafe::InputError&) {
      }
      try {
        (void)file->get_float_array(key);
      } catch (const kvsafe::InputError&) {
      }
      try {
        (void)file->get_int_array(key);
      } catch (const kvsafe::InputError&) {
      }
    }
    for (const auto& info : file->tensors()) {
      if (info.n_elements > (1U << 22)) continue;
      try {
        (void)file->dequantize(info);
      } catch (const kvsafe::InputError&) {
      }
    }
  } catch (const kvsafe::InputError&) {
  }
  return 0;
}
