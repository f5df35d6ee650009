// `kvsafe generate`: one answer from a model, optionally beside the full-precision one.
// The engine arrives with issue 4.

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace kvsafe::cli {

void register_generate(CLI::App& app, CommandContext& context) {
  auto* command =
      app.add_subcommand("generate",
                         "Generate one answer with a (quantized) KV cache and stream it; --compare prints the\n"
                         "full-precision answer beside the quantized one.");
  command->add_option("--model", "Model: GGUF file or HF folder")->required();
  command->add_option("--kv", "KV quantizer label (e.g. int4-ptok-asym, kivi2-r128) or none");
  command->add_option("--system", "System prompt");
  command->add_flag("--no-system")->description("Render the chat template without a system prompt");
  command->add_option("--max-new-tokens", "Most tokens to generate (default 256)");
  command->add_flag("--compare")->description("Also print the full-precision answer");
  command->add_option("prompt", "The user message")->required();
  command->callback([&context] { context.exit_code = report_not_built_yet("generate", "issue 4 (the engine)"); });
}

}  // namespace kvsafe::cli
