#!/usr/bin/env python3
"""Sliding-window NLL of stories260K on a fixed text of our own, from the independent
pure-Python forward pass in ../shared/models/stories260K/reference_forward.py (imported from
there, not copied). Writes tests/eval/fixtures/perplexity_stories260k_reference.json, which
tests/eval/perplexity_test.cpp (PerplexityStories.MatchesTheReferenceForward) compares with
eval/perplexity.h.

Windows follow eval::perplexity_window: window i is tokens [i*stride, min(i*stride +
max_length, n)); it scores the tokens no earlier window scored (the first window from its
second token); each window starts from an empty cache at position 0. NLL in float64.

Usage: python3 tests/oracles/perplexity_stories260k_reference.py   (about a minute)
"""
import importlib.util
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL_DIR = os.path.normpath(os.path.join(ROOT, "..", "shared", "models", "stories260K"))
OUT = os.path.join(ROOT, "tests", "eval", "fixtures", "perplexity_stories260k_reference.json")

# Our own text (written for this test): a small story in the model's register.
TEXT = ("Once upon a time, there was a little girl named Lily. She had a red ball that she loved very much. "
        "One day, the ball rolled into the garden and hid under a big green bush. Lily looked and looked. "
        "Then her dog Max came and barked at the bush. Lily found the ball and gave Max a hug. "
        "They played together until the sun went down, and they were very happy.")
MAX_LENGTH, STRIDE = 64, 32


def load_reference():
    spec = importlib.util.spec_from_file_location("reference_forward", os.path.join(MODEL_DIR, "reference_forward.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def windows(n, max_length, stride):
    out, covered, begin = [], 0, 0
    while True:
        end = min(begin + max_length, n)
        score_begin = max(covered, begin + 1)
        out.append((begin, end, score_begin))
        covered = end
        if end == n:
            return out
        begin += stride


def main():
    ref = load_reference()
    _, kv, tensors = ref.load_gguf(os.path.join(MODEL_DIR, "stories260K.gguf"))
    ids = ref.encode(TEXT, kv)
    rows = []
    for begin, end, score_begin in windows(len(ids), MAX_LENGTH, STRIDE):
        model = ref.Model(kv, tensors)  # empty cache: the window starts at position 0
        nll = 0.0
        for pos, tok in enumerate(ids[begin:end - 1]):
            logits = model.forward(tok, pos)
            target = begin + pos + 1
            if target < score_begin:
                continue
            top = max(logits)
            nll += top + math.log(sum(math.exp(v - top) for v in logits)) - logits[ids[target]]
        rows.append({"begin": begin, "end": end, "score_begin": score_begin, "n_tokens": end - score_begin,
                     "nll_sum": nll})
    result = {"model": "stories260K.gguf",
              "oracle": "../shared/models/stories260K/reference_forward.py (pure Python, float64)",
              "text": TEXT, "token_ids": ids, "max_length": MAX_LENGTH, "stride": STRIDE, "windows": rows}
    with open(OUT, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(OUT, len(ids), "tokens,", len(rows), "windows")


if __name__ == "__main__":
    main()
