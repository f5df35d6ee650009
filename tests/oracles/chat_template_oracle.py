#!/usr/bin/env python3
"""Golden files for kvsafe's chat templates (tests/engine/fixtures/chat_<family>.json).

Oracle: the OFFICIAL Jinja templates rendered with the PyPI `jinja2` package exactly the way
Hugging Face transformers' apply_chat_template does it (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, the loopcontrols extension, raise_exception / strftime_now
globals, a tojson filter, bos_token / eos_token passed as variables).

The template texts are NOT kept in this script or in the fixtures. They are read when the
script runs from:
  * ../shared/reference/chat_templates.md: every ```jinja block, mapped to a family by the
    "## N. <title>" section it sits in (SECTION_FAMILIES below);
  * the SmolLM2-135M-Instruct GGUF (tokenizer.chat_template, via the PyPI `gguf` package);
    SmolLM2's ids come from HF `tokenizers` on the tokenizer.json that
    tests/oracles/tokenizer_smollm2_oracle.py rebuilds from the same GGUF.
Each golden file records the sha256 of the template string it came from (raw and
normalized: CRLF -> LF, outer whitespace trimmed), so a fixture can be traced to its source.

  * with --templates DIR: DIR/<family>.jinja, the official template of a family the
    reference has no text for (OFFICIAL_FILE_FAMILIES below), e.g. a copy of the model's
    tokenizer_config.json chat_template kept outside the repository (other people's text);
    DIR/SOURCES.json ({"<family>": "<repo/path/commit it was copied from>"}) names where each
    came from, and the golden file records that source and the template's sha256.
Each golden file records the sha256 of the template string it came from (raw and
normalized: CRLF -> LF, outer whitespace trimmed), so a fixture can be traced to its source.

Families with no template text (chatml, and those of OFFICIAL_FILE_FAMILIES when --templates
does not provide them), and cases Jinja cannot express (system prompt "none" on a template
that inserts a default; Mistral-Small's default system prompt, which embeds today's date)
have NO oracle: their expected text comes from the small hand-written formatters in PINNED
below, a second implementation written from the published format descriptions, and each
case says so ("oracle": "pinned: ..."), with the reasoning in the family's "note".
Without --templates, Mixtral-8x7B-Instruct-v0.1 is rendered with the reference's Mistral
v0.2 block (the same tokenizer-V1 format, reference §3), an assumption recorded in its note.

Run (needs the PyPI packages jinja2, gguf and tokenizers; kvsafe never depends on them):
  python3 tests/oracles/chat_template_oracle.py [--model PATH] [--reference PATH] [--templates DIR]
"""
import argparse
import hashlib
import importlib.util
import json
import sys
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import gguf
import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "engine" / "fixtures"
REFERENCE = ROOT.parent / "shared" / "reference" / "chat_templates.md"

# Section title prefix in chat_templates.md -> family whose official template the section's
# ```jinja block is.
SECTION_FAMILIES = {
    "## 1. Llama-2-chat": "llama-2",
    "## 2. Llama-3-Instruct": "llama-3",
    "## 3. Mistral-7B-Instruct": "mistral-v0.2",
    "## 4. Qwen2-Instruct": "qwen2",
    "## 5. Phi-3-mini-instruct": "phi-3",
    "## 6. Gemma-2-it": "gemma-2",
    "## 7. SmolLM2-Instruct": "smollm2",
}

# Family facts shared with text/chat_family.cpp: bos/eos spellings, whether the
# official template rejects a system message, and whether it inserts something without one.
FAMILIES = {
    "llama-2": dict(bos="<s>", eos="</s>"),
    "llama-3": dict(bos="<|begin_of_text|>", eos="<|eot_id|>"),
    "llama-3.1": dict(bos="<|begin_of_text|>", eos="<|eot_id|>", inserts=True),
    "mistral-v0.2": dict(bos="<s>", eos="</s>", no_system=True),
    "mixtral": dict(bos="<s>", eos="</s>", no_system=True),
    "mistral-v0.3": dict(bos="<s>", eos="</s>"),
    "mistral-small": dict(bos="<s>", eos="</s>", inserts=True, refuse_default=True),
    "qwen2": dict(bos="", eos="<|im_end|>", inserts=True),
    "qwen2.5": dict(bos="", eos="<|im_end|>", inserts=True),
    "smollm2": dict(bos="<|im_start|>", eos="<|im_end|>", inserts=True),
    "chatml": dict(bos="", eos="<|im_end|>"),
    "yi": dict(bos="<|startoftext|>", eos="<|im_end|>"),
    "phi-3": dict(bos="<s>", eos="<|endoftext|>"),
    "phi-3.5": dict(bos="<s>", eos="<|endoftext|>"),
    "gemma-2": dict(bos="<bos>", eos="<eos>", no_system=True),
    "deepseek": dict(bos="<\uff5cbegin\u2581of\u2581sentence\uff5c>", eos="<\uff5cend\u2581of\u2581sentence\uff5c>"),
    "olmo-2": dict(bos="<|endoftext|>", eos="<|endoftext|>"),
}

# Families whose official template is read from --templates DIR/<family>.jinja.
OFFICIAL_FILE_FAMILIES = ("llama-3.1", "mistral-v0.3", "mistral-small", "qwen2.5", "phi-3.5", "yi", "deepseek",
                          "olmo-2", "mixtral")

# Notes for a family rendered from its official template (--templates); the source is appended.
OFFICIAL_NOTES = {
    "llama-3.1": "System prompt 'none' is pinned (drops the date header the template always writes); the other "
                 "cases are the template's own output with its default date_string '26 Jul 2024'.",
    "mistral-small": "The template's default system prompt embeds today's date (strftime_now), so kvsafe refuses "
                     "'default' (expect_error case, pinned) and 'none' is pinned (drops the [SYSTEM_PROMPT] block); "
                     "'custom' is the template's own output.",
    "qwen2.5": "System prompt 'none' is pinned (drops the default system turn the template inserts).",
    "mixtral": "Mixtral-8x7B-Instruct-v0.1's own template (original release); its text is the same string as the "
               "reference's Mistral-7B-Instruct-v0.2 block. It raises on a system message, so 'custom' cases pass "
               "the system text merged into the first user turn.",
}

NOTES = {
    "llama-3.1": "No template text in the reference (it only says 3.1 always emits a system header with "
                 "'Cutting Knowledge Date: December 2023\\nToday Date: {date}', default '26 Jul 2024'). Pinned: "
                 "BOS; the system header always (system text |trim, empty when none given) ending '\\n\\n' before "
                 "the text; messages as Llama-3 (content |trim); kNone drops the header.",
    "mistral-v0.3": "No template text in the reference. Pinned from its description (§3): '<s>[INST] {user}[/INST]' "
                    "with no space before [/INST]; assistant ' {assistant|trim}</s>'; the system text is prepended "
                    "as '{system}\\n\\n' only to the last user message (and only when it is the last message).",
    "mistral-small": "No template text in the reference. Pinned: tokenizer-V7 format '<s>[SYSTEM_PROMPT]{system}"
                     "[/SYSTEM_PROMPT][INST]{user}[/INST]{assistant}</s>', no spaces, no generation prompt. The "
                     "official default system prompt embeds today's date, so kvsafe refuses 'default' (see the "
                     "expect_error case) and kNone drops the block.",
    "qwen2.5": "No template text in the reference; §4 says plain chat renders Qwen2's ChatML with the default "
               "'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.'. Pinned accordingly.",
    "phi-3.5": "No template text in the reference; §5 says it equals Phi-3's except that an empty system message "
               "is skipped. Pinned accordingly (no BOS in the text: the tokenizer adds <s>).",
    "yi": "No template text in the reference. Pinned from Yi-Chat's published template as kvsafe understands it: "
          "a system message written raw (no wrapper, no newline), user turns '<|im_start|>user\\n{user}<|im_end|>\\n"
          "<|im_start|>assistant\\n' (the assistant header belongs to the user turn, so it is there even without "
          "add_generation_prompt), assistant turns '{assistant}<|im_end|>\\n'; no BOS, no default system prompt.",
    "deepseek": "No template text in the reference. Pinned from deepseek-llm-7b-chat's format: BOS, system "
                "'{system}\\n\\n', 'User: {user}\\n\\n', 'Assistant: {assistant}<eos>', generation prompt "
                "'Assistant:' without a trailing space; contents untouched.",
    "olmo-2": "No template text in the reference. Pinned from the Tulu-3 format OLMo-2-Instruct uses: BOS "
              "(<|endoftext|>), '<|system|>\\n{system}\\n', '<|user|>\\n{user}\\n', '<|assistant|>\\n{assistant}"
              "<eos>' plus '\\n' unless it is the last message, generation prompt '<|assistant|>\\n'.",
    "chatml": "Plain ChatML (e.g. OpenHermes), no default system prompt. No template text in the reference. Pinned: "
              "'<|im_start|>{role}\\n{content}<|im_end|>\\n' per message, generation prompt '<|im_start|>assistant\\n'.",
    "mixtral": "Rendered with the reference's Mistral-7B-Instruct-v0.2 template: Mixtral-8x7B-Instruct-v0.1 uses "
               "the same tokenizer-V1 format (reference §3, Mistral's table). That the two HF templates are the "
               "same string is an assumption, not checked against Mixtral's own tokenizer_config.json.",
}

SYSTEM = "You are a careful assistant. Answer briefly."
ONE_TURN = [{"role": "user", "content": "How do I bake a loaf of bread?"}]
# Whitespace at the ends of turns (a trailing space, an ideographic space U+3000, a
# newline) shows which templates strip/trim contents and which keep them.
TWO_TURNS = [
    {"role": "user", "content": "What is the capital of France? "},
    {"role": "assistant", "content": " The capital of France is Paris.\u3000\n"},
    {"role": "user", "content": "And of Italy?"},
]
CASES = [
    # name, messages, system mode, add_generation_prompt
    ("1turn-default", ONE_TURN, "default", True),
    ("1turn-custom", ONE_TURN, "custom", True),
    ("1turn-none", ONE_TURN, "none", True),
    ("2turn-default", TWO_TURNS, "default", True),
    ("2turn-custom", TWO_TURNS, "custom", True),
    ("2turn-none", TWO_TURNS, "none", True),
    ("2turn-default-nogen", TWO_TURNS, "default", False),
]


# ---------------------------------------------------------------- the Jinja oracle
def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def hf_environment():
    """The environment transformers' _compile_jinja_template builds (minus its
    AssistantTracker extension, which only matters for {% generation %} blocks)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: \
        json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def jinja_render(template, messages, add_generation_prompt, family):
    facts = FAMILIES[family]
    return hf_environment().from_string(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt,
        bos_token=facts["bos"], eos_token=facts["eos"])


# ---------------------------------------------------------------- pinned formatters
def strip(s):
    return s.strip()  # Python str.strip(): what Jinja's trim and .strip() do


def pinned_chatml(default):
    def render(system, messages, gen, none):
        out = ""
        if system is not None:
            out += f"<|im_start|>system\n{system}<|im_end|>\n"
        elif default and not none:
            out += f"<|im_start|>system\n{default}<|im_end|>\n"
        for m in messages:
            out += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
        return out + ("<|im_start|>assistant\n" if gen else "")
    return render


def pinned_llama31(system, messages, gen, none):
    out = "<|begin_of_text|>"
    if not none:
        out += ("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                "Today Date: 26 Jul 2024\n\n" + (strip(system) if system is not None else "") + "<|eot_id|>")
    for m in messages:
        out += f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{strip(m['content'])}<|eot_id|>"
    return out + ("<|start_header_id|>assistant<|end_header_id|>\n\n" if gen else "")


def pinned_mistral_v3(system, messages, gen, none):
    out = "<s>"
    for i, m in enumerate(messages):
        if m["role"] == "user":
            sys_part = f"{system}\n\n" if (system is not None and i == len(messages) - 1) else ""
            out += f"[INST] {sys_part}{m['content']}[/INST]"
        else:
            out += f" {strip(m['content'])}</s>"
    return out


def pinned_mistral_small(system, messages, gen, none):
    out = "<s>"
    if not none:
        if system is None:
            raise ValueError("today's date")
        out += f"[SYSTEM_PROMPT]{system}[/SYSTEM_PROMPT]"
    for m in messages:
        out += f"[INST]{m['content']}[/INST]" if m["role"] == "user" else f"{m['content']}</s>"
    return out


def pinned_phi35(system, messages, gen, none):
    out = f"<|system|>\n{system}<|end|>\n" if system else ""
    for m in messages:
        out += f"<|{m['role']}|>\n{m['content']}<|end|>\n"
    return out + ("<|assistant|>\n" if gen else "<|endoftext|>")


def pinned_yi(system, messages, gen, none):
    out = system if system is not None else ""
    for m in messages:
        if m["role"] == "user":
            out += f"<|im_start|>user\n{m['content']}<|im_end|>\n<|im_start|>assistant\n"
        else:
            out += f"{m['content']}<|im_end|>\n"
    return out


def pinned_deepseek(system, messages, gen, none):
    facts = FAMILIES["deepseek"]
    out = facts["bos"] + (f"{system}\n\n" if system is not None else "")
    for m in messages:
        out += f"User: {m['content']}\n\n" if m["role"] == "user" else f"Assistant: {m['content']}{facts['eos']}"
    return out + ("Assistant:" if gen else "")


def pinned_olmo2(system, messages, gen, none):
    out = "<|endoftext|>" + (f"<|system|>\n{system}\n" if system is not None else "")
    for i, m in enumerate(messages):
        if m["role"] == "user":
            out += f"<|user|>\n{m['content']}\n"
        else:
            out += f"<|assistant|>\n{m['content']}<|endoftext|>" + ("\n" if i + 1 < len(messages) else "")
    return out + ("<|assistant|>\n" if gen else "")


PINNED = {
    "llama-3.1": pinned_llama31,
    "mistral-v0.3": pinned_mistral_v3,
    "mistral-small": pinned_mistral_small,
    "qwen2": pinned_chatml("You are a helpful assistant."),  # only for system "none"
    "qwen2.5": pinned_chatml("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    "smollm2": pinned_chatml("You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
    "chatml": pinned_chatml(""),
    "phi-3.5": pinned_phi35,
    "yi": pinned_yi,
    "deepseek": pinned_deepseek,
    "olmo-2": pinned_olmo2,
}


# ---------------------------------------------------------------- template sources
def reference_templates(path):
    """family -> template text, from the ```jinja blocks of chat_templates.md."""
    out, section, lines, i = {}, None, path.read_text(encoding="utf-8").split("\n"), 0
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i]
        if lines[i].strip() == "```jinja":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            family = next((f for prefix, f in SECTION_FAMILIES.items() if section.startswith(prefix)), None)
            if family is None:
                sys.exit(f"{path}: a jinja block under {section!r} maps to no family; update SECTION_FAMILIES")
            if family in out:
                sys.exit(f"{path}: two jinja blocks for {family}")
            out[family] = "\n".join(lines[i + 1:j])
            i = j
        i += 1
    missing = set(SECTION_FAMILIES.values()) - set(out)
    if missing:
        sys.exit(f"{path}: no jinja block for {sorted(missing)}")
    return out


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalized_sha(text):
    return sha(text.replace("\r\n", "\n").strip(" \t\r\n"))


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- cases
def oracle_messages(family, messages, mode):
    """The messages the official template gets, and how the system prompt was passed."""
    if mode != "custom":
        return list(messages)
    if FAMILIES[family].get("no_system"):
        # The official template raises on a system message; kvsafe's
        # merge_system_into_first_user prepends it to the first user turn instead.
        first = dict(messages[0], content=SYSTEM + "\n\n" + messages[0]["content"])
        return [first] + list(messages[1:])
    return [{"role": "system", "content": SYSTEM}] + list(messages)


def last_user_end(family, text, messages, mode):
    """Character offset just past the last user content in `text` (as the template wrote it)."""
    content = [m for m in messages if m["role"] == "user"][-1]["content"]
    if family in ("llama-2", "llama-3", "llama-3.1", "gemma-2"):
        content = content.strip()  # these templates strip/trim contents
    at = text.rfind(content)
    assert at >= 0, (family, content)
    return at + len(content)


def make_case(family, templates, name, messages, mode, gen):
    facts = FAMILIES[family]
    case = {
        "name": name,
        "messages": messages,
        "system_mode": mode,
        "system_prompt": SYSTEM if mode == "custom" else "",
        "add_generation_prompt": gen,
    }
    if mode == "custom" and facts.get("no_system"):
        case["merge_system_into_first_user"] = True
    jinja_ok = family in templates and not (mode == "none" and facts.get("inserts"))
    try:
        if mode == "default" and facts.get("refuse_default"):
            raise ValueError("today's date")
        if jinja_ok:
            text = jinja_render(templates[family]["text"], oracle_messages(family, messages, mode), gen, family)
            case["oracle"] = "jinja2: " + templates[family]["source"]
        else:
            system = SYSTEM if mode == "custom" else None
            text = PINNED[family](system, messages, gen, mode == "none")
            case["oracle"] = ("pinned: system prompt 'none' drops the default the template would insert; "
                              "Jinja cannot express it" if family in templates else
                              "pinned: no official template text available (see note)")
    except ValueError as e:
        case["expect_error"] = str(e)
        case["oracle"] = "pinned: kvsafe refuses this setting (see note)"
        return case
    case["text"] = text
    chars = last_user_end(family, text, messages, mode)
    case["last_user_end"] = len(text[:chars].encode("utf-8"))  # bytes, as RenderedChat reports it
    case["last_user_end_chars"] = chars
    return case


def add_ids(case, tok):
    """SmolLM2: ids from HF tokenizers (special tokens parsed, no BOS: add_bos_token false) and
    post-instruction positions = tokens whose text ends after the last user content."""
    if "text" not in case:
        return
    enc = tok.encode(case["text"], add_special_tokens=False)
    case["ids"] = enc.ids
    boundary = case.pop("last_user_end_chars")
    case["post_instruction"] = [i for i, (_, end) in enumerate(enc.offsets) if end > boundary]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    helper = load_module(ROOT / "tests" / "oracles" / "tokenizer_smollm2_oracle.py", "tokenizer_smollm2_oracle")
    parser.add_argument("--model", type=Path, default=helper.default_model_path())
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--templates", type=Path, default=None,
                        help="directory of official templates <family>.jinja (+ SOURCES.json) for "
                             + ", ".join(OFFICIAL_FILE_FAMILIES))
    args = parser.parse_args()

    templates = {}
    for family, text in reference_templates(args.reference).items():
        templates[family] = {"text": text, "source": f"reference/chat_templates.md, the {family} jinja block"}
    templates["mixtral"] = dict(templates["mistral-v0.2"])
    templates["mixtral"]["source"] += " (Mistral tokenizer-V1 format; see note)"
    official = set()
    if args.templates is not None:
        sources_path = args.templates / "SOURCES.json"
        sources = json.loads(sources_path.read_text(encoding="utf-8")) if sources_path.exists() else {}
        for family in OFFICIAL_FILE_FAMILIES:
            path = args.templates / f"{family}.jinja"
            if not path.exists():
                print(f"{path}: not there; {family} stays as it was", file=sys.stderr)
                continue
            # newline="" keeps the file's bytes: the hash is of the string as stored.
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
            templates[family] = {"text": text, "source": sources.get(family, f"{path.name} (source not recorded)")}
            official.add(family)

    # SmolLM2: the model's own template from the GGUF is the oracle; the reference copy
    # must render identically.
    reader = gguf.GGUFReader(str(args.model))
    gguf_template = reader.fields["tokenizer.chat_template"].contents()
    reference_smollm2 = templates["smollm2"]["text"]
    templates["smollm2"] = {"text": gguf_template,
                            "source": f"{args.model.name} tokenizer.chat_template"}
    kv = helper.gguf_fields(args.model)
    tok = Tokenizer.from_str(json.dumps(helper.smollm2_tokenizer_json(kv)))

    FIXTURES.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        cases = [make_case(family, templates, *c) for c in CASES]
        provenance = {
            "script": "tests/oracles/chat_template_oracle.py",
            "jinja2": version("jinja2"),
            "oracle": "jinja2 rendering of the official template" if family in templates else "none (pinned)",
        }
        if family in official:
            provenance["template_file"] = f"--templates DIR/{family}.jinja (not kept in the repository)"
        if family in templates:
            provenance["template_source"] = templates[family]["source"]
            provenance["template_sha256"] = sha(templates[family]["text"])
            provenance["template_normalized_sha256"] = normalized_sha(templates[family]["text"])
        if family == "smollm2":
            provenance["model_sha256"] = helper.sha256(args.model)
            provenance["tokenizers"] = version("tokenizers")
            provenance["gguf"] = version("gguf")
            provenance["ids"] = ("HF tokenizers on the tokenizer.json rebuilt from the GGUF "
                                 "(tests/oracles/tokenizer_smollm2_oracle.py), add_special_tokens=False")
            provenance["reference_template_sha256"] = sha(reference_smollm2)
            provenance["reference_template_normalized_sha256"] = normalized_sha(reference_smollm2)
            for case in cases:
                if case.get("oracle", "").startswith("jinja2"):
                    again = jinja_render(reference_smollm2, oracle_messages(family, case["messages"],
                                                                            case["system_mode"]),
                                         case["add_generation_prompt"], family)
                    assert again == case["text"], "reference SmolLM2 template renders differently from the GGUF's"
                add_ids(case, tok)
        for case in cases:
            case.pop("last_user_end_chars", None)
        doc = {"family": family, "provenance": provenance, "cases": cases}
        if family in official:
            doc["note"] = ("Rendered by jinja2 from the official template (" + templates[family]["source"] + "). " +
                           OFFICIAL_NOTES.get(family, "")).strip()
        elif family in NOTES:
            doc["note"] = NOTES[family]
        path = FIXTURES / f"chat_{family}.json"
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)} ({len(cases)} cases, {provenance['oracle']})")


if __name__ == "__main__":
    main()
