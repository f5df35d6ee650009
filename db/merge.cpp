// `kvsafe merge`: the inputs' copies, the checks made before OUT is written, and the flow. The
// copy of one input into OUT is merge_input.cpp.
#include "db/merge.h"

#include <stdlib.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <system_error>
#include <utility>

#include "common/error.h"
#include "db/connection.h"
#include "db/db_error.h"
#include "db/merge_internal.h"
#include "db/schema.h"
#include "db/store.h"
#include "db/writer_lock.h"

namespace kvsafe::db {
namespace {

namespace fs = std::filesystem;
using merge_detail::ShardDifference;

// A folder of its own for the inputs' copies, removed with them when the merge ends.
class ScratchDir {
 public:
  explicit ScratchDir(const fs::path& parent) {
    std::string pattern = (parent / ".kvsafe-merge-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw DbError(kvsafe::detail::concat("merge: cannot make a scratch folder in ", parent.string(),
                                           " for the inputs' copies; pass a writable scratch folder"));
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct PreparedInput {
  std::string display;     // as given
  fs::path copy;           // the checked (and migrated) copy in the scratch folder
  int schema_version = 0;  // the input's own
};

[[noreturn]] void refuse_input(const fs::path& input, const std::string& why, int sqlite_code = 0) {
  throw DbError(kvsafe::detail::concat("merge: input ", input.string(), " ", why, "; nothing was merged"), sqlite_code);
}

// Reads the input (read-only) once to check it, then copies it with VACUUM INTO (a consistent
// snapshot even while a run writes it) and migrates the copy when it is older.
PreparedInput prepare_input(const fs::path& input, const fs::path& copy) {
  std::error_code ec;
  if (!fs::exists(input, ec)) refuse_input(input, "does not exist");
  if (!fs::is_regular_file(input, ec)) refuse_input(input, "is not a file");
  PreparedInput prepared{.display = input.string(), .copy = copy};
  std::unique_ptr<Connection> connection;
  try {
    connection = std::make_unique<Connection>(input, ConnectionOptions{.read_only = true, .create = false});
    prepared.schema_version = schema_version(*connection);
  } catch (const DbError& error) {
    refuse_input(input, kvsafe::detail::concat("cannot be read: ", error.what()), error.sqlite_code());
  }
  if (prepared.schema_version > latest_schema_version()) {
    refuse_input(input,
                 kvsafe::detail::concat("has schema version ", prepared.schema_version, ", this kvsafe knows up to ",
                                        latest_schema_version(), "; upgrade kvsafe"));
  }
  if (prepared.schema_version == 0) refuse_input(input, "is not a kvsafe results database (schema version 0)");
  std::vector<std::string> problems;
  try {
    Statement check(*connection, "PRAGMA quick_check(5)");
    while (check.step()) problems.push_back(check.column_text(0));
  } catch (const DbError& error) {
    refuse_input(input, kvsafe::detail::concat("is damaged: ", error.what()), error.sqlite_code());
  }
  if (problems != std::vector<std::string>{"ok"}) {
    std::string joined;
    for (const std::string& problem : problems) joined += (joined.empty() ? "" : "; ") + problem;
    refuse_input(input, "is damaged (PRAGMA quick_check: " + joined + ")");
  }
  try {
    Statement vacuum(*connection, "VACUUM INTO ?1");
    vacuum.bind(1, copy.string()).run();
  } catch (const DbError& error) {
    refuse_input(input, kvsafe::detail::concat("could not be copied to ", copy.string(), ": ", error.what()),
                 error.sqlite_code());
  }
  connection.reset();
  if (prepared.schema_version < latest_schema_version()) {
    Connection migrated(copy, ConnectionOptions{.create = false});
    migrate(migrated);
    spdlog::info("merge: {} has schema version {}; its copy was migrated to {}", prepared.display,
                 prepared.schema_version, latest_schema_version());
  }
  return prepared;
}

// ATTACH for the life of the object (never inside a transaction: SQLite refuses).
class Attachment {
 public:
  Attachment(Connection& connection, const fs::path& file, std::string schema)
      : connection_(connection), schema_(std::move(schema)) {
    Statement attach(connection_, "ATTACH DATABASE ?1 AS " + schema_);
    attach.bind(1, file.string()).run();
  }
  ~Attachment() {
    try {
      connection_.exec("DETACH DATABASE " + schema_);
    } catch (const Error& error) {
      spdlog::warn("merge: {}", error.what());
    }
  }
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;

 private:
  Connection& connection_;
  std::string schema_;
};

// What cannot be merged at all (throws), and the shards two databases hold done with different
// answers (appended to `conflicts`, `a` as the existing side).
void check_pair(Connection& connection, std::string_view a, const std::string& a_display, std::string_view b,
                const std::string& b_display, std::vector<MergeConflict>& conflicts) {
  {
    Statement prompts(connection, fmt::format("SELECT x.benchmark, x.prompt_index, x.prompt_id FROM {0}.prompts x "
                                              "JOIN {1}.prompts y ON y.benchmark = x.benchmark AND "
                                              "y.prompt_index = x.prompt_index WHERE x.text_sha256 <> y.text_sha256 "
                                              "ORDER BY 1, 2 LIMIT 1",
                                              a, b));
    if (prompts.step()) {
      throw DbError(kvsafe::detail::concat(
          "merge: benchmark '", prompts.column_text(0), "' prompt ", prompts.column_int64(1), " (",
          prompts.column_text(2), ") has one text in ", a_display, " and another in ", b_display,
          ": the data set changed under the same index, so their results cannot be merged; nothing was merged"));
    }
  }
  {
    Statement layout(connection, fmt::format("SELECT x.cell_id, x.begin, x.end, y.begin, y.end FROM {0}.shards x "
                                             "JOIN {1}.shards y ON y.cell_id = x.cell_id AND y.begin < x.end AND "
                                             "x.begin < y.end WHERE y.begin <> x.begin OR y.end <> x.end "
                                             "ORDER BY 1, 2 LIMIT 1",
                                             a, b));
    if (layout.step()) {
      throw DbError(kvsafe::detail::concat(
          "merge: cell ", layout.column_text(0), " is cut into shards differently in ", a_display, " ([",
          layout.column_int64(1), ", ", layout.column_int64(2), ")) and in ", b_display, " ([", layout.column_int64(3),
          ", ", layout.column_int64(4),
          ")); merge databases whose grids ran with the same execution.shard_size; nothing was merged"));
    }
  }
  std::vector<ShardKey> both_done;
  {
    Statement done(connection, fmt::format("SELECT x.cell_id, x.begin, x.end FROM {0}.shards x JOIN {1}.shards y "
                                           "ON y.cell_id = x.cell_id AND y.begin = x.begin "
                                           "WHERE x.status = 'done' AND y.status = 'done' ORDER BY 1, 2",
                                           a, b));
    while (done.step()) {
      both_done.push_back(
          ShardKey{.cell_id = done.column_text(0), .begin = done.column_int64(1), .end = done.column_int64(2)});
    }
  }
  merge_detail::StatementCache statements(connection);
  for (const ShardKey& shard : both_done) {
    const ShardDifference difference = merge_detail::shard_difference(statements, a, b, shard);
    if (difference.empty()) continue;
    conflicts.push_back(MergeConflict{
        .shard = shard,
        .existing = merge_detail::shard_provenance(statements, a, a_display, shard),
        .incoming = merge_detail::shard_provenance(statements, b, b_display, shard),
        .differing_prompts = std::vector<std::int64_t>(difference.prompts.begin(), difference.prompts.end()),
        .direction_sums_differ = difference.direction_sums,
    });
  }
}

std::string describe_provenance(const ShardProvenance& side) {
  std::string text = side.database;
  if (!side.merged_from.empty()) text += " (merged from " + side.merged_from + ")";
  if (side.run_id.has_value()) {
    text += fmt::format(": run {} started {}", *side.run_id, side.run_started_at);
    text += side.slurm_job_id.empty() ? ", not under SLURM" : ", SLURM job " + side.slurm_job_id;
  } else {
    text += ": no run recorded for it";
  }
  if (!side.worker.empty()) text += ", worker " + side.worker;
  if (!side.finished_at.empty()) text += ", committed " + side.finished_at;
  return text;
}

std::string describe_counts(const MergeCounts& counts) {
  return fmt::format(
      "cells {} copied, {} already there; shards {} copied, {} identical, {} conflicting ({} replaced), {} not done; "
      "generations {} copied, {} identical; runs {}, judgements {}, experiments {}, diagnoses {} copied",
      counts.cells_copied, counts.cells_present, counts.shards_copied, counts.shards_identical,
      counts.shards_conflicting, counts.shards_replaced, counts.shards_not_done, counts.generations_copied,
      counts.generations_identical, counts.runs_copied, counts.judgements_copied, counts.experiments_copied,
      counts.diagnoses_copied);
}

}  // namespace

std::string_view to_string(Prefer prefer) {
  switch (prefer) {
    case Prefer::kNone:
      return "none";
    case Prefer::kFirst:
      return "first";
    case Prefer::kNewest:
      return "newest";
  }
  KVSAFE_ASSERT(false, "unknown Prefer ", static_cast<int>(prefer));
}

std::optional<Prefer> parse_prefer(std::string_view text) {
  for (const Prefer prefer : {Prefer::kNone, Prefer::kFirst, Prefer::kNewest}) {
    if (to_string(prefer) == text) return prefer;
  }
  return std::nullopt;
}

MergeCounts& MergeCounts::operator+=(const MergeCounts& other) {
  experiments_copied += other.experiments_copied;
  cells_copied += other.cells_copied;
  cells_present += other.cells_present;
  shards_copied += other.shards_copied;
  shards_identical += other.shards_identical;
  shards_not_done += other.shards_not_done;
  shards_conflicting += other.shards_conflicting;
  shards_replaced += other.shards_replaced;
  generations_copied += other.generations_copied;
  generations_identical += other.generations_identical;
  runs_copied += other.runs_copied;
  judgements_copied += other.judgements_copied;
  diagnoses_copied += other.diagnoses_copied;
  return *this;
}

MergeCounts MergeResult::total() const {
  MergeCounts total;
  for (const MergeInputResult& input : inputs) total += input.counts;
  return total;
}

const std::vector<std::string_view>& merged_tables() {
  static const std::vector<std::string_view> tables = {
      "experiments", "models",           "kv_specs",       "benchmarks",      "prompts",
      "cells",       "experiment_cells", "runs",           "shards",          "generations",
      "ppl_windows", "key_magnitudes",   "direction_sums", "metrics",         "judgements",
      "diagnoses",   "pcr_layers",       "pcr_channels",   "diagnosis_roles", "ifeval_verdicts"};
  return tables;
}

MergeResult merge_databases(const fs::path& out, const std::vector<fs::path>& inputs, const MergeOptions& options) {
  KVSAFE_CHECK(!inputs.empty(), "merge: no input database given");
  MergeResult result;
  result.out = out.string();
  std::error_code ec;
  const bool out_exists = fs::exists(out, ec);
  for (const fs::path& input : inputs) {
    if (out_exists && fs::exists(input, ec) && fs::equivalent(out, input, ec)) {
      throw DbError(kvsafe::detail::concat("merge: input ", input.string(), " is the output database ", out.string(),
                                           " itself; nothing was merged"));
    }
  }
  // NOTE: an existing OUT is locked before the (possibly long) copies, so a merge into a
  // database a run writes is refused at once; a new one is locked when it is created.
  std::unique_ptr<WriterLock> lock;
  if (out_exists) lock = WriterLock::acquire(out, options.holder_description);

  fs::path scratch_parent = options.scratch_dir;
  if (scratch_parent.empty()) {
    // NOTE: OUT's folder may not exist yet: the nearest one that does (nothing is created
    // before the inputs are checked).
    scratch_parent = fs::absolute(out, ec).parent_path();
    while (!fs::is_directory(scratch_parent, ec) && scratch_parent.has_relative_path()) {
      scratch_parent = scratch_parent.parent_path();
    }
  }
  ScratchDir scratch(scratch_parent);
  std::vector<PreparedInput> prepared;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    prepared.push_back(prepare_input(inputs[i], scratch.path() / fmt::format("input-{}.db", i)));
  }

  // Every pair of inputs, then OUT against each input, compared before OUT is written. OUT is
  // compared through a checked copy like the inputs, so a refused merge never opens it for
  // writing (which would migrate an older OUT).
  std::vector<PreparedInput> compared = prepared;
  if (out_exists) compared.insert(compared.begin(), prepare_input(out, scratch.path() / "out.db"));
  if (compared.size() > 1) {
    Connection pairs(":memory:", ConnectionOptions{});
    for (std::size_t i = 0; i < compared.size(); ++i) {
      Attachment a(pairs, compared[i].copy, "a");
      for (std::size_t j = i + 1; j < compared.size(); ++j) {
        Attachment b(pairs, compared[j].copy, "b");
        check_pair(pairs, "a", compared[i].display, "b", compared[j].display, result.conflicts);
      }
    }
  }
  if (!result.conflicts.empty() && options.prefer == Prefer::kNone) return result;

  auto store = Store::open(
      out, StoreOptions{.take_writer_lock = lock == nullptr, .holder_description = options.holder_description});
  Connection& connection = store->connection();

  // The conflicts found above are found again, in order, as each input is merged, each with
  // the resolution it gets and OUT's side as it is then.
  result.conflicts.clear();
  merge_detail::ShardOrigins origins;
  for (const PreparedInput& input : prepared) {
    MergeInputResult merged{.path = input.display, .schema_version = input.schema_version};
    {
      Attachment src(connection, input.copy, "src");
      Transaction transaction(connection);
      merged.counts = merge_detail::merge_attached_input(
          connection, {.out_display = result.out, .input_display = input.display, .prefer = options.prefer}, origins,
          result);
      transaction.commit();
    }
    spdlog::debug("merge: {} into {}: {}", input.display, result.out, describe_counts(merged.counts));
    result.inputs.push_back(std::move(merged));
  }
  result.merged = true;
  return result;
}

std::string format_merge_result(const MergeResult& result) {
  std::string text;
  for (const MergeConflict& conflict : result.conflicts) {
    text += fmt::format("conflict: shard [{}, {}) of cell {}:", conflict.shard.begin, conflict.shard.end,
                        conflict.shard.cell_id);
    if (!conflict.differing_prompts.empty()) {
      constexpr std::size_t kShown = 10;
      std::string prompts;
      for (std::size_t i = 0; i < std::min(kShown, conflict.differing_prompts.size()); ++i) {
        prompts += (i == 0 ? "" : ", ") + std::to_string(conflict.differing_prompts[i]);
      }
      if (conflict.differing_prompts.size() > kShown) {
        prompts += fmt::format(" and {} more", conflict.differing_prompts.size() - kShown);
      }
      text += fmt::format(" the answers to prompts {} differ", prompts);
    }
    if (conflict.direction_sums_differ) {
      text += conflict.differing_prompts.empty() ? " the residual sums differ" : "; the residual sums differ";
    }
    text += "\n  " + describe_provenance(conflict.existing) + "\n  " + describe_provenance(conflict.incoming) + "\n";
    switch (conflict.resolution) {
      case ConflictResolution::kUnresolved:
        break;
      case ConflictResolution::kKeptExisting:
        text += "  kept " +
                (conflict.existing.merged_from.empty() ? conflict.existing.database : conflict.existing.merged_from) +
                "'s\n";
        break;
      case ConflictResolution::kTookIncoming:
        text += "  took " + conflict.incoming.database + "'s\n";
        break;
    }
  }
  if (!result.merged) {
    text += fmt::format(
        "{} conflicting shard(s): {} was not changed; pass --prefer first (keep what it, or the earlier input, "
        "has) or --prefer newest (keep the shard whose run started later)\n",
        result.conflicts.size(), result.out);
    return text;
  }
  for (const std::string& note : result.notes) text += "note: " + note + "\n";
  for (const MergeInputResult& input : result.inputs) {
    text += fmt::format("{}{}: {}\n", input.path,
                        input.schema_version < latest_schema_version()
                            ? fmt::format(" (schema version {}, migrated on a copy)", input.schema_version)
                            : "",
                        describe_counts(input.counts));
  }
  text += fmt::format("merged {} input(s) into {}: {}\n", result.inputs.size(), result.out,
                      describe_counts(result.total()));
  return text;
}

}  // namespace kvsafe::db
