#!/usr/bin/env python3
"""Expected IFEval verdicts for tests/eval/ifeval_test.cpp (eval/ifeval_instructions.h).

Oracle: the reference IFEval checkers in ../shared/reference/ifeval_oracle/ (Apache-2.0),
imported from there at run time (never copied into the project), run on the hand-written
responses of tests/eval/fixtures/ifeval_responses.json. Writes
tests/eval/fixtures/ifeval_oracle_verdicts.json: per example the strict and loose verdict of
every instruction, the reference's word / sentence / all-capital-word counts of the response
(count_words, count_sentences, word_tokenize + isupper), plus the four accuracies over all
examples.

Setup (once; the venv is throw-away and never committed):
  python3 -m venv /tmp/ifeval-venv
  /tmp/ifeval-venv/bin/pip install langdetect nltk absl-py typer rich immutabledict
  /tmp/ifeval-venv/bin/python tests/oracles/ifeval_oracle.py

Deviations from a plain run of the reference, all forced by what works offline:
  * nltk's trained English Punkt model (tokenizers/punkt, punkt_tab) cannot be downloaded
    here, so sentence splitting (count_sentences, and the sentence step of word_tokenize)
    uses nltk's PunktSentenceTokenizer with EMPTY parameters: no learned abbreviations,
    collocations, sentence starters or orthographic context. The C++ side reproduces that
    tokenizer; with the trained model, abbreviations such as "Dr." or "e.g." would not end
    a sentence (docs/ifeval.md).
  * langdetect is seeded (DetectorFactory.seed = 0) so its verdicts are reproducible.

With --compare-database DB it instead reads a kvsafe results database (ifeval cells run by
`kvsafe run`), scores every stored answer with the reference against the instructions of
$KVSAFE_DATA/ifeval/input_data.jsonl (default ../shared/datasets), compares with the verdicts the
run stored (table ifeval_verdicts) and prints how many agree, the disagreements by instruction
type, and each disagreeing (cell, key, instruction); nothing is written. The answers stay in the
database: model outputs are not committed.

With --write-unicode-tables PATH it instead writes the C++ character tables the checkers use
(eval/ifeval_unicode_tables.cpp), taken from this Python's unicodedata, so that \\w, \\d, \\s,
str.isupper/islower and str.lower behave as the reference's Python does, and from the `regex`
package, whose \\w (letters, marks, digits, connectors) nltk 3.10.4 (nltk.redos) uses: RegexpTokenizer(r"\\w+")
keeps "हिंदी" one word there, while stdlib re would split it at the vowel signs.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import unicodedata

ROOT = pathlib.Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "ifeval_oracle"
RESPONSES = ROOT / "tests" / "eval" / "fixtures" / "ifeval_responses.json"
VERSIONS = ""
VERDICTS = ROOT / "tests" / "eval" / "fixtures" / "ifeval_oracle_verdicts.json"


def import_reference():
    """Imports the reference as the package name its modules expect."""
    link_dir = pathlib.Path(tempfile.mkdtemp(prefix="ifeval-oracle-"))
    (link_dir / "instruction_following_eval").symlink_to(REFERENCE)
    sys.path.insert(0, str(link_dir))

    import langdetect
    import nltk
    from nltk.tokenize import punkt

    langdetect.DetectorFactory.seed = 0
    untrained = punkt.PunktSentenceTokenizer()
    import nltk.tokenize as nltk_tokenize

    nltk_tokenize._get_punkt_tokenizer = lambda language="english": untrained

    from instruction_following_eval import evaluation, instructions_util

    instructions_util._get_sentence_tokenizer = lambda: untrained
    global VERSIONS
    VERSIONS = f"nltk {nltk.__version__}, langdetect seed 0, Python {sys.version.split()[0]}"
    return evaluation, instructions_util


def run_oracle():
    evaluation, util = import_reference()
    cases = json.loads(RESPONSES.read_text(encoding="utf-8"))
    out = []
    strict_results, loose_results = [], []
    for case in cases["examples"]:
        example = {
            "key": case.get("key", 0),
            "instruction_id_list": case["instruction_id_list"],
            "prompt": case.get("prompt", ""),
            "kwargs": case["kwargs"],
        }
        strict = evaluation.test_instruction_following(example, case["response"], strict=True)
        loose = evaluation.test_instruction_following(example, case["response"], strict=False)
        strict_results.append(strict)
        loose_results.append(loose)
        out.append(
            {
                "name": case["name"],
                "strict": [bool(v) for v in strict.follow_instruction_list],
                "loose": [bool(v) for v in loose.follow_instruction_list],
                # The splitting helpers on the whole response, whatever its instructions.
                "count_words": util.count_words(case["response"]),
                "count_sentences": util.count_sentences(case["response"]),
                "count_capital_words": sum(1 for w in util.nltk.word_tokenize(case["response"]) if w.isupper()),
            }
        )
    accuracy = {
        "prompt_level_strict_accuracy": evaluation.mean([r.follow_all_instructions for r in strict_results]),
        "inst_level_strict_accuracy": evaluation.instruction_mean(strict_results),
        "prompt_level_loose_accuracy": evaluation.mean([r.follow_all_instructions for r in loose_results]),
        "inst_level_loose_accuracy": evaluation.instruction_mean(loose_results),
    }
    result = {
        "oracle": "shared/reference/ifeval_oracle (evaluation.test_instruction_following), "
        f"untrained Punkt; {VERSIONS}",
        "examples": out,
        "accuracy": accuracy,
    }
    VERDICTS.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(out)} examples -> {VERDICTS.relative_to(ROOT)}")


def compare_database(db_path):
    import os
    import sqlite3
    from collections import Counter

    evaluation, _ = import_reference()
    data = pathlib.Path(os.environ.get("KVSAFE_DATA", ROOT.parent / "shared" / "datasets"))
    examples = {}
    for line in (data / "ifeval" / "input_data.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            example = json.loads(line)
            examples[f"ifeval-{example['key']}"] = example
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    stored = {}
    for cell, index, position, inst, strict, loose in db.execute(
        "SELECT cell_id, prompt_index, instruction_index, instruction_id, strict, loose FROM ifeval_verdicts"
    ):
        stored[(cell, index, position)] = (inst, strict, loose)
    agree = compared = unscored = 0
    by_type = Counter()
    disagreements = []
    answers = db.execute(
        "SELECT g.cell_id, g.prompt_index, g.prompt_id, g.output_text FROM generations g "
        "JOIN cells c ON c.id = g.cell_id WHERE c.task = 'ifeval' ORDER BY g.cell_id, g.prompt_index"
    ).fetchall()
    for cell, index, prompt_id, answer in answers:
        example = examples[prompt_id]
        strict = evaluation.test_instruction_following(example, answer, strict=True).follow_instruction_list
        loose = evaluation.test_instruction_following(example, answer, strict=False).follow_instruction_list
        for position, inst in enumerate(example["instruction_id_list"]):
            stored_inst, stored_strict, stored_loose = stored[(cell, index, position)]
            assert stored_inst == inst, (cell, index, position, stored_inst, inst)
            if stored_strict is None:
                unscored += 1
                continue
            for kind, ours, theirs in (("strict", stored_strict, strict[position]), ("loose", stored_loose, loose[position])):
                compared += 1
                if bool(ours) == bool(theirs):
                    agree += 1
                else:
                    by_type[inst] += 1
                    disagreements.append(f"  {cell[:16]} {prompt_id} #{position} {inst} {kind}: kvsafe {bool(ours)}, reference {bool(theirs)}")
    print(f"oracle: {VERSIONS}")
    print(f"{len(answers)} answers, {compared} verdicts compared (strict and loose), {agree} agree, "
          f"{compared - agree} differ; {unscored} instructions unscored by kvsafe (the reference draws a random letter)")
    for inst, n in by_type.most_common():
        print(f"  {inst}: {n} differ")
    print("\n".join(disagreements))


def ranges(predicate):
    spans, start = [], None
    for cp in range(0x110000):
        if predicate(cp):
            if start is None:
                start = cp
        elif start is not None:
            spans.append((start, cp - 1))
            start = None
    if start is not None:
        spans.append((start, 0x10FFFF))
    return spans


def lower_runs():
    """(first, last, delta, stride) runs of single-code-point lower-case mappings."""
    pairs = []
    for cp in range(0x110000):
        low = chr(cp).lower()
        if len(low) == 1 and ord(low) != cp:
            pairs.append((cp, ord(low) - cp))
    runs = []
    for cp, delta in pairs:
        if runs:
            first, last, d, stride = runs[-1]
            if d == delta and (stride == 0 or cp - last == stride) and cp - last <= 2:
                runs[-1] = (first, cp, d, cp - last)
                continue
        runs.append((cp, cp, delta, 0))
    return [(a, b, d, s if s else 1) for a, b, d, s in runs]


def emit_spans(name, spans, per_line=5):
    lines = [f"const CodeRange {name}[] = {{"]
    for i in range(0, len(spans), per_line):
        chunk = spans[i : i + per_line]
        lines.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in chunk))
    lines.append("};")
    return lines


def write_tables(path):
    def char(cp):
        return chr(cp)

    import regex  # the engine nltk 3.10.4 (nltk.redos) compiles its patterns with

    word = ranges(lambda cp: char(cp).isalnum() or cp == 0x5F)
    nltk_word_re = regex.compile(r"\w")
    nltk_word = ranges(lambda cp: nltk_word_re.match(char(cp)) is not None)
    digit = ranges(lambda cp: char(cp).isdecimal())
    space = ranges(lambda cp: char(cp).isspace())
    upper = ranges(lambda cp: char(cp).isupper())
    lower = ranges(lambda cp: char(cp).islower())
    title = ranges(lambda cp: char(cp).istitle() and not char(cp).isupper())
    runs = lower_runs()
    multi = [cp for cp in range(0x110000) if len(chr(cp).lower()) > 1]
    assert multi == [0x130], multi  # U+0130 -> "i" U+0307, special-cased in C++
    lines = [
        "// GENERATED by tests/oracles/ifeval_oracle.py --write-unicode-tables; do not edit.",
        f"// Python {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}: the character",
        "// classes of the reference's Python (re's \\w \\d \\s on str, str.isupper/islower/istitle,",
        "// str.lower) and nltk's \\w (the `regex` engine's) as sorted inclusive code-point ranges.",
        "",
        '#include "eval/ifeval_text.h"',
        "",
        "namespace kvsafe::eval::ifeval_text {",
        "namespace {",
        "",
    ]
    lines += emit_spans("kWord", word) + [""]
    lines += emit_spans("kNltkWord", nltk_word) + [""]
    lines += emit_spans("kDigit", digit) + [""]
    lines += emit_spans("kSpace", space) + [""]
    lines += emit_spans("kUpper", upper) + [""]
    lines += emit_spans("kLower", lower) + [""]
    lines += emit_spans("kTitle", title) + [""]
    lines.append("const LowerRun kLowerRuns[] = {")
    for i in range(0, len(runs), 4):
        lines.append("    " + " ".join(f"{{0x{a:X}, 0x{b:X}, {d}, {s}}}," for a, b, d, s in runs[i : i + 4]))
    lines.append("};")
    lines += [
        "",
        "}  // namespace",
        "",
        "const UnicodeTables& unicode_tables() {",
        "  static const UnicodeTables tables{",
        "      .word = kWord,",
        "      .nltk_word = kNltkWord,",
        "      .digit = kDigit,",
        "      .space = kSpace,",
        "      .upper = kUpper,",
        "      .lower = kLower,",
        "      .title = kTitle,",
        "      .lower_runs = kLowerRuns,",
        "  };",
        "  return tables;",
        "}",
        "",
        "}  // namespace kvsafe::eval::ifeval_text",
    ]
    pathlib.Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The committed file is in the project's format (tests/scripts/check_format.sh).
    subprocess.run(["clang-format", "-i", f"--style=file:{ROOT / '.clang-format'}", str(path)], check=True)
    print(f"tables -> {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-unicode-tables", metavar="PATH")
    parser.add_argument("--compare-database", metavar="DB")
    args = parser.parse_args()
    if args.compare_database:
        compare_database(args.compare_database)
    elif args.write_unicode_tables:
        write_tables(args.write_unicode_tables)
    else:
        run_oracle()


if __name__ == "__main__":
    main()
