// `kvsafe query DB "SQL"`: read-only SQL over a results database (db/readonly_query.h).

#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/result_format.h"
#include "db/readonly_query.h"

namespace kvsafe::cli {

void register_query(CLI::App& app, CommandContext& context) {
  struct Flags {
    std::string db;
    std::string sql;
    bool csv = false;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* command = app.add_subcommand(
      "query",
      "Run read-only SQL on a results database and print the rows (a table, --csv or --json).\n"
      "Statements that would modify the database are refused before anything runs.\n"
      "Tables: experiments, cells, shards, generations, metrics, kv_specs, models, prompts, runs, ...");
  command->add_option("db", flags->db, "Results database")->required();
  command->add_option("sql", flags->sql, "SQL, e.g. \"SELECT status, count(*) FROM cells GROUP BY status\"")
      ->required();
  auto* csv = command->add_flag("--csv", flags->csv, "Print CSV (RFC 4180)");
  command->add_flag("--json", flags->json, "Print a JSON array of objects")->excludes(csv);
  command->callback([flags, &context] {
    const db::QueryResult result = db::run_readonly_query(flags->db, flags->sql);
    const ResultFormat format = flags->csv    ? ResultFormat::kCsv
                                : flags->json ? ResultFormat::kJson
                                              : ResultFormat::kTable;
    const std::string text = format_query_result(result, format);
    std::fwrite(text.data(), 1, text.size(), stdout);
    context.exit_code = kExitOk;
  });
}

}  // namespace kvsafe::cli
