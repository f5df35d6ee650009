// Speculative cells in the run summary and the specdecode_flip table (report/speculative_summary.h).
#include "report/speculative_summary.h"

#include <fmt/format.h>

#include <functional>
#include <utility>
#include <vector>

#include "db/readonly_query.h"
#include "report/paper_tables.h"

namespace kvsafe::report::detail {
namespace {

// A group's setting without its "speculative=..." item (the table names the draft apart).
std::string setting_without_speculative(const std::string& setting) {
  std::string out;
  std::size_t at = 0;
  while (at < setting.size()) {
    std::size_t end = setting.find(' ', at);
    if (end == std::string::npos) end = setting.size();
    const std::string item = setting.substr(at, end - at);
    if (!item.empty() && item.rfind("speculative=", 0) != 0) out += (out.empty() ? "" : " ") + item;
    at = end + 1;
  }
  return out;
}

std::string acceptance_text(const SpeculativeSummary& s) {
  const auto rate = s.acceptance_rate();
  return rate ? fmt::format("{:.1f}% ({}/{})", 100.0 * *rate, s.accepted, s.proposed) : "-";
}

}  // namespace

std::optional<SpeculativeSummary> speculative_settings(const std::string& canonical_json) {
  const nlohmann::json cell = nlohmann::json::parse(canonical_json, nullptr, /*allow_exceptions=*/false);
  if (!cell.is_object()) return std::nullopt;
  const auto g = cell.find("generation");
  if (g == cell.end() || !g->is_object()) return std::nullopt;
  const auto s = g->find("speculative");
  if (s == g->end() || !s->is_object()) return std::nullopt;
  SpeculativeSummary out;
  if (const auto draft = s->find("draft"); draft != s->end() && draft->is_object()) {
    out.draft = draft->value("name", std::string());
  }
  out.draft_tokens = s->value("draft_tokens", std::int64_t{0});
  out.quantize = s->value("quantize", std::string());
  return out;
}

std::string speculative_setting_text(const nlohmann::json& speculative) {
  std::string draft = "?";
  if (const auto d = speculative.find("draft"); d != speculative.end() && d->is_object()) {
    draft = d->value("name", draft);
  }
  return fmt::format("{},k={},quantize={}", draft, speculative.value("draft_tokens", std::int64_t{0}),
                     speculative.value("quantize", std::string("?")));
}

std::optional<SpeculativeRounds> speculative_rounds(const nlohmann::json& judge_json) {
  if (!judge_json.is_object()) return std::nullopt;
  const auto s = judge_json.find("speculative");
  if (s == judge_json.end() || !s->is_object()) return std::nullopt;
  for (const char* key : {"rounds", "proposed", "accepted"}) {
    if (!s->contains(key) || !s->at(key).is_number_integer()) return std::nullopt;
  }
  return SpeculativeRounds{.rounds = s->at("rounds").get<std::int64_t>(),
                           .proposed = s->at("proposed").get<std::int64_t>(),
                           .accepted = s->at("accepted").get<std::int64_t>()};
}

std::map<std::string, std::map<std::int64_t, std::size_t>> answer_hashes(const std::filesystem::path& db,
                                                                         const std::set<std::string>& cell_ids) {
  std::map<std::string, std::map<std::int64_t, std::size_t>> out;
  std::string in_list;
  for (const std::string& id : cell_ids) {
    // NOTE: cell ids are hex digests; quotes are doubled all the same, as SQL writes them.
    std::string quoted;
    for (const char c : id) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    in_list += (in_list.empty() ? "'" : ",'") + quoted + "'";
  }
  if (in_list.empty()) return out;
  const db::QueryResult texts = db::run_readonly_query(
      db, "SELECT cell_id, prompt_index, output_text FROM generations WHERE cell_id IN (" + in_list + ") ORDER BY id");
  for (const auto& r : texts.rows) {
    out[db::query_text(r[0])][db::query_int64(r[1])] = std::hash<std::string>{}(db::query_text(r[2]));
  }
  return out;
}

eval::Proportion identical_answers(const std::map<std::int64_t, std::size_t>& a,
                                   const std::map<std::int64_t, std::size_t>& b) {
  std::int64_t both = 0, identical = 0;
  for (const auto& [prompt, hash] : a) {
    const auto other = b.find(prompt);
    if (other == b.end()) continue;
    ++both;
    identical += other->second == hash ? 1 : 0;
  }
  return eval::wilson_interval(identical, both);
}

void write_speculative_line(const SummaryGroup& group, std::ostream& out) {
  const KvSummaryRow* first = nullptr;
  std::string rates;
  for (const KvSummaryRow& row : group.rows) {
    if (!row.speculative) continue;
    if (first == nullptr) first = &row;
    rates += (rates.empty() ? "" : ", ") + row.kv_label + " " + acceptance_text(*row.speculative);
  }
  if (first == nullptr) return;
  const SpeculativeSummary& s = *first->speculative;
  out << fmt::format(
      "  speculative decoding: draft {}, {} tokens per round, KV quantized on the {} side{}; acceptance: {} (flips "
      "below are against this group's speculative full-precision cell; `kvsafe tables` specdecode_flip compares with "
      "plain greedy decoding)\n",
      s.draft, s.draft_tokens, s.quantize, s.quantize == "both" ? "s" : "", rates);
}

Table specdecode_flip(const RunSummary& summary) {
  Table t{.name = "specdecode_flip",
          .caption =
              "Greedy speculative decoding with a quantized KV cache, per model, draft, quantized side (target: "
              "the verifying model's KV; draft: the draft's only, whose answers must be the target's at full "
              "precision; both) and KV quantizer. Cond. flip: refuse->comply over the prompts the baseline "
              "refused, against the plain (non-speculative) greedy full-precision cell of the same model, "
              "benchmark and settings when the database has one, else against the speculative full-precision "
              "cell (column \"Against\"). Acceptance: accepted / proposed draft tokens over all answers. "
              "Identical: answers byte-identical to the plain greedy cell with the same target KV (the row's "
              "quantizer; full precision under quantize draft). Wilson 95% intervals.",
          .columns = {"Model", "Benchmark", "Draft", "k", "Quantize", "KV", "Refusal", "Cond. flip", "Against",
                      "Acceptance", "Identical to plain"},
          .groups = {},
          .rows = {}};
  for (const SummaryGroup& group : summary.groups) {
    if (group.task != "refusal") continue;
    const std::string setting = setting_without_speculative(group.setting);
    std::string model = table_model_name(group.model, group.steered);
    if (!setting.empty()) model += " (" + setting + ")";
    const std::string benchmark = group.benchmark + (group.subset.empty() ? "" : "/" + group.subset);
    for (const KvSummaryRow& row : group.rows) {
      if (!row.speculative) continue;
      const SpeculativeSummary& s = *row.speculative;
      Cell flip = cell_not_run();
      std::string against;
      if (!s.plain_baseline_id.empty()) {
        against = "plain full precision";
        if (!s.plain_flip_undefined.empty()) {
          flip = cell_text(s.plain_flip_undefined);
        } else if (s.flip_vs_plain && s.flip_vs_plain->trials > 0) {
          flip = cell_rate(*s.flip_vs_plain);
        } else if (s.flip_vs_plain) {
          flip = cell_text("undefined: the baseline refused none of the paired prompts");
        }
      } else {
        against = "speculative full precision";
        if (row.baseline) {
          flip = cell_text("(baseline)");
        } else if (!group.flip_undefined.empty()) {
          flip = cell_text(group.flip_undefined);
        } else if (row.flip && row.flip->trials > 0) {
          flip = cell_rate(*row.flip);
        } else if (row.flip) {
          flip = cell_text("undefined: the baseline refused none of the paired prompts");
        }
      }
      const auto rate = s.acceptance_rate();
      t.rows.push_back({cell_text(model), cell_text(benchmark), cell_text(s.draft),
                        cell_number(static_cast<double>(s.draft_tokens), 0), cell_text(s.quantize),
                        cell_text(row.kv_label),
                        row.refusal.rate.trials > 0 ? cell_rate(row.refusal.rate) : cell_not_run(), flip,
                        cell_text(against), rate ? cell_text(acceptance_text(s)) : cell_not_run(),
                        s.identical_to_plain && s.identical_to_plain->trials > 0 ? cell_rate(*s.identical_to_plain)
                                                                                 : cell_not_run()});
    }
  }
  return t;
}

}  // namespace kvsafe::report::detail
