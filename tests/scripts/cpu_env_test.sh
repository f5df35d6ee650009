#!/usr/bin/env bash
# scripts/cpu-env: OPENBLAS_CORETYPE=SkylakeX exactly when the CPU flags hold all five AVX-512
# subsets its kernels use, values already in the environment win, OMP_WAIT_POLICY defaults to
# passive, glibc's malloc puts large blocks on transparent huge pages. The CPU is a written
# cpuinfo file (KVSAFE_CPUINFO).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failures=0
check() { # name, expected, actual
  if [ "$2" = "$3" ]; then echo "ok   - $1"; else echo "FAIL - $1: expected '$2', got '$3'"; failures=$((failures + 1)); fi
}
# The two variables after sourcing cpu-env in a clean shell with cpuinfo flags $1 and extra
# environment $2.
run() {
  printf 'processor\t: 0\nflags\t\t: %s\n\nprocessor\t: 1\nflags\t\t: %s\n' "$1" "$1" >"$scratch/cpuinfo"
  env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY KVSAFE_CPUINFO="$scratch/cpuinfo" $2 bash -c \
    'source "$0/scripts/cpu-env"; echo "${OPENBLAS_CORETYPE:-unset} ${OMP_WAIT_POLICY:-unset}"' "$root"
}
skx="fpu sse sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"
check "all five AVX-512 subsets -> SkylakeX" "SkylakeX passive" "$(run "$skx" "")"
check "AVX2 only -> OpenBLAS's own choice" "unset passive" "$(run "fpu sse sse2 avx avx2 fma" "")"
check "avx512f without bw/dq/vl -> OpenBLAS's own choice" "unset passive" "$(run "avx2 avx512f avx512cd avx512er avx512pf" "")"
check "a flag name inside another (avx512vl vs avx512vlx) is not a match" "unset passive" \
  "$(run "avx512f avx512dq avx512cd avx512bw avx512vlx" "")"
check "a CORETYPE already set wins" "Haswell passive" "$(run "$skx" "OPENBLAS_CORETYPE=Haswell")"
check "a wait policy already set wins" "SkylakeX active" "$(run "$skx" "OMP_WAIT_POLICY=active")"
check "no cpuinfo -> OpenBLAS's own choice" "unset passive" \
  "$(env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY KVSAFE_CPUINFO="$scratch/none" bash -c \
    'source "$0/scripts/cpu-env"; echo "${OPENBLAS_CORETYPE:-unset} ${OMP_WAIT_POLICY:-unset}"' "$root")"
# GLIBC_TUNABLES after sourcing cpu-env with extra environment $1.
tunables() {
  env -u GLIBC_TUNABLES $1 bash -c 'source "$0/scripts/cpu-env"; echo "${GLIBC_TUNABLES:-unset}"' "$root"
}
check "huge pages for malloc's large blocks" "glibc.malloc.hugetlb=1" "$(tunables "")"
check "other tunables are kept" "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1" \
  "$(tunables "GLIBC_TUNABLES=glibc.malloc.arena_max=2")"
check "a hugetlb setting already there wins" "glibc.malloc.hugetlb=0" "$(tunables "GLIBC_TUNABLES=glibc.malloc.hugetlb=0")"
exit $((failures > 0))
