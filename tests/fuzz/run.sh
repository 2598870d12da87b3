#!/bin/sh
# Fuzz dlas's readers with libFuzzer (Debian's clang; ASan + UBSan).
#
#   tests/fuzz/run.sh [SECONDS]        every harness for SECONDS (default 60)
#   FUZZ_HARNESSES="config tunelog" tests/fuzz/run.sh 30
#   FUZZ_SEED=1 tests/fuzz/run.sh 30   the same mutations every time (CI: a
#                                      regression run; exploring is local work)
#
# Builds libdlas and the plugins with clang in build-fuzz/ (beside build/),
# links each harness (tests/fuzz/fuzz_*.c) with -fsanitize=fuzzer, and runs
# it for SECONDS on a scratch copy of its committed corpus
# (tests/fuzz/corpus/<name>/: the corpus in the tree is never rewritten).
# Prints executions per harness; a crash stops the run with the reproducer
# saved in build-fuzz/fuzz/crash-<name>-*. Make every crash a regression
# test (and add its input to the corpus).
#
# Needs clang, libclang-rt-14-dev (libFuzzer) and libomp-14-dev (OpenMP for
# clang): installed here when missing (as root), not by setup.sh, since only
# fuzzing needs them. A leak of libconfig's own is suppressed (lsan.supp).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-${FUZZ_SECONDS:-60}}
harnesses=${FUZZ_HARNESSES:-"config dataset checkpoint tunelog results"}
out=${FUZZ_BUILD:-$top/build-fuzz}

need=""
command -v clang >/dev/null 2>&1 || need="$need clang"
for p in libclang-rt-14-dev libomp-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "fuzz: missing Debian packages:$need (apt-get install$need)" >&2
        exit 1
    fi
    echo "fuzz: installing$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 || {
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $need >/dev/null; }
fi

# The library and plugins, instrumented for coverage and the sanitizers.
mkdir -p "$out"
if [ ! -f "$out/Makefile" ] || [ "$top/configure" -nt "$out/Makefile" ]; then
    (cd "$out" && "$top/configure" -q CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link" \
        --enable-sanitizers --without-cuda) # no harness reads through a GPU plugin
fi
# The compute kernels and the models, compressors, primitives and backends
# read no file: built plainly (instrumenting their intrinsics for coverage
# and ASan makes clang take many minutes a file), so that the fuzzer's
# coverage is the readers'. Then the rest, instrumented; all-local gathers
# every plugin in plugins.d. The plugins are those this configuration builds
# (not the CUDA ones), as make itself expands pkglib_LTLIBRARIES.
make -C "$out" -s Makefile >/dev/null 2>&1 || true
plain=$(printf 'fuzz-print-plugins:\n\t@echo $(pkglib_LTLIBRARIES)\n' |
            make -C "$out" -s -f Makefile -f - fuzz-print-plugins | tr ' ' '\n' |
            grep -v '^datasets/' | grep -v '^$')
# (compiler output in build.log, shown if the build fails)
blog="$out/build.log"
: >"$blog"
build() {
    make -C "$out" -s -j"$(nproc)" "$@" >>"$blog" 2>&1 || {
        tail -n 60 "$blog" >&2
        echo "fuzz: build failed (make $*; log: $blog)" >&2
        exit 1
    }
}
build SAN_CFLAGS= CFLAGS="-g -O2" core/kernels/libdlas_kernels.la
build libdlas.la
build SAN_CFLAGS= CFLAGS="-g -O2" $plain
build all-local
lib="$out/.libs"
mkdir -p "$out/fuzz"
export DLAS_PLUGIN_PATH="$out/plugins.d"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
# libconfig's own scanner leak (not dlas's memory): see lsan.supp
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$top/tests/fuzz/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

status=0
for h in $harnesses; do
    src="$top/tests/fuzz/fuzz_$h.c"
    bin="$out/fuzz/fuzz_$h"
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$lib/libdlas.so" -nt "$bin" ]; then
        clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -I"$top/core/include" \
            "$src" -o "$bin" -L"$lib" -ldlas -Wl,-rpath,"$lib" -lm
    fi
    corpus="$out/fuzz/corpus-$h"
    rm -rf "$corpus"
    mkdir -p "$corpus"
    cp "$top/tests/fuzz/corpus/$h/"* "$corpus/" 2>/dev/null || true
    log="$out/fuzz/$h.log"
    if (cd "$out/fuzz" && "$bin" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -max_total_time="$secs" \
            -timeout=20 -rss_limit_mb=2560 \
            -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="crash-$h-" \
            "$corpus" >"$log" 2>&1); then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        echo "fuzz: $h: ${execs:-?} executions in ${secs} s, no crash"
    else
        echo "fuzz: $h: FAILED (see $log; reproducer in $out/fuzz/crash-$h-*)" >&2
        tail -n 40 "$log" >&2
        status=1
    fi
done
exit $status
