#!/usr/bin/env python3
"""Oracle for engine/ weight loading: writes the committed fixtures that
tests/engine/weights_*_test.cpp compare against.

Uses the PyPI `gguf` package (llama.cpp's gguf-py; `pip install gguf`, tested with 0.19.0)
only to GENERATE fixtures; kvsafe never depends on it.

Outputs (under tests/engine/fixtures/):
  weights_blocks.gguf          one tensor per block format (quantized from seeded data with
                               gguf.quants.quantize where gguf-py can quantize that type, plus
                               seeded random blocks for every type), and metadata of every GGUF
                               value type, nested arrays, a legacy misspelled key and an unset
                               (0xFFFFFFFF) token id; general.alignment = 64.
  weights_blocks_expected.bin  little-endian float32: gguf.quants.dequantize of each tensor,
                               concatenated in tensor order.
  weights_blocks_expected.json tensor name -> type, ggml dims, float offset/count in the .bin.
  weights_smollm2_listing.json (only when the SmolLM2 GGUF is present) header numbers, every
                               tensor's name/type/dims/offset, and the sha256 of the float32
                               dequantization of a few tensors.

Usage: python3 tests/oracles/weights_dequant_oracle.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import hashlib
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "engine", "fixtures")
SEED = 20240611

# Byte offsets of the float16 scale fields inside one block, per type (ggml-common.h).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
QUANTIZABLE = [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]  # gguf-py quantizes these
BLOCK_TYPES = [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q6_K]


def random_blocks(rng, qtype, n_blocks):
    """Seeded random block bytes with finite, moderate float16 scales."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scale = rng.uniform(-0.5, 0.5, size=n_blocks).astype(np.float16)
        raw[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return raw


def write_blocks(path_gguf, path_bin, path_json):
    rng = np.random.default_rng(SEED)
    w = gguf.GGUFWriter(path_gguf, arch="llama")
    # --- metadata: every value type ---
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo ▁ world")
    w.add_uint64("test.u64", 2 ** 40 + 3)
    w.add_int64("test.i64", -(2 ** 40) - 5)
    w.add_float64("test.f64", 2.718281828459045)
    w.add_array("test.int_array", [1, -2, 3])
    w.add_array("test.float_array", [0.5, -1.25, 3.0])
    w.add_array("test.string_array", ["a", "", "ccc"])
    w.add_array("test.bool_array", [True, False, True])
    w.add_array("test.nested_array", [[1, 2], [3]])
    w.add_uint32("tokenizer.ggml.seperator_token_id", 7)     # the legacy misspelling
    w.add_uint32("tokenizer.ggml.padding_token_id", 0xFFFFFFFF)  # "unset"
    w.add_float32("llama.rope.scale_linear", 4.0)              # legacy rope.scaling.factor

    entries = []  # (name, qtype, raw array to write, ggml dims)

    def add(name, qtype, raw, dims):
        entries.append((name, qtype, raw, dims))

    rows, cols = 3, 512
    data = rng.standard_normal((rows, cols)).astype(np.float32)
    data[0, :4] = [0.0, -0.0, 1e-8, -3.5]
    add("f32", T.F32, data, [cols, rows])
    specials = np.array([np.inf, -np.inf, np.nan, 6.0e-8, -6.0e-8, 65504.0, -0.0, 1e-40],
                        dtype=np.float32)
    f16 = np.concatenate([specials, rng.standard_normal(cols - 8).astype(np.float32)])
    add("f16", T.F16, f16.astype(np.float16).reshape(1, cols), [cols, 1])
    bf = np.concatenate([specials, rng.standard_normal(cols - 8).astype(np.float32)])
    add("bf16", T.BF16, gguf.quants.quantize(bf.reshape(1, cols), T.BF16), [cols, 1])
    for qtype in QUANTIZABLE:
        x = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 3.0)).astype(np.float32)
        x[1, :32] = 0.0  # an all-zero block (d = 0)
        add("quantized_" + qtype.name.lower(), qtype, gguf.quants.quantize(x, qtype), [cols, rows])
    for qtype in BLOCK_TYPES:
        block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = rows * cols // block_size
        raw = random_blocks(rng, qtype, n_blocks).reshape(rows, -1)
        add("random_" + qtype.name.lower(), qtype, raw, [cols, rows])
    # A 3-D tensor (stacked experts) and a 1-D one.
    x = rng.standard_normal((2, 2, 256)).astype(np.float32)
    add("stacked_q8_0", T.Q8_0, gguf.quants.quantize(x, T.Q8_0), [256, 2, 2])

    expected = []
    listing = {}
    offset = 0
    for name, qtype, raw, dims in entries:
        if qtype == T.F32:
            w.add_tensor(name, raw)
            values = raw.reshape(-1)
        elif qtype == T.F16:
            w.add_tensor(name, raw)
            values = raw.astype(np.float32).reshape(-1)
        else:
            w.add_tensor(name, raw, raw_dtype=qtype)
            values = gguf.quants.dequantize(raw, qtype).reshape(-1).astype(np.float32)
        expected.append(values)
        listing[name] = {"type": qtype.name, "dims": dims, "float_offset": offset,
                         "count": int(values.size)}
        offset += int(values.size)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    np.concatenate(expected).astype("<f4").tofile(path_bin)
    with open(path_json, "w") as f:
        json.dump({"generator": "tests/oracles/weights_dequant_oracle.py", "gguf_py": gguf_version(),
                   "seed": SEED, "tensors": listing}, f, indent=1)
        f.write("\n")

    # Cross-check with gguf's own reader: what we wrote is what it reads.
    r = gguf.GGUFReader(path_gguf)
    for t in r.tensors:
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1).astype(np.float32)
        want = expected[[e[0] for e in entries].index(t.name)]
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), t.name


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # pragma: no cover
        return "unknown"


def smollm2_listing(model_path, out_path):
    r = gguf.GGUFReader(model_path)
    tensors = []
    for t in r.tensors:
        tensors.append({"name": t.name, "type": t.tensor_type.name,
                        "dims": [int(d) for d in t.shape], "offset": int(t.data_offset - r.data_offset),
                        "n_elements": int(t.n_elements)})
    hashes = {}
    for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                 "blk.0.ffn_down.weight", "blk.0.attn_norm.weight", "blk.29.ffn_up.weight",
                 "output_norm.weight"]:
        t = next(t for t in r.tensors if t.name == name)
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype("<f4")
        hashes[name] = hashlib.sha256(values.tobytes()).hexdigest()
    fields = {k: v for k, v in r.fields.items() if not k.startswith("GGUF.")}
    listing = {
        "generator": "tests/oracles/weights_dequant_oracle.py", "gguf_py": gguf_version(),
        "file": os.path.basename(model_path),
        "sha256": hashlib.sha256(open(model_path, "rb").read()).hexdigest(),
        "version": int(r.fields["GGUF.version"].contents()),
        "n_kv": len(fields), "n_tensors": len(r.tensors),
        "alignment": int(r.alignment), "data_offset": int(r.data_offset),
        "general.file_type": int(r.fields["general.file_type"].contents()),
        "tensors": tensors, "dequantized_f32_sha256": hashes,
    }
    with open(out_path, "w") as f:
        json.dump(listing, f, indent=1)
        f.write("\n")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    write_blocks(os.path.join(FIXTURES, "weights_blocks.gguf"),
                 os.path.join(FIXTURES, "weights_blocks_expected.bin"),
                 os.path.join(FIXTURES, "weights_blocks_expected.json"))
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("KVSAFE_MODEL_CACHE", os.path.expanduser("~/.cache/kvsafe/models")),
        "SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(model):
        smollm2_listing(model, os.path.join(FIXTURES, "weights_smollm2_listing.json"))
    else:
        print("SmolLM2 GGUF not found; weights_smollm2_listing.json left as it is", file=sys.stderr)


if __name__ == "__main__":
    main()
