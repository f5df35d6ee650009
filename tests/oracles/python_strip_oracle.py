#!/usr/bin/env python3
"""Expected outputs of Python's str.strip() for text/python_text.h's python_strip.

The paper's code strips prompts and answers with str.strip(); its whitespace set is Python's
str.isspace(). This script runs the real str.strip() on edge cases (every whitespace code point
Python knows, look-alikes that are not whitespace, malformed bytes kept as they are) and writes
tests/text/fixtures/python_strip_golden.json: [{"in": hex, "out": hex}, ...]. Run it with any Python 3:
    python3 tests/oracles/python_strip_oracle.py
"""
import json
import pathlib
import sys

spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
cases = [
    "",
    " ",
    "  hello  ",
    "\t\nhello\r\n",
    "\x0b\x0cx\x1c\x1d\x1e\x1f",
    "\u00a0non-breaking\u00a0",
    "\u3000ideographic\u3000",
    "\u200bzero width is not space\u200b",
    "\ufeffbom is not space\ufeff",
    "inner  spaces stay",
    "".join(spaces) + "all of them" + "".join(reversed(spaces)),
    "caf\u00e9 \u2028",
    "\u2029\u202f\u205f\u1680\u0085x\u2000\u200a",
]
golden = [{"in": c.encode("utf-8").hex(), "out": c.strip().encode("utf-8").hex()} for c in cases]
# Malformed UTF-8 is not text to Python; the C++ keeps such bytes and strips around them.
golden.append({"in": (b"  \xff\xfe  ").hex(), "out": b"\xff\xfe".hex()})
out = pathlib.Path(__file__).resolve().parent.parent / "text" / "fixtures" / "python_strip_golden.json"
out.write_text(json.dumps({"spaces": [ord(s) for s in spaces], "cases": golden}, indent=1) + "\n")
print(f"wrote {out}: {len(golden)} cases, {len(spaces)} whitespace code points")
