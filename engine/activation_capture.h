#pragma once
// ActivationCapture: records chosen activations at chosen layers and token positions while
// Model::forward runs, for the diagnostics (refusal direction at post-instruction tokens,
// quantization error along it). Only the selected rows are copied, never a whole run.
//
//   ActivationCapture capture({.layers = {10, 11}, .kinds = {CaptureKind::kResidual},
//                              .positions = {prompt0.post_instruction, prompt1.post_instruction}});
//   model->forward(tokens, valid, cache, {.capture = &capture});
//   at::Tensor r = capture.get(CaptureKind::kResidual, 10);  // [points, hidden] float32
//
// Positions are sequence positions (the index among a row's real tokens, i.e. the index into
// TokenizedChat::ids), so left padding does not change what is selected. A forward call
// without a capture pays nothing (a null pointer test per layer).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace kvsafe::engine {

enum class CaptureKind {
  kResidual,         // residual stream after the layer (HF hidden_states[layer + 1]) [hidden]
  kAttentionOutput,  // attention block output (o_proj, before any post-norm or residual add) [hidden]
  kKeyExact,         // keys before the KV path: projection placement: k_proj output (pre-RoPE);
                     // cache placement: post-RoPE keys [kv_heads * head_dim]
  kKeyUsed,          // keys as attention used them (after quantization) [kv_heads * head_dim]
  kValueExact,       // values before the KV path [kv_heads * head_dim]
  kValueUsed,        // values as attention used them [kv_heads * head_dim]
};

struct CaptureRequest {
  std::vector<std::int64_t> layers{};  // decoder layers to record; empty = every layer
  std::vector<CaptureKind> kinds{};    // what to record at each
  // Per batch row, the sequence positions to record; rows beyond the vector record nothing.
  std::vector<std::vector<std::int64_t>> positions{};
};

// A captured row's origin.
struct CapturePoint {
  std::int64_t row = 0;       // batch row
  std::int64_t position = 0;  // sequence position
  bool operator==(const CapturePoint&) const = default;
};

class ActivationCapture {
 public:
  explicit ActivationCapture(CaptureRequest request);

  // float32 [points, width] on the model's device: every captured row of `kind` at `layer`,
  // in the order of points(); undefined when nothing was captured there.
  at::Tensor get(CaptureKind kind, std::int64_t layer) const;
  // Where each row came from: calls in order, then batch row, then position.
  const std::vector<CapturePoint>& points() const { return points_; }
  // Forgets everything recorded (the request stays).
  void clear();

  // ---- used by Model::forward --------------------------------------------------------
  // Selects this call's rows. positions: int64 [batch, n] (CPU or device), valid: bool [batch, n].
  void begin_call(const at::Tensor& positions, const at::Tensor& valid);
  // True when (kind, layer) is requested and this call selected rows.
  bool wants(CaptureKind kind, std::int64_t layer) const;
  // x: [batch, n, width]: records the selected rows.
  void record(CaptureKind kind, std::int64_t layer, const at::Tensor& x);

 private:
  CaptureRequest request_;
  std::vector<bool> kind_on_;         // indexed by CaptureKind
  at::Tensor index_;                  // int64 [selected]: flat batch * n indices of this call
  std::vector<CapturePoint> points_;  // all calls
  std::map<std::pair<int, std::int64_t>, std::vector<at::Tensor>> chunks_;  // (kind, layer) -> per call
};

}  // namespace kvsafe::engine
