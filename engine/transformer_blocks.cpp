// Shared transformer blocks (engine/transformer_blocks.h). Numerics follow transformers'
// eager code (modeling_llama.py and relatives, v4.47): the tests compare float32 logits with
// it to 1e-4.

#include "engine/transformer_blocks.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include "common/error.h"
#include "engine/packed_gemm.h"

namespace kvsafe::engine {

RopeTables make_rope_tables(const ModelConfig& config, c10::Device device) {
  const std::int64_t dim = config.rotary_dim;
  KVSAFE_CHECK(dim > 0 && dim % 2 == 0, "rotary_dim must be positive and even, got ", dim);
  // NOTE: the same float32 formula as transformers' _compute_default_rope_parameters, so the
  // tables agree bit for bit: 1 / base ** (arange(0, dim, 2).float() / dim).
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor exponents =
      at::arange(0, dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(dim);
  const at::Tensor powers = at::pow(config.rope_theta, exponents);
  at::Tensor inv_freq = 1.0 / powers;
  const RopeScaling& s = config.rope_scaling;
  const auto half = static_cast<std::size_t>(dim / 2);
  auto factors_tensor = [&](const std::vector<double>& values, const char* what) {
    KVSAFE_CHECK(values.size() == half, "rope_scaling.", what, " has ", values.size(), " entries, expected ", half,
                 " (one per rotary pair)");
    std::vector<float> as_float(values.begin(), values.end());
    return at::tensor(as_float, f32);
  };
  RopeTables tables;
  switch (s.type) {
    case RopeScaling::Type::kNone:
      break;
    case RopeScaling::Type::kLinear:
      inv_freq = inv_freq / s.factor;
      break;
    case RopeScaling::Type::kFreqFactors:
      inv_freq = inv_freq / factors_tensor(s.freq_factors, "freq_factors");
      break;
    case RopeScaling::Type::kLlama3: {
      // transformers' _compute_llama3_parameters (Llama-3.1).
      const auto old_context = static_cast<double>(s.original_max_position_embeddings);
      KVSAFE_CHECK(old_context > 0, "rope_scaling llama3 needs original_max_position_embeddings");
      const double low_wavelen = old_context / s.low_freq_factor;
      const double high_wavelen = old_context / s.high_freq_factor;
      const at::Tensor wavelen = 2 * std::numbers::pi / inv_freq;
      at::Tensor llama = at::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
      const at::Tensor smooth = (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      const at::Tensor smoothed = (1 - smooth) * llama / s.factor + smooth * llama;
      const at::Tensor medium = at::logical_not(wavelen < high_wavelen) & at::logical_not(wavelen > low_wavelen);
      inv_freq = at::where(medium, smoothed, llama);
      break;
    }
    case RopeScaling::Type::kLongRope: {
      // transformers' Phi3LongRoPEScaledRotaryEmbedding: short factors up to the original
      // context, long ones beyond, and cos/sin scaled by sqrt(1 + ln(scale) / ln(original)).
      tables.original_max = s.original_max_position_embeddings;
      KVSAFE_CHECK(tables.original_max > 0, "rope_scaling longrope needs original_max_position_embeddings");
      inv_freq = 1.0 / (factors_tensor(s.short_factor, "short_factor") * powers);
      tables.inv_freq_long = (1.0 / (factors_tensor(s.long_factor, "long_factor") * powers)).to(device);
      if (s.attention_factor) {
        tables.attention_factor = *s.attention_factor;
      } else {
        const double scale =
            static_cast<double>(config.max_position_embeddings) / static_cast<double>(tables.original_max);
        tables.attention_factor =
            scale <= 1.0 ? 1.0 : std::sqrt(1 + std::log(scale) / std::log(static_cast<double>(tables.original_max)));
      }
      break;
    }
    case RopeScaling::Type::kDynamic:
    case RopeScaling::Type::kYarn:
      KVSAFE_CHECK(false, "rope_scaling type ", s.type == RopeScaling::Type::kDynamic ? "dynamic" : "yarn",
                   " is not supported by the engine (supported: none, linear, llama3, longrope, GGUF freq factors)");
  }
  tables.inv_freq = inv_freq.to(device);
  return tables;
}

RopeCosSin rope_cos_sin(const RopeTables& tables, std::int64_t rotary_dim, const at::Tensor& positions,
                        at::ScalarType dtype) {
  (void)rotary_dim;
  const at::Tensor* inv_freq = &tables.inv_freq;
  if (tables.inv_freq_long.defined() && positions.numel() > 0 &&
      positions.max().item<std::int64_t>() + 1 > tables.original_max) {
    inv_freq = &tables.inv_freq_long;
  }
  const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq->view({1, 1, -1});
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos();
  at::Tensor sin = emb.sin();
  if (tables.attention_factor != 1.0) {
    cos = cos * tables.attention_factor;
    sin = sin * tables.attention_factor;
  }
  return {.cos = cos.to(dtype), .sin = sin.to(dtype)};
}

namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const std::int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

at::Tensor apply_rope(const at::Tensor& x, const RopeCosSin& rope) {
  if (apply_rope_cpu_applies(x, rope)) return apply_rope_cpu(x, rope);
  const at::Tensor cos = rope.cos.unsqueeze(1);  // [batch, 1, n, rotary_dim]
  const at::Tensor sin = rope.sin.unsqueeze(1);
  const std::int64_t rotary = rope.cos.size(-1);
  if (rotary == x.size(-1)) return x * cos + rotate_half(x) * sin;
  const at::Tensor rot = x.narrow(-1, 0, rotary);
  const at::Tensor pass = x.narrow(-1, rotary, x.size(-1) - rotary);
  return at::cat({rot * cos + rotate_half(rot) * sin, pass}, -1);
}

namespace {

// ATen's own path, for other devices and dtypes.
at::Tensor linear_t_aten(const at::Tensor& x, const at::Tensor& weight_t, const at::Tensor& bias) {
  // NOTE: at::linear's own dispatch (ATen/native/Linear.cpp, v1.13), so that the bits agree:
  // addmm for a 2-d or contiguous 3-d input with a bias, matmul (+ add_) otherwise.
  if (bias.defined() && x.dim() == 2) return at::addmm(bias, x, weight_t);
  if (bias.defined() && x.dim() == 3 && x.is_contiguous()) {
    const at::Tensor out = at::addmm(bias, x.view({x.size(0) * x.size(1), x.size(2)}), weight_t);
    return out.view({x.size(0), x.size(1), out.size(1)});
  }
  at::Tensor out = at::matmul(x, weight_t);
  if (bias.defined()) out.add_(bias);
  return out;
}

}  // namespace

Matrix make_matrix(const at::Tensor& w) {
  KVSAFE_ASSERT(w.dim() == 2, "make_matrix: not a matrix");
  Matrix m{.panels = {}, .format = PanelFormat::kFloat32, .weight_t = {}, .in = w.size(1), .out = w.size(0)};
  if (w.device().is_cpu() && w.scalar_type() == at::kFloat) {
    const at::Tensor dense = w.contiguous();
    m.panels = at::empty({packed_floats(m.in, m.out)}, w.options());
    pack_panels(dense.data_ptr<float>(), m.in, m.out, m.panels.data_ptr<float>());
  } else {
    m.weight_t = w.t().contiguous();
  }
  return m;
}

std::optional<Matrix> make_quantized_matrix(PanelFormat format, std::span<const std::byte> blocks,
                                            const at::Tensor& w) {
  KVSAFE_ASSERT(w.dim() == 2 && w.device().is_cpu() && w.scalar_type() == at::kFloat,
                "make_quantized_matrix: not a float32 CPU matrix");
  const std::int64_t in = w.size(1), out = w.size(0);
  if (in % kTileInputs != 0) return std::nullopt;
  const at::Tensor dense = w.contiguous();
  Matrix m{.panels = at::empty({packed_bytes(format, in, out)}, at::TensorOptions().dtype(at::kByte)),
           .format = format,
           .weight_t = {},
           .in = in,
           .out = out};
  // NOTE: checked with the kernels' own expansion (the copy this CPU runs), the one every
  // product uses; tests compare it with the reference on every copy.
  const std::span<const float> expected(dense.data_ptr<float>(), static_cast<std::size_t>(dense.numel()));
  if (!load_quantized_panels(format, blocks, expected, in, out, reinterpret_cast<std::byte*>(m.panels.data_ptr()),
                             &expand_tile)) {
    return std::nullopt;
  }
  return m;
}

namespace {

// Whether every weight of the group takes x's width, and all are packed. Residuals must have
// the result's shape ([..., out]) on every path: the packed one reads them row by row.
bool all_packed(const at::Tensor& x, std::span<const LinearWeights> weights) {
  for (const LinearWeights& w : weights) {
    KVSAFE_ASSERT(w.matrix != nullptr && w.matrix->in == x.size(-1), "linear_t: weight does not take ", x.size(-1),
                  " inputs");
    if (w.residual.defined()) {
      std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
      shape.back() = w.matrix->out;
      KVSAFE_ASSERT(w.residual.sizes() == at::IntArrayRef(shape), "linear_t: the residual is ", w.residual.sizes(),
                    ", not the result's shape ", at::IntArrayRef(shape));
    }
  }
  return std::all_of(weights.begin(), weights.end(), [](const LinearWeights& w) { return w.matrix->panels.defined(); });
}

// linear_t_group's packed path: one region for every weight of the group (packed_matmul).
std::vector<at::Tensor> packed_group(const at::Tensor& x, std::span<const LinearWeights> weights,
                                     const PairEpilogue* pair) {
  std::vector<at::Tensor> outs;
  outs.reserve(weights.size());
  const std::int64_t in = x.size(-1);
  KVSAFE_ASSERT(x.device().is_cpu() && x.scalar_type() == at::kFloat,
                "linear_t: packed weights take float32 CPU inputs");
  std::int64_t row_count = 1;  // the leading dims (not numel / in: in may be 0)
  for (std::int64_t d = 0; d + 1 < x.dim(); ++d) row_count *= x.size(d);
  const at::Tensor rows = x.reshape({row_count, in}).contiguous();
  std::vector<PackedProduct> products;
  std::vector<at::Tensor> operands;  // contiguous biases and residuals, alive until the products are done
  for (const LinearWeights& w : weights) {
    KVSAFE_ASSERT(!w.bias.defined() || (w.bias.scalar_type() == at::kFloat && w.bias.numel() == w.matrix->out));
    KVSAFE_ASSERT(!w.residual.defined() || (w.residual.scalar_type() == at::kFloat && w.residual.device().is_cpu()),
                  "linear_t: packed weights take a float32 CPU residual");
    const float* bias = nullptr;
    const float* residual = nullptr;
    if (w.bias.defined()) bias = operands.emplace_back(w.bias.contiguous()).data_ptr<float>();
    if (w.residual.defined()) residual = operands.emplace_back(w.residual.contiguous()).data_ptr<float>();
    outs.push_back(at::empty({rows.size(0), w.matrix->out}, x.options()));
    products.push_back({.panels = w.matrix->panels.data_ptr(),
                        .format = w.matrix->format,
                        .n = w.matrix->out,
                        .bias = bias,
                        .residual = residual,
                        .out = outs.back().data_ptr<float>()});
  }
  packed_matmul(rows.data_ptr<float>(), rows.size(0), in, products, pair);
  std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
  for (at::Tensor& out : outs) {
    shape.back() = out.size(1);
    out = out.view(shape);
  }
  return outs;
}

}  // namespace

std::vector<at::Tensor> linear_t_group(const at::Tensor& x, std::span<const LinearWeights> weights) {
  if (all_packed(x, weights)) return packed_group(x, weights, nullptr);
  std::vector<at::Tensor> outs;
  outs.reserve(weights.size());
  for (const LinearWeights& w : weights) {
    if (w.matrix->panels.defined()) {
      outs.push_back(linear_t(x, *w.matrix, w.bias, w.residual));
    } else {
      const at::Tensor out = linear_t_aten(x, w.matrix->weight_t, w.bias);
      outs.push_back(w.residual.defined() ? w.residual + out : out);
    }
  }
  return outs;
}

at::Tensor linear_t(const at::Tensor& x, const Matrix& w, const at::Tensor& bias, const at::Tensor& residual) {
  const LinearWeights lw{.matrix = &w, .bias = bias, .residual = residual};
  return linear_t_group(x, std::span<const LinearWeights>(&lw, 1)).front();
}

at::Tensor embed_tokens(const ModelWeights& weights, const at::Tensor& tokens) {
  if (weights.embed.defined()) return at::embedding(weights.embed, tokens);
  // Tied: the rows of the embedding are the columns of lm_head.
  const Matrix& head = weights.lm_head;
  at::Tensor rows;
  if (head.panels.defined()) {
    const at::Tensor flat = tokens.reshape({-1}).to(at::kCPU, at::kLong).contiguous();
    rows = at::empty({flat.numel(), head.in}, at::TensorOptions().dtype(at::kFloat));
    const auto* ids = flat.data_ptr<std::int64_t>();
    const std::int64_t count = flat.numel();
    for (std::int64_t i = 0; i < count; ++i) {
      KVSAFE_CHECK(ids[i] >= 0 && ids[i] < head.out, "token id ", ids[i], " is outside the vocabulary of ", head.out);
    }
    const auto* tiles = reinterpret_cast<const std::byte*>(head.panels.data_ptr());
    // NOTE: quantized rows are requested a few tokens ahead, or a decode step waits here on one
    // token's cache misses at a time.
    constexpr std::int64_t kTokensAhead = 4;
    const auto prefetch = [&](std::int64_t i) {
      if (head.format != PanelFormat::kFloat32 && i < count)
        prefetch_quantized_column(head.format, tiles, head.in, ids[i]);
    };
    for (std::int64_t i = 0; i < kTokensAhead; ++i) prefetch(i);
    for (std::int64_t i = 0; i < count; ++i) {
      prefetch(i + kTokensAhead);
      float* row = rows.data_ptr<float>() + i * head.in;
      if (head.format == PanelFormat::kFloat32) {
        unpack_column(head.panels.data_ptr<float>(), head.in, ids[i], row);
      } else {
        unpack_quantized_column(head.format, tiles, head.in, ids[i], row);
      }
    }
  } else {
    rows = head.weight_t.index_select(1, tokens.reshape({-1})).t();  // [tokens, hidden], on the head's device
  }
  return rows.reshape({tokens.size(0), tokens.size(1), head.in});
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (rms_norm_cpu_applies(x, weight)) return rms_norm_cpu(x, weight, eps);
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  const at::Tensor normed = xf * at::rsqrt(variance + eps);
  return weight * normed.to(x.scalar_type());
}

AttentionOptions default_attention_options(const ModelConfig& config, std::int64_t layer) {
  AttentionOptions o;
  o.sliding = config.sliding_window.has_value() && config.sliding_window_pattern > 0 &&
              layer % config.sliding_window_pattern == 0;
  const double scalar =
      config.query_pre_attn_scalar > 0 ? config.query_pre_attn_scalar : static_cast<double>(config.head_dim);
  o.scale = 1.0 / std::sqrt(scalar);
  o.softcap = config.attn_logit_softcapping;
  o.qk_norm = config.qk_norm;
  return o;
}

namespace {

void log_mse(CallContext& ctx, std::int64_t layer, KvSide side, std::int64_t tokens, double mse) {
  if (ctx.kv_log != nullptr && !std::isnan(mse)) {
    ctx.kv_log->records.push_back({.layer = layer, .side = side, .tokens = tokens, .mse = mse});
  }
}

// [batch, kv_heads, n, head_dim] -> [batch, n, kv_heads * head_dim] for capture.
at::Tensor heads_to_rows(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

}  // namespace

at::Tensor attention_block(const LayerWeights& w, std::int64_t layer, const at::Tensor& x, CallContext& ctx,
                           const AttentionOptions& options, const at::Tensor& residual) {
  const ModelConfig& c = *ctx.config;
  const std::int64_t batch = x.size(0), n = x.size(1);
  const std::int64_t heads = c.num_heads, kv_heads = c.num_kv_heads, dim = c.head_dim;
  const std::array<LinearWeights, 3> qkv_weights{LinearWeights{.matrix = &w.q_proj, .bias = w.q_bias, .residual = {}},
                                                 LinearWeights{.matrix = &w.k_proj, .bias = w.k_bias, .residual = {}},
                                                 LinearWeights{.matrix = &w.v_proj, .bias = w.v_bias, .residual = {}}};
  std::vector<at::Tensor> qkv = linear_t_group(x, qkv_weights);
  at::Tensor q = std::move(qkv[0]), k = std::move(qkv[1]), v = std::move(qkv[2]);

  const bool projection = ctx.path != nullptr && ctx.path->placement() == KvPlacement::kProjection;
  const bool cache_path = ctx.path != nullptr && ctx.path->placement() == KvPlacement::kCache;
  if (!cache_path) {
    capture_if(ctx, CaptureKind::kKeyExact, layer, k);
    capture_if(ctx, CaptureKind::kValueExact, layer, v);
  }
  if (projection) {
    // The paper's hooks: k_proj / v_proj outputs of the whole call, before RoPE.
    KvProjectionCall call{.layer = layer,
                          .side = KvSide::kKey,
                          .valid = ctx.valid_new,
                          .prefill = ctx.prefill,
                          .fused_qkv = options.fused_qkv};
    double mse = std::numeric_limits<double>::quiet_NaN();
    k = ctx.path->project(k, call, &mse);
    log_mse(ctx, layer, KvSide::kKey, batch * n, mse);
    call.side = KvSide::kValue;
    mse = std::numeric_limits<double>::quiet_NaN();
    v = ctx.path->project(v, call, &mse);
    log_mse(ctx, layer, KvSide::kValue, batch * n, mse);
  }
  if (!cache_path) {
    capture_if(ctx, CaptureKind::kKeyUsed, layer, k);
    capture_if(ctx, CaptureKind::kValueUsed, layer, v);
  }
  if (options.qk_norm) {
    q = rms_norm(q, w.q_norm, c.rms_norm_eps);
    k = rms_norm(k, w.k_norm, c.rms_norm_eps);
  }
  q = apply_rope(q.view({batch, n, heads, dim}).transpose(1, 2), ctx.rope);
  const at::Tensor k_before_rope = k.view({batch, n, kv_heads, dim}).transpose(1, 2);
  k = apply_rope(k_before_rope, ctx.rope);
  v = v.view({batch, n, kv_heads, dim}).transpose(1, 2);
  const bool keys_before_rope = cache_path && ctx.path->keys_before_rope();

  KvLayerStore& store = ctx.cache->store(layer, {.layer = layer,
                                                 .batch = batch,
                                                 .kv_heads = kv_heads,
                                                 .head_dim = dim,
                                                 .dtype = k.scalar_type(),
                                                 .device = k.device(),
                                                 .expected_tokens = 0});
  KvRead read = store.append(keys_before_rope ? k_before_rope : k, v, ctx.valid_new);
  at::Tensor keys = read.keys, values = read.values;
  if (keys_before_rope) {
    // KVQuant (Hooper et al. 2024, sec. 3.2): keys are quantized before RoPE, which is applied
    // to the dequantized history at every read, each slot at its own position.
    // NOTE: this rotates the layer's whole key history per call, O(batch * kv_heads * tokens *
    // head_dim) more elementwise work per layer and step; fine for CPU correctness runs.
    keys = apply_rope(keys, ctx.key_rope);
  }
  if (cache_path) {
    log_mse(ctx, layer, KvSide::kKey, batch * n, read.key_mse);
    log_mse(ctx, layer, KvSide::kValue, batch * n, read.value_mse);
    if (ctx.capture != nullptr) {
      const std::int64_t total = keys.size(2);
      capture_if(ctx, CaptureKind::kKeyExact, layer, heads_to_rows(k));
      capture_if(ctx, CaptureKind::kValueExact, layer, heads_to_rows(v));
      capture_if(ctx, CaptureKind::kKeyUsed, layer, heads_to_rows(keys.narrow(2, total - n, n)));
      capture_if(ctx, CaptureKind::kValueUsed, layer, heads_to_rows(values.narrow(2, total - n, n)));
    }
    // vLLM: the prompt's own prefill attends to its exact K/V; later steps read the store.
    if (ctx.prefill && ctx.path->prefill_attention() == KvPrefillAttention::kExact) {
      keys = k;
      values = v;
    }
  }

  const at::Tensor& allowed = options.sliding ? ctx.allowed_window : ctx.allowed;  // [batch, 1, n, total]
  at::Tensor out = attention_core(q, keys, values, allowed, options.scale, options.softcap)
                       .view({batch, heads, n, dim})
                       .transpose(1, 2)
                       .reshape({batch, n, heads * dim});
  if (ctx.zero_rows.defined()) out = out.masked_fill(ctx.zero_rows, 0);
  if (residual.defined() && (ctx.capture == nullptr || !ctx.capture->wants(CaptureKind::kAttentionOutput, layer))) {
    // NOTE: the residual add in o_proj's last step saves a pass over the hidden states on the
    // calling thread (an ATen add, with the same bits).
    return linear_t(out, w.o_proj, {}, residual);
  }
  at::Tensor o = linear_t(out, w.o_proj);
  capture_if(ctx, CaptureKind::kAttentionOutput, layer, o);
  return residual.defined() ? residual + o : o;
}

at::Tensor gated_mlp(const at::Tensor& x, const Matrix& gate, const Matrix& up, const Matrix& down,
                     const std::string& act, const at::Tensor& residual) {
  const std::array<LinearWeights, 2> gate_up{LinearWeights{.matrix = &gate, .bias = {}, .residual = {}},
                                             LinearWeights{.matrix = &up, .bias = {}, .residual = {}}};
  if (act == "silu" && all_packed(x, gate_up)) {
    // NOTE: silu(g) * u runs in gate/up's region as each pair of panels finishes, on the
    // thread that computed them, written over u (a parallel region of its own costs its
    // start-up and a pass over u); the same bits as silu_mul_cpu.
    const PairEpilogue swiglu{.run =
                                  [](void*, const PackedProduct& g, const PackedProduct& u, std::int64_t row,
                                     std::int64_t rows, std::int64_t column, std::int64_t columns) {
                                    for (std::int64_t r = row; r < row + rows; ++r) {
                                      float* u_row = u.out + r * u.n + column;
                                      silu_mul_span(g.out + r * g.n + column, u_row, u_row, columns);
                                    }
                                  },
                              .context = nullptr};
    return linear_t(packed_group(x, gate_up, &swiglu)[1], down, {}, residual);
  }
  std::vector<at::Tensor> projected = linear_t_group(x, gate_up);
  at::Tensor g = std::move(projected[0]);
  if (act == "silu" && silu_mul_cpu_applies(g, projected[1])) {
    return linear_t(silu_mul_cpu(g, projected[1]), down, {}, residual);
  }
  if (act == "silu") {
    g = at::silu(g);
  } else if (act == "gelu_pytorch_tanh") {
    g = at::gelu(g, "tanh");
  } else if (act == "gelu") {
    g = at::gelu(g);
  } else {
    KVSAFE_CHECK(false, "unsupported MLP activation '", act, "'");
  }
  return linear_t(g * projected[1], down, {}, residual);
}

at::Tensor moe_mlp(const LayerWeights& w, const at::Tensor& x, std::int64_t top_k, const std::string& act) {
  const at::Tensor flat = x.reshape({-1, x.size(-1)});
  const at::Tensor router_logits = linear_t(flat, w.router);
  const at::Tensor routing = at::softmax(router_logits, 1, at::kFloat);
  auto [weights, experts] = routing.topk(top_k, -1);
  weights = (weights / weights.sum(-1, /*keepdim=*/true)).to(x.scalar_type());
  at::Tensor out = at::zeros_like(flat);
  const auto n_experts = static_cast<std::int64_t>(w.expert_w1.size());
  for (std::int64_t e = 0; e < n_experts; ++e) {
    const at::Tensor hit = (experts == e).nonzero();  // [m, 2]: (token, slot)
    if (hit.size(0) == 0) continue;
    const at::Tensor tokens = hit.select(1, 0);
    const at::Tensor slots = hit.select(1, 1);
    const auto ue = static_cast<std::size_t>(e);
    const at::Tensor y =
        gated_mlp(flat.index_select(0, tokens), w.expert_w1[ue], w.expert_w3[ue], w.expert_w2[ue], act);
    const at::Tensor scale = weights.index_select(0, tokens).gather(1, slots.unsqueeze(1));
    out.index_add_(0, tokens, y * scale);
  }
  return out.view(x.sizes());
}

at::Tensor pre_norm_layer(const LayerWeights& w, std::int64_t layer, const at::Tensor& hidden, CallContext& ctx,
                          const AttentionOptions& options) {
  const ModelConfig& c = *ctx.config;
  // h = hidden + attention(norm(hidden)); h + mlp(norm(h)): the adds run inside o_proj and down.
  const at::Tensor h =
      attention_block(w, layer, rms_norm(hidden, w.input_norm, c.rms_norm_eps), ctx, options, /*residual=*/hidden);
  const at::Tensor normed = rms_norm(h, w.post_attention_norm, c.rms_norm_eps);
  if (c.num_experts > 0) return h + moe_mlp(w, normed, c.num_experts_per_token, c.hidden_act);
  return gated_mlp(normed, w.gate_proj, w.up_proj, w.down_proj, c.hidden_act, /*residual=*/h);
}

}  // namespace kvsafe::engine
