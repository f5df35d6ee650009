#!/usr/bin/env python3
"""SmolLM2-135M-Instruct sliding-window NLL on the start of WikiText-2 (test) from llama.cpp, the
oracle of tests/eval/perplexity_smollm2_test.cpp.

What it checks in kvsafe: the corpus tokenization (eval::tokenize_corpus on the rows joined as
eval::read_corpus_text(kRowsJoined) joins them) and eval::score_window's NLL over the windows of
eval/perplexity.h, against an independent tokenizer and forward pass. Three window settings:
  max_length 512, stride 256:   3 windows (overlapping: a window scores only tokens no earlier
                                window scored), tokens [0, 1024)
  max_length 512, stride 512:   2 windows (the quickstart grid's setting), tokens [0, 1024)
  max_length 2048, stride 2048: 4 windows, the first 8192 tokens at the paper's window length
Window i is tokens [i*stride, min(i*stride + max_length, n)), scores tokens
[max(begin + 1, previous window's end), end) from the logits of the position before each, in a
fresh context per window (HF's perplexity guide; the paper's core/metrics.py).

llama.cpp runs a lossless float32 copy of the Q4_1 weights with an f32 KV cache and no flash
attention, for the reason forward_smollm2_llamacpp.py gives (llama.cpp's Q4_1 matmul quantizes
the activations to Q8_1; its default KV cache is f16); that script's write_float32_copy is reused.
The NLLs are computed here in float64 from llama.cpp's float32 logits (log-sum-exp minus the
target's logit), like eval::score_window does from kvsafe's.

Setup (once, in a venv outside the repository; the llama-cpp-python wheel compiles llama.cpp,
~10 min on 2 cores):
    python3 -m venv /work/venvs/llamacpp
    /work/venvs/llamacpp/bin/pip install llama-cpp-python numpy gguf safetensors
    /work/venvs/llamacpp/bin/python tests/oracles/perplexity_smollm2_llamacpp.py \\
        ~/.cache/kvsafe/models/SmolLM2-135M-Instruct.Q4_1.gguf ../shared/datasets/wikitext-2/wiki.test.raw \\
        tests/eval/fixtures/perplexity_smollm2_llamacpp.json

Output JSON: the model file name, the count and sha256 of the first N_TOKENS corpus token ids
(",".join of the decimal ids; BOS as llama.cpp adds it for this model: the GGUF's add_bos_token;
the ids themselves would spell out WikiText, which is never committed), and per setting the windows with begin, end,
score_begin, n_tokens and nll_sum (nats).
"""

import importlib.util
import hashlib
import json
import os
import sys
import tempfile

import numpy as np
from llama_cpp import Llama

N_TOKENS = 8192  # the first ~8k WikiText tokens (the size); hashed, not stored
# (max_length, stride, tokens covered): two short settings (the quickstart's 512/512 among
# them) and the paper's window length over all 8192 tokens.
SETTINGS = [(512, 256, 1024), (512, 512, 1024), (2048, 2048, 8192)]
TEXT_BYTES = 80000  # of the joined corpus: far more than N_TOKENS tokens, so the cut never touches them


def load_float32_writer():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("forward_oracle", os.path.join(here, "forward_smollm2_llamacpp.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_float32_copy


def joined_rows(raw):
    """The corpus as eval::read_corpus_text(kRowsJoined) builds it: one row per line with its
    newline, whitespace-only lines as "", rows joined with "\\n\\n" (the paper's code)."""
    out = []
    start = 0
    while start < len(raw):
        end = raw.find(b"\n", start)
        end = len(raw) if end < 0 else end + 1
        line = raw[start:end]
        start = end
        out.append(line if line.strip(b" \t\r\n\f\v") else b"")
    return b"\n\n".join(out)


def windows(n, max_length, stride):
    """eval::perplexity_window for every window over n tokens."""
    out = []
    prev_end = 0
    for begin in range(0, n, stride):
        end = min(begin + max_length, n)
        out.append({"begin": begin, "end": end, "score_begin": max(begin + 1, prev_end)})
        prev_end = end
        if end == n:
            break
    return out


def main():
    model_path, corpus_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(corpus_path, "rb") as f:
        text = joined_rows(f.read())[:TEXT_BYTES]
    f32_path = os.path.join(tempfile.mkdtemp(), "model-f32.gguf")
    load_float32_writer()(model_path, f32_path)
    llm = Llama(model_path=f32_path, n_ctx=2048, n_batch=2048, n_ubatch=2048, logits_all=True, n_threads=2,
                verbose=False, seed=0, type_k=0, type_v=0, flash_attn=False)
    ids = llm.tokenize(text, add_bos=True, special=False)
    assert len(ids) > N_TOKENS + 16, len(ids)
    ids = ids[:N_TOKENS]
    result = {
        "model": os.path.basename(model_path),
        "oracle": "llama-cpp-python " + __import__("llama_cpp").__version__ +
                  ": float32 copy of the weights, f32 KV cache, logits_all; NLL in float64",
        "corpus": "wikitext-2 wiki.test.raw, rows joined with \\n\\n (eval::CorpusJoin::kRowsJoined)",
        # The ids' hash, not the ids: they would spell out WikiText's text (data policy).
        "token_count": len(ids),
        "tokens_sha256": hashlib.sha256(",".join(str(int(t)) for t in ids).encode()).hexdigest(),
        "settings": [],
    }
    for max_length, stride, covered in SETTINGS:
        rows = []
        for w in windows(covered, max_length, stride):
            window = ids[w["begin"]:w["end"]]
            llm.reset()
            llm.eval(window)
            logits = np.array(llm.scores[: len(window)], dtype=np.float64)  # [tokens, vocab]
            first = w["score_begin"] - w["begin"] - 1  # the row predicting the first scored token
            rows_used = logits[first: len(window) - 1]
            targets = np.array(window[first + 1:])
            top = rows_used.max(axis=1)
            lse = top + np.log(np.exp(rows_used - top[:, None]).sum(axis=1))
            nll = lse - rows_used[np.arange(len(targets)), targets]
            rows.append(dict(w, n_tokens=int(len(targets)), nll_sum=float(nll.sum())))
            print(f"max_length {max_length} stride {stride} window [{w['begin']}, {w['end']}) scored {len(targets)}: "
                  f"nll {nll.sum():.6f} ppl {np.exp(nll.mean()):.4f}")
        result["settings"].append({"max_length": max_length, "stride": stride, "windows": rows})
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
