#!/usr/bin/env python3
"""Tiny random-weight models of every family the engine implements, run by Hugging Face
transformers: the oracle of tests/engine/forward_families_test.cpp.

For each family this writes tests/engine/fixtures/forward_<family>/:
  config.json, model.safetensors   the model as transformers saves it (float32; Phi-3 with its
                                   fused qkv_proj / gate_up_proj, Gemma-2 norms as w)
  expected.safetensors             input_ids int32 [2, T] (row 1 left-padded), attention_mask
                                   int32 [2, T], position_ids int32 [2, T], logits float32
                                   [2, T, vocab] from the eager implementation
The weights are drawn wider than the default init (std 0.25) so that logits vary by several
units and a wrong block cannot hide under 1e-4; sequences are long enough to cross the sliding
windows (4) and Phi-3's original context (8, so longrope's long factors are used).

Setup (once; Debian's torch, transformers from PyPI, neither committed):
    apt-get install python3-torch python3-numpy
    python3 -m venv --system-site-packages /tmp/hfvenv && /tmp/hfvenv/bin/pip install transformers==4.47.1
    /tmp/hfvenv/bin/python tests/oracles/forward_tiny_models.py tests/engine/fixtures
"""

import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file

VOCAB = 128
COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, pad_token_id=0, bos_token_id=1,
              eos_token_id=2)


def families():
    half = 4  # rotary pairs of head_dim 8
    return {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM,
                  dict(rope_theta=10000.0, tie_word_embeddings=False,
                       rope_scaling=dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                         original_max_position_embeddings=16))),
        "llama_linear": (transformers.LlamaConfig, transformers.LlamaForCausalLM,
                         dict(tie_word_embeddings=True, rope_scaling=dict(rope_type="linear", factor=2.0))),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM,
                    dict(sliding_window=4, tie_word_embeddings=False)),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, dict(tie_word_embeddings=True)),
        "phi3": (transformers.Phi3Config, transformers.Phi3ForCausalLM,
                 dict(original_max_position_embeddings=8, sliding_window=None, tie_word_embeddings=False,
                      rope_scaling=dict(type="longrope", short_factor=[1.0, 1.5, 2.0, 3.0][:half],
                                        long_factor=[1.0, 2.0, 4.0, 8.0][:half]))),
        "gemma2": (transformers.Gemma2Config, transformers.Gemma2ForCausalLM,
                   dict(head_dim=8, sliding_window=4, query_pre_attn_scalar=16, attn_logit_softcapping=1.0,
                        final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh")),
        "mixtral": (transformers.MixtralConfig, transformers.MixtralForCausalLM,
                    dict(intermediate_size=32, num_local_experts=4, num_experts_per_tok=2, sliding_window=None,
                         tie_word_embeddings=False)),
        "olmo2": (transformers.Olmo2Config, transformers.Olmo2ForCausalLM, dict(tie_word_embeddings=False)),
    }


def batch():
    torch.manual_seed(1)
    t = 12
    long_row = torch.randint(3, VOCAB, (t,))
    short_row = torch.randint(3, VOCAB, (t - 4,))
    ids = torch.zeros(2, t, dtype=torch.long)
    mask = torch.zeros(2, t, dtype=torch.long)
    ids[0] = long_row
    mask[0] = 1
    ids[1, 4:] = short_row
    mask[1, 4:] = 1
    # transformers' generate(): cumsum - 1, padding at 1.
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    return ids, mask, pos


def main():
    out_dir = sys.argv[1]
    ids, mask, pos = batch()
    for name, (config_cls, model_cls, extra) in families().items():
        torch.manual_seed(0)
        kwargs = dict(COMMON)
        kwargs.update(extra)
        config = config_cls(**kwargs)
        config._attn_implementation = "eager"
        model = model_cls(config).eval()
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    # around 1 (Gemma-2 stores w for 1 + w: around 0)
                    base = 0.0 if name == "gemma2" else 1.0
                    p.copy_(base + 0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.25 * torch.randn_like(p))
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits.float()
        target = os.path.join(out_dir, f"forward_{name}")
        os.makedirs(target, exist_ok=True)
        model.save_pretrained(target, safe_serialization=True)
        for extra_file in ("generation_config.json",):
            path = os.path.join(target, extra_file)
            if os.path.exists(path):
                os.remove(path)
        save_file({"input_ids": ids.to(torch.int32).contiguous(), "attention_mask": mask.to(torch.int32).contiguous(),
                   "position_ids": pos.to(torch.int32).contiguous(), "logits": logits.contiguous()},
                  os.path.join(target, "expected.safetensors"),
                  metadata={"transformers": transformers.__version__, "torch": torch.__version__})
        with open(os.path.join(target, "config.json")) as f:
            json.load(f)
        size = sum(os.path.getsize(os.path.join(target, f)) for f in os.listdir(target))
        print(f"{name}: logits range [{logits.min():.2f}, {logits.max():.2f}], {size} bytes")


if __name__ == "__main__":
    main()
