// `kvsafe judge DB --judge keyword|model ...`: re-judges the generations stored in a results
// database without regenerating them, adding one row per (generation, judge) to `judgements`
// (db/judgements.h); `--agreement A B` prints Cohen's kappa between two stored judges;
// `--list` lists them. The judges are eval/'s (keyword_judge.h, model_judge.h); this file only
// joins them to the database: batches of generations read, judged, and inserted in one
// transaction per batch, so an interrupted run keeps every finished batch and the next run with
// the same judge spec resumes where it stopped.

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "common/error.h"
#include "db/judgements.h"
#include "db/store.h"
#include "eval/refusal_judge.h"
#include "eval/statistics.h"

namespace kvsafe::cli {
namespace {

struct JudgeFlags {
  std::string db;
  std::string judge;  // keyword | model
  std::string markers;
  std::string rule = "substring";
  bool spaceless = false;
  std::string model;
  std::string format = "wildguard";
  std::string template_file;
  std::string chat_template;
  std::int64_t max_new_tokens = 32;
  std::int64_t batch_size = 8;
  std::int64_t limit = 0;
  int threads = 0;
  std::string device = "cpu";
  std::vector<std::string> agreement;
  bool list = false;
};

constexpr std::int64_t kRowsPerBatchFactor = 4;

// The judge the flags name; the same eval::RefusalJudge that `kvsafe run` builds from a grid's
// `judge:` section, with the knobs a grid does not have (match rule, template, generation
// settings).
eval::RefusalJudgeOptions judge_options_from(const JudgeFlags& flags) {
  eval::RefusalJudgeOptions options{.kind = *eval::parse_judge_kind(flags.judge)};  // CLI11 checked the names
  if (options.kind == eval::JudgeKind::kKeyword) {
    options.keyword = {.markers_file = flags.markers,
                       .rule = *eval::parse_match_rule(flags.rule),
                       .spaceless_fallback = flags.spaceless};
    return options;
  }
  KVSAFE_CHECK(!flags.model.empty(), "--judge model needs --model PATH (a GGUF file or HF folder)");
  options.model = {.model_path = flags.model,
                   .format = *eval::parse_model_judge_format(flags.format),
                   .template_file = flags.template_file,
                   .chat_template = flags.chat_template,
                   .max_new_tokens = flags.max_new_tokens,
                   .batch_size = flags.batch_size,
                   .device = flags.device,
                   .threads = flags.threads};
  return options;
}

// Judgement rows for a batch of stored generations. A model judge needs the prompt: generations
// whose prompt text is unknown are left out (counted in `skipped`), never stored as verdicts.
std::vector<db::JudgementRow> judge_batch(const eval::RefusalJudge& judge,
                                          const std::vector<db::StoredGeneration>& batch, std::int64_t* skipped) {
  const bool needs_prompt = judge.kind() == eval::JudgeKind::kModel;
  std::vector<eval::JudgePair> pairs;
  std::vector<std::int64_t> ids;
  for (const db::StoredGeneration& generation : batch) {
    if (needs_prompt && !generation.prompt_text) {
      ++*skipped;
      continue;
    }
    pairs.push_back({.prompt = generation.prompt_text ? std::string_view(*generation.prompt_text) : std::string_view(),
                     .response = generation.output_text});
    ids.push_back(generation.id);
  }
  const auto start = std::chrono::steady_clock::now();
  const std::vector<eval::RefusalVerdict> verdicts = judge.judge(pairs);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<db::JudgementRow> rows;
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    rows.push_back({.generation_id = ids[i],
                    .refused = verdicts[i].refused,
                    .raw_output = verdicts[i].raw_output,
                    .detail_json = verdicts[i].detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    .seconds = seconds / static_cast<double>(verdicts.size())});
  }
  return rows;
}

int run_judge(const JudgeFlags& flags, const CommandContext& context) {
  // NOTE: the store first: a locked or bad database fails before a model judge spends its load.
  auto store = db::Store::open(flags.db, {.holder_description = context.command_line});
  const eval::RefusalJudge judge(judge_options_from(flags));
  const db::JudgeIdentity identity = db::judge_identity(judge.label(), judge.spec_json());
  // Rows read and inserted per transaction: a few of the model judge's generation batches, so
  // a kill loses little, and a keyword pass is not one transaction per row.
  const std::int64_t batch_rows =
      judge.kind() == eval::JudgeKind::kModel ? judge.preferred_batch() * kRowsPerBatchFactor : judge.preferred_batch();
  const std::int64_t pending = db::count_unjudged_generations(*store, identity.key);
  const std::int64_t todo = flags.limit > 0 ? std::min(flags.limit, pending) : pending;
  spdlog::info("judge {} (key {}): {} generations not yet judged, judging {}", identity.label,
               identity.key.substr(0, 12), pending, todo);
  std::int64_t judged = 0, refused = 0, complied = 0, unparsed = 0, skipped = 0, after = 0;
  const auto start = std::chrono::steady_clock::now();
  while (judged + skipped < todo) {
    const std::int64_t want = std::min(batch_rows, todo - judged - skipped);
    const std::vector<db::StoredGeneration> batch = db::read_unjudged_generations(*store, identity.key, after, want);
    if (batch.empty()) break;
    after = batch.back().id;
    const std::vector<db::JudgementRow> rows = judge_batch(judge, batch, &skipped);
    db::insert_judgements(*store, identity, rows);
    for (const db::JudgementRow& row : rows) {
      ++(row.refused ? (*row.refused ? refused : complied) : unparsed);
    }
    judged += static_cast<std::int64_t>(rows.size());
    spdlog::info("judged {}/{}", judged + skipped, todo);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (skipped > 0) {
    spdlog::warn(
        "{} generations have no prompt text in the database (prompts table): a model judge needs it; "
        "they were left unjudged",
        skipped);
  }
  fmt::print("judge: {}\nkey: {}\njudged: {} (refused {}, complied {}, unparsed {})\n", identity.label, identity.key,
             judged, refused, complied, unparsed);
  fmt::print("not judged before this run: {}\nleft unjudged: {}\n", pending,
             db::count_unjudged_generations(*store, identity.key));
  fmt::print("seconds: {:.3f} ({:.2f} generations/s)\n", seconds, seconds > 0 ? judged / seconds : 0.0);
  return kExitOk;
}

std::vector<eval::KeyedOutcome> keyed(const std::vector<db::StoredVerdict>& verdicts) {
  std::vector<eval::KeyedOutcome> out;
  out.reserve(verdicts.size());
  for (const db::StoredVerdict& verdict : verdicts) {
    out.push_back({.key = verdict.generation_id,
                   .outcome = !verdict.refused   ? eval::Outcome::kUnjudged
                              : *verdict.refused ? eval::Outcome::kRefused
                                                 : eval::Outcome::kComplied});
  }
  return out;
}

// "run" names the run's own verdicts (generations.refused); anything else a stored judge.
std::pair<std::string, std::vector<eval::KeyedOutcome>> verdicts_of(db::Store& store, const std::string& name) {
  if (name == "run") return {"run (generations.refused)", keyed(db::run_verdicts(store))};
  const db::StoredJudge judge = db::find_stored_judge(store, name);
  return {judge.identity.label + " (" + judge.identity.key.substr(0, 12) + ")",
          keyed(db::stored_verdicts(store, judge.identity.key))};
}

int run_agreement(const JudgeFlags& flags) {
  auto store = db::Store::open(flags.db, {.read_only = true});
  const auto [first_name, first] = verdicts_of(*store, flags.agreement[0]);
  const auto [second_name, second] = verdicts_of(*store, flags.agreement[1]);
  const eval::JudgeComparison c = eval::compare_judges(first, second);
  fmt::print("A: {}\nB: {}\n", first_name, second_name);
  fmt::print("judged by both, with a verdict from both: {}\n", c.agreement.items);
  fmt::print("unparsed on either side: {}; judged by A only: {}; by B only: {}\n", c.unjudged, c.only_first,
             c.only_second);
  fmt::print("{:<12} {:>12} {:>12}\n{:<12} {:>12} {:>12}\n{:<12} {:>12} {:>12}\n", "", "B refused", "B complied",
             "A refused", c.both_refused, c.first_only_refused, "A complied", c.second_only_refused, c.both_complied);
  const auto number = [](double x) { return std::isnan(x) ? std::string("n/a") : fmt::format("{:.4f}", x); };
  fmt::print("observed agreement: {}\nexpected agreement: {}\ncohen's kappa: {}\n", number(c.agreement.observed),
             number(c.agreement.expected), number(c.agreement.kappa));
  return kExitOk;
}

int run_list(const JudgeFlags& flags) {
  auto store = db::Store::open(flags.db, {.read_only = true});
  fmt::print("{:<12}  {:>8}  {:>8}  {:>8}  {}\n", "key", "rows", "refused", "unparsed", "label");
  for (const db::StoredJudge& judge : db::list_stored_judges(*store)) {
    fmt::print("{:<12}  {:>8}  {:>8}  {:>8}  {}\n", judge.identity.key.substr(0, 12), judge.rows, judge.refused,
               judge.unparsed, judge.identity.label);
  }
  return kExitOk;
}

}  // namespace

void register_judge(CLI::App& app, CommandContext& context) {
  auto flags = std::make_shared<JudgeFlags>();
  auto* command = app.add_subcommand(
      "judge",
      "Re-judge the generations stored in a results database without regenerating them: one new row per\n"
      "(generation, judge) in the judgements table, earlier verdicts kept. Running the same judge again\n"
      "resumes (already judged rows are skipped). --agreement A B prints Cohen's kappa between two stored\n"
      "judges (a label, a key prefix, or `run` for the run's own verdicts); --list lists them.");
  command->add_option("db", flags->db, "Results database")->required();
  auto* judge = command->add_option("--judge", flags->judge, "Judge kind: keyword or model")
                    ->check(CLI::IsMember({"keyword", "model"}));
  command->add_option("--markers", flags->markers, "Keyword judge: marker list (.txt or .json); default: built in");
  command->add_option("--rule", flags->rule, "Keyword judge: substring, substring-case-sensitive or prefix")
      ->check(CLI::IsMember({"substring", "substring-case-sensitive", "prefix"}));
  command->add_flag("--spaceless", flags->spaceless, "Keyword judge: also match with whitespace removed (Yi)");
  command->add_option("--model", flags->model, "Model judge: the judge model (GGUF file or HF folder)");
  command->add_option("--format", flags->format, "Model judge: wildguard or llama_guard3")
      ->check(CLI::IsMember({"wildguard", "llama_guard3"}));
  command->add_option("--template", flags->template_file,
                      "Model judge: a raw prompt template file with {prompt} and {response}, e.g.\n"
                      "$KVSAFE_DATA/refusal_markers/judge_prompts/wildguard_paper.txt; default: built in");
  command->add_option("--chat-template", flags->chat_template, "Model judge: built-in chat template name");
  command->add_option("--max-new-tokens", flags->max_new_tokens, "Model judge: most tokens per answer (32)");
  command->add_option("--batch-size", flags->batch_size, "Model judge: pairs per generation batch (8)");
  command->add_option("--device", flags->device, "Model judge: cpu, cuda or cuda:N");
  command->add_option("--threads", flags->threads, "Model judge: CPU threads; 0 = one per core");
  command->add_option("--limit", flags->limit, "Judge at most N generations not yet judged (0 = all)");
  auto* agreement =
      command->add_option("--agreement", flags->agreement, "Cohen's kappa between two stored judges")->expected(2);
  auto* list = command->add_flag("--list", flags->list, "List the stored judges");
  judge->excludes(agreement)->excludes(list);
  agreement->excludes(list);
  command->callback([flags, &context] {
    if (!flags->agreement.empty()) {
      context.exit_code = run_agreement(*flags);
    } else if (flags->list) {
      context.exit_code = run_list(*flags);
    } else if (!flags->judge.empty()) {
      context.exit_code = run_judge(*flags, context);
    } else {
      throw InputError("kvsafe judge: pass --judge keyword|model, --agreement A B, or --list");
    }
  });
}

}  // namespace kvsafe::cli
