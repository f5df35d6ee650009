// `kvsafe quantize --spec SPEC --input in.safetensors --output out.safetensors
// [--layout projection|cache]`: fake-quantizes every tensor of a file through a KV spec
// (a label such as int4-ptok-asym, or canonical JSON) and prints per-tensor error
// statistics. The work is kernels::quantize_safetensors_file; this file is flags and table.

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/error.h"
#include "kernels/kv_quant_file.h"

namespace kvsafe::cli {
namespace {

struct QuantizeFlags {
  std::string spec;
  std::string input;
  std::string output;
  std::string layout = "projection";
};

int run_quantize(const QuantizeFlags& flags) {
  try {
    const kernels::KvQuantSpec spec = !flags.spec.empty() && flags.spec.front() == '{'
                                          ? kernels::kv_spec_from_json(flags.spec)
                                          : kernels::parse_kv_label(flags.spec);
    const auto layout = kernels::parse_placement(flags.layout);
    KVSAFE_CHECK(layout.has_value(), "--layout must be projection or cache, got `", flags.layout, "`");
    const auto stats = kernels::quantize_safetensors_file(flags.input, flags.output, spec, {.layout = *layout});
    fmt::print("spec {} ({}), layout {}\n", kernels::kv_label(spec), kernels::canonical_json(spec), flags.layout);
    fmt::print("{:<40} {:<18} {:>5} {:>5} {:>12} {:>12} {:>8} {:>6}\n", "tensor", "shape", "side", "layer", "mse",
               "max_abs_err", "snr_db", "bits");
    for (const auto& s : stats) {
      fmt::print("{:<40} {:<18} {:>5} {:>5} {:>12.4e} {:>12.4e} {:>8.2f} {:>6.3f}\n", s.name,
                 fmt::format("[{}]", fmt::join(s.shape, ",")), s.side, s.layer, s.mse, s.max_abs_error, s.snr_db,
                 s.effective_bits);
    }
    return kExitOk;
  } catch (const Error& e) {
    fmt::print(stderr, "kvsafe quantize: {}\n", e.what());
    return kExitFailure;
  }
}

}  // namespace

void register_quantize(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<QuantizeFlags>();
  CLI::App* cmd = app.add_subcommand("quantize", "Fake-quantize every tensor of a safetensors file; print errors");
  cmd->add_option("--spec", flags->spec, "KV spec: a label (int4-ptok-asym, kivi2-r128, q8_0) or canonical JSON")
      ->required();
  cmd->add_option("--input", flags->input, "input .safetensors (F32/F16/BF16 tensors)")->required();
  cmd->add_option("--output", flags->output, "output .safetensors (same names, shapes and dtypes)")->required();
  cmd->add_option("--layout", flags->layout, "projection ([..., channels], the paper) or cache ([b, h, t, d])")
      ->check(CLI::IsMember({"projection", "cache"}));
  cmd->callback([flags, &context] { context.exit_code = run_quantize(*flags); });
}

}  // namespace kvsafe::cli
