// The run protocol's serialization (orchestrator/protocol.h), the in-process transport and
// KVSAFE_FAULT parsing (orchestrator/fault_injection.h).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include "common/error.h"
#include "orchestrator/fault_injection.h"
#include "orchestrator/inprocess_transport.h"
#include "orchestrator/protocol.h"

namespace kvsafe::orchestrator {
namespace {

ResultMessage sample_result() {
  ResultMessage m;
  m.result.shard = {.cell_id = std::string(64, 'a'), .begin = 8, .end = 10};
  m.result.generations.push_back({.prompt_index = 8,
                                  .prompt_id = "custom-8",
                                  .prompt_sha256 = std::string(64, 'b'),
                                  .rendered_sha256 = std::string(64, 'c'),
                                  .output_text = "I cannot help with that. \"quoted\"\n\xc3\xa9",
                                  .prompt_tokens = 31,
                                  .output_tokens = 16,
                                  .refused = true,
                                  .judge_json = R"({"matched":["I cannot"]})",
                                  .seconds = 0.25,
                                  .first_token_id = 306,
                                  .reference_first_token_id = 11,
                                  .first_token_kl = 0.125,
                                  .kv_mse_key = 3.5e-3,
                                  .kv_mse_value = 1e-4});
  m.result.generations.push_back({.prompt_index = 9, .output_text = "", .refused = std::nullopt});
  m.result.metrics.push_back({.name = "refusal_rate", .value = 0.5, .ci_low = 0.1, .ci_high = std::nullopt, .n = 2});
  m.result.ppl_windows.push_back({.window_index = 8, .begin_token = 4096, .n_tokens = 512, .nll_sum = 1234.5});
  m.seconds = 1.5;
  m.loaded_model = "stories260k";
  m.models_loaded.push_back(db::ModelRecord{.name = "stories260k",
                                            .path = "/models/stories260K.gguf",
                                            .sha256 = std::string(64, 'd'),
                                            .architecture = "llama",
                                            .n_params = 260000,
                                            .chat_template = "chatml",
                                            .chat_template_sha256 = std::string(64, 'e')});
  return m;
}

Message round_trip(const Message& message) {
  return deserialize(tag_of(message), serialize(message));
}

TEST(RunProtocol, ResultRoundTripsEveryField) {
  const ResultMessage sent = sample_result();
  const auto got = std::get<ResultMessage>(round_trip(sent));
  EXPECT_EQ(got.result.shard, sent.result.shard);
  ASSERT_EQ(got.result.generations.size(), 2U);
  const auto& a = got.result.generations[0];
  const auto& b = sent.result.generations[0];
  EXPECT_EQ(a.prompt_index, b.prompt_index);
  EXPECT_EQ(a.prompt_id, b.prompt_id);
  EXPECT_EQ(a.prompt_sha256, b.prompt_sha256);
  EXPECT_EQ(a.rendered_sha256, b.rendered_sha256);
  EXPECT_EQ(a.output_text, b.output_text);
  EXPECT_EQ(a.prompt_tokens, b.prompt_tokens);
  EXPECT_EQ(a.output_tokens, b.output_tokens);
  EXPECT_EQ(a.refused, b.refused);
  EXPECT_EQ(a.judge_json, b.judge_json);
  EXPECT_EQ(a.seconds, b.seconds);
  EXPECT_EQ(a.first_token_id, b.first_token_id);
  EXPECT_EQ(a.reference_first_token_id, b.reference_first_token_id);
  EXPECT_EQ(a.first_token_kl, b.first_token_kl);
  EXPECT_EQ(a.kv_mse_key, b.kv_mse_key);
  EXPECT_EQ(a.kv_mse_value, b.kv_mse_value);
  EXPECT_FALSE(got.result.generations[1].refused.has_value());
  EXPECT_FALSE(got.result.generations[1].first_token_id.has_value());  // absent, not 0
  EXPECT_FALSE(got.result.generations[1].first_token_kl.has_value());
  ASSERT_EQ(got.result.metrics.size(), 1U);
  EXPECT_EQ(got.result.metrics[0].ci_low, 0.1);
  EXPECT_FALSE(got.result.metrics[0].ci_high.has_value());
  ASSERT_EQ(got.result.ppl_windows.size(), 1U);
  EXPECT_EQ(got.result.ppl_windows[0].nll_sum, 1234.5);
  EXPECT_EQ(got.seconds, 1.5);
  EXPECT_EQ(got.loaded_model, "stories260k");
  ASSERT_EQ(got.models_loaded.size(), 1U);
  const db::ModelRecord& model = got.models_loaded[0];
  EXPECT_EQ(model.sha256, sent.models_loaded[0].sha256);
  EXPECT_EQ(model.path, sent.models_loaded[0].path);
  EXPECT_EQ(model.architecture, "llama");
  EXPECT_EQ(model.n_params, 260000);
  EXPECT_EQ(model.chat_template, "chatml");
  EXPECT_EQ(model.chat_template_sha256, sent.models_loaded[0].chat_template_sha256);
  ResultMessage plain = sent;
  plain.models_loaded.clear();
  EXPECT_TRUE(std::get<ResultMessage>(round_trip(plain)).models_loaded.empty());
  // A speculative shard's target and draft both travel; a worker of before drafts sent one object.
  ResultMessage two = sent;
  two.models_loaded.push_back(db::ModelRecord{.name = "draft", .path = "/models/draft.gguf"});
  const auto both = std::get<ResultMessage>(round_trip(two)).models_loaded;
  ASSERT_EQ(both.size(), 2U);
  EXPECT_EQ(both[1].name, "draft");
  nlohmann::json old = nlohmann::json::parse(serialize(sent));
  old["load"] = old["load"][0];
  const auto one = std::get<ResultMessage>(deserialize(MessageTag::kResult, old.dump())).models_loaded;
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0].name, "stories260k");
}

TEST(RunProtocol, DirectionSumsRoundTripBitForBit) {
  ResultMessage sent;
  sent.result.shard = {.cell_id = std::string(64, 'f'), .begin = 0, .end = 32};
  const std::vector<float> awkward{
      -0.1f, 1.0f / 3.0f, -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(), 0.0f, -0.0f};
  sent.result.direction_sums.push_back({.layer = 0, .harmful = true, .prompts = 20, .sum = awkward});
  sent.result.direction_sums.push_back({.layer = 29, .harmful = false, .prompts = 12, .sum = {2.5f}});
  const auto got = std::get<ResultMessage>(round_trip(sent));
  ASSERT_EQ(got.result.direction_sums.size(), 2U);
  for (std::size_t r = 0; r < 2; ++r) {
    const auto& a = got.result.direction_sums[r];
    const auto& b = sent.result.direction_sums[r];
    EXPECT_EQ(a.layer, b.layer);
    EXPECT_EQ(a.harmful, b.harmful);
    EXPECT_EQ(a.prompts, b.prompts);
    ASSERT_EQ(a.sum.size(), b.sum.size());
    for (std::size_t c = 0; c < a.sum.size(); ++c) {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(a.sum[c]), std::bit_cast<std::uint32_t>(b.sum[c])) << r << "," << c;
    }
  }
  // Other shards' messages carry no "dir" key and read back without rows.
  EXPECT_TRUE(std::get<ResultMessage>(round_trip(sample_result())).result.direction_sums.empty());
  EXPECT_EQ(serialize(sample_result()).find("\"dir\""), std::string::npos);
}

TEST(RunProtocol, IfevalVerdictsRoundTrip) {
  ResultMessage sent = sample_result();
  sent.result.ifeval_verdicts.push_back({.prompt_index = 0,
                                         .instruction_index = 0,
                                         .instruction_id = "punctuation:no_comma",
                                         .strict = false,
                                         .loose = true});
  sent.result.ifeval_verdicts.push_back({.prompt_index = 0,
                                         .instruction_index = 1,
                                         .instruction_id = "keywords:letter_frequency",
                                         .unscored = "kwarg 'letter' is not a-z"});
  const auto got = std::get<ResultMessage>(round_trip(sent)).result.ifeval_verdicts;
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].instruction_id, "punctuation:no_comma");
  EXPECT_EQ(got[0].strict, false);
  EXPECT_EQ(got[0].loose, true);
  EXPECT_TRUE(got[0].unscored.empty());
  EXPECT_EQ(got[1].instruction_index, 1);
  EXPECT_FALSE(got[1].strict.has_value());
  EXPECT_FALSE(got[1].loose.has_value());
  EXPECT_EQ(got[1].unscored, "kwarg 'letter' is not a-z");
  // Other shards' messages carry no "ife" key.
  EXPECT_EQ(serialize(sample_result()).find("\"ife\""), std::string::npos);
}

TEST(RunProtocol, KeyMagnitudesRoundTripBitForBit) {
  ResultMessage sent;
  sent.result.shard = {.cell_id = std::string(64, 'f'), .begin = 2, .end = 4};
  const std::vector<float> awkward{0.1f,
                                   1.0f / 3.0f,
                                   std::numeric_limits<float>::max(),
                                   std::numeric_limits<float>::denorm_min(),
                                   std::nextafter(1.0f, 2.0f),
                                   0.0f};
  sent.result.key_magnitudes.push_back({.prompt_index = 2, .layer = 0, .tokens = 37, .max_abs = awkward});
  sent.result.key_magnitudes.push_back({.prompt_index = 3, .layer = 4, .tokens = 512, .max_abs = {2.5f, 7e-8f}});
  sent.loaded_model = "stories260k";
  const std::string payload = serialize(sent);
  EXPECT_NE(payload.find("\"key\""), std::string::npos) << payload;
  const auto got = std::get<ResultMessage>(deserialize(MessageTag::kResult, payload));
  EXPECT_TRUE(got.result.generations.empty());
  ASSERT_EQ(got.result.key_magnitudes.size(), 2U);
  for (std::size_t r = 0; r < 2; ++r) {
    const db::KeyMagnitudeRow& a = got.result.key_magnitudes[r];
    const db::KeyMagnitudeRow& b = sent.result.key_magnitudes[r];
    EXPECT_EQ(a.prompt_index, b.prompt_index);
    EXPECT_EQ(a.layer, b.layer);
    EXPECT_EQ(a.tokens, b.tokens);
    ASSERT_EQ(a.max_abs.size(), b.max_abs.size());
    for (std::size_t c = 0; c < a.max_abs.size(); ++c) {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(a.max_abs[c]), std::bit_cast<std::uint32_t>(b.max_abs[c]))
          << "row " << r << " channel " << c << ": " << payload;
    }
  }
  // A result without key magnitudes does not carry the key, and a message from before it reads.
  const std::string plain = serialize(sample_result());
  EXPECT_EQ(plain.find("\"key\""), std::string::npos) << plain;
  EXPECT_TRUE(std::get<ResultMessage>(deserialize(MessageTag::kResult, plain)).result.key_magnitudes.empty());
}

TEST(RunProtocol, SmallMessagesRoundTrip) {
  const db::ShardKey key{.cell_id = "abc", .begin = 0, .end = 32};
  EXPECT_EQ(std::get<AssignMessage>(round_trip(AssignMessage{.shard = key})).shard, key);
  const auto failure =
      std::get<FailureMessage>(round_trip(FailureMessage{.shard = key, .error = "boom", .loaded_model = ""}));
  EXPECT_EQ(failure.error, "boom");
  const auto progress =
      std::get<ProgressMessage>(round_trip(ProgressMessage{.shard = key, .prompts_done = 3, .tokens_generated = 48}));
  EXPECT_EQ(progress.prompts_done, 3);
  EXPECT_EQ(progress.tokens_generated, 48);
  const auto ready = std::get<ReadyMessage>(round_trip(ReadyMessage{.host = "node7", .loaded_model = "m"}));
  EXPECT_EQ(ready.host, "node7");
  EXPECT_TRUE(std::holds_alternative<StopMessage>(round_trip(StopMessage{})));
  EXPECT_EQ(static_cast<int>(tag_of(StopMessage{})), 6);
}

TEST(RunProtocol, InvalidUtf8IsReplacedNotThrown) {
  ResultMessage m = sample_result();
  m.result.generations[0].output_text = "half a character: \xc3";
  const auto got = std::get<ResultMessage>(round_trip(m));
  EXPECT_EQ(got.result.generations[0].output_text, "half a character: \xef\xbf\xbd");
}

TEST(RunProtocol, GarbageIsAnInputErrorNamingTheTag) {
  try {
    deserialize(MessageTag::kResult, "{\"shard\": 3}");
    FAIL() << "no throw";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("bad result message"), std::string::npos) << error.what();
  }
}

TEST(InProcessTransport, CarriesMessagesBothWays) {
  InProcessLink link;
  std::thread worker([&] {
    const auto message = link.worker_side().receive();
    const auto& assign = std::get<AssignMessage>(message);
    link.worker_side().send(FailureMessage{.shard = assign.shard, .error = "x", .loaded_model = ""});
  });
  EXPECT_FALSE(link.scheduler_side().receive(std::chrono::milliseconds(1)));
  link.scheduler_side().send(0, AssignMessage{.shard = {.cell_id = "c", .begin = 1, .end = 2}});
  const auto envelope = link.scheduler_side().receive(std::chrono::seconds(10));
  worker.join();
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->worker, 0);
  EXPECT_EQ(std::get<FailureMessage>(envelope->message).shard.begin, 1);
}

TEST(FaultPlan, ParsesEveryKind) {
  const auto plan = FaultPlan::parse(
      "throw:shard=3,exit:rank=2:after=2,hang:rank=1:after=0,sigkill:rank=3:after=1,"
      "throw:kv=int4-ptok-asym:rank=1,delay:ms=50");
  ASSERT_EQ(plan.faults().size(), 6U);
  EXPECT_EQ(plan.before_shard(0, 3, "none")->kind, FaultKind::kThrow);
  EXPECT_FALSE(plan.before_shard(0, 2, "none"));
  EXPECT_EQ(plan.before_shard(2, 3, "none")->kind, FaultKind::kThrow) << "first match wins";
  EXPECT_EQ(plan.before_shard(2, 3 - 0, "none")->shard, 3);
  EXPECT_FALSE(plan.before_shard(2, 2, "none"));
  EXPECT_EQ(plan.before_shard(1, 1, "none")->kind, FaultKind::kHang);
  EXPECT_EQ(plan.before_shard(3, 2, "none")->kind, FaultKind::kSigkill);
  EXPECT_EQ(plan.before_shard(1, 5, "int4-ptok-asym")->kind, FaultKind::kThrow);
  EXPECT_FALSE(plan.before_shard(0, 5, "int4-ptok-asym")) << "kv throw is for rank 1 only";
  EXPECT_EQ(plan.delay_ms(0), 50);
  EXPECT_TRUE(FaultPlan::parse("").empty());
}

TEST(FaultPlan, RefusesBadText) {
  for (const char* bad : {"explode", "throw", "throw:shard=0", "exit:after=2", "hang:rank=x:after=1", "throw:shard=1,",
                          "delay:ms=0", "exit:rank=1:shard=2"}) {
    EXPECT_THROW(FaultPlan::parse(bad), InputError) << bad;
  }
}

}  // namespace
}  // namespace kvsafe::orchestrator
