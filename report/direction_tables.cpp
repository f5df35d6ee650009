// kvsafe's tables beyond the paper, from the refusal direction report (report/paper_tables.h).
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "report/paper_tables.h"

namespace kvsafe::report {

std::vector<Table> direction_tables(const RefusalDirectionReport& report) {
  Table erosion{.name = "refusal_direction_erosion",
                .caption =
                    "Erosion of the refusal direction (harmful minus harmless mean residual at the last prompt "
                    "token, full precision) under each KV quantizer: the drop of the harmful prompts' "
                    "projection as a fraction of the classes' separation, averaged over layers with weights "
                    "|r|^2; 0 = unchanged, 1 = harmful prompts sit where harmless ones did. Beyond the paper.",
                .columns = {"Model", "KV", "Mean erosion", "Largest", "At layer", "Lowest cos", "Prompts"},
                .groups = {},
                .rows = {}};
  Table prediction{.name = "refusal_direction_prediction",
                   .caption =
                       "How well the mean erosion orders the quantizers as their conditional flips do: "
                       "Spearman's rho with a two-sided permutation p-value (exact up to 8 quantizers). "
                       "Beyond the paper.",
                   .columns = {"Model", "Flips of", "Quantizers", "Spearman rho", "p", "Note"},
                   .groups = {},
                   .rows = {}};
  for (const DirectionGroup& g : report.groups) {
    const std::string model = table_model_name(g.model, g.steered);
    for (const DirectionCell& c : g.cells) {
      if (!c.mean_erosion) continue;
      double lowest = 1;
      for (const auto& layer : c.layers) {
        if (layer) lowest = std::min(lowest, layer->cosine);
      }
      erosion.rows.push_back({cell_text(model), cell_text(c.kv_label), cell_number(*c.mean_erosion, 4),
                              cell_number(*c.max_erosion, 4), cell_number(static_cast<double>(*c.max_erosion_layer), 0),
                              cell_number(lowest, 4),
                              cell_text(fmt::format("{} + {}", c.harmful_prompts, c.harmless_prompts))});
    }
    for (const ErosionPrediction& p : g.predictions) {
      prediction.rows.push_back(
          {cell_text(model), cell_text(p.benchmark + (p.setting.empty() ? "" : " (" + p.setting + ")")),
           cell_number(static_cast<double>(p.points.size()), 0),
           p.correlation ? cell_number(p.correlation->rho, 3) : cell_not_run(),
           p.correlation ? cell_number(p.correlation->p_value, 3) : cell_not_run(), cell_text(p.note)});
    }
  }
  std::vector<Table> out;
  if (!erosion.rows.empty()) out.push_back(std::move(erosion));
  if (!prediction.rows.empty()) out.push_back(std::move(prediction));
  return out;
}

}  // namespace kvsafe::report
