#pragma once
// The decoder stage (HF `decoders`): token strings -> text, one step after the other,
// each step taking and returning a list of strings as HF's decode_chain does.

#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer_data.h"

namespace kvsafe::engine {

// Checks that every step is supported; throws InputError naming `source`.
void validate_decoder(const std::vector<DecoderStep>& steps, std::string_view source);

// Runs the chain over `tokens` and joins the result ("" between strings; " " when the
// chain is empty, as HF does without a decoder). Always returns valid UTF-8.
std::string run_decoder(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens);

}  // namespace kvsafe::engine
