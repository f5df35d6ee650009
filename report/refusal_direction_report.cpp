#include "report/refusal_direction_report.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>

#include "common/error.h"
#include "db/readonly_query.h"
#include "report/run_summary.h"

namespace kvsafe::report {
namespace {

// Per class (0 harmless, 1 harmful), per layer: the float64 sum over the stored shards.
struct CellSums {
  std::vector<std::vector<double>> sum[2];
  std::int64_t prompts[2] = {0, 0};  // at layer 0 (every layer sums the same prompts)
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// SQLite's hex() of a sum_f32 blob back to its little-endian float32 values.
std::vector<float> floats_from_hex(const std::string& hex, const std::string& where) {
  KVSAFE_CHECK(hex.size() % 8 == 0, where, ": a sum of ", hex.size() / 2, " bytes is not whole float32 values");
  static_assert(std::endian::native == std::endian::little, "direction_sums.sum_f32 is little-endian");
  std::vector<float> values(hex.size() / 8);
  std::vector<unsigned char> bytes(hex.size() / 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
    KVSAFE_CHECK(high >= 0 && low >= 0, where, ": the sum is not hexadecimal");
    bytes[i] = static_cast<unsigned char>(high * 16 + low);
  }
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

std::map<std::string, CellSums> read_sums(const std::filesystem::path& db) {
  std::map<std::string, CellSums> cells;
  const db::QueryResult present =
      db::run_readonly_query(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'direction_sums'");
  if (present.rows.empty() || db::query_int64(present.rows[0][0]) == 0) return cells;  // before schema v7
  const db::QueryResult rows = db::run_readonly_query(
      db,
      "SELECT d.cell_id, d.layer, d.harmful, d.prompts, hex(d.sum_f32) FROM direction_sums d JOIN cells c ON "
      "c.id = d.cell_id WHERE c.task = 'refusal_direction' ORDER BY d.cell_id, d.shard_begin, d.layer, d.harmful");
  for (const auto& r : rows.rows) {
    const std::string cell_id = db::query_text(r[0]);
    const std::int64_t layer = db::query_int64(r[1]);
    const int harmful = db::query_int64(r[2]) != 0 ? 1 : 0;
    const std::string where = fmt::format("direction_sums of cell {} at layer {}", cell_id, layer);
    const std::vector<float> values = floats_from_hex(db::query_text(r[4]), where);
    CellSums& sums = cells[cell_id];
    auto& by_layer = sums.sum[harmful];
    if (static_cast<std::int64_t>(by_layer.size()) <= layer) by_layer.resize(static_cast<std::size_t>(layer + 1));
    auto& sum = by_layer[static_cast<std::size_t>(layer)];
    if (sum.empty()) sum.assign(values.size(), 0.0);
    KVSAFE_CHECK(sum.size() == values.size(), where, ": ", values.size(), " values where other shards have ",
                 sum.size());
    for (std::size_t i = 0; i < values.size(); ++i) sum[i] += values[i];
    if (layer == 0) sums.prompts[harmful] += db::query_int64(r[3]);
  }
  return cells;
}

// The class means of a cell, per layer; empty when a class or a layer is missing.
std::vector<std::vector<double>> means(const CellSums& sums, int harmful) {
  const auto& by_layer = sums.sum[harmful];
  const std::int64_t n = sums.prompts[harmful];
  if (n == 0 || by_layer.empty()) return {};
  std::vector<std::vector<double>> out;
  for (const auto& sum : by_layer) {
    if (sum.empty()) return {};
    std::vector<double> mean(sum.size());
    for (std::size_t i = 0; i < sum.size(); ++i) mean[i] = sum[i] / static_cast<double>(n);
    out.push_back(std::move(mean));
  }
  return out;
}

std::string percent(double fraction) {
  return fmt::format("{:.1f}%", 100.0 * fraction);
}

// The flips of the run summary's refusal groups of `group.model`, paired with the group's
// quantizers by kv label.
void predict(DirectionGroup& group, const RunSummary& summary, const RefusalDirectionReportOptions& options) {
  for (const SummaryGroup& refusal : summary.groups) {
    if (refusal.model != group.model || refusal.steered != group.steered || refusal.task != "refusal") continue;
    ErosionPrediction prediction{.benchmark = refusal.benchmark, .setting = refusal.setting};
    const KvSummaryRow* base = nullptr;
    for (const KvSummaryRow& row : refusal.rows) {
      if (row.baseline) base = &row;
    }
    std::int64_t refused = base != nullptr ? base->refusal.rate.successes : 0;
    for (const DirectionCell& cell : group.cells) {
      if (!cell.mean_erosion) continue;
      for (const KvSummaryRow& row : refusal.rows) {
        if (row.kv_label != cell.kv_label || row.status != "done" || !row.flip || row.flip->trials == 0) continue;
        prediction.points.push_back({.kv_label = cell.kv_label, .mean_erosion = *cell.mean_erosion, .flip = *row.flip});
      }
    }
    if (base == nullptr || base->status != "done") {
      prediction.note = "the full-precision cell is not done";
      prediction.points.clear();
    } else if (refused == 0) {
      prediction.note = fmt::format("undefined: the baseline refused 0 of {} prompts, so no flip is defined",
                                    base->refusal.rate.trials);
      prediction.points.clear();
    } else if (prediction.points.empty()) {
      continue;  // no quantizer in common: not a group this calibration entry speaks to
    }
    std::vector<double> erosion, flip;
    for (const ErosionFlipPoint& p : prediction.points) {
      erosion.push_back(p.mean_erosion);
      flip.push_back(p.flip.rate);
    }
    if (prediction.note.empty()) {
      prediction.correlation = eval::spearman(erosion, flip);
      if (!prediction.correlation) {
        prediction.note =
            prediction.points.size() < 3
                ? fmt::format("{} quantizer(s) with both numbers: a rank correlation needs 3", prediction.points.size())
                : "undefined: the erosions or the flips are all tied";
      } else if (refused < options.min_baseline_refusals) {
        prediction.note = fmt::format("the baseline refused only {} of {} prompts: the flips rest on {} prompt(s)",
                                      refused, base->refusal.rate.trials, refused);
      }
    }
    group.predictions.push_back(std::move(prediction));
  }
}

}  // namespace

RefusalDirectionReport read_refusal_direction_report(const std::filesystem::path& db,
                                                     const RefusalDirectionReportOptions& options) {
  RefusalDirectionReport report;
  const std::string in_experiment =
      options.experiment_id
          ? fmt::format(" AND c.id IN (SELECT cell_id FROM experiment_cells WHERE experiment_id = {})",
                        *options.experiment_id)
          : std::string();
  const db::QueryResult cell_rows = db::run_readonly_query(
      db,
      "SELECT c.id, c.model, c.canonical_json, c.status, k.label, k.effective_bits FROM cells c JOIN kv_specs k ON "
      "k.hash = c.kv_hash WHERE c.task = 'refusal_direction'" +
          in_experiment + " ORDER BY c.model, c.id");
  if (cell_rows.rows.empty()) return report;
  const std::map<std::string, CellSums> sums = read_sums(db);

  // (model name, calibration setting, the model's identity JSON) -> cells
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<DirectionCell>> grouped;
  for (const auto& r : cell_rows.rows) {
    const std::string model = db::query_text(r[1]);
    if (options.model && *options.model != model) continue;
    DirectionCell cell{.cell_id = db::query_text(r[0]),
                       .kv_label = db::query_text(r[4]),
                       .effective_bits = db::query_double(r[5]).value_or(16),
                       .status = db::query_text(r[3])};
    if (auto it = sums.find(cell.cell_id); it != sums.end()) {
      cell.harmful_prompts = it->second.prompts[1];
      cell.harmless_prompts = it->second.prompts[0];
    }
    const std::string canonical = db::query_text(r[2]);
    const nlohmann::json parsed = nlohmann::json::parse(canonical, nullptr, /*allow_exceptions=*/false);
    const std::string identity =
        parsed.is_object() && parsed.contains("model") ? parsed.at("model").dump() : std::string();
    grouped[{model, cell_setting(canonical), identity}].push_back(std::move(cell));
  }

  const RunSummary summary =
      summarize_run(db, {.min_baseline_refusals = options.min_baseline_refusals, .judge = options.judge});
  for (auto& [key, cells] : grouped) {
    DirectionGroup group{.model = std::get<0>(key), .setting = std::get<1>(key)};
    {
      const nlohmann::json identity = nlohmann::json::parse(std::get<2>(key), nullptr, /*allow_exceptions=*/false);
      if (identity.is_object()) group.steered = cell_steering(nlohmann::json{{"model", identity}}.dump());
    }
    const auto base_it =
        std::find_if(cells.begin(), cells.end(), [](const DirectionCell& c) { return c.kv_label == "none"; });
    std::vector<std::vector<double>> harmful_full, harmless_full;
    if (base_it == cells.end()) {
      group.notes.push_back("no full-precision cell (kv none) in this calibration entry: no direction to erode");
    } else {
      group.baseline_cell = base_it->cell_id;
      if (base_it->status != "done") {
        group.notes.push_back(
            fmt::format("waiting: the full-precision cell {} is {}", base_it->cell_id.substr(0, 16), base_it->status));
      } else if (auto it = sums.find(base_it->cell_id); it != sums.end()) {
        harmful_full = means(it->second, 1);
        harmless_full = means(it->second, 0);
      }
      if (base_it->status == "done" && (harmful_full.empty() || harmless_full.empty())) {
        group.notes.push_back("the full-precision cell lacks harmful or harmless prompts: no direction");
        harmful_full.clear();
      }
    }
    group.layers = static_cast<std::int64_t>(harmful_full.size());
    if (base_it != cells.end()) {
      group.baseline_harmful = base_it->harmful_prompts;
      group.baseline_harmless = base_it->harmless_prompts;
    }
    for (std::size_t layer = 0; layer < harmful_full.size(); ++layer) {
      std::vector<double> r(harmful_full[layer].size());
      for (std::size_t i = 0; i < r.size(); ++i) r[i] = harmful_full[layer][i] - harmless_full[layer][i];
      group.direction.push_back(std::move(r));
      const auto e =
          eval::layer_erosion(harmful_full[layer], harmless_full[layer], harmful_full[layer], harmless_full[layer]);
      group.direction_norm.push_back(e ? e->direction_norm : 0.0);
    }

    for (DirectionCell& cell : cells) {
      if (cell.kv_label == "none") continue;
      const auto it = sums.find(cell.cell_id);
      if (!harmful_full.empty() && cell.status == "done" && it != sums.end()) {
        const auto harmful_q = means(it->second, 1), harmless_q = means(it->second, 0);
        if (harmful_q.size() != harmful_full.size() || harmless_q.size() != harmless_full.size()) {
          group.notes.push_back(
              fmt::format("{}: its layers or classes differ from the full-precision cell's", cell.kv_label));
        } else {
          double total = 0, weight = 0;  // sum of ‖r‖² e and of ‖r‖² over the layers
          for (std::size_t layer = 0; layer < harmful_full.size(); ++layer) {
            cell.layers.push_back(
                eval::layer_erosion(harmful_full[layer], harmless_full[layer], harmful_q[layer], harmless_q[layer]));
            if (!cell.layers.back()) continue;
            const double e = cell.layers.back()->erosion;
            const double norm2 = cell.layers.back()->direction_norm * cell.layers.back()->direction_norm;
            total += norm2 * e;
            weight += norm2;
            if (!cell.max_erosion || e > *cell.max_erosion) {
              cell.max_erosion = e;
              cell.max_erosion_layer = static_cast<std::int64_t>(layer);
            }
          }
          if (weight > 0) cell.mean_erosion = total / weight;
        }
      } else if (cell.status != "done") {
        group.notes.push_back(fmt::format("waiting: {} is {}", cell.kv_label, cell.status));
      }
      group.cells.push_back(std::move(cell));
    }
    std::stable_sort(group.cells.begin(), group.cells.end(), [](const DirectionCell& a, const DirectionCell& b) {
      return std::make_tuple(-a.effective_bits, a.kv_label) < std::make_tuple(-b.effective_bits, b.kv_label);
    });
    predict(group, summary, options);
    report.groups.push_back(std::move(group));
  }
  return report;
}

void print_refusal_direction_report(std::ostream& out, const RefusalDirectionReport& report) {
  for (const DirectionGroup& g : report.groups) {
    out << "Refusal direction: " << g.model << " / calibration";
    if (!g.setting.empty()) out << "  " << g.setting;
    out << "\n";
    if (!g.steered.empty()) out << "  " << g.steered << "\n";
    if (!g.direction_norm.empty()) {
      out << "  erosion = drop of the harmful prompts' mean projection on the full-precision direction, as a "
             "fraction of the classes' separation (0 none, 1 harmful looks harmless)\n";
      std::string header = fmt::format("  {:>5} {:>10}", "layer", "|r|");
      for (const DirectionCell& c : g.cells) header += fmt::format(" {:>16}", c.kv_label);
      out << header << "\n";
      for (std::size_t layer = 0; layer < g.direction_norm.size(); ++layer) {
        std::string line = fmt::format("  {:>5} {:>10.4g}", layer, g.direction_norm[layer]);
        for (const DirectionCell& c : g.cells) {
          const bool has = layer < c.layers.size() && c.layers[layer].has_value();
          line += fmt::format(" {:>16}", has ? fmt::format("{:.4f}", c.layers[layer]->erosion) : "-");
        }
        out << line << "\n";
      }
      for (const DirectionCell& c : g.cells) {
        if (!c.mean_erosion) continue;
        double min_cosine = 1;
        for (const auto& layer : c.layers) {
          if (layer) min_cosine = std::min(min_cosine, layer->cosine);
        }
        out << fmt::format(
            "  {:<20} mean erosion {:.4f}, largest {:.4f} at layer {}; lowest cos(r_q, r) {:.4f} "
            "({} harmful + {} harmless prompts)\n",
            c.kv_label, *c.mean_erosion, *c.max_erosion, *c.max_erosion_layer, min_cosine, c.harmful_prompts,
            c.harmless_prompts);
      }
    }
    for (const ErosionPrediction& p : g.predictions) {
      out << "  predicts the flips of " << p.benchmark;
      if (!p.setting.empty()) out << " (" << p.setting << ")";
      out << ": ";
      if (p.correlation) {
        out << fmt::format("Spearman rho {:.3f}, p = {:.3g} ({}, n = {} quantizers)\n", p.correlation->rho,
                           p.correlation->p_value,
                           p.correlation->exact ? std::string("exact permutation test")
                                                : fmt::format("{} sampled permutations", eval::kSampledPermutations),
                           p.correlation->n);
      } else {
        out << "no correlation\n";
      }
      for (const ErosionFlipPoint& point : p.points) {
        out << fmt::format("    {:<20} mean erosion {:>8.4f}  flip {} ({}/{})\n", point.kv_label, point.mean_erosion,
                           percent(point.flip.rate), point.flip.successes, point.flip.trials);
      }
      if (!p.note.empty()) out << "    note: " << p.note << "\n";
    }
    for (const std::string& note : g.notes) out << "  note: " << note << "\n";
  }
}

}  // namespace kvsafe::report
