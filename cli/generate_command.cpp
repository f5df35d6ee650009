// `kvsafe generate --model PATH [--kv LABEL] [--system TEXT|--no-system] [--max-new-tokens N]
// [--compare] "prompt"`: one answer, streamed to stdout as it is generated, rendered with
// the model's own chat template (or --template NAME, or --raw for base models), with the KV
// cache quantized as --kv says (a label, kernels/kv_quant_spec.h). --compare first streams
// the full-precision answer, then the quantized one, then says where they diverge: the
// quickest way to see what a quantizer does to one refusal.

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/model_argument.h"
#include "common/error.h"
#include "engine/generator.h"
#include "engine/model.h"
#include "engine/quantized_kv_path.h"
#include "kernels/kv_quant_spec.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace kvsafe::cli {
namespace {

struct GenerateFlags {
  std::string model;
  std::string kv = "none";
  std::optional<std::string> system;
  bool no_system = false;
  std::int64_t max_new_tokens = 256;
  bool compare = false;
  std::string chat_template;  // built-in name; empty = the model's own
  bool raw = false;           // no chat template: the prompt is tokenized as is
  double temperature = 0.0;
  double top_p = 1.0;
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::string prompt;
};

std::vector<engine::TokenId> prompt_ids(const GenerateFlags& flags, const std::filesystem::path& model_path,
                                        const engine::Tokenizer& tokenizer) {
  if (flags.raw) return tokenizer.encode(flags.prompt);
  const engine::ChatTemplate chat = engine::load_chat_template(model_path, {.name = flags.chat_template});
  engine::ChatOptions options;
  if (flags.no_system) {
    options.system_mode = engine::SystemPromptMode::kNone;
  } else if (flags.system.has_value()) {
    options.system_mode = engine::SystemPromptMode::kCustom;
    options.system_prompt = *flags.system;
    options.merge_system_into_first_user = !chat.supports_system_prompt();
  }
  const std::vector<engine::ChatMessage> messages{{.role = engine::ChatRole::kUser, .content = flags.prompt}};
  return chat.tokenize(tokenizer, messages, options).ids;
}

// Streams one answer to stdout; returns its tokens.
engine::Generation stream_answer(const engine::Model& model, const engine::Tokenizer& tokenizer,
                                 const std::vector<engine::TokenId>& prompt, engine::GenerationOptions options) {
  engine::StreamingDecoder decoder(tokenizer, {.skip_special = true});
  const auto on_token = [&decoder](std::size_t /*prompt*/, engine::TokenId token) {
    const std::string text = decoder.push(token);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  engine::Generator generator(model);
  std::vector<engine::Generation> out = generator.generate({prompt}, options, on_token);
  const std::string rest = decoder.finish();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  return std::move(out.at(0));
}

std::string ending(const engine::Generation& g, const engine::Tokenizer& tokenizer) {
  return g.stopped ? fmt::format("stopped at {}", tokenizer.token_text(g.stop_token)) : "max_new_tokens reached";
}

int run_generate(const GenerateFlags& flags, const CommandContext& context) {
  KVSAFE_CHECK(!(flags.no_system && flags.system.has_value()), "--system and --no-system exclude each other");
  KVSAFE_CHECK(!(flags.raw && (flags.system.has_value() || flags.no_system || !flags.chat_template.empty())),
               "--raw uses no chat template: it excludes --system, --no-system and --template");
  KVSAFE_CHECK(flags.max_new_tokens >= 1, "--max-new-tokens must be >= 1");
  // Parse the label before loading anything: a typo should fail in milliseconds.
  const kernels::KvQuantSpec spec = kernels::parse_kv_label(flags.kv);
  const std::string label = kernels::kv_label(spec);
  KVSAFE_CHECK(!(flags.compare && label == "none"), "--compare needs a quantizer: --kv LABEL (e.g. int4-ptok-asym)");

  const std::filesystem::path model_path = resolve_model_argument(flags.model, context);
  const auto model = engine::Model::load(model_path, {.device = flags.device});
  const auto tokenizer = engine::Tokenizer::load(model_path);
  const std::vector<engine::TokenId> prompt = prompt_ids(flags, model_path, *tokenizer);

  engine::GenerationOptions options{.max_new_tokens = flags.max_new_tokens,
                                    .batch_size = 1,
                                    .temperature = flags.temperature,
                                    .top_p = flags.top_p,
                                    .seed = flags.seed,
                                    .stop_tokens = engine::default_stop_tokens(*tokenizer),
                                    .pad_id = tokenizer->eos_id().value_or(0)};
  const std::unique_ptr<engine::KvPath> path = engine::make_kv_path(spec);
  if (!flags.compare) {
    options.kv_path = path.get();
    const engine::Generation g = stream_answer(*model, *tokenizer, prompt, options);
    fmt::print(stderr, "[{} prompt tokens, {} generated, {}; kv {}]\n", prompt.size(), g.tokens.size(),
               ending(g, *tokenizer), label);
    return kExitOk;
  }
  fmt::print("== full precision (none) ==\n");
  std::fflush(stdout);
  const engine::Generation full = stream_answer(*model, *tokenizer, prompt, options);
  fmt::print("== {} ==\n", label);
  std::fflush(stdout);
  options.kv_path = path.get();
  const engine::Generation quantized = stream_answer(*model, *tokenizer, prompt, options);
  std::size_t same = 0;
  while (same < full.tokens.size() && same < quantized.tokens.size() && full.tokens[same] == quantized.tokens[same]) {
    ++same;
  }
  if (same == full.tokens.size() && same == quantized.tokens.size()) {
    fmt::print("== identical answers ({} tokens) ==\n", same);
  } else {
    fmt::print("== answers diverge at token {} (full precision {} tokens, {}; {} {} tokens, {}) ==\n", same,
               full.tokens.size(), ending(full, *tokenizer), label, quantized.tokens.size(),
               ending(quantized, *tokenizer));
  }
  return kExitOk;
}

}  // namespace

void register_generate(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<GenerateFlags>();
  auto* command =
      app.add_subcommand("generate",
                         "Generate one answer with a (quantized) KV cache and stream it; --compare prints the\n"
                         "full-precision answer beside the quantized one and where they diverge.");
  command->add_option("--model", flags->model, "Model: GGUF file or HF folder (a bare name is looked up in the cache)")
      ->required();
  command->add_option("--kv", flags->kv, "KV quantizer label (int4-ptok-asym, kivi2-r128, fp8e4m3-cache, ...) or none")
      ->capture_default_str();
  command->add_option("--system", flags->system, "System prompt (default: what the model's template renders)");
  command->add_flag("--no-system", flags->no_system)
      ->description("No system turn at all, even where the template inserts a default one");
  command->add_option("--max-new-tokens", flags->max_new_tokens, "Most tokens to generate")->capture_default_str();
  command->add_flag("--compare", flags->compare)->description("Also stream the full-precision answer, first");
  command->add_option("--template", flags->chat_template, "Built-in chat template name instead of the model's own");
  command->add_flag("--raw", flags->raw)->description("No chat template: continue the prompt text (base models)");
  command->add_option("--temperature", flags->temperature, "0 = greedy")->capture_default_str();
  command->add_option("--top-p", flags->top_p, "Nucleus sampling mass (with --temperature > 0)")->capture_default_str();
  command->add_option("--seed", flags->seed, "Sampling seed")->capture_default_str();
  command->add_option("--device", flags->device, "cpu, cuda or cuda:N")->capture_default_str();
  command->add_option("prompt", flags->prompt, "The user message")->required();
  command->callback([flags, &context] { context.exit_code = run_generate(*flags, context); });
}

}  // namespace kvsafe::cli
