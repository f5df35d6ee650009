// `kvsafe diagnose`: critical layers + PCR on calibration prompts (eval/, later issues).

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace kvsafe::cli {

void register_diagnose(CLI::App& app, CommandContext& context) {
  auto* command =
      app.add_subcommand("diagnose",
                         "Diagnose a model under a KV quantizer: find its critical layers, measure the Per-Channel\n"
                         "Reduction (PCR) on ~20 calibration prompts, name the failure mode and the mitigation.");
  command->add_option("--model", "Model: GGUF file or HF folder")->required();
  command->add_option("--kv", "KV quantizer label, e.g. int3-ptensor-sym");
  command->callback([&context] {
    context.exit_code = report_not_built_yet("diagnose", "the diagnosis issue (PCR protocol), after issues 4-6");
  });
}

}  // namespace kvsafe::cli
