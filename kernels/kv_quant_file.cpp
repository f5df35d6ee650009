// kvsafe quantize's library side; see kv_quant_file.h.

#include "kernels/kv_quant_file.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <regex>

#include "common/error.h"
#include "kernels/kv_quant.h"

namespace kvsafe::kernels {
namespace {

at::ScalarType dtype_of(const std::string& name, const std::string& tensor) {
  if (name == "F32") return at::kFloat;
  if (name == "F16") return at::kHalf;
  if (name == "BF16") return at::kBFloat16;
  throw InputError("tensor `" + tensor + "` has dtype " + name + "; kvsafe quantize reads F32, F16 and BF16");
}

std::string dtype_name(at::ScalarType t) {
  if (t == at::kFloat) return "F32";
  if (t == at::kHalf) return "F16";
  if (t == at::kBFloat16) return "BF16";
  throw InputError(std::string("cannot write dtype ") + c10::toString(t) + " to safetensors");
}

}  // namespace

std::map<std::string, at::Tensor> read_safetensors(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  KVSAFE_CHECK(in.good(), "cannot open ", path.string());
  const auto size = static_cast<std::uint64_t>(std::filesystem::file_size(path));
  std::uint64_t n = 0;
  KVSAFE_CHECK(size >= 8 && in.read(reinterpret_cast<char*>(&n), 8), path.string(), ": shorter than 8 bytes");
  KVSAFE_CHECK(n <= size - 8 && n <= 100'000'000, path.string(), ": header length ", n, " exceeds the file");
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path.string() + ": header is not JSON: " + e.what());
  }
  const std::uint64_t data_size = size - 8 - n;
  std::vector<char> data(data_size);
  in.read(data.data(), static_cast<std::streamsize>(data_size));
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, info] : j.items()) {
    if (name == "__metadata__") continue;
    try {
      const at::ScalarType t = dtype_of(info.at("dtype").get<std::string>(), name);
      const auto shape = info.at("shape").get<std::vector<std::int64_t>>();
      const auto offsets = info.at("data_offsets").get<std::vector<std::uint64_t>>();
      std::int64_t numel = 1;
      for (std::int64_t d : shape) {
        KVSAFE_CHECK(d >= 0 && d < (1ll << 40), path.string(), ": tensor `", name, "` has a bad shape");
        numel *= d;
      }
      const std::uint64_t bytes = static_cast<std::uint64_t>(numel) * c10::elementSize(t);
      KVSAFE_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_size &&
                       offsets[1] - offsets[0] == bytes,
                   path.string(), ": tensor `", name, "` has data_offsets outside the data or of the wrong size");
      at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(t));
      std::memcpy(tensor.data_ptr(), data.data() + offsets[0], bytes);
      out.emplace(name, tensor);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path.string() + ": tensor `" + name + "`: " + e.what());
    }
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path, const std::map<std::string, at::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
    header[name] = {
        {"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes
  std::ofstream out(path, std::ios::binary);
  KVSAFE_CHECK(out.good(), "cannot write ", path.string());
  const std::uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(text.data(), static_cast<std::streamsize>(n));
  for (const auto& [name, t] : tensors) {
    const at::Tensor c = t.contiguous();
    out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
  }
  KVSAFE_CHECK(out.good(), "error writing ", path.string());
}

std::vector<TensorQuantStats> quantize_safetensors_file(const std::filesystem::path& input,
                                                        const std::filesystem::path& output, const KvQuantSpec& spec,
                                                        const QuantizeFileOptions& options) {
  check_kv_spec(spec);
  KvQuantSpec placed = spec;
  placed.placement = options.layout;
  check_kv_spec(placed);
  const std::map<std::string, at::Tensor> tensors = read_safetensors(input);
  std::map<std::string, at::Tensor> result;
  std::vector<TensorQuantStats> stats;
  static const std::regex kLayer(R"(layers?[._](\d+)[._])");
  static const std::regex kValue(R"((^|[._])(v|v_proj|value|values|v_cache)([._]|$))");
  for (const auto& [name, x] : tensors) {
    TensorQuantStats s{.name = name, .shape = x.sizes().vec()};
    std::smatch m;
    if (std::regex_search(name, m, kLayer)) s.layer = std::stoi(m[1].str());
    const KvSide side = std::regex_search(name, kValue) ? KvSide::kValue : KvSide::kKey;
    s.side = side == KvSide::kKey ? "key" : "value";
    const KvSideSpec resolved = resolve_side(placed, side, s.layer);
    at::Tensor q;
    if (options.layout == Placement::kProjection) {
      const float scale = resolved.fp8_scale == Fp8ScaleSource::kCalibrated ? fp8_calibrated_scale(x, side) : 1.0f;
      q = fake_quantize_projection(x, resolved, nullptr, scale);
    } else {
      KVSAFE_CHECK(x.dim() == 4 || x.dim() == 3, "tensor `", name,
                   "`: layout cache needs [batch, heads, tokens, head_dim] (or [heads, tokens, head_dim])");
      const at::Tensor x4 = x.dim() == 3 ? x.unsqueeze(0) : x;
      CacheQuantOptions o;
      if (is_fp8(resolved.scheme) && resolved.fp8_scale == Fp8ScaleSource::kCalibrated) {
        o.fp8_scale = fp8_calibrated_scale(x, side);
      }
      q = fake_quantize_cache(x4, {}, resolved, o).view(x.sizes());
    }
    const at::Tensor xd = x.to(at::kDouble), err = q.to(at::kDouble) - xd;
    const double err2 = err.pow(2).sum().item<double>(), sig2 = xd.pow(2).sum().item<double>();
    s.mse = x.numel() > 0 ? err2 / static_cast<double>(x.numel()) : 0.0;
    s.max_abs_error = x.numel() > 0 ? err.abs().max().item<double>() : 0.0;
    s.snr_db = err2 > 0 ? 10.0 * std::log10(sig2 / err2) : std::numeric_limits<double>::infinity();
    EffectiveBitsOptions eb;
    if (x.dim() >= 1 && x.size(-1) > 0) eb.head_dim = static_cast<int>(x.size(-1));
    s.effective_bits = effective_bits(placed, eb);
    result.emplace(name, q.contiguous());
    stats.push_back(std::move(s));
  }
  write_safetensors(output, result);
  return stats;
}

}  // namespace kvsafe::kernels
