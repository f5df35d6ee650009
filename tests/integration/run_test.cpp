// `kvsafe run` in one process (no mpirun): a whole grid, resume, retries, SIGTERM, a second
// writer refused, and speculative cells. The same scheduler code as under MPI
// (orchestrator/transport.h).
#include "tests/integration/run_harness.h"

namespace kvsafe::testing {
namespace {

TEST(RunInProcess, RunsEveryShardOnceAndRerunAddsNothing) {
  ScratchDir dir;
  const auto db = dir / "run.db";
  const auto first = run_to_end(run_command(db), "", dir / "err1.txt");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status = 'done'"), 3);
  EXPECT_EQ(count(db, "SELECT count(*) FROM runs WHERE status = 'done' AND exit_code = 0 AND ranks = 1"), 1);
  EXPECT_GT(count(db, "SELECT sum(output_tokens) FROM generations"), 0);

  // Provenance: the model as the worker loaded it (weights hash, architecture, the chat
  // template the grid names with its hash) in the run's models_json and the models row.
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM runs WHERE json_array_length(models_json) = 1 "
                  "AND json_extract(models_json, '$[0].name') = 'stories260k' "
                  "AND length(json_extract(models_json, '$[0].sha256')) = 64 "
                  "AND json_extract(models_json, '$[0].chat_template') = 'llama-2' "
                  "AND length(json_extract(models_json, '$[0].chat_template_sha256')) = 64"),
            1);
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM models WHERE name = 'stories260k' AND length(sha256) = 64 "
                  "AND architecture = 'llama' AND n_params > 200000 AND chat_template = 'llama-2'"),
            1);
  // The prompts table holds the benchmark's prompts; every answer finds its prompt text.
  EXPECT_EQ(count(db, "SELECT count(*) FROM prompts WHERE benchmark = 'custom'"), 63);
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM generations g JOIN prompts p ON p.benchmark = 'custom' "
                  "AND p.prompt_id = g.prompt_id AND p.text_sha256 = g.prompt_sha256"),
            kGenerations);

  const auto again = run_to_end(run_command(db), "", dir / "err2.txt");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("0 shard(s) committed"), std::string::npos) << again.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
  EXPECT_EQ(count(db, "SELECT count(*) FROM runs"), 2);
}

TEST(RunInProcess, DryRunPrintsTheShardsAndWritesNothing) {
  ScratchDir dir;
  const auto db = dir / "dry.db";
  const auto out_path = dir / "out.txt";
  Child child(run_command(db) + " --dry-run", "", dir / "err.txt");
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.err();
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST(RunInProcess, ThrowingShardIsRetriedOnItsWorkerAndSucceeds) {
  ScratchDir dir;
  const auto db = dir / "retry.db";
  const auto done = run_to_end(run_command(db), "KVSAFE_FAULT=throw:shard=2", dir / "err.txt");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_NE(done.err.find("will retry"), std::string::npos) << done.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'done'"), kShards);
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE attempts = 2"), 1);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
}

TEST(RunInProcess, SigtermDrainsWithinGracePeriodThenResumeCompletes) {
  ScratchDir dir;
  const auto db = dir / "term.db";
  {
    // NOTE: 400 ms per shard makes the run last ~5 s, so the signal lands mid-run.
    Child child(run_command(db), "KVSAFE_FAULT=delay:ms=400", dir / "err1.txt");
    ASSERT_TRUE(wait_for_count(db, "SELECT count(*) FROM shards WHERE status = 'done'", 2, std::chrono::seconds(40)));
    child.signal(SIGTERM);
    ASSERT_EQ(child.wait(std::chrono::seconds(60)), kExitInterrupted) << child.err();
    EXPECT_NE(child.err().find("stop signal"), std::string::npos) << child.err();
  }
  // Drained within the grace period: the shard in flight was committed, none is left half done
  // or running. NOTE: asserted by these events, not by a wall-clock bound: a drain past
  // grace_period_s would stop hard and leave the shard running.
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'running'"), 0);
  const auto done_before = count(db, "SELECT count(*) FROM shards WHERE status = 'done'");
  EXPECT_LT(done_before, kShards);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), 2 * done_before);
  EXPECT_EQ(count(db, "SELECT count(*) FROM runs WHERE exit_code = 75 AND status LIKE 'stopped%'"), 1);

  const auto resumed = run_to_end(run_command(db), "", dir / "err2.txt");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find(std::to_string(kShards - done_before) + " shard(s) committed"), std::string::npos)
      << resumed.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
  EXPECT_EQ(count(db, "SELECT count(DISTINCT cell_id || ':' || prompt_index) FROM generations"), kGenerations);
}

TEST(RunInProcess, SecondSignalStopsAtOnceAndResumeRedoesTheShardInFlight) {
  ScratchDir dir;
  const auto db = dir / "kill.db";
  {
    // NOTE: each shard sleeps a minute first; the run must end well inside that (the wait
    // below gives up after 30 s), so it cannot have waited for the shard in flight, however
    // busy the machine. The shard is then left running for the resume.
    Child child(run_command(db), "KVSAFE_FAULT=delay:ms=60000", dir / "err1.txt");
    ASSERT_TRUE(
        wait_for_count(db, "SELECT count(*) FROM shards WHERE status = 'running'", 1, std::chrono::seconds(40)));
    child.signal(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    child.signal(SIGINT);
    ASSERT_EQ(child.wait(std::chrono::seconds(30)), kExitInterrupted) << child.err();
  }
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'running'"), 1) << "left for the resume";
  EXPECT_EQ(count(db, "SELECT count(*) FROM runs WHERE exit_code = 75 AND status = 'interrupted'"), 1);
  const auto resumed = run_to_end(run_command(db), "", dir / "err2.txt");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("1 shard(s) left running by an earlier run requeued"), std::string::npos) << resumed.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
}

TEST(RunInProcess, SecondWriterOnTheSameDatabaseIsRefused) {
  ScratchDir dir;
  const auto db = dir / "lock.db";
  Child first(run_command(db), "KVSAFE_FAULT=delay:ms=300", dir / "err1.txt");
  ASSERT_TRUE(wait_for_count(db, "SELECT count(*) FROM runs WHERE status = 'running'", 1, std::chrono::seconds(40)));
  const auto second = run_to_end(run_command(db), "", dir / "err2.txt");
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("is locked for writing by pid " + std::to_string(first.pid())), std::string::npos)
      << second.err;
  ASSERT_EQ(first.wait(std::chrono::seconds(60)), 0) << first.err();
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
}

TEST(RunInProcess, RetryFailedRunsOnlyTheFailedShardsAgain) {
  ScratchDir dir;
  const auto db = dir / "retry_failed.db";
  const auto failed = run_to_end(run_command(db), "KVSAFE_FAULT=throw:kv=int4-ptok-asym", dir / "err1.txt");
  ASSERT_EQ(failed.exit_code, 1) << failed.err;
  ASSERT_EQ(count(db, "SELECT count(*) FROM cells WHERE status = 'failed'"), 1);
  ASSERT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'failed'"), 1);
  // A plain rerun runs the failed cell's shards that were never tried, not the failed one,
  // and still exits 1: the cell stays failed.
  const auto plain = run_to_end(run_command(db), "", dir / "err2.txt");
  EXPECT_EQ(plain.exit_code, 1) << plain.err;
  EXPECT_NE(plain.err.find("--retry-failed"), std::string::npos) << plain.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations - 2);
  EXPECT_EQ(count(db, "SELECT count(*) FROM shards WHERE status = 'failed' AND attempts = 2"), 1);
  // ...--retry-failed runs its shards again (the fault is gone) and commits only those.
  const auto retried = run_to_end(run_command(db) + " --retry-failed", "", dir / "err3.txt");
  ASSERT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status = 'done'"), 3);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), kGenerations);
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM (SELECT cell_id, prompt_index FROM generations "
                  "GROUP BY cell_id, prompt_index HAVING count(*) > 1)"),
            0);
}

TEST(RunInProcess, FreshMovesTheOldDatabaseAside) {
  ScratchDir dir;
  const auto db = dir / "fresh.db";
  ASSERT_EQ(run_to_end(run_command(db), "", dir / "err1.txt").exit_code, 0);
  const auto fresh = run_to_end(run_command(db) + " --fresh", "", dir / "err2.txt");
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  int moved = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().filename().string().starts_with("fresh.db.replaced-") && entry.path().extension() != ".db-wal") {
      ++moved;
    }
  }
  EXPECT_GE(moved, 1);
  EXPECT_NE(fresh.err.find(std::to_string(kShards) + " shard(s) committed"), std::string::npos) << fresh.err;
}

// generation.speculative end to end (fixtures/stories_speculative.yaml): plain decoding beside a
// self-draft with the target's and with the draft's KV quantized. Every speculative answer stores
// its rounds, equals the plain answer with the same target KV (the target's own for quantize:
// target, full precision for quantize: draft), the full-precision self-draft accepts every
// proposal, and `kvsafe tables` writes specdecode_flip.
TEST(RunInProcess, SpeculativeCellsStoreTheirRoundsAndThePlainAnswers) {
  ScratchDir dir;
  const auto db = dir / "speculative.db";
  const auto done = run_to_end(run_command(db, "stories_speculative.yaml"), "", dir / "err.txt");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(count(db, "SELECT count(*) FROM cells WHERE status = 'done'"), 6);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations"), 24);
  EXPECT_EQ(count(db, "SELECT count(*) FROM generations WHERE json_extract(judge_json, '$.speculative') IS NULL"), 8);
  EXPECT_EQ(count(db,
                  "SELECT count(*) FROM generations WHERE json_extract(judge_json, '$.speculative.draft_tokens') = 3 "
                  "AND json_extract(judge_json, '$.speculative.rounds') > 0 "
                  "AND json_extract(judge_json, '$.speculative.accepted') <= "
                  "json_extract(judge_json, '$.speculative.proposed')"),
            16);
  const std::string rows =
      "WITH r AS (SELECT g.prompt_index, g.output_text, g.judge_json, k.label, "
      "json_extract(c.canonical_json, '$.generation.speculative.quantize') AS quantize "
      "FROM generations g JOIN cells c ON c.id = g.cell_id JOIN kv_specs k ON k.hash = c.kv_hash) ";
  EXPECT_EQ(
      count(db, rows + "SELECT count(*) FROM r s JOIN r p ON p.quantize IS NULL AND p.prompt_index = s.prompt_index "
                       "AND p.label = CASE s.quantize WHEN 'draft' THEN 'none' ELSE s.label END "
                       "WHERE s.quantize IS NOT NULL AND s.output_text = p.output_text"),
      16);
  EXPECT_GT(count(db, rows + "SELECT sum(json_extract(judge_json, '$.speculative.proposed')) FROM r "
                             "WHERE quantize = 'target' AND label = 'none'"),
            0);
  EXPECT_EQ(count(db, rows + "SELECT sum(json_extract(judge_json, '$.speculative.proposed')) - "
                             "sum(json_extract(judge_json, '$.speculative.accepted')) FROM r "
                             "WHERE quantize = 'target' AND label = 'none'"),
            0);

  const auto tables = dir / "tables";
  const auto written = run_to_end(kvsafe_binary() + " tables " + db.string() + " --format csv --out " + tables.string(),
                                  "", dir / "tables_err.txt");
  ASSERT_EQ(written.exit_code, 0) << written.err;
  const std::string csv = slurp(tables / "specdecode_flip.csv");
  EXPECT_NE(csv.find("stories260k"), std::string::npos) << csv;
  EXPECT_NE(csv.find("plain full precision"), std::string::npos) << csv;
  EXPECT_NE(csv.find("100.0% ("), std::string::npos) << csv;  // the full-precision self-draft's acceptance
}

}  // namespace
}  // namespace kvsafe::testing
