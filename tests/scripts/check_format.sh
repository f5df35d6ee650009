#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format (.clang-format at the root)
# would write. Fix with: clang-format -i $(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
command -v clang-format >/dev/null || { echo "clang-format is missing: run scripts/setup"; exit 1; }
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
[ ${#files[@]} -gt 0 ] || { echo "no C++ files tracked?"; exit 1; }
if clang-format --dry-run --Werror "${files[@]}" 2>"${TMPDIR:-/tmp}/kvsafe_format.log"; then
  echo "format: ${#files[@]} files formatted as .clang-format says"
else
  grep -E "^[^ ].*(warning|error):" "${TMPDIR:-/tmp}/kvsafe_format.log" | cut -d: -f1 | sort -u | sed 's/^/needs clang-format: /'
  exit 1
fi
