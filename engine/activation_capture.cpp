// ActivationCapture (engine/activation_capture.h).

#include "engine/activation_capture.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "common/error.h"

namespace kvsafe::engine {

namespace {
constexpr int kKinds = static_cast<int>(CaptureKind::kValueUsed) + 1;
}

ActivationCapture::ActivationCapture(CaptureRequest request) : request_(std::move(request)), kind_on_(kKinds, false) {
  for (const CaptureKind k : request_.kinds) kind_on_[static_cast<std::size_t>(k)] = true;
  std::sort(request_.layers.begin(), request_.layers.end());
  for (auto& row : request_.positions) std::sort(row.begin(), row.end());
}

void ActivationCapture::clear() {
  points_.clear();
  chunks_.clear();
  index_ = at::Tensor();
}

void ActivationCapture::begin_call(const at::Tensor& positions, const at::Tensor& valid) {
  const at::Tensor pos = positions.to(at::kCPU).contiguous();
  const at::Tensor ok = valid.to(at::kCPU, at::kBool).contiguous();
  const std::int64_t batch = pos.size(0), n = pos.size(1);
  const auto* p = pos.data_ptr<std::int64_t>();
  const auto* v = ok.data_ptr<bool>();
  std::vector<std::int64_t> flat;
  const auto rows = std::min<std::int64_t>(batch, static_cast<std::int64_t>(request_.positions.size()));
  for (std::int64_t b = 0; b < rows; ++b) {
    const auto& wanted = request_.positions[static_cast<std::size_t>(b)];
    for (std::int64_t t = 0; t < n; ++t) {
      const std::int64_t i = b * n + t;
      if (v[i] && std::binary_search(wanted.begin(), wanted.end(), p[i])) {
        flat.push_back(i);
        points_.push_back({.row = b, .position = p[i]});
      }
    }
  }
  index_ = flat.empty() ? at::Tensor() : at::tensor(flat, at::TensorOptions().dtype(at::kLong)).to(positions.device());
}

bool ActivationCapture::wants(CaptureKind kind, std::int64_t layer) const {
  if (!index_.defined() || !kind_on_[static_cast<std::size_t>(kind)]) return false;
  return request_.layers.empty() || std::binary_search(request_.layers.begin(), request_.layers.end(), layer);
}

void ActivationCapture::record(CaptureKind kind, std::int64_t layer, const at::Tensor& x) {
  KVSAFE_ASSERT(x.dim() == 3, "capture expects [batch, n, width]");
  const at::Tensor rows = x.reshape({-1, x.size(2)}).index_select(0, index_).to(at::kFloat);
  chunks_[{static_cast<int>(kind), layer}].push_back(rows);
}

at::Tensor ActivationCapture::get(CaptureKind kind, std::int64_t layer) const {
  const auto it = chunks_.find({static_cast<int>(kind), layer});
  if (it == chunks_.end()) return {};
  return it->second.size() == 1 ? it->second.front() : at::cat(it->second, 0);
}

}  // namespace kvsafe::engine
