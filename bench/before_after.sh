#!/bin/sh
# Did a change make anything slower? Two builds of dlas (say, the commit
# before a refactoring and the one after), timed in alternation so that both
# see the same machine:
#
#     bench/before_after.sh BUILD_BEFORE BUILD_AFTER [ROUNDS] [OUT_DIR]
#
# Each round runs, for each build in turn (the order alternates by round),
#   - bench_layers on ResNet-18's 3x3 layers, one
#     thread, with every CPU convolution primitive, and
#   - train_bench on LeNet-5 and ResNet-20 (batch 128, two threads),
# with --cpu-time / CPU-second figures next to the wall clock, since a shared
# machine's wall clock counts other programs' time. The summary (python3,
# no dependencies) gives per measurement the median over rounds of each
# side and after/before, with the rounds' min..max of that ratio: a ratio
# whose range straddles 1 is no change beyond the noise.
set -eu
a=$(cd "${1:?usage: bench/before_after.sh BUILD_BEFORE BUILD_AFTER [ROUNDS] [OUT_DIR]}" && pwd)
b=$(cd "${2:?usage: bench/before_after.sh BUILD_BEFORE BUILD_AFTER [ROUNDS] [OUT_DIR]}" && pwd)
rounds=${3:-3}
out=${4:-before-after}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
for d in "$a" "$b"; do
    for t in bench/bench_layers bench/train_bench; do
        [ -x "$d/$t" ] || { echo "before_after: $d/$t is missing (make -C $d bench)" >&2; exit 2; }
    done
done
prims="direct spatial-pack winograd grouped-spatial-pack im2col-gemm"
side() { # label build round
    label=$1 build=$2 r=$3
    export DLAS_PLUGIN_PATH="$build/plugins.d"
    "$build/bench/bench_layers" --threads 1 --repeat 11 --cpu-time --layers resnet18-3x3 \
        --csv "$out/layers-$label-$r.csv" $prims >/dev/null
    for m in lenet5 resnet20; do
        steps=20
        [ "$m" = lenet5 ] && steps=150
        OMP_WAIT_POLICY=passive "$build/bench/train_bench" --model "$m" --threads 2 \
            --batch 128 --steps "$steps" --json | sed "s/^{/{\"side\": \"$label\", \"round\": $r, /" \
            >>"$out/train.jsonl"
    done
}
: >"$out/train.jsonl"
uptime | tee "$out/uptime.txt"
r=1
while [ "$r" -le "$rounds" ]; do
    echo "round $r of $rounds" >&2
    if [ $((r % 2)) -eq 1 ]; then
        side before "$a" "$r"
        side after "$b" "$r"
    else
        side after "$b" "$r"
        side before "$a" "$r"
    fi
    r=$((r + 1))
done
uptime | tee -a "$out/uptime.txt"
python3 "$here/before_after_report.py" "$out" "$rounds" | tee "$out/summary.txt"
