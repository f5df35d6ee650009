// Model: loading weights into ATen tensors and the forward call (engine/model.h).

#include "engine/model.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "common/cpu_kernels.h"
#include "common/error.h"
#include "engine/cpu_gemm.h"
#include "engine/kv_cache.h"
#include "engine/transformer_blocks.h"
#include "modelfile/weights_loader.h"

namespace kvsafe::engine {

struct Model::Impl {
  ModelConfig config;
  std::filesystem::path path;
  c10::Device device{c10::kCPU};
  at::ScalarType dtype = at::kFloat;
  ModelWeights weights;
  RopeTables rope;
  LayerFunction layer_fn = nullptr;
  std::int64_t parameters = 0;
  std::int64_t weight_bytes = 0;
  std::int64_t steering_layer = -1;  // ModelLoadOptions::steering; -1 = none
  at::Tensor steering;               // [hidden] in the model's dtype, on its device
};

namespace {

LayerFunction layer_function(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlama:
      return &llama_layer;
    case ModelFamily::kMistral:
      return &mistral_layer;
    case ModelFamily::kMixtral:
      return &mixtral_layer;
    case ModelFamily::kQwen2:
      return &qwen2_layer;
    case ModelFamily::kPhi3:
      return &phi3_layer;
    case ModelFamily::kGemma2:
      return &gemma2_layer;
    case ModelFamily::kOlmo2:
      return &olmo2_layer;
  }
  KVSAFE_ASSERT(false, "unknown model family");
  return nullptr;
}

c10::Device parse_device(const std::string& text) {
  KVSAFE_CHECK(text == "cpu" || text == "cuda" || text.starts_with("cuda:"), "unknown device '", text,
               "' (expected cpu, cuda or cuda:N)");
  if (text == "cpu") return c10::Device(c10::kCPU);
  KVSAFE_CHECK(at::hasCUDA(), "device '", text, "' requested, but this libtorch has no CUDA (or no GPU answers)");
  return c10::Device(text);
}

at::ScalarType parse_dtype(const std::string& text, const c10::Device& device) {
  if (text == "auto") return device.is_cpu() ? at::kFloat : at::kBFloat16;
  if (text == "float32") return at::kFloat;
  if (text == "bfloat16") return at::kBFloat16;
  if (text == "float16") return at::kHalf;
  KVSAFE_CHECK(false, "unknown dtype '", text, "' (expected auto, float32, bfloat16 or float16)");
  return at::kFloat;
}

void set_threads(int threads) {
  if (threads < 0) return;
  int want = threads;
  if (want == 0) {
    // NOTE: an explicit OMP_NUM_THREADS wins; otherwise Debian's libtorch would stay at 1.
    if (std::getenv("OMP_NUM_THREADS") != nullptr) return;
    want = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  }
  if (at::get_num_threads() != want) at::set_num_threads(want);
}

class TensorLoader {
 public:
  TensorLoader(const WeightsLoader& weights, c10::Device device, at::ScalarType dtype, bool keep_quantized,
               std::int64_t& count)
      : weights_(weights), device_(device), dtype_(dtype), keep_quantized_(keep_quantized), count_(count) {}

  // The tensor under `name`, converted; undefined when absent and not required.
  at::Tensor get(const std::string& name, bool required = true) {
    const WeightInfo* info = weights_.find(name);
    if (info == nullptr) {
      KVSAFE_CHECK(!required, weights_.config().architecture, ": tensor '", name, "' is missing");
      return {};
    }
    at::Tensor t = at::empty(info->shape, at::TensorOptions().dtype(at::kFloat));
    weights_.load(name, std::span<float>(t.data_ptr<float>(), static_cast<std::size_t>(t.numel())));
    count_ += t.numel();
    return t.to(device_, dtype_);
  }
  // A linear layer's weight, packed or transposed for linear_t() (make_matrix).
  Matrix get_matrix(const std::string& name, bool required = true) {
    const WeightInfo* info = weights_.find(name);
    if (info == nullptr) {
      KVSAFE_CHECK(!required, weights_.config().architecture, ": tensor '", name, "' is missing");
      return {};
    }
    KVSAFE_ASSERT(info->shape.size() == 2, "tensor '", name, "' is not a matrix");
    // NOTE: the [out, in] scratch is freed before the next matrix is read: peak memory stays
    // about one matrix above the weights (large blocks are mmap'd and returned on free).
    at::Tensor scratch = at::empty(info->shape, at::TensorOptions().dtype(at::kFloat));
    weights_.load(name, std::span<float>(scratch.data_ptr<float>(), static_cast<std::size_t>(scratch.numel())));
    count_ += scratch.numel();
    const auto stored = weights_.stored_ggml_type(name);
    const auto format = stored.has_value() ? panel_format_for(*stored) : std::nullopt;
    if (keep_quantized_ && device_.is_cpu() && dtype_ == at::kFloat && format.has_value()) {
      const auto blocks = weights_.load_blocks(name);
      if (auto quantized = make_quantized_matrix(*format, blocks->bytes, scratch)) return std::move(*quantized);
      // NOTE: finite ggml scales always expand exactly (tests/engine/quantized_panels_test.cpp);
      // this is a file with inf or NaN scales (or blocks that do not fit the tensor's shape),
      // which is packed as floats.
      spdlog::warn("{}: '{}' does not expand exactly from its {} blocks; keeping it as float32",
                   weights_.config().architecture, name, to_string(*stored));
    }
    return make_matrix(scratch.to(device_, dtype_));
  }

 private:
  const WeightsLoader& weights_;
  c10::Device device_;
  at::ScalarType dtype_;
  bool keep_quantized_;
  std::int64_t& count_;
};

LayerWeights load_layer(TensorLoader& t, const ModelConfig& c, std::int64_t i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  LayerWeights w;
  const bool pre_norms = c.norm_placement != NormPlacement::kPost;
  w.input_norm = t.get(p + "input_layernorm.weight", pre_norms);
  w.post_attention_norm = t.get(p + "post_attention_layernorm.weight");
  w.pre_feedforward_norm =
      t.get(p + "pre_feedforward_layernorm.weight", c.norm_placement == NormPlacement::kPreAndPost);
  w.post_feedforward_norm = t.get(p + "post_feedforward_layernorm.weight", c.norm_placement != NormPlacement::kPre);
  w.q_proj = t.get_matrix(p + "self_attn.q_proj.weight");
  w.k_proj = t.get_matrix(p + "self_attn.k_proj.weight");
  w.v_proj = t.get_matrix(p + "self_attn.v_proj.weight");
  w.o_proj = t.get_matrix(p + "self_attn.o_proj.weight");
  w.q_bias = t.get(p + "self_attn.q_proj.bias", c.attention_bias);
  w.k_bias = t.get(p + "self_attn.k_proj.bias", c.attention_bias);
  w.v_bias = t.get(p + "self_attn.v_proj.bias", c.attention_bias);
  w.q_norm = t.get(p + "self_attn.q_norm.weight", c.qk_norm);
  w.k_norm = t.get(p + "self_attn.k_norm.weight", c.qk_norm);
  if (c.num_experts > 0) {
    const std::string m = p + "block_sparse_moe.";
    w.router = t.get_matrix(m + "gate.weight");
    for (std::int64_t e = 0; e < c.num_experts; ++e) {
      const std::string ep = m + "experts." + std::to_string(e) + ".";
      w.expert_w1.push_back(t.get_matrix(ep + "w1.weight"));
      w.expert_w2.push_back(t.get_matrix(ep + "w2.weight"));
      w.expert_w3.push_back(t.get_matrix(ep + "w3.weight"));
    }
  } else {
    w.gate_proj = t.get_matrix(p + "mlp.gate_proj.weight");
    w.up_proj = t.get_matrix(p + "mlp.up_proj.weight");
    w.down_proj = t.get_matrix(p + "mlp.down_proj.weight");
  }
  return w;
}

// Bytes the loaded weights take on their device.
std::int64_t bytes_of(const ModelWeights& w) {
  const auto tensor = [](const at::Tensor& t) { return t.defined() ? static_cast<std::int64_t>(t.nbytes()) : 0; };
  const auto matrix = [&](const Matrix& m) { return tensor(m.panels) + tensor(m.weight_t); };
  std::int64_t total = tensor(w.embed) + tensor(w.final_norm) + matrix(w.lm_head);
  for (const LayerWeights& l : w.layers) {
    for (const at::Tensor* t : {&l.input_norm, &l.post_attention_norm, &l.pre_feedforward_norm,
                                &l.post_feedforward_norm, &l.q_bias, &l.k_bias, &l.v_bias, &l.q_norm, &l.k_norm}) {
      total += tensor(*t);
    }
    for (const Matrix* m :
         {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj, &l.router}) {
      total += matrix(*m);
    }
    for (const auto* experts : {&l.expert_w1, &l.expert_w2, &l.expert_w3}) {
      for (const Matrix& m : *experts) total += matrix(m);
    }
  }
  return total;
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::filesystem::path& path, const ModelLoadOptions& options) {
  const c10::Device device = parse_device(options.device);
  const at::ScalarType dtype = parse_dtype(options.dtype, device);
  // A bad $KVSAFE_CPU_KERNELS is refused here, before any work (common/cpu_kernels.h).
  active_cpu_kernels();
  set_threads(options.threads);
  use_single_threaded_blas();  // the engine splits its products over ATen's pool instead
  const auto weights = WeightsLoader::open(path);
  auto impl = std::make_unique<Impl>();
  impl->config = weights->config();
  impl->path = path;
  impl->device = device;
  impl->dtype = dtype;
  impl->layer_fn = layer_function(impl->config.family);
  impl->rope = make_rope_tables(impl->config, device);
  const ModelConfig& c = impl->config;
  TensorLoader t(*weights, device, dtype, options.keep_quantized, impl->parameters);
  ModelWeights& w = impl->weights;
  w.final_norm = t.get("model.norm.weight");
  // NOTE: some GGUF files omit output.weight when tied. Tied: one transposed copy serves both,
  // the embedding reads its columns (embed_tokens).
  const bool tied = c.tie_word_embeddings || weights->find("lm_head.weight") == nullptr;
  if (tied) {
    w.lm_head = t.get_matrix("model.embed_tokens.weight");
  } else {
    w.embed = t.get("model.embed_tokens.weight");
    w.lm_head = t.get_matrix("lm_head.weight");
  }
  for (std::int64_t i = 0; i < c.num_layers; ++i) w.layers.push_back(load_layer(t, c, i));
  impl->weight_bytes = bytes_of(w);
  if (options.steering) {
    const ResidualSteering& s = *options.steering;
    KVSAFE_CHECK(s.layer >= 0 && s.layer < c.num_layers, "steering: layer ", s.layer, " is not one of the model's ",
                 c.num_layers, " layers (0..", c.num_layers - 1, ")");
    KVSAFE_CHECK(static_cast<std::int64_t>(s.vector.size()) == c.hidden_size, "steering: the vector has ",
                 s.vector.size(), " values where the model's hidden size is ", c.hidden_size);
    impl->steering_layer = s.layer;
    impl->steering =
        at::from_blob(const_cast<float*>(s.vector.data()), {c.hidden_size}, at::kFloat).to(device, dtype).clone();
    spdlog::info("engine: steering: a vector of norm {:.4g} is added after layer {}",
                 impl->steering.to(at::kFloat).norm().item<double>(), s.layer);
  }
  spdlog::info(
      "engine: loaded {} ({}, {} layers, {:.1f}M parameters in {:.0f} MB) on {} as {}; {} CPU threads; CPU kernels {}",
      path.string(), to_string(c.family), c.num_layers, static_cast<double>(impl->parameters) / 1e6,
      static_cast<double>(impl->weight_bytes) / 1e6, device.str(), c10::toString(dtype), at::get_num_threads(),
      describe_cpu_kernels());
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

const ModelConfig& Model::config() const {
  return impl_->config;
}
const std::filesystem::path& Model::path() const {
  return impl_->path;
}
c10::Device Model::device() const {
  return impl_->device;
}
at::ScalarType Model::dtype() const {
  return impl_->dtype;
}
std::int64_t Model::parameter_count() const {
  return impl_->parameters;
}
std::int64_t Model::weight_bytes() const {
  return impl_->weight_bytes;
}

namespace {

// bool [batch, 1, n, total]: query slot (before + i) may see key slot j. `window` > 0 adds
// the sliding window (slot distance < window). A query that can see nothing (padding
// before any real token) sees every key of the call instead, as transformers does on CUDA
// (AttentionMaskConverter._unmask_unattended), so its activations stay finite; `unattended`,
// when given, receives those rows (bool [batch, n, 1]).
at::Tensor attention_mask(const at::Tensor& valid_all, std::int64_t before, std::int64_t n, std::int64_t window,
                          at::Tensor* unattended = nullptr) {
  const std::int64_t total = valid_all.size(1);
  const auto opts = at::TensorOptions().dtype(at::kLong).device(valid_all.device());
  const at::Tensor q_slot = at::arange(before, before + n, opts).unsqueeze(1);  // [n, 1]
  const at::Tensor k_slot = at::arange(0, total, opts).unsqueeze(0);            // [1, total]
  at::Tensor allowed = k_slot <= q_slot;
  if (window > 0) allowed = allowed & (k_slot > q_slot - window);
  allowed = allowed.unsqueeze(0) & valid_all.unsqueeze(1);  // [batch, n, total]
  const at::Tensor sees_nothing = at::logical_not(allowed.any(-1, /*keepdim=*/true));
  if (unattended != nullptr) *unattended = sees_nothing;
  allowed = allowed | sees_nothing;
  return allowed.unsqueeze(1);
}

}  // namespace

at::Tensor Model::forward(const at::Tensor& tokens_in, const at::Tensor& valid_in, KvCache& cache,
                          const ForwardOptions& options) const {
  const Impl& m = *impl_;
  const ModelConfig& c = m.config;
  c10::InferenceMode guard;
  KVSAFE_CHECK(tokens_in.dim() == 2, "forward: tokens must be [batch, n], got ", tokens_in.dim(), " dims");
  KVSAFE_CHECK(tokens_in.size(0) == cache.batch(), "forward: batch ", tokens_in.size(0), " but the cache holds ",
               cache.batch(), " sequences");
  const std::int64_t batch = tokens_in.size(0), n = tokens_in.size(1);
  KVSAFE_CHECK(n > 0, "forward: no tokens");
  const at::Tensor tokens = tokens_in.to(m.device, at::kLong);
  at::Tensor valid = valid_in.defined() ? valid_in.to(m.device, at::kBool)
                                        : at::ones({batch, n}, at::TensorOptions().dtype(at::kBool).device(m.device));
  KVSAFE_CHECK(valid.sizes() == tokens.sizes(), "forward: valid must have the shape of tokens");
  const std::int64_t max_id = tokens.max().item<std::int64_t>(), min_id = tokens.min().item<std::int64_t>();
  KVSAFE_CHECK(min_id >= 0 && max_id < c.vocab_size, "forward: token id out of range [0, ", c.vocab_size,
               "): ", min_id < 0 ? min_id : max_id);

  CallContext ctx;
  ctx.config = &c;
  ctx.cache = &cache;
  ctx.path = cache.path();
  ctx.capture = options.capture;
  ctx.kv_log = options.kv_log;
  ctx.prefill = cache.tokens() == 0;
  const at::Tensor positions = cache.begin_call(valid, m.device);
  ctx.valid_new = valid;
  const std::int64_t before = cache.tokens_before_call();
  at::Tensor unattended;
  ctx.allowed = attention_mask(cache.valid(), before, n, 0, &unattended);
  // NOTE: only rows that see nothing without the window: with left padding those are the
  // padding slots, which see nothing under the window either.
  if (options.padding_queries == PaddingQueries::kZero && unattended.any().item<bool>()) {
    ctx.zero_rows = unattended;
  }
  if (c.sliding_window && *c.sliding_window > 0) {
    ctx.allowed_window = attention_mask(cache.valid(), before, n, *c.sliding_window);
  }
  ctx.rope = rope_cos_sin(m.rope, c.rotary_dim, positions, m.dtype);
  if (ctx.path != nullptr && ctx.path->placement() == KvPlacement::kCache && ctx.path->keys_before_rope()) {
    // NOTE: one table choice for the whole history (longrope switches to its long factors
    // once any position passes the original context), where a post-RoPE cache keeps older
    // keys rotated with the short factors; equal below the switch.
    ctx.key_rope = rope_cos_sin(m.rope, c.rotary_dim, cache.positions(), m.dtype);
  }
  if (ctx.capture != nullptr) ctx.capture->begin_call(positions, valid);

  const ModelWeights& w = m.weights;
  at::Tensor h = embed_tokens(w, tokens);
  if (c.scale_embeddings) {
    // Gemma: the normalizer is a tensor of the hidden dtype (transformers rounds it first).
    h = h * at::scalar_tensor(std::sqrt(static_cast<double>(c.hidden_size)), h.options());
  }
  for (std::int64_t i = 0; i < c.num_layers; ++i) {
    h = m.layer_fn(w.layers[static_cast<std::size_t>(i)], i, h, ctx);
    if (i == m.steering_layer) h = h + m.steering;  // every position, padding included, as a forward hook
    capture_if(ctx, CaptureKind::kResidual, i, h);
  }
  if (options.logits == LogitsMode::kNone) return {};
  if (options.logits == LogitsMode::kLast) h = h.select(1, n - 1);
  at::Tensor logits = linear_t(rms_norm(h, w.final_norm, c.rms_norm_eps), w.lm_head).to(at::kFloat);
  if (c.final_logit_softcapping > 0) {
    logits = at::tanh(logits / c.final_logit_softcapping) * c.final_logit_softcapping;
  }
  return logits;
}

}  // namespace kvsafe::engine
