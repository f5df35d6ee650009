#!/usr/bin/env python3
"""Expected token ids of the paper's two-step tokenization (issue 20 item 1: `bos: paper`).

The paper renders each chat template to text, then tokenizes that text with the tokenizer's
defaults, so a template that writes BOS gets a second one from a tokenizer that adds it. The
oracle for "tokenize with the tokenizer's defaults" is llama.cpp's llama-tokenize (an
independent implementation: BOS as the vocabulary's add_bos_token says, special tokens parsed),
run on:
  * the rendered texts of tests/engine/fixtures/chat_<family>.json (themselves the official Jinja
    templates rendered by tests/oracles/chat_template_oracle.py), first case of each family;
  * the vocabularies: stories260K (../shared/models, a Llama-2 SentencePiece vocabulary that adds
    BOS) for llama-2, and llama.cpp's own vocabulary-only test files (models/ggml-vocab-*.gguf
    of the llama-cpp-python source package, MIT; read from the cache, never committed) for the
    families whose real vocabulary they are.
Writes tests/engine/fixtures/double_bos_llamacpp.json. llama.cpp is built the way
bench/compare-llamacpp builds it, in the same cache (~/.cache/kvsafe/llamacpp).

    python3 tests/oracles/double_bos_llamacpp.py [--jobs 2]
"""
import argparse
import hashlib
import importlib.machinery
import importlib.util
import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "engine" / "fixtures"
STORIES = ROOT.parent / "shared" / "models" / "stories260K" / "stories260K.gguf"

# family -> vocabulary: "stories260K" or a llama.cpp vocab-only file name.
CASES = [
    ("llama-2", "stories260K"),
    ("llama-2", "ggml-vocab-llama-spm.gguf"),
    ("mistral-v0.2", "ggml-vocab-llama-spm.gguf"),
    ("mixtral", "ggml-vocab-llama-spm.gguf"),
    ("llama-3.1", "ggml-vocab-llama-bpe.gguf"),
    ("deepseek", "ggml-vocab-deepseek-llm.gguf"),
]


def load_compare_llamacpp():
    loader = importlib.machinery.SourceFileLoader("compare_llamacpp", str(ROOT / "bench" / "compare-llamacpp"))
    spec = importlib.util.spec_from_loader("compare_llamacpp", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    compare = load_compare_llamacpp()
    compare.build_batched_bench(args.jobs)  # fetches and configures llama.cpp once
    cache = compare.cache_dir()
    build = cache / "build"
    compare.run(["cmake", "--build", str(build), "-j", str(args.jobs), "--target", "llama-tokenize"])
    tokenize = build / "bin" / "llama-tokenize"
    models = cache / f"llama_cpp_python-{compare.LLAMA_CPP_PYTHON}" / "vendor" / "llama.cpp" / "models"
    out = []
    for family, vocab in CASES:
        case = json.loads((FIXTURES / f"chat_{family}.json").read_text())["cases"][0]
        vocab_path = STORIES if vocab == "stories260K" else models / vocab
        result = subprocess.run([str(tokenize), "-m", str(vocab_path), "-p", case["text"], "--ids", "--no-escape",
                                 "--log-disable"], check=True, capture_output=True, text=True)
        ids = json.loads(re.findall(r"\[[0-9, ]*\]", result.stdout)[-1])
        out.append({"family": family, "vocab": vocab, "vocab_sha256": sha256(vocab_path), "case": case,
                    "two_step_ids": ids})
        print(f"{family:14} {vocab:30} {len(ids)} ids, first {ids[:3]}")
    (FIXTURES / "double_bos_llamacpp.json").write_text(json.dumps(
        {"oracle": "llama.cpp llama-tokenize (llama-cpp-python " + compare.LLAMA_CPP_PYTHON +
                   " source), BOS as the vocabulary says, special tokens parsed (its default), --no-escape", "cases": out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
