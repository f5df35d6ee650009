#!/usr/bin/env python3
"""Reference token ids for kvsafe's tokenizer tests, computed by Hugging Face `tokenizers`.

Writes, under tests/engine/fixtures/:
  tokenizer_smollm2_oracle.json   >= 300 strings with the ids HF `tokenizers` gives for
                                  SmolLM2-135M-Instruct (special tokens parsed and not),
                                  and the decoded text.
  tokenizer_spm_legacy.json       a Llama-2-style tokenizer.json (SentencePiece BPE: byte
                                  fallback, Prepend/Replace ▁ normalizer, Strip decoder) made
                                  from stories260K's vocabulary, plus added tokens with
                                  lstrip/rstrip;
  tokenizer_spm_metaspace.json    the same vocabulary with a Mistral-v0.3-style Metaspace
                                  pre-tokenizer (prepend_scheme "first");
  tokenizer_bytelevel_nfc.json    a byte-level BPE trained here (Qwen2-style: NFC normalizer,
                                  the Llama-3/Qwen2 Split regex, ignore_merges);
  tokenizer_json_oracle.json      ids/decodes of the three small tokenizers above.

How the SmolLM2 tokenizer.json is reconstructed (the GGUF stores only vocab, merges,
token types and the name "smollm"):
  * model: BPE, vocab = tokenizer.ggml.tokens (id = index), merges =
    tokenizer.ggml.merges in order, no unk token, no byte fallback, no ignore_merges
    (HF's SmolLM2 tokenizer.json predates that flag);
  * normalizer: none;
  * pre_tokenizer: Sequence[Digits(individual_digits=true),
    ByteLevel(add_prefix_space=false, use_regex=true)] -- the structure of
    HuggingFaceTB/SmolLM2-135M-Instruct's own tokenizer.json (the StarCoder tokenizer
    family; llama.cpp names it "smollm" and lists the same two regexes for it);
  * added_tokens: the 17 tokens of token_type 3 (control), special, not normalized;
  * post_processor ByteLevel (no BOS: tokenizer.ggml.add_bos_token is false); decoder ByteLevel.

Run (needs the PyPI packages `tokenizers` and `gguf`, which kvsafe never depends on):
  python3 tests/oracles/tokenizer_smollm2_oracle.py [--model PATH]
PATH defaults to ${KVSAFE_MODEL_CACHE:-${XDG_CACHE_HOME:-~/.cache}/kvsafe/models}/SmolLM2-135M-Instruct.Q4_1.gguf.
"""
import argparse
import hashlib
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import gguf
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, normalizers, decoders, Regex

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "engine" / "fixtures"
STORIES = ROOT.parent / "shared" / "models" / "stories260K" / "stories260K.gguf"

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def default_model_path():
    cache = os.environ.get("KVSAFE_MODEL_CACHE")
    if not cache:
        xdg = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
        cache = str(Path(xdg) / "kvsafe" / "models")
    return Path(cache) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_fields(path):
    reader = gguf.GGUFReader(str(path))
    out = {}
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer.ggml."):
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            sub = field.types[-1]
            if sub == gguf.GGUFValueType.STRING:
                out[key] = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
            else:
                out[key] = [field.parts[i][0].item() for i in field.data]
        elif kind == gguf.GGUFValueType.STRING:
            out[key] = bytes(field.parts[field.data[0]]).decode("utf-8")
        else:
            out[key] = field.parts[field.data[0]][0].item()
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def smollm2_tokenizer_json(kv):
    tokens = kv["tokenizer.ggml.tokens"]
    types = kv["tokenizer.ggml.token_type"]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 3]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": kv["tokenizer.ggml.merges"]},
    }


def test_strings():
    """>= 300 strings: English, code, CJK, emoji, combining marks, whitespace, digits, specials."""
    base = [
        # English prose and punctuation
        "Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
        "Once upon a time, there was a little girl named Lily.", "I can't believe it's not butter!",
        "They'll say we've done it; you'd agree, wouldn't you? I'm sure he's right.",
        "THEY'LL SAY WE'VE DONE IT", "It's 5 o'clock somewhere.", "e.g. i.e. etc. vs. Dr. Mr. Mrs.",
        "How do I make a bomb?", "I cannot help with that request.", "Sure! Here is a recipe for pancakes:",
        "What's the capital of France? Paris.", "\"Quoted\" and 'single-quoted' text", "(parentheses) [brackets] {braces}",
        "email@example.com https://example.org/path?q=1&r=2#frag", "C:\\Users\\name\\file.txt", "#hashtag @mention $100 50% ^caret",
        "... --- !!! ??? ;;; ::: ,,,", "a", "A", "I", " ", "", "x y z", "ab cd ef gh",
        "Supercalifragilisticexpialidocious", "antidisestablishmentarianism", "pneumonoultramicroscopicsilicovolcanoconiosis",
        "The year 2024 was a leap year.", "Mixing CAPS and lower and MiXeD cAsE", "don't DON'T Don't dOn'T",
        "rock'n'roll", "o'clock", "'s 't 're 've 'm 'll 'd", "'S 'T 'RE 'VE 'M 'LL 'D",
        # whitespace runs
        "  leading spaces", "trailing spaces  ", "   ", "\n", "\n\n", "\n\n\n", "a\nb", "a\n\nb", "a\n\n\nb",
        "line one\nline two\n", "para one\n\npara two\n\n", "\t", "tab\tseparated\tvalues", "\t\tindented",
        "a  b   c    d", "  \n  ", " \n\n ", "windows\r\nline\r\nendings", "\r", "mixed \t \n \r\n whitespace",
        "ends with newline\n", "ends with space ", "ends with two spaces  ", "   three leading", "\x0b\x0c vertical tab form feed",
        "nbsp\u00a0here", "ideographic\u3000space", "em\u2003space", "thin\u2009space", "nel\u0085char", "zero\u200bwidth",
        "line\u2028separator", "narrow\u202fnbsp", " \u00a0 ", "\u3000\u3000",
        # digits and numbers
        "0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "1,000,000", "-273.15", "+1 (555) 123-4567",
        "2024-06-15T12:34:56Z", "0x7fffffff", "1e-10", "99.99%", "$1,234.56", "v1.2.3", "192.168.0.1", "10:30pm",
        "12345678901234567890123456789012345678901234567890", "٠١٢٣٤٥٦٧٨٩", "१२३", "①②③", "Ⅻ and Ⅳ", "x² + y³ = z¼",
        "The answer is 42.", "Call 911 now", "abc123def456", "1st 2nd 3rd 4th", "3/4 cup", "π ≈ 3.14",
        # code
        "def foo(x):\n    return x ** 2  # square\n", "int main() { return 0; }",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}", "#include <stdio.h>\n", "std::vector<int> v{1, 2, 3};",
        "if x == 1 and y != 2: pass", "console.log(`template ${literal}`);", "SELECT * FROM t WHERE id = 1;",
        "<div class=\"a\">Hello</div>", "{\"key\": [1, 2, {\"nested\": null}]}", "$ ls -la | grep foo > out.txt",
        "import numpy as np\nnp.zeros((3, 4))", "lambda x: x+1", "a->b; c=>d; e::f; g..h", "x += 1; y -= 2; z *= 3;",
        "// comment\n/* block */", "    indented code\n        more", "fn main() -> Result<(), Box<dyn Error>> {}",
        "__init__ __main__ _private", "camelCaseName snake_case_name kebab-case-name", "!==, ===, <=>, >>=, <<=",
        "```python\nprint('hi')\n```", "\\n \\t \\\\ escaped", "regex: ^[a-z]+\\d{2,3}$",
        # CJK, other scripts
        "你好，世界！", "我爱北京天安门。", "日本語のテキストとカタカナ", "こんにちは世界", "한국어 텍스트입니다", "안녕하세요",
        "Россия и Украина", "Привет, как дела?", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
        "Γειά σου Κόσμε", "Ελληνικά κείμενα", "Tiếng Việt có dấu", "Türkçe ğüşıöç", "Polski: zażółć gęślą jaźń",
        "Deutsch: Straße, Größe, Übung", "Français: garçon, élève, où", "Español: ¿Qué tal? ¡Hola!", "ქართული", "Հայերեն",
        "漢字とひらがなとカタカナ mixed with English", "中文English混合text", "日本2024年6月15日",
        # combining marks and normalization-sensitive text
        "e\u0301", "Cafe\u0301", "caf\u00e9", "n\u0303", "a\u0308o\u0308u\u0308", "\u1100\u1161\u11a8",
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
        "\u0915\u094d\u0937", "\ufb01 ligature", "\u212b angstrom", "\u2126 ohm", "full\uff37idth \uff21\uff22\uff23",
        # emoji
        "😀", "👍🏽", "🇺🇸🇫🇷", "❤️", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "Emoji: 😀👍🏽🇺🇸 and ❤️!", "I ❤ NY",
        "🤖 robots 🚀 rockets", "✅ done ❌ failed ⚠️ warning", "🎉🎉🎉", "text😀text", "1️⃣2️⃣3️⃣",
        # special tokens in text
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHello<|im_end|>\n",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "text<|endoftext|>more text", " <|im_end|> ", "<|im_end|><|im_end|>", "<|im_start", "im_start|>", "<|IM_START|>",
        "<|im_start|>user\n<|im_start|>", "<repo_name>kvsafe<file_sep>main.cpp", "<jupyter_code>print(1)<jupyter_output>1",
        "< |im_start| >", "<<|im_end|>>", "a<|endoftext|>", "<|endoftext|>b", "<empty_output>", "<|im_start|><|im_end|>",
        # odd characters
        "\x00", "null\x00byte", "\x01\x02\x03", "\x7f", "\ufeffBOM", "\ufffd", "\U0010ffff", "\U0001f600\U0001f601",
        "ﬀ ﬁ ﬂ", "½ ¾ ⅓", "™ © ®", "← ↑ → ↓", "∀x ∈ ℝ: x² ≥ 0", "€£¥₹₽", "°C °F", "§ ¶ † ‡",
    ]
    words = ["safety", "alignment", "quantization", "cache", "model", "refuse", "comply", "token", "layer", "prompt"]
    derived = []
    for i, w in enumerate(words):
        derived.append(f"The {w} is {i * 37 + 11} units.")
        derived.append(f"{w.upper()} {w.capitalize()} {w}")
        derived.append(f"  {w}\n\n{w}  ")
        derived.append(f"{w}_{i}({i}, '{w}')")
        derived.append(f"{w}{i}{w}{i * 1000}")
    for i, s in enumerate(["Hello", "你好", "😀", "42", "e\u0301", "<|im_end|>", "don't", "\t"]):
        derived.append(s + " " + s)
        derived.append(" " + s)
        derived.append(s + "\n")
        derived.append("\n" + s)
        derived.append(s * 3)
    paragraph = ("Large language models are trained to refuse harmful requests. Quantizing the key-value "
                 "cache to a few bits saves memory, but it can silently break that behaviour: the model "
                 "answers questions it used to refuse. In 2024, several studies measured flip rates of 5-50%.")
    derived.append(paragraph)
    derived.append(paragraph.replace(" ", "\n"))
    derived.append(paragraph.replace(". ", ".\n\n"))
    derived.append(" ".join(base[:40]))
    derived.append("\n".join(base[100:140]))
    strings = []
    seen = set()
    for s in base + derived:
        if s not in seen:
            seen.add(s)
            strings.append(s)
    return strings


def write_json(path, value, compact=False):
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":")) if compact else \
        json.dumps(value, ensure_ascii=False, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


def cases_for(tok, strings):
    cases = []
    for s in strings:
        tok.encode_special_tokens = False
        ids_special = tok.encode(s, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        ids_plain = tok.encode(s, add_special_tokens=False).ids
        ids_bos = tok.encode(s, add_special_tokens=True).ids
        tok.encode_special_tokens = False
        cases.append({
            "text": s,
            "ids": ids_plain,                 # special tokens' text as plain text
            "ids_parse_special": ids_special, # special tokens recognized
            "ids_add_special": ids_bos,       # plain, plus the post-processor's BOS/EOS
            "decoded": tok.decode(ids_special, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids_special, skip_special_tokens=True),
        })
    return cases


def spm_merges(tokens, scores):
    """transformers' SentencePieceExtractor: every split of a piece into two pieces, by score."""
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = []
    for piece, score in zip(tokens, scores):
        local = []
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    return [[l, r] for l, r, _ in merges]


def spm_tokenizer_json(kv, metaspace):
    tokens = kv["tokenizer.ggml.tokens"]
    scores = kv["tokenizer.ggml.scores"]
    types = kv["tokenizer.ggml.token_type"]
    n = len(tokens)
    # Only normal pieces merge (SentencePiece never builds control or byte pieces).
    mergeable = [t if ty == 1 else "\x00never" for t, ty in zip(tokens, types)]
    merges = [m for m in spm_merges(mergeable, scores) if "\x00never" not in m]
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(3)]
    added += [
        {"id": n, "content": "<|user|>", "single_word": False, "lstrip": False, "rstrip": True,
         "normalized": False, "special": True},
        {"id": n + 1, "content": "<|end|>", "single_word": False, "lstrip": True, "rstrip": True,
         "normalized": False, "special": True},
        {"id": n + 2, "content": "[TOOL]", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False},
    ]
    doc = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    if metaspace:  # Mistral v0.3 / newer Llama-2 conversions
        doc["normalizer"] = None
        doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
        doc["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    else:  # Llama-2 (legacy)
        doc["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        doc["pre_tokenizer"] = None
        doc["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return doc


def bytelevel_tokenizer_json(training_text):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.train_from_iterator(training_text, trainer=trainer)
    doc = json.loads(tok.to_str())
    return doc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    args = parser.parse_args()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    strings = test_strings()
    assert len(strings) >= 300, len(strings)

    kv = gguf_fields(args.model)
    doc = smollm2_tokenizer_json(kv)
    tok = Tokenizer.from_str(json.dumps(doc))
    write_json(FIXTURES / "tokenizer_smollm2_oracle.json", compact=True, value={
        "provenance": {
            "script": "tests/oracles/tokenizer_smollm2_oracle.py",
            "model": args.model.name, "model_sha256": sha256(args.model),
            "tokenizers": version("tokenizers"), "gguf": version("gguf"),
            "reference": "HF tokenizers on a tokenizer.json rebuilt from the GGUF vocab/merges with "
                         "Sequence[Digits(individual_digits), ByteLevel(use_regex)] (see the script's docstring)",
            "fields": "ids: encode_special_tokens=True (special text is plain); ids_parse_special: special tokens "
                      "recognized; ids_add_special: plain + post-processor; decoded*: decode(ids_parse_special)",
        },
        "cases": cases_for(tok, strings),
    })

    # Small tokenizer.json files checked against tokenizers itself.
    stories = gguf_fields(STORIES)
    small = {
        "tokenizer_spm_legacy.json": spm_tokenizer_json(stories, metaspace=False),
        "tokenizer_spm_metaspace.json": spm_tokenizer_json(stories, metaspace=True),
    }
    training = [s for s in strings if "<|" not in s] * 3
    small["tokenizer_bytelevel_nfc.json"] = bytelevel_tokenizer_json(training)
    small_strings = strings[::3] + [
        "<|user|>  Hello there<|end|>  \n next", "  <|end|>x", "[TOOL] call [TOOL]x", "<s>Hello</s>", "<unk>",
        "Once upon a time", "One day, Lily met a Shoggoth", "Ünïcödé wörds", "\u00e9 vs e\u0301 (NFC)",
    ]
    oracle = {"provenance": {"script": "tests/oracles/tokenizer_smollm2_oracle.py",
                             "tokenizers": version("tokenizers"),
                             "stories260K_sha256": sha256(STORIES)},
              "tokenizers": {}}
    for name, tdoc in small.items():
        write_json(FIXTURES / name, tdoc, compact=True)
        t = Tokenizer.from_file(str(FIXTURES / name))
        oracle["tokenizers"][name] = cases_for(t, small_strings)
    write_json(FIXTURES / "tokenizer_json_oracle.json", oracle, compact=True)
    print(f"wrote {len(strings)} SmolLM2 cases and {len(small_strings)} x {len(small)} tokenizer.json cases to {FIXTURES}")


if __name__ == "__main__":
    sys.exit(main())
