#include "orchestrator/protocol.h"

#include <nlohmann/json.hpp>

#include <type_traits>

#include "common/error.h"

namespace kvsafe::orchestrator {
namespace {

using nlohmann::json;

// NOTE: short keys keep a 32-prompt shard's result small; docs/run.md spells them out.
json shard_to_json(const db::ShardKey& shard) {
  return json{{"cell", shard.cell_id}, {"b", shard.begin}, {"e", shard.end}};
}

db::ShardKey shard_from_json(const json& j) {
  return {.cell_id = j.at("cell").get<std::string>(),
          .begin = j.at("b").get<std::int64_t>(),
          .end = j.at("e").get<std::int64_t>()};
}

json optional_to_json(const std::optional<double>& value) {
  return value ? json(*value) : json(nullptr);
}

std::optional<double> optional_from_json(const json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<double>();
}

json generation_to_json(const db::GenerationRow& row) {
  json j{{"i", row.prompt_index},   {"id", row.prompt_id},
         {"ph", row.prompt_sha256}, {"rh", row.rendered_sha256},
         {"out", row.output_text},  {"pt", row.prompt_tokens},
         {"ot", row.output_tokens}, {"ref", row.refused ? json(*row.refused) : json(nullptr)},
         {"judge", row.judge_json}, {"s", row.seconds}};
  // Divergence fields travel only when computed (a full-precision cell has none).
  if (row.first_token_id) j["ft"] = *row.first_token_id;
  if (row.reference_first_token_id) j["rft"] = *row.reference_first_token_id;
  if (row.first_token_kl) j["kl"] = *row.first_token_kl;
  if (row.kv_mse_key) j["mk"] = *row.kv_mse_key;
  if (row.kv_mse_value) j["mv"] = *row.kv_mse_value;
  return j;
}

db::GenerationRow generation_from_json(const json& j) {
  db::GenerationRow row;
  row.prompt_index = j.at("i").get<std::int64_t>();
  row.prompt_id = j.at("id").get<std::string>();
  row.prompt_sha256 = j.at("ph").get<std::string>();
  row.rendered_sha256 = j.at("rh").get<std::string>();
  row.output_text = j.at("out").get<std::string>();
  row.prompt_tokens = j.at("pt").get<std::int64_t>();
  row.output_tokens = j.at("ot").get<std::int64_t>();
  if (!j.at("ref").is_null()) row.refused = j.at("ref").get<bool>();
  row.judge_json = j.at("judge").get<std::string>();
  row.seconds = j.at("s").get<double>();
  if (j.contains("ft")) row.first_token_id = j.at("ft").get<std::int64_t>();
  if (j.contains("rft")) row.reference_first_token_id = j.at("rft").get<std::int64_t>();
  if (j.contains("kl")) row.first_token_kl = j.at("kl").get<double>();
  if (j.contains("mk")) row.kv_mse_key = j.at("mk").get<double>();
  if (j.contains("mv")) row.kv_mse_value = j.at("mv").get<double>();
  return row;
}

json metric_to_json(const db::MetricRow& row) {
  return json{{"name", row.name},
              {"v", row.value},
              {"lo", optional_to_json(row.ci_low)},
              {"hi", optional_to_json(row.ci_high)},
              {"n", row.n}};
}

db::MetricRow metric_from_json(const json& j) {
  return {.name = j.at("name").get<std::string>(),
          .value = j.at("v").get<double>(),
          .ci_low = optional_from_json(j.at("lo")),
          .ci_high = optional_from_json(j.at("hi")),
          .n = j.at("n").get<std::int64_t>()};
}

json model_to_json(const db::ModelRecord& model) {
  return json{{"name", model.name},
              {"path", model.path},
              {"sha256", model.sha256},
              {"arch", model.architecture},
              {"params", model.n_params},
              {"template", model.chat_template},
              {"template_sha256", model.chat_template_sha256},
              {"generation_config", model.generation_config}};
}

db::ModelRecord model_from_json(const json& j) {
  return {.name = j.at("name").get<std::string>(),
          .path = j.at("path").get<std::string>(),
          .sha256 = j.at("sha256").get<std::string>(),
          .architecture = j.at("arch").get<std::string>(),
          .n_params = j.at("params").get<std::int64_t>(),
          .chat_template = j.at("template").get<std::string>(),
          .chat_template_sha256 = j.at("template_sha256").get<std::string>(),
          .generation_config = j.value("generation_config", std::string())};
}

json window_to_json(const db::PplWindowRow& row) {
  return json::array({row.window_index, row.begin_token, row.n_tokens, row.nll_sum});
}

db::PplWindowRow window_from_json(const json& j) {
  return {.window_index = j.at(0).get<std::int64_t>(),
          .begin_token = j.at(1).get<std::int64_t>(),
          .n_tokens = j.at(2).get<std::int64_t>(),
          .nll_sum = j.at(3).get<double>()};
}

// A float widened to double dumps in its shortest round-trip form: it reads back exactly.
json key_magnitudes_to_json(const db::KeyMagnitudeRow& row) {
  json values = json::array();
  for (const float value : row.max_abs) values.push_back(static_cast<double>(value));
  return json{{"i", row.prompt_index}, {"l", row.layer}, {"t", row.tokens}, {"k", std::move(values)}};
}

db::KeyMagnitudeRow key_magnitudes_from_json(const json& j) {
  db::KeyMagnitudeRow row{.prompt_index = j.at("i").get<std::int64_t>(),
                          .layer = j.at("l").get<std::int64_t>(),
                          .tokens = j.at("t").get<std::int64_t>()};
  const json& values = j.at("k");
  row.max_abs.reserve(values.size());
  for (const auto& value : values) row.max_abs.push_back(static_cast<float>(value.get<double>()));
  return row;
}

// Sums are float32 (db::DirectionSumRow): widened to double they read back exactly.
json direction_sums_to_json(const db::DirectionSumRow& row) {
  json values = json::array();
  for (const float value : row.sum) values.push_back(static_cast<double>(value));
  return json{{"l", row.layer}, {"h", row.harmful}, {"n", row.prompts}, {"s", std::move(values)}};
}

db::DirectionSumRow direction_sums_from_json(const json& j) {
  db::DirectionSumRow row{.layer = j.at("l").get<std::int64_t>(),
                          .harmful = j.at("h").get<bool>(),
                          .prompts = j.at("n").get<std::int64_t>()};
  const json& values = j.at("s");
  row.sum.reserve(values.size());
  for (const auto& value : values) row.sum.push_back(static_cast<float>(value.get<double>()));
  return row;
}

json ifeval_verdict_to_json(const db::IfevalVerdictRow& row) {
  json j{{"i", row.prompt_index}, {"n", row.instruction_index}, {"id", row.instruction_id}};
  if (row.strict) j["s"] = *row.strict;
  if (row.loose) j["l"] = *row.loose;
  if (!row.unscored.empty()) j["u"] = row.unscored;
  return j;
}

db::IfevalVerdictRow ifeval_verdict_from_json(const json& j) {
  db::IfevalVerdictRow row{.prompt_index = j.at("i").get<std::int64_t>(),
                           .instruction_index = j.at("n").get<std::int64_t>(),
                           .instruction_id = j.at("id").get<std::string>()};
  if (j.contains("s")) row.strict = j.at("s").get<bool>();
  if (j.contains("l")) row.loose = j.at("l").get<bool>();
  row.unscored = j.value("u", std::string());
  return row;
}

json to_json(const Message& message) {
  return std::visit(
      [](const auto& m) -> json {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ReadyMessage>) {
          return json{{"host", m.host}, {"model", m.loaded_model}};
        } else if constexpr (std::is_same_v<T, AssignMessage>) {
          json j{{"shard", shard_to_json(m.shard)}};
          if (!m.cell_json.empty()) j["cell"] = m.cell_json;
          return j;
        } else if constexpr (std::is_same_v<T, ResultMessage>) {
          json rows = json::array();
          for (const auto& row : m.result.generations) rows.push_back(generation_to_json(row));
          json metrics = json::array();
          for (const auto& row : m.result.metrics) metrics.push_back(metric_to_json(row));
          json windows = json::array();
          for (const auto& row : m.result.ppl_windows) windows.push_back(window_to_json(row));
          json j{{"shard", shard_to_json(m.result.shard)},
                 {"gen", std::move(rows)},
                 {"met", std::move(metrics)},
                 {"ppl", std::move(windows)},
                 {"s", m.seconds},
                 {"model", m.loaded_model}};
          if (!m.models_loaded.empty()) {
            json loads = json::array();
            for (const db::ModelRecord& model : m.models_loaded) loads.push_back(model_to_json(model));
            j["load"] = std::move(loads);
          }
          // Only key_magnitudes shards have any; older messages lack the key.
          if (!m.result.key_magnitudes.empty()) {
            json magnitudes = json::array();
            for (const auto& row : m.result.key_magnitudes) magnitudes.push_back(key_magnitudes_to_json(row));
            j["key"] = std::move(magnitudes);
          }
          if (!m.result.direction_sums.empty()) {  // refusal_direction shards only
            json sums = json::array();
            for (const auto& row : m.result.direction_sums) sums.push_back(direction_sums_to_json(row));
            j["dir"] = std::move(sums);
          }
          if (!m.result.ifeval_verdicts.empty()) {  // ifeval shards only
            json verdicts = json::array();
            for (const auto& row : m.result.ifeval_verdicts) verdicts.push_back(ifeval_verdict_to_json(row));
            j["ife"] = std::move(verdicts);
          }
          return j;
        } else if constexpr (std::is_same_v<T, FailureMessage>) {
          return json{{"shard", shard_to_json(m.shard)}, {"error", m.error}, {"model", m.loaded_model}};
        } else if constexpr (std::is_same_v<T, ProgressMessage>) {
          return json{{"shard", shard_to_json(m.shard)}, {"done", m.prompts_done}, {"tok", m.tokens_generated}};
        } else {
          return json::object();
        }
      },
      message);
}

Message from_json(MessageTag tag, const json& j) {
  switch (tag) {
    case MessageTag::kReady:
      return ReadyMessage{.host = j.at("host").get<std::string>(), .loaded_model = j.at("model").get<std::string>()};
    case MessageTag::kAssign:
      return AssignMessage{.shard = shard_from_json(j.at("shard")), .cell_json = j.value("cell", std::string())};
    case MessageTag::kResult: {
      ResultMessage m;
      m.result.shard = shard_from_json(j.at("shard"));
      for (const auto& row : j.at("gen")) m.result.generations.push_back(generation_from_json(row));
      for (const auto& row : j.at("met")) m.result.metrics.push_back(metric_from_json(row));
      for (const auto& row : j.at("ppl")) m.result.ppl_windows.push_back(window_from_json(row));
      m.seconds = j.at("s").get<double>();
      m.loaded_model = j.at("model").get<std::string>();
      // "load": a list of models; one object from a worker of before drafts.
      if (j.contains("load") && j.at("load").is_array()) {
        for (const auto& model : j.at("load")) m.models_loaded.push_back(model_from_json(model));
      } else if (j.contains("load")) {
        m.models_loaded.push_back(model_from_json(j.at("load")));
      }
      if (j.contains("key")) {
        for (const auto& row : j.at("key")) m.result.key_magnitudes.push_back(key_magnitudes_from_json(row));
      }
      if (j.contains("dir")) {
        for (const auto& row : j.at("dir")) m.result.direction_sums.push_back(direction_sums_from_json(row));
      }
      if (j.contains("ife")) {
        for (const auto& row : j.at("ife")) m.result.ifeval_verdicts.push_back(ifeval_verdict_from_json(row));
      }
      return m;
    }
    case MessageTag::kFailure:
      return FailureMessage{.shard = shard_from_json(j.at("shard")),
                            .error = j.at("error").get<std::string>(),
                            .loaded_model = j.at("model").get<std::string>()};
    case MessageTag::kProgress:
      return ProgressMessage{.shard = shard_from_json(j.at("shard")),
                             .prompts_done = j.at("done").get<std::int64_t>(),
                             .tokens_generated = j.at("tok").get<std::int64_t>()};
    case MessageTag::kStop:
      return StopMessage{};
  }
  KVSAFE_CHECK(false, "run protocol: unknown message tag ", static_cast<int>(tag));
  return StopMessage{};
}

}  // namespace

std::string_view to_string(MessageTag tag) {
  switch (tag) {
    case MessageTag::kReady:
      return "ready";
    case MessageTag::kAssign:
      return "assign";
    case MessageTag::kResult:
      return "result";
    case MessageTag::kFailure:
      return "failure";
    case MessageTag::kProgress:
      return "progress";
    case MessageTag::kStop:
      return "stop";
  }
  return "unknown";
}

MessageTag tag_of(const Message& message) {
  static constexpr MessageTag kTags[] = {MessageTag::kReady,   MessageTag::kAssign,   MessageTag::kResult,
                                         MessageTag::kFailure, MessageTag::kProgress, MessageTag::kStop};
  return kTags[message.index()];
}

// NOTE: invalid UTF-8 in an answer (a model may emit half a character) is replaced, not thrown
// on; both transports serialize, so the stored text does not depend on the rank count.
std::string serialize(const Message& message) {
  return to_json(message).dump(-1, ' ', false, json::error_handler_t::replace);
}

Message deserialize(MessageTag tag, std::string_view payload) {
  try {
    return from_json(tag, json::parse(payload));
  } catch (const json::exception& error) {
    throw InputError(
        detail::concat("run protocol: bad ", to_string(tag), " message (", payload.size(), " bytes): ", error.what()));
  }
}

}  // namespace kvsafe::orchestrator
