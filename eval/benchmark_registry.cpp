#include "eval/benchmark_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <system_error>

#include "common/error.h"
#include "common/sha256.h"
#include "eval/prompt_loaders.h"
#include "eval/prompt_sampling.h"

namespace kvsafe::eval {
namespace {

std::string known_names() {
  std::string names;
  for (const BenchmarkInfo& info : benchmark_table()) names += (names.empty() ? "" : ", ") + std::string(info.name);
  return names;
}

// not_found naming the first missing file, or ok.
Status check_files(const std::filesystem::path& data_dir, const std::vector<std::string>& files) {
  for (const std::string& file : files) {
    std::error_code error;
    if (!std::filesystem::is_regular_file(data_dir / file, error)) {
      return Status::not_found(missing_data_message(data_dir, file));
    }
  }
  return Status::ok();
}

std::vector<std::size_t> choose(const std::vector<Prompt>& prompts, const LoadOptions& options) {
  std::vector<std::size_t> chosen;
  const auto k = static_cast<std::size_t>(options.sample);
  if (options.balanced) {
    // NOTE: each class gets its own draw with its own seed (seed, seed + 1), so adding
    // benign prompts to a file never changes which harmful ones are drawn.
    for (const bool harmful : {true, false}) {
      std::vector<std::size_t> members;
      for (std::size_t i = 0; i < prompts.size(); ++i) {
        if (prompts[i].harmful == harmful) members.push_back(i);
      }
      for (const std::size_t pick : sample_indices(members.size(), k, options.seed + (harmful ? 0 : 1))) {
        chosen.push_back(members[pick]);
      }
    }
    std::sort(chosen.begin(), chosen.end());
    return chosen;
  }
  return sample_indices(prompts.size(), k, options.seed);
}

}  // namespace

std::int64_t Benchmark::harmful_count() const {
  return std::count_if(prompts.begin(), prompts.end(), [](const Prompt& p) { return p.harmful; });
}

std::int64_t Benchmark::benign_count() const {
  return static_cast<std::int64_t>(prompts.size()) - harmful_count();
}

std::string missing_data_message(const std::filesystem::path& data_dir, std::string_view relative_path) {
  return fmt::format(
      "benchmark file {} is missing from the data directory {} (set $KVSAFE_DATA to the folder that holds it, or "
      "run `kvsafe datasets pull` to download the benchmarks into the cache)",
      (data_dir / relative_path).string(), data_dir.string());
}

Status load_benchmark(std::string_view name, const std::filesystem::path& data_dir, const LoadOptions& options,
                      Benchmark* out) {
  const BenchmarkInfo* info = find_benchmark(name);
  if (info == nullptr) {
    return Status::invalid_input(fmt::format("unknown benchmark '{}' (known: {})", name, known_names()));
  }
  if (info->format == BenchmarkFormat::kConversations) {
    return Status::invalid_input(fmt::format(
        "benchmark '{}' is a file of your own: the grid entry names it with `file:` (load_conversations)", name));
  }
  if (info->format == BenchmarkFormat::kText) {
    return Status::unsupported(
        fmt::format("benchmark '{}' is a text corpus for perplexity, not a prompt set (read it with "
                    "read_corpus_text)",
                    name));
  }
  if (options.sample < 0 || options.limit < 0) {
    return Status::invalid_input(fmt::format("{}: sample and limit must be >= 0", name));
  }
  if (options.balanced && options.sample == 0) {
    return Status::invalid_input(fmt::format("{}: balanced sampling needs sample > 0", name));
  }
  if (!options.split.empty() && info->format != BenchmarkFormat::kJson) {
    return Status::invalid_input(fmt::format("{}: only calibration has splits", name));
  }

  std::vector<std::string> files(info->files.begin(), info->files.end());
  if (info->format == BenchmarkFormat::kJson) {
    const std::string split = options.split.empty() ? "train" : options.split;
    if (split != "train" && split != "val" && split != "test") {
      return Status::invalid_input(fmt::format("{}: split must be train, val or test, got '{}'", name, split));
    }
    files = {"refusal_direction/splits/harmful_" + split + ".json",
             "refusal_direction/splits/harmless_" + split + ".json"};
  }
  if (Status status = check_files(data_dir, files); !status.is_ok()) return status;

  std::vector<Prompt> prompts;
  const auto append = [&prompts](std::vector<Prompt> more) {
    for (Prompt& prompt : more) prompts.push_back(std::move(prompt));
  };
  switch (info->format) {
    case BenchmarkFormat::kLines:
      for (const std::string& file : files) {
        append(detail::load_prompt_lines(data_dir, file, std::filesystem::path(file).stem().string()));
      }
      break;
    case BenchmarkFormat::kCsv:
      append(detail::load_prompt_csv(data_dir, files.front(), name));
      break;
    case BenchmarkFormat::kJson:
      append(detail::load_prompt_json(data_dir, files[0], true));
      append(detail::load_prompt_json(data_dir, files[1], false));
      break;
    case BenchmarkFormat::kIfevalJsonLines:
      append(detail::load_ifeval_jsonl(data_dir, files.front()));
      break;
    case BenchmarkFormat::kText:
    case BenchmarkFormat::kConversations:
      KVSAFE_ASSERT(false, "handled above");
  }

  if (options.sample > 0) {
    std::vector<Prompt> sampled;
    for (const std::size_t index : choose(prompts, options)) sampled.push_back(std::move(prompts[index]));
    prompts = std::move(sampled);
  }
  if (options.limit > 0 && static_cast<std::size_t>(options.limit) < prompts.size()) {
    prompts.resize(static_cast<std::size_t>(options.limit));
  }

  std::string content = detail::content_sha256(prompts);
  *out = Benchmark{.name = std::string(name),
                   .data_dir = data_dir,
                   .prompts = std::move(prompts),
                   .content_sha256 = std::move(content)};
  return Status::ok();
}

namespace detail {

std::string content_sha256(const std::vector<Prompt>& prompts) {
  Sha256 content;
  for (const Prompt& prompt : prompts) content.update(prompt.prompt_id + "\t" + prompt.text_sha256 + "\n");
  return content.finish_hex();
}

}  // namespace detail

Status read_corpus_text(std::string_view name, const std::filesystem::path& data_dir, CorpusJoin join,
                        std::string* out) {
  const BenchmarkInfo* info = find_benchmark(name);
  if (info == nullptr || info->format != BenchmarkFormat::kText) {
    return Status::invalid_input(fmt::format("'{}' is not a text corpus (wikitext is)", name));
  }
  const std::string file(info->files.front());
  if (Status status = check_files(data_dir, {file}); !status.is_ok()) return status;
  std::string raw = detail::read_file_bytes(data_dir / file);
  if (join == CorpusJoin::kRaw) {
    *out = std::move(raw);
    return Status::ok();
  }
  // The Hugging Face wikitext builder yields one row per line with its "\n", and "" for a
  // line that is only whitespace; the paper's code joins the rows with "\n\n".
  std::string joined;
  joined.reserve(raw.size() * 2);
  std::size_t start = 0;
  bool first = true;
  while (start < raw.size()) {
    std::size_t end = raw.find('\n', start);
    end = end == std::string::npos ? raw.size() : end + 1;
    const std::string_view line = std::string_view(raw).substr(start, end - start);
    start = end;
    if (!first) joined += "\n\n";
    first = false;
    if (line.find_first_not_of(" \t\r\n\f\v") != std::string_view::npos) joined += line;
  }
  *out = std::move(joined);
  return Status::ok();
}

}  // namespace kvsafe::eval
