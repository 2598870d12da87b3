#!/bin/sh
# make check-valgrind: the core suites under valgrind's memcheck, with zero
# errors and zero leaks (definite, indirect or possible) required.
#
# valgrind 3.19 cannot decode AVX-512, so the suites are built without
# -march=native in build-valgrind/ (beside build/), and OpenBLAS is told to
# use its Haswell (AVX2) kernels instead of the machine's AVX-512 ones.
#   tests/valgrind.sh [suite ...]     default: the core suites below
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${VALGRIND_BUILD:-$top/build-valgrind}
suites=${*:-"check_params check_loader check_graph check_checkpoint check_surgery check_data"}
command -v valgrind >/dev/null 2>&1 || {
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
    else
        echo "check-valgrind: install valgrind (apt-get install valgrind)" >&2
        exit 1
    fi
}
mkdir -p "$out"
if [ ! -f "$out/Makefile" ] || [ "$top/configure" -nt "$out/Makefile" ]; then
    (cd "$out" && "$top/configure" -q --disable-native --without-cuda CFLAGS="-g -O1")
fi
# every check program and fixture, no suite run (TESTS empty)
make -C "$out" -s -j"$(nproc)" all-local
make -C "$out" -s -j"$(nproc)" check TESTS= >/dev/null

export OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive CK_FORK=no
export DLAS_PLUGIN_PATH="$out/plugins.d" DLAS_FIXTURES="$out/tests/fixtures/.libs"
export DLAS_SRCDIR="$top" DLAS_BUILDDIR="$out" DLAS_BIN="$out/dlas" CK_DEFAULT_TIMEOUT=6000
status=0
for s in $suites; do
    log="$out/tests/$s.valgrind.log"
    if (cd "$out" && ./libtool --mode=execute valgrind -q --error-exitcode=99 --leak-check=full \
            --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible \
            --suppressions="$top/tests/valgrind.supp" --log-file="$log" "tests/$s" \
            >"$log.out" 2>&1); then
        echo "check-valgrind: $s: no errors, no leaks"
    else
        echo "check-valgrind: $s: FAILED (valgrind log: $log)" >&2
        tail -n 60 "$log" "$log.out" >&2
        status=1
    fi
done
exit $status
