#include "eval/refusal_direction_file.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace kvsafe::eval {

void write_refusal_direction_file(const std::filesystem::path& path, const RefusalDirectionFile& file) {
  nlohmann::json j{{"format", kRefusalDirectionFormat},
                   {"model", file.model},
                   {"cell_id", file.cell_id},
                   {"setting", file.setting},
                   {"harmful_prompts", file.harmful_prompts},
                   {"harmless_prompts", file.harmless_prompts},
                   {"directions", file.directions}};
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << j.dump() << "\n";
  out.close();
  if (!out) throw Error("cannot write the refusal direction to " + path.string());
}

RefusalDirectionFile read_refusal_direction_file(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(where + ": cannot read the refusal direction file (no such file?)");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw InputError(where + ": not a JSON object");
  if (j.value("format", std::string()) != kRefusalDirectionFormat) {
    throw InputError(where + ": format is not " + std::string(kRefusalDirectionFormat) +
                     " (write it with `kvsafe diagnose DB --export-direction FILE`)");
  }
  RefusalDirectionFile file;
  try {
    file.model = j.at("model").get<std::string>();
    file.cell_id = j.at("cell_id").get<std::string>();
    file.setting = j.at("setting").get<std::string>();
    file.harmful_prompts = j.at("harmful_prompts").get<std::int64_t>();
    file.harmless_prompts = j.at("harmless_prompts").get<std::int64_t>();
    file.directions = j.at("directions").get<std::vector<std::vector<double>>>();
  } catch (const nlohmann::json::exception& error) {
    throw InputError(where + ": " + error.what());
  }
  if (file.directions.empty()) throw InputError(where + ": `directions` has no layer");
  for (std::size_t layer = 0; layer < file.directions.size(); ++layer) {
    const auto& values = file.directions[layer];
    if (values.empty() || values.size() != file.directions[0].size()) {
      throw InputError(where + ": directions[" + std::to_string(layer) + "] has " + std::to_string(values.size()) +
                       " values where layer 0 has " + std::to_string(file.directions[0].size()));
    }
    for (const double v : values) {
      if (!std::isfinite(v)) throw InputError(where + ": directions[" + std::to_string(layer) + "] is not finite");
    }
  }
  return file;
}

}  // namespace kvsafe::eval
