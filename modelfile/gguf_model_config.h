#pragma once
// GGUF metadata -> ModelConfig (the "<arch>.*" keys of gguf.md / llama.cpp's llama-arch.cpp)
// for the GGUF architectures of the paper's models: llama (Llama, Mistral, Mixtral,
// SmolLM2, DeepSeek, Yi), qwen2, phi3, gemma2, olmo2. Some numbers live in tensors (Llama-3.1
// rope_freqs, Phi-3 rope_factors_long/short, tied embeddings = no output.weight), so this
// reads those too. Throws ModelFileError naming the key; unknown architectures list the
// supported ones.

#include <string>
#include <vector>

#include "modelfile/gguf_reader.h"
#include "modelfile/model_config.h"

namespace kvsafe::engine {

ModelConfig model_config_from_gguf(const GgufFile& file);
// The general.architecture values model_config_from_gguf accepts.
std::vector<std::string> supported_gguf_architectures();

}  // namespace kvsafe::engine
