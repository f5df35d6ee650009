#pragma once
// `kvsafe report DB --out DIR`: one self-contained index.html a person can read offline: the run
// summary's one-sentence conclusion, the figures as inline SVG, every table the database fills
// (report/table.h's HTML), the tables it cannot fill yet with what they need, and the
// provenance: experiments and their grids, runs (when, where, the git commit, the exit), models
// with their sha256 and chat template, KV specs, judges, and every failed cell with its error.
// No script, no external file: nothing to fetch, nothing to run.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "report/figures.h"
#include "report/table.h"

namespace kvsafe::report {

struct ProvenanceExperiment {
  std::string name{}, grid_path{}, grid_sha256{}, created_at{};
};
struct ProvenanceRun {
  std::int64_t id = 0;
  std::string experiment{}, started_at{}, ended_at{}, command_line{}, hosts{}, git_commit{}, status{}, slurm_job_id{};
  std::int64_t ranks = 0;
  std::string exit_code{};  // "" while running or when killed
};
struct ProvenanceModel {
  std::string name{}, path{}, sha256{}, architecture{}, chat_template{};
  std::int64_t n_params = 0;
};
struct ProvenanceKv {
  std::string label{}, canonical_json{};
  double effective_bits = 16;
};
struct ProvenanceFailure {
  std::string cell_id{}, model{}, benchmark{}, kv_label{}, error{};
  std::int64_t attempts = 0;
};
struct ProvenanceJudge {
  std::string label{};
  std::int64_t run_verdicts = 0, rejudged_verdicts = 0;
};

struct Provenance {
  std::vector<ProvenanceExperiment> experiments{};
  std::vector<ProvenanceRun> runs{};
  std::vector<ProvenanceModel> models{};
  std::vector<ProvenanceKv> kv_specs{};
  std::vector<ProvenanceJudge> judges{};
  std::vector<ProvenanceFailure> failures{};
  std::int64_t cells = 0, cells_done = 0, generations = 0;
};

// Reads `db` read-only. Throws DbError when it cannot be read.
Provenance read_provenance(const std::filesystem::path& db);

struct MissingTable {
  std::string name{};
  std::string needs{};
};

struct HtmlReportInput {
  std::string title{};       // the page's <h1> and <title>
  std::string database{};    // the path as the user gave it
  std::string generator{};   // "kvsafe 0.1.0 (git abc123)"
  std::string conclusion{};  // summary_conclusion(); may be empty
  std::vector<ReportFigure> figures{};
  std::vector<Table> tables{};
  std::vector<MissingTable> missing{};
  Provenance provenance{};
};

// The whole page, UTF-8. Throws InputError on a malformed table or figure name.
std::string render_html_report(const HtmlReportInput& input);

}  // namespace kvsafe::report
