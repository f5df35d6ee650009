#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/fixtures/{gguf,safetensors,hf_config}).
Standard library only; the outputs are committed. Run from anywhere:
    python3 tests/fuzz/make_seed_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "fixtures")


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_file(kvs, tensors, version=3, alignment=32):
    """kvs: list of (key, type_id, packed value bytes); tensors: (name, dims, type, data)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, type_id, value in kvs:
        out += gguf_string(key) + struct.pack("<I", type_id) + value
    offset = 0
    blobs = []
    for name, dims, ttype, data in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack("<%dQ" % len(dims), *dims)
        out += struct.pack("<IQ", ttype, offset)
        blobs.append((offset, data))
        offset += (len(data) + alignment - 1) // alignment * alignment
    out += b"\0" * ((-len(out)) % alignment)
    data_start = len(out)
    for off, data in blobs:
        out += b"\0" * (data_start + off - len(out)) + data
    return out


def write(sub, name, data):
    os.makedirs(os.path.join(CORPUS, sub), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(CORPUS, sub, name), mode) as f:
        f.write(data)


def main():
    kvs = [
        ("general.architecture", 8, gguf_string("llama")),
        ("llama.block_count", 4, struct.pack("<I", 1)),
        ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + gguf_string("a") + gguf_string("b") + gguf_string("ab")),
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 2) + struct.pack("<ff", -1.0, -2.0)),
        ("nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 5, 2) + struct.pack("<ii", 1, -1)),
        ("flag", 7, b"\x01"),
        ("big", 10, struct.pack("<Q", 2 ** 63 + 1)),
        ("pi", 12, struct.pack("<d", 3.14159)),
        ("tokenizer.ggml.padding_token_id", 4, struct.pack("<I", 0xFFFFFFFF)),
    ]
    f32 = struct.pack("<8f", *[0.5 * i for i in range(8)])
    q8_0 = struct.pack("<e", 0.25) + bytes(range(32))
    q4_k = struct.pack("<ee", 0.1, 0.01) + bytes(range(12)) + bytes((i * 7) & 0xFF for i in range(128))
    q6_k = bytes((i * 5) & 0xFF for i in range(208)) + struct.pack("<e", 0.05)
    tensors = [("token_embd.weight", [4, 2], 0, f32), ("blk.0.attn_q.weight", [32], 8, q8_0),
               ("q4k", [256], 12, q4_k), ("q6k", [256], 14, q6_k),
               ("f16", [4], 1, struct.pack("<4e", 1, -2, 0.5, 65504)), ("bf16", [2], 30, b"\x80\x3f\x40\xc0")]
    write("gguf", "small_v3.gguf", gguf_file(kvs, tensors))
    write("gguf", "small_v2.gguf", gguf_file(kvs[:3], tensors[:2], version=2))
    write("gguf", "aligned64.gguf", gguf_file(kvs[:1] + [("general.alignment", 4, struct.pack("<I", 64))], tensors[:2], alignment=64))
    write("gguf", "empty.gguf", gguf_file([], []))
    stories = os.path.join(ROOT, "..", "shared", "models", "stories260K", "stories260K.gguf")
    if os.path.exists(stories):
        with open(stories, "rb") as f:
            write("gguf", "stories260K_header.gguf", f.read(14176))  # header + infos, no data

    def st(entries, metadata=None):
        header, data = {}, b""
        for name, dtype, shape, raw in entries:
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        if metadata is not None:
            header["__metadata__"] = metadata
        text = json.dumps(header).encode()
        text += b" " * ((-len(text)) % 8)
        return struct.pack("<Q", len(text)) + text + data

    write("safetensors", "small.safetensors", st([("a", "F32", [2, 2], f32[:16]), ("b", "F16", [2], struct.pack("<2e", 1, 2)),
                                                  ("c", "BF16", [1], b"\x80\x3f"), ("d", "I64", [1], bytes(8))], {"format": "pt"}))
    write("safetensors", "empty.safetensors", st([]))
    write("safetensors", "scalar.safetensors", st([("s", "F32", [], f32[:4])]))

    configs = {
        "llama31.json": {"model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
                         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-5,
                         "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
        "mistral.json": {"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "sliding_window": 4096},
        "qwen2.json": {"model_type": "qwen2", "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
                       "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "use_sliding_window": True,
                       "sliding_window": 4096},
        "phi3.json": {"model_type": "phi3", "vocab_size": 32064, "hidden_size": 3072, "intermediate_size": 8192,
                      "num_hidden_layers": 32, "num_attention_heads": 32, "original_max_position_embeddings": 4096,
                      "rope_scaling": {"type": "longrope", "short_factor": [1.0] * 48, "long_factor": [2.0] * 48}},
        "gemma2.json": {"model_type": "gemma2", "vocab_size": 256000, "hidden_size": 3584, "intermediate_size": 14336,
                        "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256,
                        "query_pre_attn_scalar": 256, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0},
        "mixtral.json": {"model_type": "mixtral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
                         "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                         "num_local_experts": 8, "num_experts_per_tok": 2},
        "olmo2.json": {"model_type": "olmo2", "vocab_size": 100352, "hidden_size": 4096, "intermediate_size": 11008,
                       "num_hidden_layers": 32, "num_attention_heads": 32, "rope_scaling": None},
    }
    for name, cfg in configs.items():
        write("hf_config", name, json.dumps(cfg, indent=1))


if __name__ == "__main__":
    main()
