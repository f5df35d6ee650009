// The family table and Python-compatible whitespace stripping for the chat renderers.

#include "text/chat_family.h"

#include <array>
#include <cstdint>

namespace kvsafe::engine::chat {
namespace {

// NOTE: bos/eos are the spellings in each model's tokenizer_config.json; only templates
// that write them (writes_bos, or eos after assistant turns) make them matter, and
// ChatOptions can override both.
constexpr std::array kFamilies = {
    Family{.name = "llama-2",
           .models = "Llama-2-*-chat",
           .render = render_llama2,
           .bos = "<s>",
           .eos = "</s>",
           .writes_bos = true},
    Family{.name = "llama-3",
           .models = "Meta-Llama-3-*-Instruct",
           .render = render_llama3,
           .bos = "<|begin_of_text|>",
           .eos = "<|eot_id|>",
           .writes_bos = true},
    Family{.name = "llama-3.1",
           .models = "Llama-3.1-*-Instruct",
           .render = render_llama31,
           .bos = "<|begin_of_text|>",
           .eos = "<|eot_id|>",
           .inserts_without_system = true,
           .writes_bos = true},
    Family{.name = "mistral-v0.2",
           .models = "Mistral-7B-Instruct-v0.2 (tokenizer V1)",
           .render = render_mistral_v1,
           .bos = "<s>",
           .eos = "</s>",
           .system = SystemSupport::kUnsupported,
           .writes_bos = true},
    Family{.name = "mixtral",
           .models = "Mixtral-8x7B-Instruct-v0.1 (tokenizer V1)",
           .render = render_mistral_v1,
           .bos = "<s>",
           .eos = "</s>",
           .system = SystemSupport::kUnsupported,
           .writes_bos = true},
    Family{.name = "mistral-v0.3",
           .models = "Mistral-7B-Instruct-v0.3 (tokenizer V3)",
           .render = render_mistral_v3,
           .bos = "<s>",
           .eos = "</s>",
           .writes_bos = true},
    Family{.name = "mistral-small",
           .models = "Mistral-Small-24B-Instruct-2501/3.1 (tokenizer V7)",
           .render = render_mistral_v7,
           .bos = "<s>",
           .eos = "</s>",
           .inserts_without_system = true,
           .writes_bos = true},
    Family{.name = "qwen2",
           .models = "Qwen2-*-Instruct",
           .render = render_qwen2,
           .bos = "",
           .eos = "<|im_end|>",
           .default_system = "You are a helpful assistant.",
           .inserts_without_system = true},
    Family{.name = "qwen2.5",
           .models = "Qwen2.5-*-Instruct",
           .render = render_qwen25,
           .bos = "",
           .eos = "<|im_end|>",
           .default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
           .inserts_without_system = true},
    Family{.name = "smollm2",
           .models = "SmolLM2-*-Instruct",
           .render = render_smollm2,
           .bos = "<|im_start|>",
           .eos = "<|im_end|>",
           .default_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
           .inserts_without_system = true},
    Family{.name = "chatml",
           .models = "plain ChatML without a default system prompt (e.g. OpenHermes)",
           .render = render_chatml,
           .bos = "",
           .eos = "<|im_end|>"},
    Family{.name = "yi",
           .models = "Yi-*-Chat, Yi-1.5-*-Chat",
           .render = render_yi,
           .bos = "<|startoftext|>",
           .eos = "<|im_end|>"},
    Family{.name = "phi-3",
           .models = "Phi-3-mini-*-instruct (July 2024 revision)",
           .render = render_phi3,
           .bos = "<s>",
           .eos = "<|endoftext|>"},
    Family{.name = "phi-3.5",
           .models = "Phi-3.5-mini-instruct",
           .render = render_phi35,
           .bos = "<s>",
           .eos = "<|endoftext|>"},
    Family{.name = "gemma-2",
           .models = "gemma-2-*-it",
           .render = render_gemma2,
           .bos = "<bos>",
           .eos = "<eos>",
           .system = SystemSupport::kUnsupported,
           .writes_bos = true},
    Family{.name = "deepseek",
           .models = "deepseek-llm-*-chat",
           .render = render_deepseek,
           .bos = "<\xEF\xBD\x9C"
                  "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // <｜begin▁of▁sentence｜>
           .eos = "<\xEF\xBD\x9C"
                  "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // <｜end▁of▁sentence｜>
           .writes_bos = true},
    Family{.name = "olmo-2",
           .models = "OLMo-2-*-Instruct (Tulu 3 format)",
           .render = render_olmo2,
           .bos = "<|endoftext|>",
           .eos = "<|endoftext|>",
           .writes_bos = true},
};

// Python's str.isspace() for one code point: Unicode White_Space-like set that CPython
// uses (bidi classes WS/B/S or category Zs), which is what Jinja's trim strips.
bool is_python_space(std::uint32_t cp) {
  if (cp >= 0x09 && cp <= 0x0D) return true;
  if (cp >= 0x1C && cp <= 0x20) return true;
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680) return true;
  if (cp >= 0x2000 && cp <= 0x200A) return true;
  return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::uint8_t byte_at(std::string_view text, std::size_t i) {
  return static_cast<std::uint8_t>(text[i]);
}

// Decodes the well-formed UTF-8 character starting at `i` (nullopt when malformed);
// `length` receives its byte count.
std::optional<std::uint32_t> decode_at(std::string_view text, std::size_t i, std::size_t& length) {
  const std::uint8_t lead = byte_at(text, i);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (lead < 0x80) {
    length = 1;
    return lead;
  }
  if ((lead & 0xE0) == 0xC0) {
    n = 2;
    cp = lead & 0x1Fu;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3;
    cp = lead & 0x0Fu;
  } else if ((lead & 0xF8) == 0xF0) {
    n = 4;
    cp = lead & 0x07u;
  } else {
    return std::nullopt;
  }
  if (i + n > text.size()) return std::nullopt;
  for (std::size_t k = 1; k < n; ++k) {
    const std::uint8_t b = byte_at(text, i + k);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  length = n;
  return cp;
}

}  // namespace

std::span<const Family> families() {
  return kFamilies;
}

std::optional<std::size_t> find_family(std::string_view name) {
  for (std::size_t i = 0; i < kFamilies.size(); ++i) {
    if (kFamilies[i].name == name) return i;
  }
  return std::nullopt;
}

std::string_view python_strip(std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t length = 0;
    const auto cp = decode_at(text, begin, length);
    if (!cp || !is_python_space(*cp)) break;
    begin += length;
  }
  std::size_t end = text.size();
  while (end > begin) {
    // Step back to the start of the last character (at most 4 bytes back).
    std::size_t start = end - 1;
    while (start > begin && end - start < 4 && (byte_at(text, start) & 0xC0) == 0x80) --start;
    std::size_t length = 0;
    const auto cp = decode_at(text, start, length);
    if (!cp || start + length != end || !is_python_space(*cp)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

}  // namespace kvsafe::engine::chat
