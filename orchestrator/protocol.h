#pragma once
// The run protocol: the messages the scheduler (rank 0) and its workers exchange, whatever
// carries them (MPI between ranks, a queue to the in-process worker; transport.h). Each
// message is one small struct serialized to one JSON object (nlohmann), sent as the bytes
// of its text with the message's tag; docs/run.md lists the tags and fields.
//
//   scheduler -> worker: kAssign {cell, begin, end}, kStop {}
//   worker -> scheduler: kReady {host, model}, kResult {shard rows}, kFailure {shard, error},
//                        kProgress {shard, prompts_done, tokens}
//
// A worker answers every kAssign with exactly one kResult or kFailure (kProgress may come
// in between); it sends kReady once, before anything else.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "db/records.h"

namespace kvsafe::orchestrator {

// Message tags, also the MPI tags (small non-negative integers, below MPI_TAG_UB's minimum
// of 32767). Never renumber: ranks built from different commits must not meet, but logs
// and docs name these numbers.
enum class MessageTag : int {
  kReady = 1,     // worker -> scheduler: started, with its host name
  kAssign = 2,    // scheduler -> worker: run this shard
  kResult = 3,    // worker -> scheduler: the shard's rows
  kFailure = 4,   // worker -> scheduler: the shard failed, with the error text
  kProgress = 5,  // worker -> scheduler: heartbeat with the shard's progress so far
  kStop = 6,      // scheduler -> worker: no more work; leave the worker loop
};

std::string_view to_string(MessageTag tag);

struct ReadyMessage {
  std::string host{};          // the worker's host name (provenance)
  std::string loaded_model{};  // model already held (empty: none)
};

struct AssignMessage {
  db::ShardKey shard{};  // cell id and prompt range [begin, end)
  // The cell's canonical JSON when the scheduler derived it during the run (it is not in the
  // workers' expansion of the grid): the worker rebuilds it (cell_from_canonical_json). Empty
  // for a grid's own cells.
  std::string cell_json{};
};

struct ResultMessage {
  db::ShardResult result{};    // per-prompt rows, metrics, perplexity windows
  double seconds = 0;          // wall time the worker spent on the shard
  std::string loaded_model{};  // model the worker holds after the shard
  // The models the worker loaded for this shard (a speculative cell's draft too): the weights'
  // hash and the chat template as the worker found them (run provenance: runs.models_json).
  std::vector<db::ModelRecord> models_loaded{};
};

struct FailureMessage {
  db::ShardKey shard{};
  std::string error{};         // what() of the exception, or the fault that was injected
  std::string loaded_model{};  // model the worker holds after the failure (may be none)
};

struct ProgressMessage {
  db::ShardKey shard{};
  std::int64_t prompts_done = 0;      // prompts finished in this shard so far
  std::int64_t tokens_generated = 0;  // tokens generated in this shard so far
};

struct StopMessage {};

using Message = std::variant<ReadyMessage, AssignMessage, ResultMessage, FailureMessage, ProgressMessage, StopMessage>;

MessageTag tag_of(const Message& message);

// The message's payload as JSON text (the tag travels beside it).
std::string serialize(const Message& message);
// Inverse of serialize. Throws InputError naming the tag when the payload is not valid JSON
// or lacks a field (a protocol mismatch between ranks).
Message deserialize(MessageTag tag, std::string_view payload);

}  // namespace kvsafe::orchestrator
