#pragma once
// The refusal direction as a file: what `kvsafe diagnose DB --export-direction FILE` writes from
// a full-precision calibration cell, and what a grid's `steer.direction_from` reads (issue 25's
// steered testbed). JSON, so a person can see where it came from:
//   {"format": "kvsafe-refusal-direction/1", "model": "smollm2-135m", "cell_id": "...",
//    "setting": "seed=0", "harmful_prompts": 128, "harmless_prompts": 128,
//    "directions": [[...hidden_size values...], ... one per layer]}
// directions[l] = mean harmful − mean harmless residual after layer l at the last prompt token
// (unnormalised, as Arditi et al.), in float64 written in shortest round-trip form.
// Target kvsafe_eval_stats (torch-free).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kvsafe::eval {

inline constexpr const char* kRefusalDirectionFormat = "kvsafe-refusal-direction/1";

struct RefusalDirectionFile {
  std::string model{};    // the grid's model name the direction was measured on
  std::string cell_id{};  // the full-precision calibration cell
  std::string setting{};  // its calibration entry's settings ("seed=0", "sample=32 seed=1")
  std::int64_t harmful_prompts = 0;
  std::int64_t harmless_prompts = 0;
  std::vector<std::vector<double>> directions{};  // [layer][hidden]
};

// Writes `file` to `path` (replacing it). Throws Error when it cannot be written.
void write_refusal_direction_file(const std::filesystem::path& path, const RefusalDirectionFile& file);

// Throws InputError naming the path and what is wrong: missing or unreadable file, not JSON,
// another format, a missing key, layers of different sizes, a value that is not a finite number.
RefusalDirectionFile read_refusal_direction_file(const std::filesystem::path& path);

}  // namespace kvsafe::eval
