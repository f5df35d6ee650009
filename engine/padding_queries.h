#pragma once
// engine::PaddingQueries: the forward pass's one choice about left padding (engine/model.h's
// ForwardOptions, engine/generator.h's GenerationOptions). Its own header so that callers that
// only choose it need no tensor headers.

namespace kvsafe::engine {

// What a query that may see no key (a left-padding slot before its row's first real token)
// gets from attention. Its activations reach nothing a real token computes; they matter only
// to the paper's batch-wide projection statistics (per-tensor, per-channel), which include
// padding rows.
enum class PaddingQueries {
  // Attends to every key of the call, as transformers' mask builders did for SDPA with torch
  // older than 2.5 (AttentionMaskConverter._unmask_unattended): kvsafe's default.
  kAttendAll,
  // Attention output zero: transformers' masking_utils.sdpa_mask (4.52 and later) leaves the
  // row fully masked when torch is 2.5 or later, whose SDPA returns zeros for such a row. The
  // paper's setting (transformers 4.57, SDPA attention).
  kZero,
};

}  // namespace kvsafe::engine
