// `kvsafe plan GRID`: validates a grid and prints its cells grouped by model with the cost
// model's estimate (orchestrator/plan.h); with a database, which cells are already done.

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/grid_argument.h"
#include "cluster/sbatch_script.h"
#include "cluster/slurm_fit.h"
#include "cluster/slurm_time.h"
#include "common/error.h"
#include "common/logging.h"
#include "db/store.h"
#include "modelfile/generation_config.h"
#include "orchestrator/diagnosis_plan.h"
#include "orchestrator/grid_expansion.h"
#include "orchestrator/grid_parser.h"
#include "orchestrator/plan.h"
#include "runner/diagnosis_derivation.h"

namespace kvsafe::cli {
namespace {

struct PlanFlags {
  std::string grid;
  std::string db;
  int gpus = 0;        // 0: nodes x gpus_per_node of the grid's slurm section, else 1
  bool slurm = false;  // also compare the makespan with the slurm section's time limit
  std::string device = "h100";
  bool list_cells = false;
  orchestrator::CostModelOptions cost;
};

// "1.2M", "35.0k": token counts read at a glance.
std::string human_count(double value) {
  if (value >= 1e9) return fmt::format("{:.1f}G", value / 1e9);
  if (value >= 1e6) return fmt::format("{:.1f}M", value / 1e6);
  if (value >= 1e4) return fmt::format("{:.1f}k", value / 1e3);
  return fmt::format("{:.0f}", value);
}

std::string human_params(double params) {
  if (params <= 0) return "?";
  if (params >= 1e9) return fmt::format("{:.1f}B", params / 1e9);
  return fmt::format("{:.0f}M", params / 1e6);
}

std::string human_duration(double seconds) {
  if (seconds >= 2 * 86400) return fmt::format("{:.1f} days", seconds / 86400);
  if (seconds >= 3600) return fmt::format("{:.1f} h", seconds / 3600);
  if (seconds >= 60) return fmt::format("{:.1f} min", seconds / 60);
  return fmt::format("{:.0f} s", seconds);
}

std::set<std::string> done_cells(const std::filesystem::path& db, bool explicitly_given) {
  if (!std::filesystem::exists(db)) {
    if (explicitly_given) spdlog::warn("{} does not exist yet: no cell is done", db.string());
    return {};
  }
  auto store = db::Store::open(db, {.read_only = true});
  return store->done_cell_ids();
}

// The diagnosis cells `kvsafe run` would add (diagnose.tasks): planned now, and to be derived.
struct DiagnosisCells {
  orchestrator::DiagnosisOutlook outlook{};
  std::string tasks_text{};
  std::vector<std::string> notes{};  // models whose layer count is unknown
};

DiagnosisCells diagnosis_cells(const orchestrator::GridSpec& grid) {
  DiagnosisCells out;
  if (grid.diagnose.tasks.empty()) return out;
  for (const auto task : grid.diagnose.tasks) {
    out.tasks_text += (out.tasks_text.empty() ? "" : ", ") + std::string(orchestrator::to_string(task));
  }
  std::vector<std::pair<std::string, std::int64_t>> layers;
  for (const std::string& name : orchestrator::diagnosed_models(grid)) {
    const orchestrator::ModelSpec& model = *grid.find_model(name);
    try {
      layers.emplace_back(name, runner::model_layer_count(model));
    } catch (const Error& error) {
      out.notes.push_back(
          fmt::format("{}: its layer count is unknown, so its cells are not planned here (give "
                      "`layers:` in its entry, or fetch the model): {}",
                      name, error.what()));
    }
  }
  out.outlook = orchestrator::diagnosis_outlook(grid, layers, grid.diagnose.tasks);
  return out;
}

// Each model folder's generation_config.json (issue 20 item 2), and whether the grid applies it:
// what transformers' generate() would decode with, beside the grid's own settings.
void print_generation_configs(const orchestrator::GridSpec& grid) {
  const bool applied = std::any_of(grid.generations.begin(), grid.generations.end(),
                                   [](const orchestrator::GenerationSettings& g) { return g.use_generation_config; });
  for (const orchestrator::ModelSpec& model : grid.models) {
    try {
      const engine::GenerationConfig config = engine::read_generation_config(model.path);
      if (config.source.empty()) continue;
      fmt::print("{}: generation_config.json: {} ({})\n", model.name, engine::describe(config),
                 applied ? "applied: generation.generation_config: model" : "not applied: generation_config: ignore");
    } catch (const InputError& error) {
      fmt::print("{}: generation_config.json unreadable: {}\n", model.name, error.what());
    }
  }
}

// `--slurm`: node-hours of the remaining makespan, and whether the slurm section's time limit
// holds it (less the drain lead `kvsafe submit` gives each job), else how many requeues.
void print_slurm_fit(const orchestrator::GridSpec& grid, const orchestrator::Plan& plan) {
  const orchestrator::SlurmSpec slurm = grid.slurm.value_or(orchestrator::SlurmSpec{});
  const auto limit = cluster::slurm_time_seconds(slurm.time);
  if (!limit) {
    fmt::print("slurm: time `{}` is not a SLURM time; no fit computed\n", slurm.time);
    return;
  }
  const std::int64_t lead = cluster::drain_signal_lead_s(slurm.time, grid.execution.grace_period_s);
  // The nodes the makespan's GPUs take (--gpus may differ from the section's nodes x gpus_per_node).
  const std::int64_t nodes =
      slurm.gpus_per_node > 0 ? (plan.gpus + slurm.gpus_per_node - 1) / slurm.gpus_per_node : slurm.nodes;
  const cluster::SlurmFit fit = cluster::slurm_fit(plan.makespan.seconds, nodes, *limit, lead);
  fmt::print("slurm{}: {} node(s) x {} GPU(s), time {} ({} of work per job after a {} s drain lead)\n",
             grid.slurm ? "" : " (no slurm section: defaults)", nodes, slurm.gpus_per_node, slurm.time,
             human_duration(fit.useful_s_per_job), lead);
  if (fit.jobs == 0) {
    fmt::print("slurm: nothing left to run\n");
  } else if (fit.fits) {
    fmt::print("slurm: {:.1f} node-hours; the time limit holds the makespan ({}): one job\n", fit.node_hours,
               human_duration(plan.makespan.seconds));
  } else {
    fmt::print(
        "slurm: {:.1f} node-hours; the makespan ({}) needs {} jobs: {} requeue(s) (kvsafe submit --requeue {} or "
        "more), or a longer --time\n",
        fit.node_hours, human_duration(plan.makespan.seconds), fit.jobs, fit.requeues, fit.requeues);
  }
}

int run_plan(const PlanFlags& flags, const CommandContext& context) {
  const std::optional<orchestrator::GridSpec> read = read_grid_argument(flags.grid, context, "plan", "nothing planned");
  if (!read) return kExitFailure;
  const orchestrator::GridSpec& grid = *read;
  std::vector<orchestrator::Cell> cells = orchestrator::expand_grid(grid);
  const DiagnosisCells diagnosis = diagnosis_cells(grid);
  const std::size_t grid_cells = cells.size();
  {
    std::set<std::string> ids;
    for (const auto& cell : cells) ids.insert(cell.id);
    for (const auto& cell : diagnosis.outlook.planned) {
      if (ids.insert(cell.id).second) cells.push_back(cell);
    }
  }

  orchestrator::PlanOptions options{.cost = flags.cost, .gpus = flags.gpus};
  options.cost.device = orchestrator::device_profile(flags.device);
  if (options.gpus == 0) {
    // NOTE: a CPU-only section (gpus_per_node 0) still needs one device for the makespan.
    options.gpus = grid.slurm ? std::max(1, static_cast<int>(grid.slurm->nodes * grid.slurm->gpus_per_node)) : 1;
  }
  const std::filesystem::path db = flags.db.empty() ? grid.default_db_path() : std::filesystem::path(flags.db);
  const std::set<std::string> done = done_cells(db, !flags.db.empty());
  const orchestrator::Plan plan = orchestrator::make_plan(grid, cells, done, options);

  fmt::print("grid {} ({}): {} model(s) x {} KV spec(s) x {} benchmark(s) x {} generation setting(s) -> {} cells\n",
             grid.name, flags.grid, grid.models.size(), grid.kv_specs.size(), grid.benchmarks.size(),
             grid.generations.size(), grid_cells);
  if (cells.size() > grid_cells) {
    fmt::print("diagnosis ({}): {} more cell(s) planned now\n", diagnosis.tasks_text, cells.size() - grid_cells);
  }
  for (const std::string& line : diagnosis.notes) fmt::print("diagnosis: {}\n", line);
  print_generation_configs(grid);
  fmt::print("database {}: {} of {} cells done\n\n", db.string(), plan.cells_done, plan.cells);

  if (flags.list_cells) {
    fmt::print("{:<16}  {:<28} {:<26} {:>6}  {:<12} {:<14} {:>7}  {}\n", "cell", "model", "kv", "bits", "task",
               "benchmark", "prompts", "state");
    for (const orchestrator::Cell& cell : cells) {
      fmt::print("{:<16}  {:<28} {:<26} {:>6.2f}  {:<12} {:<14} {:>7}  {}\n", cell.short_id(), cell.model.name,
                 cell.kv_label, cell.effective_bits, orchestrator::to_string(cell.task()), cell.benchmark.name,
                 cell.n_prompts, done.count(cell.id) ? "done" : "to do");
    }
    fmt::print("\n");
  }

  fmt::print("{:<34} {:>7} {:>5} {:>6} {:>6} {:>9} {:>10} {:>10} {:>10}\n", "model", "params", "GPUs", "cells", "done",
             "prompts", "gen tok", "GPU-h", "GPU-h left");
  for (const orchestrator::ModelPlan& row : plan.models) {
    fmt::print("{:<34} {:>7} {:>5} {:>6} {:>6} {:>9} {:>10} {:>10.2f} {:>10.2f}\n", row.name, human_params(row.params),
               row.gpus_per_replica, row.cells, row.cells_done, row.prompts, human_count(row.generated_tokens),
               row.gpu_seconds / 3600, row.remaining_gpu_seconds / 3600);
  }
  fmt::print("{:<34} {:>7} {:>5} {:>6} {:>6} {:>9} {:>10} {:>10.2f} {:>10.2f}\n\n", "total", "", "", plan.cells,
             plan.cells_done, plan.prompts, human_count(plan.generated_tokens), plan.gpu_seconds / 3600,
             plan.remaining_gpu_seconds / 3600);

  if (!diagnosis.outlook.to_be_derived.empty()) {
    const orchestrator::Plan later = orchestrator::make_plan(grid, diagnosis.outlook.to_be_derived, {}, options);
    fmt::print(
        "to be derived from stored results (critical layers, channel magnitudes, the fix): about {} cell(s), {} "
        "prompt(s), {} generated tokens, {:.2f} GPU-h (assuming {} critical layer(s) per model)\n",
        later.cells, later.prompts, human_count(later.generated_tokens), later.gpu_seconds / 3600,
        grid.diagnose.protect_top_k.empty()
            ? 1
            : *std::max_element(grid.diagnose.protect_top_k.begin(), grid.diagnose.protect_top_k.end()));
    if (flags.list_cells) {
      for (const orchestrator::Cell& cell : diagnosis.outlook.to_be_derived) {
        fmt::print("{:<16}  {:<28} {:<26} {:>6.2f}  {:<12} {:<14} {:>7}  {}\n", "(derived)", cell.model.name,
                   cell.kv_label, cell.effective_bits, orchestrator::to_string(cell.task()), cell.benchmark.name,
                   cell.n_prompts, "to be derived");
      }
    }
  }
  const auto& device = options.cost.device;
  if (plan.cells_done == plan.cells) {
    fmt::print("nothing left to run\n");
  } else {
    fmt::print("makespan on {} x {}: {} ({} model loads)\n", plan.gpus, device.name,
               human_duration(plan.makespan.seconds), plan.makespan.model_loads);
  }
  if (flags.slurm) print_slurm_fit(grid, plan);
  fmt::print(
      "cost model: decode reads every weight per step at {:.0f}% of {:g} GB/s, prefill at {:.0f}% of {:g} "
      "TFLOP/s, {:g} bytes/param, {:.0f} prompt tokens, {:.0f}% of max_new_tokens generated, loads at {:.1f} "
      "GB/s; speculative cells: one prompt at a time, {:.0f}% of proposals accepted\n",
      options.cost.bandwidth_efficiency * 100, device.memory_bandwidth_gb_s, options.cost.compute_efficiency * 100,
      device.dense_tflops, device.bytes_per_param, options.cost.mean_prompt_tokens,
      options.cost.generated_fraction * 100, options.cost.load_gb_per_s, options.cost.speculative_acceptance * 100);
  return kExitOk;
}

}  // namespace

void register_plan(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<PlanFlags>();
  auto* command =
      app.add_subcommand("plan",
                         "Validate a grid and estimate its cost: cells grouped by model, prompts, generated tokens,\n"
                         "GPU-hours and makespan on N GPUs (a memory-bandwidth cost model; see --help for its\n"
                         "knobs), and how many cells a results database already holds.");
  command->add_option("grid", flags->grid, "Grid file (YAML)")->required();
  command
      ->add_option("--gpus", flags->gpus,
                   "GPUs to estimate the makespan for (default: nodes x gpus_per_node of the slurm section, else 1)")
      ->check(CLI::Range(1, 1000000));
  command->add_option("--device", flags->device, "Device profile: h100, h200, a100, l40s or cpu")
      ->capture_default_str();
  command->add_option("--db", flags->db, "Results database to count done cells in (default results/<grid name>.db)");
  command->add_flag("--cells", flags->list_cells, "Also list every cell with its id, KV label and state");
  command->add_flag("--slurm", flags->slurm,
                    "Also give node-hours and whether the slurm section's time limit holds the makespan (else how "
                    "many requeues kvsafe submit would take)");
  command
      ->add_option("--bandwidth-efficiency", flags->cost.bandwidth_efficiency,
                   "Fraction of peak memory bandwidth a decode step reaches")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  command->add_option("--compute-efficiency", flags->cost.compute_efficiency, "Fraction of peak FLOP/s prefill reaches")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  command->add_option("--load-gb-per-s", flags->cost.load_gb_per_s, "Model load speed, GB/s")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--prompt-tokens", flags->cost.mean_prompt_tokens, "Mean templated prompt length, tokens")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      ->add_option("--generated-fraction", flags->cost.generated_fraction,
                   "Share of max_new_tokens actually generated (1 = upper bound)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  command
      ->add_option("--speculative-acceptance", flags->cost.speculative_acceptance,
                   "Share of draft proposals accepted, for speculative cells (0 = upper bound)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  command->callback([flags, &context] { context.exit_code = run_plan(*flags, context); });
}

}  // namespace kvsafe::cli
