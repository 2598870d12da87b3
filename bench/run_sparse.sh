#!/bin/sh
# Every figure of bench/README-sparse.md, in one go, on this machine:
#
#     bench/run_sparse.sh BUILD_DIR [OUT_DIR]
#
# BUILD_DIR is a configured and built dlas tree (`make bench` is run in it);
# OUT_DIR (default: sparse-bench) receives one log per measurement, the CSV
# and JSON files. Each comparison is one run with its sides interleaved;
# check `uptime` first (it is logged with every run): other work on the
# cores widens every spread. Runs under nice.
set -eu
build=$(cd "${1:?usage: bench/run_sparse.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-sparse-bench}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
make -C "$build" bench >/dev/null
export DLAS_PLUGIN_PATH="$build/plugins.d"
sparse="$build/bench/bench_sparse"

run() { # name, command...
    name=$1
    shift
    echo "== $name: $*" | tee "$out/$name.log"
    uptime | tee -a "$out/$name.log"
    nice "$@" 2>&1 | tee -a "$out/$name.log"
}

# ResNet-18's 3x3 stride-1 layers, 1 thread, batch 1: every dense primitive
# on dense weights, sparse-direct and sparse-gemm at 50-95% unstructured
# sparsity; per layer the break-even sparsity
run layers-3x3-1t "$sparse" --threads 1 --repeat 21 --sparsity 0.5,0.7,0.8,0.9,0.95 \
    --csv "$out/layers-3x3-1t.csv"
# every ResNet-18 layer (stem, stride 2, 1x1) at 80% and 90%
run layers-all-1t "$sparse" --threads 1 --repeat 21 --layers resnet18 --sparsity 0.8,0.9 \
    --csv "$out/layers-all-1t.csv"
# 2 threads on the 3x3 layers
run layers-3x3-2t "$sparse" --threads 2 --repeat 21 --sparsity 0.8,0.9 \
    --csv "$out/layers-3x3-2t.csv"

# end to end, ResNet-18 224x224, batch 1, 1 thread: dense and magnitude-pruned
# (80%, 90% of every conv), every primitive and auto
for chain in none mag80 mag90; do
    mkdir -p "$out/e2e-$chain"
    run e2e-$chain-1t "$build/dlas" compare "$src/examples/sparse.cfg" --chain $chain \
        --threads 1 --repeat 20 --out "$out/e2e-$chain"
done
echo "logs in $out"
