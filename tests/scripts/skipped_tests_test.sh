#!/usr/bin/env bash
# scripts/skipped-tests on a real ctest log: a scratch project with a passing test, a
# GoogleTest-style skip (ctest's SKIP_REGULAR_EXPRESSION, as gtest_discover_tests sets it) and
# a script skip (SKIP_RETURN_CODE), run by ctest; the list must name the two skipped tests with
# their reasons, and nothing else.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/kvsafe_skipped.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cat >"$work/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(skips NONE)
enable_testing()
add_test(NAME passes COMMAND sh -c "echo fine")
add_test(NAME gtest_like COMMAND sh -c "echo 'file.cpp:12: Skipped'; echo 'no AVX-512 here'; echo '[  SKIPPED ] gtest_like'")
set_tests_properties(gtest_like PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
add_test(NAME script_like COMMAND sh -c "echo 'skipped: no SmolLM2 model'; exit 77")
set_tests_properties(script_like PROPERTIES SKIP_RETURN_CODE 77)
CMAKE
cmake -S "$work" -B "$work/build" >/dev/null
(cd "$work/build" && ctest >"$work/ctest.txt")
out="$("$root/scripts/skipped-tests" "$work/ctest.txt" "$work/build/Testing/Temporary/LastTest.log")"
echo "$out"
fail() { echo "FAIL: $1" >&2; exit 1; }
grep -qx "scripts/test: 2 test(s) skipped" <<<"$out" || fail "count"
grep -qx "  gtest_like: no AVX-512 here" <<<"$out" || fail "the GoogleTest skip and its message"
grep -qx "  script_like: skipped: no SmolLM2 model" <<<"$out" || fail "the script skip and its words"
! grep -q "passes" <<<"$out" || fail "a passing test listed"
echo "skipped-tests: ok"
