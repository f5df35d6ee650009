// `kvsafe tokenize --model PATH [--ids] TEXT...`: the model's own tokenizer from the
// command line (text/tokenizer.h). Prints the ids of TEXT space-separated, or with
// --ids the text of the given ids. Users debug chat templates with it, and it is how
// tokenization is checked from outside.

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/model_argument.h"
#include "common/error.h"
#include "text/tokenizer.h"

namespace kvsafe::cli {
namespace {

struct TokenizeFlags {
  std::string model;
  std::vector<std::string> inputs;  // the text (joined by spaces), or the ids with --ids
  bool ids = false;                 // detokenize instead of tokenize
  bool special = false;             // recognize special tokens' text (encode)
  bool no_bos = false;              // do not add the model's BOS/EOS (encode)
  bool skip_special = false;        // leave special tokens out (decode)
  bool pieces = false;              // also print each token's piece (encode)
};

// "1 2 3", "1,2,3" or separate arguments.
std::vector<engine::TokenId> parse_ids(const std::vector<std::string>& inputs) {
  std::vector<engine::TokenId> ids;
  for (const std::string& input : inputs) {
    std::size_t i = 0;
    while (i < input.size()) {
      if (input[i] == ' ' || input[i] == ',' || input[i] == '\t' || input[i] == '\n' || input[i] == '[' ||
          input[i] == ']') {
        ++i;
        continue;
      }
      std::size_t end = i;
      while (end < input.size() && input[end] != ' ' && input[end] != ',' && input[end] != '\t' && input[end] != '\n' &&
             input[end] != ']') {
        ++end;
      }
      const std::string token = input.substr(i, end - i);
      std::size_t used = 0;
      long long value = -1;
      try {
        value = std::stoll(token, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      KVSAFE_CHECK(used == token.size() && value >= 0 && value <= 0x7FFFFFFF, "--ids: '", token, "' is not a token id");
      ids.push_back(static_cast<engine::TokenId>(value));
      i = end;
    }
  }
  return ids;
}

std::string joined_text(const std::vector<std::string>& inputs) {
  if (inputs.size() == 1 && inputs[0] == "-") {
    // Byte for byte: a final newline is part of the text to tokenize.
    std::string text;
    char buffer[65536];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof(buffer), stdin)) > 0) text.append(buffer, got);
    return text;
  }
  std::string text;
  for (std::size_t i = 0; i < inputs.size(); ++i) text += (i > 0 ? " " : "") + inputs[i];
  return text;
}

int run_tokenize(const TokenizeFlags& flags, const CommandContext& context) {
  const auto tokenizer = engine::Tokenizer::load(resolve_model_argument(flags.model, context));
  if (flags.ids) {
    const std::vector<engine::TokenId> ids = parse_ids(flags.inputs);
    fmt::print("{}\n", tokenizer->decode(ids, {.skip_special = flags.skip_special}));
    return kExitOk;
  }
  engine::EncodeOptions options{.parse_special = flags.special};
  if (flags.no_bos) {
    options.add_bos = false;
    options.add_eos = false;
  }
  const std::vector<engine::TokenId> ids = tokenizer->encode(joined_text(flags.inputs), options);
  if (flags.pieces) {
    for (const engine::TokenId id : ids) {
      fmt::print("{}\t{}\n", id, tokenizer->token_text(id));
    }
    return kExitOk;
  }
  fmt::print("{}\n", fmt::join(ids, " "));
  return kExitOk;
}

}  // namespace

void register_tokenize(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<TokenizeFlags>();
  auto* command =
      app.add_subcommand("tokenize",
                         "Tokenize text with a model's own tokenizer and print the ids (space-separated), or with\n"
                         "--ids print the text of the given ids. The model's BOS/EOS are added as its\n"
                         "configuration says (--no-bos: never); special tokens' text is plain text unless --special.");
  command
      ->add_option("--model", flags->model,
                   "GGUF file, tokenizer.json, or a folder holding one (a bare name is looked up in the model "
                   "cache)")
      ->required();
  command->add_option("input", flags->inputs, "Text to tokenize ('-' reads stdin), or token ids with --ids")
      ->required();
  command->add_flag("--ids", flags->ids, "Detokenize: the input is token ids (\"1 2 3\" or \"1,2,3\")");
  command->add_flag("--special", flags->special, "Recognize special tokens (<|im_start|>, </s>...) in the text");
  command->add_flag("--no-bos", flags->no_bos, "Do not add the model's BOS/EOS tokens");
  command->add_flag("--skip-special", flags->skip_special, "With --ids: leave special tokens out of the text");
  command->add_flag("--pieces", flags->pieces,
                    "Print one line per token: id, then the token as the vocabulary spells it");
  command->callback([flags, &context] { context.exit_code = run_tokenize(*flags, context); });
}

}  // namespace kvsafe::cli
